//! WAV bytes (a fetched `audio_url`, base64 `playback_content`, espeak-ng's
//! output) to mono 16-bit samples at a leg's rate.

use std::io::Cursor;

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;

/// Largest audio file Bond plays (about 10 minutes of 16-bit mono at 16 kHz).
pub const MAX_WAV_BYTES: usize = 20 * 1024 * 1024;

/// Decode a PCM (8 to 32-bit integer, or 32-bit float) WAV of any channel count
/// and rate (4 to 192 kHz) to mono at `rate`. The error says what is wrong in
/// words an API user can act on.
pub fn decode(bytes: &[u8], rate: SampleRate) -> Result<Vec<i16>, String> {
    if bytes.len() > MAX_WAV_BYTES {
        return Err(format!("the audio is larger than {} MiB", MAX_WAV_BYTES / 1024 / 1024));
    }
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| format!("not a WAV file: {e}"))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<i32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let shift = i32::from(bits) - 16;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| if shift >= 0 { v >> shift } else { v << -shift }))
                .collect::<Result<_, _>>()
        }
        (hound::SampleFormat::Float, 32) => {
            reader.into_samples::<f32>().map(|s| s.map(|v| (v * 32767.0) as i32)).collect::<Result<_, _>>()
        }
        (format, bits) => return Err(format!("{bits}-bit {format:?} WAV is not supported; use 16-bit PCM")),
    }
    .map_err(|e| format!("the WAV data is damaged: {e}"))?;
    let mono: Vec<i16> = interleaved
        .chunks(channels)
        .map(|frame| (frame.iter().map(|&v| i64::from(v)).sum::<i64>() / frame.len() as i64) as i16)
        .collect();
    resample_clip(&mono, spec.sample_rate, rate).map_err(|_| format!("a WAV at {} Hz", spec.sample_rate))
}

/// A mono 16-bit WAV file at 8, 16, 24 or 48 kHz, kept at its own rate (the
/// `loop:play` and hold files in the data directory).
pub fn read_file(path: &std::path::Path) -> Result<(SampleRate, Vec<i16>), String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let reader = hound::WavReader::open(path).map_err(|e| format!("cannot open {name}: {e}"))?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(format!("{name} must be mono 16-bit PCM"));
    }
    let rate = SampleRate::from_hz(spec.sample_rate).map_err(|e| format!("{name}: {e}"))?;
    let samples =
        reader.into_samples::<i16>().collect::<Result<Vec<_>, _>>().map_err(|e| format!("{name}: {e}"))?;
    Ok((rate, samples))
}

#[cfg(test)]
mod tests {
    use bond_codecs::signals::{sine, snr_db_aligned};

    use super::*;

    fn wav(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
        for &s in samples {
            match spec.bits_per_sample {
                8 => writer.write_sample((s >> 8) as i8).unwrap(),
                _ => writer.write_sample(s).unwrap(),
            }
        }
        writer.finalize().unwrap();
        out.into_inner()
    }

    fn spec(channels: u16, sample_rate: u32, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn stereo_is_mixed_to_mono_and_the_rate_converted() {
        let left = sine(500.0, 16_000, 16_000, 8000.0);
        let stereo: Vec<i16> = left.iter().flat_map(|&s| [s, s]).collect();
        let out = decode(&wav(spec(2, 16_000, 16), &stereo), SampleRate::Hz8000).unwrap();
        assert_eq!(out.len(), 8000);
        let expected = sine(500.0, 8000, 8000, 8000.0);
        assert!(snr_db_aligned(&expected[200..7800], &out[200..7800], 0) > 30.0);
    }

    #[test]
    fn eight_bit_audio_is_scaled_to_sixteen() {
        let tone = sine(500.0, 8000, 800, 16_000.0);
        let out = decode(&wav(spec(1, 8000, 8), &tone), SampleRate::Hz8000).unwrap();
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((15_000..=16_400).contains(&peak), "peak {peak}: 8-bit steps of 256");
    }

    #[test]
    fn what_is_not_a_wav_is_refused_with_a_reason() {
        assert!(decode(b"ID3\x04 an mp3", SampleRate::Hz8000).unwrap_err().starts_with("not a WAV file"));
        let mut cut = wav(spec(1, 8000, 16), &[1; 800]);
        cut.truncate(300);
        assert!(decode(&cut, SampleRate::Hz8000).is_err());
        assert!(decode(&wav(spec(1, 2000, 16), &[1; 800]), SampleRate::Hz8000).is_err());
    }
}
