//! The tone tracker's tests: beeps as real ones sound, and what is not one.

use bond_codecs::level::sine_amplitude_for_dbm0;
use bond_codecs::signals::{mix_into, sine, white_noise};

use super::*;

fn segments(rate: u32, samples: &[i16]) -> Vec<ToneSegment> {
    let mut tracker = ToneTracker::new(rate);
    let frame = (rate / 50) as usize;
    let mut padded = samples.to_vec();
    padded.extend(std::iter::repeat_n(0, rate as usize / 5));
    let mut out = Vec::new();
    for chunk in padded.chunks(frame) {
        tracker.push(chunk);
        while let Some(s) = tracker.poll_segment() {
            out.push(s);
        }
    }
    out
}

fn tone(hz: f64, rate: u32, ms: u32, dbm0: f64) -> Vec<i16> {
    sine(hz, rate, (rate * ms / 1000) as usize, sine_amplitude_for_dbm0(dbm0))
}

fn silence(rate: u32, ms: u32) -> Vec<i16> {
    vec![0; (rate * ms / 1000) as usize]
}

#[test]
fn a_beep_that_fades_in_and_out_over_20_ms_is_steady() {
    // Asterisk's voicemail beep: 700 Hz for 425 ms, its level rising over
    // the first 20 ms and falling over the last 20 ms.
    let mut s = silence(8_000, 300);
    let mut beep = tone(700.0, 8_000, 425, -18.0);
    let (len, ramp) = (beep.len(), 160);
    for (i, x) in beep.iter_mut().enumerate() {
        let gain = (i.min(len - 1 - i) as f64 / ramp as f64).min(1.0);
        *x = (f64::from(*x) * gain) as i16;
    }
    s.extend(beep);
    let segs = segments(8_000, &s);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs[0].steady && segs[0].isolated, "{segs:?}");
}

#[test]
fn a_beep_that_swells_over_its_first_120_ms_is_steady() {
    // Some beeps rise slowly (one Asterisk prompt set's by 6 dB over its
    // first 150 ms, most of it in the first 60), then hold: the level never
    // falls back as two tones beating do.
    let mut samples = silence(8_000, 200);
    let beep = tone(700.0, 8_000, 425, -12.0);
    let swell = 120 * 8;
    samples.extend(beep.iter().enumerate().map(|(i, &x)| {
        let gain = if i < swell { 10f64.powf(-10.0 * (1.0 - i as f64 / swell as f64) / 20.0) } else { 1.0 };
        (f64::from(x) * gain) as i16
    }));
    samples.extend(silence(8_000, 300));
    let segs = segments(8_000, &samples);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs[0].steady && segs[0].isolated, "{segs:?}");
}

#[test]
fn a_beep_is_one_steady_isolated_segment_at_its_frequency_and_length() {
    for rate in [8_000, 16_000, 48_000] {
        for (hz, ms) in [(300.0, 70), (1_000.0, 250), (1_850.0, 500), (2_500.0, 1_500)] {
            let mut s = silence(rate, 300);
            s.extend(tone(hz, rate, ms, -20.0));
            let segs = segments(rate, &s);
            assert_eq!(segs.len(), 1, "{rate} Hz rate, {hz} Hz tone: {segs:?}");
            let seg = segs[0];
            assert!(seg.steady && seg.isolated, "{seg:?}");
            assert!((seg.hz - hz).abs() < hz * 0.01, "{seg:?}");
            assert!(seg.start_ms.abs_diff(300) <= 5, "{seg:?}");
            assert!(seg.duration_ms().abs_diff(ms) <= 10, "{seg:?}");
        }
    }
}

#[test]
fn a_beep_with_a_lost_packet_in_it_is_one_steady_beep() {
    // A G.711 packet lost mid-beep plays as 20 ms of silence.
    let mut s = silence(8_000, 300);
    s.extend(tone(1_000.0, 8_000, 600, -20.0));
    let at = (300 + 240) * 8;
    s[at..at + 160].fill(0);
    let segs = segments(8_000, &s);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs[0].steady && segs[0].isolated, "{segs:?}");
    assert!(segs[0].duration_ms().abs_diff(600) <= 10, "{segs:?}");
}

#[test]
fn a_beep_whose_level_wanders_after_a_concealed_loss_is_still_steady() {
    // An Opus decoder conceals a lost packet with a fading copy, then takes a
    // few hundred ms to settle, the level swinging by several dB.
    let mut s = silence(8_000, 300);
    s.extend(tone(1_000.0, 8_000, 300, -20.0));
    s.extend(tone(1_000.0, 8_000, 10, -34.0));
    for db in [-16.0, -23.0, -17.0, -22.0, -19.0, -21.0, -20.0] {
        s.extend(tone(1_000.0, 8_000, 50, db));
    }
    let segs = segments(8_000, &s);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs[0].steady, "{segs:?}");
}

#[test]
fn a_beep_that_fades_in_then_loses_a_packet_over_opus_is_still_steady() {
    // Asterisk's beep over a lossy Opus line: a 20 ms fade-in, 80 ms level,
    // then a lost packet concealed and the level wandering back.
    let mut s = silence(8_000, 300);
    let mut head = tone(700.0, 8_000, 100, -18.0);
    for (i, x) in head.iter_mut().enumerate().take(160) {
        *x = (f64::from(*x) * i as f64 / 160.0) as i16;
    }
    s.extend(head);
    for db in [-31.0, -26.0, -22.0, -16.0, -20.0, -17.0, -18.0] {
        s.extend(tone(700.0, 8_000, 20, db));
    }
    s.extend(tone(700.0, 8_000, 185, -18.0));
    let segs = segments(8_000, &s);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs[0].steady, "{segs:?}");
}

#[test]
fn a_beep_in_line_noise_is_still_found() {
    let mut s = silence(8_000, 200);
    s.extend(tone(1_000.0, 8_000, 200, -30.0));
    s.extend(silence(8_000, 200));
    let noise = white_noise(3, s.len(), bond_codecs::level::rms_for_dbm0(-50.0));
    mix_into(&mut s, &noise);
    let segs = segments(8_000, &s);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs[0].duration_ms().abs_diff(200) <= 10, "{segs:?}");
}

#[test]
fn ringback_and_noise_are_not_steady_single_tones() {
    let rate = 8_000;
    let mut ringback = tone(440.0, rate, 2_000, -19.0);
    mix_into(&mut ringback, &tone(480.0, rate, 2_000, -19.0));
    let segs = segments(rate, &ringback);
    assert!(segs.iter().all(|s| !s.steady || s.duration_ms() < 60), "{segs:?}");
    assert!(segments(rate, &white_noise(1, 8_000, 3_000.0)).is_empty());
}

#[test]
fn three_tones_in_a_row_are_a_sequence_not_beeps() {
    let rate = 8_000;
    let mut sit = silence(rate, 100);
    for hz in [913.8, 1_370.6, 1_776.7] {
        sit.extend(tone(hz, rate, 274, -24.0));
    }
    let segs = segments(rate, &sit);
    assert_eq!(segs.len(), 3, "{segs:?}");
    assert!(segs.iter().all(|s| !s.isolated), "{segs:?}");
}

#[test]
fn sounding_reports_a_long_tone_while_it_lasts() {
    let rate = 8_000;
    let mut tracker = ToneTracker::new(rate);
    let ced = tone(2_100.0, rate, 1_000, -12.0);
    for chunk in ced.chunks(160) {
        tracker.push(chunk);
    }
    let (hz, ms) = tracker.sounding().expect("a tone is sounding");
    assert!((hz - 2_100.0).abs() < 10.0 && ms >= 980, "{hz} {ms}");
}

/// `hz` at `dbm0` shaped by `gain_db(ms)` (the level against `dbm0` at each ms).
fn shaped(hz: f64, rate: u32, ms: u32, dbm0: f64, gain_db: impl Fn(f64) -> f64) -> Vec<i16> {
    let amp = sine_amplitude_for_dbm0(dbm0);
    (0..rate * ms / 1000)
        .map(|n| {
            let t = f64::from(n) / f64::from(rate);
            let gain = 10f64.powf(gain_db(t * 1000.0) / 20.0);
            (amp * gain * (std::f64::consts::TAU * hz * t).sin()) as i16
        })
        .collect()
}

#[test]
fn a_beep_that_rings_out_like_a_chime_is_one_steady_beep() {
    for rate in [8_000, 48_000] {
        // As one Asterisk set's beep: its partials beat by 2.5 dB either way every
        // 50 ms; level for 120 ms, then dying away at 15 dB per 100 ms.
        let beat = |ms: f64| 2.5 * (std::f64::consts::TAU * ms / 50.0).sin();
        let chime = shaped(850.0, rate, 300, -12.0, |ms| beat(ms) - (ms - 120.0).max(0.0) * 0.15);
        let mut audio = silence(rate, 300);
        audio.extend(chime);
        let segs = segments(rate, &audio);
        assert_eq!(segs.len(), 1, "{rate} Hz: {segs:?}");
        let s = segs[0];
        assert!(s.steady && s.isolated, "{rate} Hz: {s:?}");
        assert!((s.hz - 850.0).abs() < 10.0, "{rate} Hz: {s:?}");
        assert!(s.duration_ms() >= 150, "{rate} Hz: {s:?}");
    }
}

#[test]
fn a_tone_that_dies_away_and_swells_back_is_no_beep() {
    // Level 100 ms, down 15 dB over 100 ms, back up over 60 ms to 2 dB louder
    // than it began, level 60 ms.
    let sag = shaped(850.0, 8_000, 320, -12.0, |ms| match ms {
        ms if ms < 100.0 => 0.0,
        ms if ms < 200.0 => -(ms - 100.0) * 0.15,
        ms if ms < 260.0 => -15.0 + (ms - 200.0) * 0.28,
        _ => 2.0,
    });
    let mut audio = silence(8_000, 300);
    audio.extend(sag);
    let segs = segments(8_000, &audio);
    assert!(segs.iter().all(|s| !s.steady), "{segs:?}");
}

#[test]
fn a_vowel_held_as_a_tone_that_fades_soon_is_no_beep() {
    // 20 ms fade-in, level 60 ms, then 20 dB down over the next 60 ms: a held
    // vowel, as one Asterisk voice's, for all its tonal purity.
    let vowel = shaped(450.0, 8_000, 140, -12.0, |ms| match ms {
        ms if ms < 20.0 => -12.0 + ms * 0.6,
        ms if ms < 80.0 => 0.0,
        ms => -(ms - 80.0) / 3.0,
    });
    let mut audio = silence(8_000, 300);
    audio.extend(vowel);
    audio.extend(silence(8_000, 300));
    let segs = segments(8_000, &audio);
    assert!(segs.iter().all(|s| !s.steady), "{segs:?}");
}
