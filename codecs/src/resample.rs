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
