//! Streaming resampling of 20 ms frames between 8, 16, 24 and 48 kHz (rubato).
//!
//! Each conversion is a synchronous FFT resampler (`rubato::FftFixedIn`) fed one
//! 20 ms frame per call and producing exactly one 20 ms frame. The FFT block
//! length sets both the filter's steepness and the delay it adds:
//!
//! | profile      | FFT block (input) | added delay (all rate pairs) |
//! |--------------|-------------------|------------------------------|
//! | `LowDelay`   | 5 ms              | 2.5 ms                       |
//! | `HighQuality`| 20 ms             | 10 ms                        |
//!
//! `LowDelay` is the default: the media path cares more about mouth-to-ear
//! delay than about the last dB of stop-band. The delays are measured by
//! `resampler_delay_matches_documentation` below and listed in BENCHMARKS.md.

use rubato::{FftFixedIn, Resampler as _};

use crate::{AudioFrame, CodecError, SampleRate};

/// Trade-off between delay and filter quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResamplerProfile {
    /// 5 ms FFT blocks: 2.5 ms added delay.
    #[default]
    LowDelay,
    /// 20 ms FFT blocks: 10 ms added delay, steeper anti-alias filter.
    HighQuality,
}

impl ResamplerProfile {
    fn sub_chunks(self) -> usize {
        match self {
            Self::LowDelay => 4,
            Self::HighQuality => 1,
        }
    }

    /// Delay this profile adds, in milliseconds (the same for every rate pair).
    pub fn delay_ms(self) -> f64 {
        match self {
            Self::LowDelay => 2.5,
            Self::HighQuality => 10.0,
        }
    }
}

/// Converts a stream of 20 ms frames from one rate to another.
pub struct FrameResampler {
    from: SampleRate,
    to: SampleRate,
    inner: FftFixedIn<f32>,
    input: [Vec<f32>; 1],
    output: [Vec<f32>; 1],
}

impl std::fmt::Debug for FrameResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameResampler").field("from", &self.from).field("to", &self.to).finish()
    }
}

impl FrameResampler {
    pub fn new(from: SampleRate, to: SampleRate, profile: ResamplerProfile) -> Result<Self, CodecError> {
        let inner = FftFixedIn::new(
            from.hz() as usize,
            to.hz() as usize,
            from.frame_samples(),
            profile.sub_chunks(),
            1,
        )
        .map_err(|e| CodecError::Resampler(e.to_string()))?;
        let out_len = inner.output_frames_max();
        Ok(Self { from, to, inner, input: [vec![0.0; from.frame_samples()]], output: [vec![0.0; out_len]] })
    }

    pub fn from_rate(&self) -> SampleRate {
        self.from
    }

    pub fn to_rate(&self) -> SampleRate {
        self.to
    }

    /// Samples of delay at the output rate.
    pub fn delay_samples(&self) -> usize {
        self.inner.output_delay()
    }

    /// Resample one frame into `out`, whose rate and timestamp are set. Does not allocate.
    pub fn process(&mut self, frame: &AudioFrame, out: &mut AudioFrame) -> Result<(), CodecError> {
        if frame.rate() != self.from {
            return Err(CodecError::RateMismatch { expected: self.from.hz(), got: frame.rate().hz() });
        }
        for (dst, &src) in self.input[0].iter_mut().zip(frame.samples()) {
            *dst = f32::from(src) / 32768.0;
        }
        let (_, written) = self
            .inner
            .process_into_buffer(&self.input, &mut self.output, None)
            .map_err(|e| CodecError::Resampler(e.to_string()))?;
        out.set_rate(self.to);
        out.timestamp = frame.timestamp * u64::from(self.to.hz()) / u64::from(self.from.hz());
        let expected = self.to.frame_samples();
        if written != expected {
            return Err(CodecError::FrameLength { expected, got: written });
        }
        for (dst, &src) in out.samples_mut().iter_mut().zip(&self.output[0]) {
            // Round half away from zero; `as` saturates to the i16 range (and maps NaN to 0).
            let scaled = src * 32768.0;
            *dst = (scaled + 0.5f32.copysign(scaled)) as i16;
        }
        Ok(())
    }
}

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
        out.extend(output[0][..written].iter().map(|&v| {
            let scaled = v * 32768.0;
            (scaled + 0.5f32.copysign(scaled)) as i16
        }));
    }
    out.drain(..delay);
    out.truncate(wanted);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{best_lag, sine, snr_db_aligned};

    fn run(resampler: &mut FrameResampler, input: &[i16]) -> Vec<i16> {
        let from = resampler.from_rate();
        let mut out = AudioFrame::silent(resampler.to_rate(), 0);
        let mut output = Vec::new();
        for chunk in input.chunks_exact(from.frame_samples()) {
            let frame = AudioFrame::from_samples(from, 0, chunk).unwrap();
            resampler.process(&frame, &mut out).unwrap();
            output.extend_from_slice(out.samples());
        }
        output
    }

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

    #[test]
    fn tone_survives_8k_to_48k_and_back_above_30db_snr() {
        for profile in [ResamplerProfile::LowDelay, ResamplerProfile::HighQuality] {
            let input = sine(1000.0, 8000, 8000, 12_000.0);
            let mut up = FrameResampler::new(SampleRate::Hz8000, SampleRate::Hz48000, profile).unwrap();
            let mut down = FrameResampler::new(SampleRate::Hz48000, SampleRate::Hz8000, profile).unwrap();
            let output = run(&mut down, &run(&mut up, &input));
            let snr = snr_db_aligned(&input[..7000], &output, 400);
            assert!(snr >= 30.0, "{profile:?}: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn downsampling_removes_content_above_the_new_nyquist() {
        // 6 kHz at 48 kHz has no place at 8 kHz (Nyquist 4 kHz): it must not alias to 2 kHz.
        for profile in [ResamplerProfile::LowDelay, ResamplerProfile::HighQuality] {
            let input = sine(6000.0, 48_000, 48_000, 16_000.0);
            let mut down = FrameResampler::new(SampleRate::Hz48000, SampleRate::Hz8000, profile).unwrap();
            let output = run(&mut down, &input);
            let level = crate::level::rms_dbfs(&output[800..]);
            assert!(level < -40.0, "{profile:?}: out-of-band tone left at {level:.1} dBFS");
        }
    }

    #[test]
    fn resampler_delay_matches_documentation() {
        let pairs = [
            (SampleRate::Hz8000, SampleRate::Hz16000),
            (SampleRate::Hz8000, SampleRate::Hz48000),
            (SampleRate::Hz16000, SampleRate::Hz48000),
            (SampleRate::Hz24000, SampleRate::Hz48000),
            (SampleRate::Hz48000, SampleRate::Hz8000),
            (SampleRate::Hz48000, SampleRate::Hz16000),
        ];
        for profile in [ResamplerProfile::LowDelay, ResamplerProfile::HighQuality] {
            for (from, to) in pairs {
                let mut r = FrameResampler::new(from, to, profile).unwrap();
                // A 300 Hz tone burst, then the same burst at the output rate, cross-correlated.
                let len = from.frame_samples() * 20;
                let input = crate::signals::white_noise(3, len, 2000.0);
                let input = lowpass_for_both(&input, from, to);
                let output = run(&mut r, &input);
                let reference = sine_free_reference(&input, from, to);
                let lag = best_lag(&reference, &output, to.frame_samples() * 2);
                let measured_ms = lag as f64 * 1000.0 / f64::from(to.hz());
                assert!(
                    (measured_ms - profile.delay_ms()).abs() <= 0.25,
                    "{profile:?} {from:?}->{to:?}: measured {measured_ms} ms, documented {} ms",
                    profile.delay_ms()
                );
                assert_eq!(r.delay_samples() as f64 * 1000.0 / f64::from(to.hz()), profile.delay_ms());
            }
        }
    }

    /// Smooth noise (moving average) so it sits well inside both Nyquist bands.
    fn lowpass_for_both(input: &[i16], from: SampleRate, to: SampleRate) -> Vec<i16> {
        let width = (from.hz() / from.hz().min(to.hz()) * 4) as usize;
        (0..input.len())
            .map(|i| {
                let lo = i.saturating_sub(width);
                let sum: i32 = input[lo..=i].iter().map(|&s| i32::from(s)).sum();
                (sum / (i - lo + 1) as i32) as i16
            })
            .collect()
    }

    /// The input at the output rate with no delay (linear interpolation / decimation).
    fn sine_free_reference(input: &[i16], from: SampleRate, to: SampleRate) -> Vec<i16> {
        let ratio = f64::from(from.hz()) / f64::from(to.hz());
        let n = (input.len() as f64 / ratio) as usize;
        (0..n)
            .map(|j| {
                let x = j as f64 * ratio;
                let i = x.floor() as usize;
                let frac = x - i as f64;
                let a = f64::from(input[i]);
                let b = f64::from(*input.get(i + 1).unwrap_or(&input[i]));
                (a + (b - a) * frac) as i16
            })
            .collect()
    }

    #[test]
    fn wrong_input_rate_is_rejected() {
        let mut r =
            FrameResampler::new(SampleRate::Hz8000, SampleRate::Hz16000, ResamplerProfile::LowDelay).unwrap();
        let mut out = AudioFrame::silent(SampleRate::Hz16000, 0);
        let frame = AudioFrame::silent(SampleRate::Hz48000, 0);
        assert!(r.process(&frame, &mut out).is_err());
    }
}
