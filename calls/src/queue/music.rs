//! The hold music Bond ships: a soft four-note figure, synthesized at the
//! call's own rate (no file to fetch or resample), looped while a call waits.

use std::f64::consts::PI;

use bond_codecs::SampleRate;

/// The figure's notes (Hz: an A-major arpeggio and its fifth below), each this long.
const NOTES: [f64; 8] = [440.0, 554.37, 659.25, 554.37, 329.63, 415.30, 493.88, 415.30];
const NOTE_MS: usize = 450;
/// Quiet between repeats of the figure.
const REST_MS: usize = 900;
/// Peak level (of full scale): about -20 dBFS, well under speech.
const LEVEL: f64 = 0.1;

/// One loop of the tune at `rate`.
pub fn hold_tune(rate: SampleRate) -> Vec<i16> {
    let hz = f64::from(rate.hz());
    let note_len = rate.hz() as usize * NOTE_MS / 1000;
    let mut samples = Vec::with_capacity(note_len * NOTES.len() + rate.hz() as usize * REST_MS / 1000);
    for note in NOTES {
        for i in 0..note_len {
            // A raised-cosine swell and fade, so notes join without clicks.
            let envelope = 0.5 - 0.5 * (2.0 * PI * i as f64 / note_len as f64).cos();
            let tone =
                (2.0 * PI * note * i as f64 / hz).sin() + 0.3 * (4.0 * PI * note * i as f64 / hz).sin();
            samples.push((tone / 1.3 * envelope * LEVEL * f64::from(i16::MAX)) as i16);
        }
    }
    samples.resize(samples.len() + rate.hz() as usize * REST_MS / 1000, 0);
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tune_is_quiet_music_at_the_calls_rate_ending_in_a_rest() {
        for rate in [SampleRate::Hz8000, SampleRate::Hz48000] {
            let tune = hold_tune(rate);
            let seconds = tune.len() as f64 / f64::from(rate.hz());
            assert!((seconds - 4.5).abs() < 0.01, "{seconds} s");
            let peak = tune.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!(peak > 2000 && peak < 3400, "peak {peak}");
            assert!(tune[tune.len() - 100..].iter().all(|&s| s == 0));
            // Every note starts and ends near silence (no clicks at the joins).
            let note = rate.hz() as usize * NOTE_MS / 1000;
            for n in 0..NOTES.len() {
                assert!(tune[n * note].abs() < 50 && tune[(n + 1) * note - 1].abs() < 50);
            }
        }
    }
}
