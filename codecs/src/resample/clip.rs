//! Whole clips (a file to play, speech to speak) from any rate, with rubato.

use rubato::{FftFixedIn, Resampler as _};

use crate::{CodecError, SampleRate};

/// Resample a whole clip (a file to play, speech to speak) from any rate to
/// `to`, off the media path: 20 ms FFT blocks, the filter's delay removed, the
/// length scaled exactly. Allocates; not for per-frame use.
pub fn resample_clip(samples: &[i16], from_hz: u32, to: SampleRate) -> Result<Vec<i16>, CodecError> {
    if !(4_000..=192_000).contains(&from_hz) {
        return Err(CodecError::Resampler(format!("a clip at {from_hz} Hz")));
    }
    if from_hz == to.hz() {
        return Ok(samples.to_vec());
    }
    let chunk = (from_hz / 50) as usize;
    let mut inner = FftFixedIn::<f32>::new(from_hz as usize, to.hz() as usize, chunk, 1, 1)
        .map_err(|e| CodecError::Resampler(e.to_string()))?;
    let delay = inner.output_delay();
    let wanted = (samples.len() as u64 * u64::from(to.hz()) / u64::from(from_hz)) as usize;
    let mut input = [vec![0.0f32; chunk]];
    let mut output = [vec![0.0f32; inner.output_frames_max()]];
    let mut out = Vec::with_capacity(wanted + delay + output[0].len());
    let mut fed = 0;
    while out.len() < wanted + delay {
        for (i, dst) in input[0].iter_mut().enumerate() {
            *dst = samples.get(fed + i).map_or(0.0, |&s| f32::from(s) / 32768.0);
        }
        fed += chunk;
        let (_, written) = inner
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| CodecError::Resampler(e.to_string()))?;
        out.extend(output[0][..written].iter().map(|&v| super::round_to_i16(v * 32768.0)));
    }
    out.drain(..delay);
    out.truncate(wanted);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{sine, snr_db_aligned};

    #[test]
    fn a_clip_at_44_1_khz_becomes_the_same_tone_at_8_khz_with_its_length_kept() {
        let input = sine(440.0, 44_100, 44_100, 12_000.0);
        let out = resample_clip(&input, 44_100, SampleRate::Hz8000).unwrap();
        assert_eq!(out.len(), 8000);
        let expected = sine(440.0, 8000, 8000, 12_000.0);
        let snr = snr_db_aligned(&expected[200..7800], &out[200..7800], 0);
        assert!(snr > 30.0, "snr {snr:.1} dB: the delay is removed and the tone kept");
        assert!(resample_clip(&input, 1_000, SampleRate::Hz8000).is_err());
        assert_eq!(resample_clip(&[1, 2, 3], 8000, SampleRate::Hz8000).unwrap(), [1, 2, 3]);
    }
}
