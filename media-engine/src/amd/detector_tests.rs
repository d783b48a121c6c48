//! The detector, frame-exact on made-up audio.

use bond_codecs::level::{rms_for_dbm0, sine_amplitude_for_dbm0};
use bond_codecs::signals::{mix_into, sine, syllables, white_noise};
use bond_codecs::SampleRate;

use super::*;

const RATE: u32 = 8_000;

/// Speech-like audio: noise shaped into syllables (4 per second) for `ms`.
fn talk(ms: u32, dbm0: f64, seed: u64) -> Vec<i16> {
    syllables(seed, RATE, (RATE * ms / 1000) as usize, rms_for_dbm0(dbm0) * 1.6)
}

fn quiet(ms: u32) -> Vec<i16> {
    vec![0; (RATE * ms / 1000) as usize]
}

fn beep(hz: f64, ms: u32) -> Vec<i16> {
    sine(hz, RATE, (RATE * ms / 1000) as usize, sine_amplitude_for_dbm0(-15.0))
}

fn clip(parts: &[Vec<i16>]) -> Vec<i16> {
    parts.concat()
}

fn with_noise(mut samples: Vec<i16>, dbm0: f64) -> Vec<i16> {
    let noise = white_noise(99, samples.len(), rms_for_dbm0(dbm0));
    mix_into(&mut samples, &noise);
    samples
}

fn run_with(config: AmdConfig, samples: &[i16], sent: Option<&[i16]>) -> Vec<AmdEvent> {
    let mut detector = AmdDetector::new(config, RATE);
    let mut events = Vec::new();
    let mut padded = samples.to_vec();
    padded.resize(padded.len().max((RATE * 40) as usize), 0);
    for (i, chunk) in padded.chunks(160).enumerate() {
        let heard = AudioFrame::from_samples(SampleRate::Hz8000, 0, chunk).unwrap();
        let sent = sent.and_then(|s| s.get(i * 160..(i + 1) * 160)).filter(|s| s.len() == 160);
        let sent = sent.map(|s| AudioFrame::from_samples(SampleRate::Hz8000, 0, s).unwrap());
        detector.push(&heard, sent.as_ref());
        events.extend(std::iter::from_fn(|| detector.poll_event()));
        if detector.is_done() {
            break;
        }
    }
    events
}

fn run(watch: GreetingWatch, samples: &[i16]) -> Vec<AmdEvent> {
    run_with(AmdConfig { watch, ..AmdConfig::default() }, samples, None)
}

fn verdict(events: &[AmdEvent]) -> (Verdict, u32) {
    match events.first() {
        Some(AmdEvent::Detection { verdict, at_millis, .. }) => (*verdict, *at_millis),
        other => panic!("no verdict: {other:?}"),
    }
}

#[test]
fn a_short_hello_then_silence_is_a_person_soon_after_the_pause_starts() {
    let samples = clip(&[quiet(400), talk(500, -20.0, 1), quiet(5_000)]);
    let (v, at) = verdict(&run(GreetingWatch::None, &samples));
    assert_eq!(v, Verdict::Human);
    assert!((1_600..=1_800).contains(&at), "decided at {at} ms");
}

#[test]
fn a_person_on_a_noisy_quiet_line_is_still_a_person() {
    let samples = with_noise(clip(&[quiet(600), talk(700, -38.0, 2), quiet(5_000)]), -52.0);
    assert_eq!(verdict(&run(GreetingWatch::None, &samples)).0, Verdict::Human);
}

#[test]
fn a_long_greeting_is_a_machine_once_it_outlasts_the_greeting_duration() {
    let samples = clip(&[quiet(300), talk(8_000, -18.0, 3), quiet(3_000)]);
    let (v, at) = verdict(&run(GreetingWatch::None, &samples));
    assert_eq!(v, Verdict::Machine);
    assert!((5_300..=5_400).contains(&at), "decided at {at} ms");
}

#[test]
fn sentences_with_short_pauses_are_a_machine() {
    let mut parts = vec![quiet(300)];
    for i in 0..6 {
        parts.push(talk(1_200, -20.0, 10 + i));
        parts.push(quiet(500));
    }
    parts.push(quiet(3_000));
    assert_eq!(verdict(&run(GreetingWatch::None, &clip(&parts))).0, Verdict::Machine);
}

#[test]
fn a_person_answering_with_a_long_sentence_then_waiting_is_a_person() {
    // A business answer: three seconds in one go, then the person waits;
    // a long greeting waits a little longer for a machine's next sentence.
    let samples = clip(&[quiet(500), talk(3_200, -20.0, 20), quiet(6_000)]);
    let (v, at) = verdict(&run(GreetingWatch::None, &samples));
    assert_eq!(v, Verdict::Human);
    let stopped = 500 + 3_200;
    assert!((stopped + 1_400..=stopped + 1_600).contains(&at), "decided {} ms after", at - stopped);
}

#[test]
fn a_person_over_a_television_is_a_person() {
    // The television talks on all the time, in words, 16 dB below the person.
    let mut samples = clip(&[quiet(800), talk(1_000, -14.0, 21), quiet(6_000)]);
    let tv: Vec<Vec<i16>> = (0..18).flat_map(|i| [talk(300, -30.0, 30 + i), quiet(140)]).collect();
    mix_into(&mut samples, &tv.concat());
    let (v, at) = verdict(&run(GreetingWatch::None, &samples));
    assert_eq!(v, Verdict::Human);
    assert!(at <= 1_800 + 1_000, "decided at {at} ms");
}

#[test]
fn a_machine_whose_first_word_is_its_loudest_is_still_a_machine() {
    // "Hi!", then the rest of the greeting 13 dB quieter, sentence after
    // sentence: the same voice gone quieter, not a voice behind a person.
    let mut parts = vec![quiet(300), talk(400, -12.0, 40), quiet(300)];
    for i in 0..5 {
        parts.extend([talk(1_200, -25.0, 41 + i), quiet(400)]);
    }
    parts.push(quiet(5_000));
    assert_eq!(verdict(&run(GreetingWatch::None, &clip(&parts))).0, Verdict::Machine);
}

/// Four sentences, each ending in `ending(i)` then pausing 860 ms, so
/// that taking the ending for quiet makes the pause a person's 900 ms.
fn sentences_ending_in(ending: impl Fn(u64) -> Vec<i16>) -> Vec<i16> {
    let mut parts = vec![quiet(300)];
    for i in 0..4 {
        parts.extend([talk(1_000, -12.0, 60 + i), ending(i), quiet(860)]);
    }
    parts.push(quiet(5_000));
    clip(&parts)
}

/// 60 ms some 22 dB below the sentence's vowels.
fn fading(seed: u64) -> Vec<i16> {
    white_noise(70 + seed, (RATE * 60 / 1000) as usize, rms_for_dbm0(-34.0))
}

#[test]
fn a_machine_whose_words_fade_out_before_each_pause_is_still_a_machine() {
    // A nasal or a fading syllable is the word's end, not a voice behind.
    let samples = sentences_ending_in(fading);
    assert_eq!(verdict(&run(GreetingWatch::None, &samples)).0, Verdict::Machine);
}

#[test]
fn a_hummed_nasal_between_a_word_and_its_fading_end_does_not_break_the_word() {
    // 40 ms of a nasal hummed as a pure tone, then the fading end.
    let samples = sentences_ending_in(|i| {
        let hum = sine(300.0, RATE, (RATE * 40 / 1000) as usize, sine_amplitude_for_dbm0(-24.0));
        [hum, fading(i)].concat()
    });
    assert_eq!(verdict(&run(GreetingWatch::None, &samples)).0, Verdict::Machine);
}

#[test]
fn a_television_heard_only_after_the_person_spoke_is_still_behind_them() {
    // The person says hello and waits; a television 18 dB below talks on.
    let mut samples = clip(&[quiet(400), talk(600, -14.0, 50), quiet(8_000)]);
    let tv: Vec<Vec<i16>> = (0..14).flat_map(|i| [talk(400, -32.0, 51 + i), quiet(120)]).collect();
    mix_into(&mut samples[(8 * 1_200)..], &tv.concat());
    assert_eq!(verdict(&run(GreetingWatch::None, &samples)).0, Verdict::Human);
}

#[test]
fn a_beep_40_ms_after_the_last_words_fading_end_is_found() {
    // Asterisk's voices beep soon after their last word: the word's soft
    // end is no speech the beep must stand apart from.
    let samples =
        clip(&[quiet(300), talk(6_120, -12.0, 6), fading(9), quiet(40), beep(700.0, 400), quiet(3_000)]);
    let events = run(GreetingWatch::EndOrBeep, &samples);
    assert!(matches!(events[1], AmdEvent::GreetingEnded { end: GreetingEnd::Beep { .. }, .. }), "{events:?}");
}

#[test]
fn a_beep_no_louder_than_the_last_word_and_60_ms_after_it_ends_the_greeting() {
    // Asterisk's Italian voices: the beep comes right after the last word and
    // is quieter than its vowels, but it rises from quiet and lasts.
    let samples = clip(&[quiet(300), talk(6_120, -12.0, 6), quiet(60), beep(700.0, 400), quiet(3_000)]);
    let events = run(GreetingWatch::EndOrBeep, &samples);
    assert!(matches!(events[1], AmdEvent::GreetingEnded { end: GreetingEnd::Beep { .. }, .. }), "{events:?}");
}

#[test]
fn a_beep_rising_12_db_out_of_the_last_words_soft_end_ends_the_greeting() {
    // Asterisk's Italian Menardi voice: the beep starts as the word's tail,
    // 12 dB below it, dies away, with no quiet between them.
    let tail = white_noise(9, (RATE * 60 / 1000) as usize, rms_for_dbm0(-27.0));
    let samples = clip(&[quiet(300), talk(6_120, -12.0, 6), tail, beep(700.0, 400), quiet(3_000)]);
    let events = run(GreetingWatch::EndOrBeep, &samples);
    assert!(matches!(events[1], AmdEvent::GreetingEnded { end: GreetingEnd::Beep { .. }, .. }), "{events:?}");
}

#[test]
fn a_tone_barely_above_the_voice_behind_the_greeting_is_no_beep() {
    // A television behind a machine's greeting runs on into a tone hardly
    // louder than it: the tone does not rise out of what came before it.
    let tv = talk(400, -33.0, 8);
    let tone = sine(700.0, RATE, (RATE * 400 / 1000) as usize, sine_amplitude_for_dbm0(-28.0));
    let samples = clip(&[quiet(300), talk(6_120, -12.0, 6), quiet(200), tv, tone, quiet(6_000)]);
    assert_no_beep(&samples);
}

#[test]
fn a_vowel_held_as_a_tone_right_after_a_word_of_a_greeting_is_no_beep() {
    // 100 ms of one steady pitch after a short pause, then the greeting goes on.
    let vowel = sine(300.0, RATE, (RATE * 100 / 1000) as usize, sine_amplitude_for_dbm0(-12.0));
    let samples =
        clip(&[quiet(300), talk(6_120, -12.0, 6), quiet(60), vowel, quiet(500), talk(1_000, -12.0, 7)]);
    assert_no_beep(&clip(&[samples, quiet(6_000)]));
}

#[test]
fn a_persons_hello_followed_closely_by_a_call_waiting_tone_is_still_a_person() {
    // A beep this close to a word counts only at the end of a machine's greeting.
    let waiting = sine(440.0, RATE, (RATE * 300 / 1000) as usize, sine_amplitude_for_dbm0(-15.0));
    let samples = clip(&[quiet(400), talk(500, -20.0, 1), quiet(60), waiting, quiet(5_000)]);
    assert_eq!(verdict(&run(GreetingWatch::EndOrBeep, &samples)).0, Verdict::Human);
}

#[test]
fn a_beep_after_the_greeting_ends_it_within_100_ms() {
    let samples = clip(&[quiet(300), talk(4_000, -18.0, 4), quiet(500), beep(1_000.0, 400), quiet(3_000)]);
    let beep_end = 300 + 4_000 + 500 + 400;
    let events = run(GreetingWatch::EndOrBeep, &samples);
    assert_eq!(verdict(&events).0, Verdict::Machine);
    match events.get(1) {
        Some(AmdEvent::GreetingEnded { end: GreetingEnd::Beep { hz }, at_millis }) => {
            assert!((hz - 1_000.0).abs() < 10.0);
            assert!(*at_millis >= beep_end && *at_millis <= beep_end + 100, "at {at_millis}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_greeting_without_a_beep_ends_with_a_long_silence() {
    let samples = clip(&[quiet(300), talk(6_000, -18.0, 5), quiet(6_000)]);
    let events = run(GreetingWatch::EndOrBeep, &samples);
    assert!(matches!(events[1], AmdEvent::GreetingEnded { end: GreetingEnd::Ended, .. }), "{events:?}");
    let events = run(GreetingWatch::None, &samples);
    assert_eq!(events.len(), 1, "detect mode reports the verdict only");
}

#[test]
fn silence_and_a_hissing_dead_line_are_silence_at_the_initial_silence_time() {
    for samples in [quiet(10_000), with_noise(quiet(10_000), -45.0)] {
        let (v, at) = verdict(&run(GreetingWatch::None, &samples));
        assert_eq!((v, at), (Verdict::Silence, 3_500));
    }
}

#[test]
fn fax_tones_are_fax() {
    let mut cng = quiet(200);
    for _ in 0..3 {
        cng.extend(sine(1_100.0, RATE, 4_000, sine_amplitude_for_dbm0(-15.0)));
        cng.extend(quiet(3_000));
    }
    assert_eq!(verdict(&run(GreetingWatch::None, &cng)).0, Verdict::Fax);
    let ced = clip(&[quiet(300), sine(2_100.0, RATE, 24_000, sine_amplitude_for_dbm0(-12.0))]);
    let (v, at) = verdict(&run(GreetingWatch::None, &ced));
    assert_eq!(v, Verdict::Fax);
    assert!(at <= 300 + 600, "{at}");
}

#[test]
fn ringback_before_the_answer_is_not_a_beep() {
    let mut ringback = sine(440.0, RATE, 16_000, sine_amplitude_for_dbm0(-19.0));
    mix_into(&mut ringback, &sine(480.0, RATE, 16_000, sine_amplitude_for_dbm0(-19.0)));
    let samples = clip(&[ringback, quiet(500), talk(400, -20.0, 6), quiet(4_000)]);
    let events = assert_no_beep(&samples);
    assert_ne!(verdict(&events).1, 0);
}

/// A hummed or sung note: a harmonic series at `f0` with a 5 Hz vibrato of ±2%.
fn hum(f0: f64, ms: u32) -> Vec<i16> {
    let amp = sine_amplitude_for_dbm0(-18.0);
    let mut phase = 0.0;
    (0..(RATE * ms / 1000) as usize)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            phase += std::f64::consts::TAU * f0 * (1.0 + 0.02 * (std::f64::consts::TAU * 5.0 * t).sin())
                / f64::from(RATE);
            ((1..=6).map(|k| (phase * k as f64).sin() / k as f64).sum::<f64>() * amp / 1.5) as i16
        })
        .collect()
}

/// `samples` with the greeting watch on: the events, which must hold no beep.
fn assert_no_beep(samples: &[i16]) -> Vec<AmdEvent> {
    let events = run(GreetingWatch::EndOrBeep, samples);
    let beep = |e: &AmdEvent| matches!(e, AmdEvent::GreetingEnded { end: GreetingEnd::Beep { .. }, .. });
    assert!(!events.iter().any(beep), "{events:?}");
    events
}

#[test]
fn hummed_and_sung_notes_after_a_greeting_are_not_beeps() {
    let hummed =
        clip(&[quiet(600), hum(220.0, 700), quiet(600), hum(330.0, 900), quiet(600), hum(262.0, 500)]);
    let samples = clip(&[quiet(300), talk(3_000, -18.0, 12), quiet(300), hummed, quiet(6_000)]);
    assert_no_beep(&samples);
}

#[test]
fn a_british_ringback_cadence_after_a_greeting_is_not_a_beep() {
    // 400+450 Hz, 0.4 s on, 0.2 s off, 0.4 s on, 2 s off: bursts as long as beeps.
    let burst = |ms| {
        let mut b = beep(400.0, ms);
        mix_into(&mut b, &beep(450.0, ms));
        b
    };
    let mut ringback = Vec::new();
    for _ in 0..2 {
        ringback.extend(clip(&[burst(400), quiet(200), burst(400), quiet(2_000)]));
    }
    let samples = clip(&[quiet(300), talk(3_000, -18.0, 13), quiet(300), ringback, quiet(3_000)]);
    assert_no_beep(&samples);
}

#[test]
fn keypresses_after_a_greeting_are_not_a_beep() {
    use bond_codecs::dtmf::{DtmfDigit, DtmfGenerator};
    let mut samples = clip(&[quiet(300), talk(3_000, -18.0, 11), quiet(400)]);
    for c in "*71#0".chars() {
        let digit = DtmfDigit::from_char(c).unwrap();
        let mut generator = DtmfGenerator::new(digit, RATE, -8.0, 100);
        let mut tone = vec![0; 8 * 100];
        generator.fill(&mut tone);
        samples.extend(tone);
        samples.extend(quiet(300));
    }
    samples.extend(quiet(5_000));
    let events = run(GreetingWatch::EndOrBeep, &samples);
    assert!(matches!(events[1], AmdEvent::GreetingEnded { end: GreetingEnd::Ended, .. }), "{events:?}");
}

#[test]
fn bonds_own_prompt_echoed_back_is_not_taken_for_the_callee() {
    // Bond talks for 5 s; the line echoes it back one frame later, as loud.
    let prompt = clip(&[talk(5_000, -15.0, 7), quiet(10_000)]);
    let mut echo = quiet(20);
    echo.extend_from_slice(&prompt[..prompt.len() - 160]);
    let events = run_with(AmdConfig::default(), &echo, Some(&prompt));
    assert_eq!(verdict(&events).0, Verdict::Silence, "{events:?}");
    // A person who says hello after the prompt is still a person.
    let mut heard = echo.clone();
    let at = (RATE * 5_400 / 1000) as usize;
    let hello = talk(500, -20.0, 8);
    heard[at..at + hello.len()].copy_from_slice(&hello);
    assert_eq!(verdict(&run_with(AmdConfig::default(), &heard, Some(&prompt))).0, Verdict::Human);
}

#[test]
fn decisions_are_the_same_at_16_and_48_khz() {
    let samples = clip(&[quiet(300), talk(6_000, -18.0, 9)]);
    let up = |factor: usize| -> Vec<i16> {
        samples.iter().flat_map(|&s| std::iter::repeat_n(s, factor)).collect()
    };
    for (rate, factor) in [(SampleRate::Hz16000, 2), (SampleRate::Hz48000, 6)] {
        let mut detector = AmdDetector::new(AmdConfig::default(), rate.hz());
        let mut first = None;
        for chunk in up(factor).chunks(rate.frame_samples()) {
            detector.push(&AudioFrame::from_samples(rate, 0, chunk).unwrap(), None);
            if let Some(e) = detector.poll_event() {
                first = Some(e);
                break;
            }
        }
        assert!(matches!(first, Some(AmdEvent::Detection { verdict: Verdict::Machine, .. })), "{first:?}");
    }
}

/// Run with words in English: each greeting handed out is answered
/// `delay_ms` later with `answer(ask, samples)`. Returns the events and the
/// length (ms) of each greeting handed out.
fn run_words(
    samples: &[i16],
    delay_ms: u32,
    answer: impl Fn(usize) -> &'static str,
) -> (Vec<AmdEvent>, Vec<u32>) {
    let config = AmdConfig { words_language: Some("en"), ..AmdConfig::default() };
    let mut detector = AmdDetector::new(config, RATE);
    let (mut events, mut asked, mut due) = (Vec::new(), Vec::new(), Vec::new());
    let mut padded = samples.to_vec();
    padded.resize((RATE * 10) as usize, 0);
    for (i, chunk) in padded.chunks(160).enumerate() {
        let now = (i as u32 + 1) * 20;
        due.retain(|&(at, text)| {
            if at <= now {
                detector.heard_words(text);
            }
            at > now
        });
        detector.push(&AudioFrame::from_samples(SampleRate::Hz8000, 0, chunk).unwrap(), None);
        events.extend(std::iter::from_fn(|| detector.poll_event()));
        if let Some((greeting, _)) = detector.poll_words_wanted() {
            due.push((now + delay_ms, answer(asked.len())));
            asked.push(greeting.len() as u32 * 1000 / RATE);
        }
    }
    (events, asked)
}

#[test]
fn a_short_greeting_that_says_leave_a_message_is_a_machine_as_soon_as_its_words_come_back() {
    let greeting = clip(&[quiet(500), talk(1_500, -20.0, 1), quiet(5_000)]);
    let (timing, _) = run_words(&greeting, 60_000, |_| "");
    let (person, human_at) = verdict(&timing);
    assert_eq!(person, Verdict::Human);
    let (events, asked) = run_words(&greeting, 300, |_| "Hi, it's Sam. Leave a message.");
    let (machine, at) = verdict(&events);
    assert_eq!(machine, Verdict::Machine);
    // Asked once the pause reached 200 ms; answered 300 ms later, before timing's verdict.
    assert!(at < human_at, "words at {at} ms, timing at {human_at} ms");
    assert_eq!(asked.len(), 1);
    // The greeting handed out holds a little from before it, all of it, and the pause so far.
    assert!((1_700..=2_000).contains(&asked[0]), "{asked:?}");
}

#[test]
fn words_without_a_machines_phrase_or_too_late_leave_the_verdict_to_timing() {
    let greeting = clip(&[quiet(500), talk(1_500, -20.0, 1), quiet(5_000)]);
    let (timing, _) = run_words(&greeting, 60_000, |_| "");
    let (person, _) = run_words(&greeting, 300, |_| "Hello, this is Sam speaking.");
    assert_eq!(verdict(&person), verdict(&timing));
    let (late, _) = run_words(&greeting, 2_000, |_| "Leave a message after the tone.");
    assert_eq!(verdict(&late), verdict(&timing));
    assert_eq!(late.len(), 1, "{late:?}");
}

#[test]
fn the_greeting_is_handed_out_once_at_each_pause_but_a_bare_hello_is_not() {
    let hello = clip(&[quiet(500), talk(400, -20.0, 1), quiet(3_000)]);
    assert_eq!(run_words(&hello, 100, |_| "").1, Vec::<u32>::new());
    let two_sentences =
        clip(&[quiet(500), talk(1_000, -20.0, 1), quiet(400), talk(1_000, -20.0, 2), quiet(3_000)]);
    let (events, asked) =
        run_words(&two_sentences, 100, |ask| if ask == 1 { "please leave a message" } else { "hi" });
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[1] > asked[0] + 1_000, "{asked:?}");
    assert_eq!(verdict(&events).0, Verdict::Machine);
}

#[test]
fn without_a_language_no_greeting_is_handed_out() {
    let mut detector = AmdDetector::new(AmdConfig::default(), RATE);
    for chunk in clip(&[quiet(500), talk(1_500, -20.0, 1), quiet(2_000)]).chunks(160) {
        detector.push(&AudioFrame::from_samples(SampleRate::Hz8000, 0, chunk).unwrap(), None);
        assert!(detector.poll_words_wanted().is_none());
    }
}

#[test]
fn a_chimes_beep_ends_the_greeting_when_its_faint_ringing_does() {
    // One Asterisk set's beep is a chime: its partials beat gently while it
    // holds for 130 ms, it dies away 20 dB over 120 ms, and it rings on faintly
    // (here 100 ms of two partials, which the tone tracker cannot follow).
    let amp = sine_amplitude_for_dbm0(-15.0);
    let chime: Vec<i16> = (0..RATE / 4)
        .map(|n| {
            let ms = f64::from(n) * 1000.0 / f64::from(RATE);
            let gain_db = 2.5 * (std::f64::consts::TAU * ms / 50.0).sin() - (ms - 130.0).max(0.0) / 6.0;
            (amp * 10f64.powf(gain_db / 20.0) * (std::f64::consts::TAU * 870.0 * ms / 1000.0).sin()) as i16
        })
        .collect();
    let faint = sine_amplitude_for_dbm0(-45.0);
    let mut ringing = sine(870.0, RATE, (RATE / 10) as usize, faint);
    mix_into(&mut ringing, &sine(1_300.0, RATE, (RATE / 10) as usize, faint));
    let samples = clip(&[quiet(300), talk(6_120, -12.0, 6), quiet(500), chime, ringing, quiet(3_000)]);
    let ringing_ends_ms = 300 + 6_120 + 500 + 250 + 100;
    let events = run(GreetingWatch::EndOrBeep, &samples);
    match events.get(1) {
        Some(AmdEvent::GreetingEnded { end: GreetingEnd::Beep { .. }, at_millis }) => {
            assert!((ringing_ends_ms..=ringing_ends_ms + 40).contains(at_millis), "{events:?}");
        }
        other => panic!("no beep: {other:?} in {events:?}"),
    }
}
