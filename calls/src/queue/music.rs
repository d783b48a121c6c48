//! What a queued call hears, looped: the queue's own WAV file
//! (`bond_hold_audio_file`), or the hold music Bond ships, a soft four-note
//! figure synthesized at the call's own rate.

use std::f64::consts::PI;
use std::path::Path;

use bond_codecs::SampleRate;
use bond_speech::audio::wav;

use crate::endpoint::Endpoint;

/// A queue's hold file, `file` in `data_dir`, as mono samples at `rate`: any
/// PCM WAV (rate, channels, sample size), as `playback_start` takes. The
/// error says what is wrong in words an API user can act on.
pub async fn hold_file(data_dir: &Path, file: &str, rate: SampleRate) -> Result<Vec<i16>, String> {
    // The file name rules of `loop:play`: a plain name, no path.
    if Endpoint::parse(&format!("loop:play?file={file}")).is_err() {
        return Err("bond_hold_audio_file must be a plain file name in the data directory".into());
    }
    let bytes = tokio::fs::read(data_dir.join(file)).await.map_err(|e| format!("cannot read {file}: {e}"))?;
    let samples = wav::decode(&bytes, rate).map_err(|e| format!("{file}: {e}"))?;
    if samples.is_empty() {
        return Err(format!("{file} holds no audio"));
    }
    Ok(samples)
}

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

    #[tokio::test]
    async fn a_hold_file_is_read_at_the_calls_rate_and_a_bad_one_is_named() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_owned();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(dir.join("music.wav"), spec).unwrap();
        for i in 0..44_100 {
            let s = (8000.0 * (2.0 * PI * 700.0 * f64::from(i) / 44_100.0).sin()) as i16;
            writer.write_sample(s).unwrap();
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        let samples = hold_file(&dir, "music.wav", SampleRate::Hz8000).await.unwrap();
        assert!((7990..=8010).contains(&samples.len()), "one second at 8 kHz: {}", samples.len());
        std::fs::write(dir.join("notes.txt"), b"not audio").unwrap();
        for (file, error) in [
            ("notes.txt", "not a WAV"),
            ("missing.wav", "cannot read missing.wav"),
            ("../music.wav", "plain file name"),
        ] {
            let got = hold_file(&dir, file, SampleRate::Hz8000).await.unwrap_err();
            assert!(got.contains(error), "{file}: {got}");
        }
    }

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
