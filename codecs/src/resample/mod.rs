//! Streaming resampling of 20 ms frames between 8, 16, 24 and 48 kHz.
//!
//! Each conversion is a polyphase FIR filter (`polyphase.rs`: a Kaiser-windowed
//! sinc, 60 dB stop band ending at the lower rate's Nyquist frequency) fed one
//! 20 ms frame per call and producing exactly one 20 ms frame. How many samples
//! of the lower rate it reaches either side of its centre sets both its
//! steepness and the delay it adds:
//!
//! | profile      | reach | delay, lower rate 8 / 16 / 24 kHz | flat (±0.5 dB) to |
//! |--------------|-------|-----------------------------------|-------------------|
//! | `LowDelay`   | 20    | 2.5 / 1.25 / 0.83 ms              | 85 % of the band  |
//! | `HighQuality`| 80    | 10 / 5 / 3.3 ms                   | 95 % of the band  |
//!
//! `LowDelay` is the default: the media path cares more about mouth-to-ear
//! delay than about the last dB of stop-band. The delays are measured by
//! `resampler_delay_matches_documentation` below.
//! The taps are shared by every resampler of a rate pair, so one holds only its
//! input history: at most 4.8 KB with `LowDelay`, where rubato's FFT resampler
//! took 18-21 KB. Whole clips at any rate go through rubato ([`resample_clip`]).

mod clip;
mod polyphase;

use std::sync::Arc;

pub use clip::resample_clip;
use polyphase::Filter;

use crate::{AudioFrame, CodecError, SampleRate};

/// A sample in i16 units rounded half away from zero; `as` saturates to the
/// i16 range (and maps NaN to 0).
fn round_to_i16(v: f32) -> i16 {
    (v + 0.5f32.copysign(v)) as i16
}

/// Trade-off between delay and filter quality. The filter reaches a set number of
/// samples of the lower rate either side of its centre, so its delay is shorter,
/// and its transition band wider, the higher the lower of the two rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResamplerProfile {
    /// 20 samples of the lower rate: 2.5 ms of delay with 8 kHz on one side.
    #[default]
    LowDelay,
    /// 80 samples: 10 ms with 8 kHz on one side, a steeper anti-alias filter.
    HighQuality,
}

impl ResamplerProfile {
    /// Samples of the lower rate the filter reaches either side of its centre.
    fn half_length(self) -> u32 {
        match self {
            Self::LowDelay => 20,
            Self::HighQuality => 80,
        }
    }
}

/// Converts a stream of 20 ms frames from one rate to another.
#[derive(Debug)]
pub struct FrameResampler {
    from: SampleRate,
    to: SampleRate,
    delay: usize,
    filter: Arc<Filter>,
    /// The last `taps - 1` input samples, then room for one frame.
    input: Vec<f32>,
}

impl FrameResampler {
    pub fn new(from: SampleRate, to: SampleRate, profile: ResamplerProfile) -> Result<Self, CodecError> {
        let half = profile.half_length();
        let filter = Filter::shared(from.hz(), to.hz(), half);
        let input = vec![0.0; filter.taps() - 1 + from.frame_samples()];
        let delay = (half * to.hz() / from.hz().min(to.hz())) as usize;
        Ok(Self { from, to, delay, filter, input })
    }

    pub fn from_rate(&self) -> SampleRate {
        self.from
    }

    pub fn to_rate(&self) -> SampleRate {
        self.to
    }

    /// Samples of delay at the output rate.
    pub fn delay_samples(&self) -> usize {
        self.delay
    }

    /// The delay in milliseconds.
    pub fn delay_ms(&self) -> f64 {
        self.delay as f64 * 1000.0 / f64::from(self.to.hz())
    }

    /// Resample one frame into `out`, whose rate and timestamp are set. Does not allocate.
    pub fn process(&mut self, frame: &AudioFrame, out: &mut AudioFrame) -> Result<(), CodecError> {
        if frame.rate() != self.from {
            return Err(CodecError::RateMismatch { expected: self.from.hz(), got: frame.rate().hz() });
        }
        let kept = self.input.len() - frame.samples().len();
        for (dst, &src) in self.input[kept..].iter_mut().zip(frame.samples()) {
            *dst = f32::from(src);
        }
        out.set_rate(self.to);
        out.timestamp = frame.timestamp * u64::from(self.to.hz()) / u64::from(self.from.hz());
        self.filter.run(&self.input, out.samples_mut());
        self.input.copy_within(frame.samples().len().., 0);
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
    fn a_tone_near_the_band_edge_keeps_its_level_and_leaves_no_images_or_aliases() {
        // 3.2 kHz at 8 kHz is in the telephone band: up to 48 kHz its image at 4.8 kHz
        // must be gone, and back down nothing may fold. Likewise at 80 % of the band
        // of the other lower rates.
        use SampleRate::*;
        for profile in [ResamplerProfile::LowDelay, ResamplerProfile::HighQuality] {
            for (from, to, hz) in [
                (Hz8000, Hz48000, 3200.0),
                (Hz8000, Hz16000, 3200.0),
                (Hz16000, Hz48000, 6400.0),
                (Hz24000, Hz48000, 9600.0),
                (Hz16000, Hz24000, 6400.0),
            ] {
                let input = sine(hz, from.hz(), from.hz() as usize, 12_000.0);
                let mut up = FrameResampler::new(from, to, profile).unwrap();
                let mut down = FrameResampler::new(to, from, profile).unwrap();
                let high = run(&mut up, &input);
                let back = run(&mut down, &high);
                for (what, out, rate) in [("up", &high[..], to), ("back", &back[..], from)] {
                    let settled = &out[rate.frame_samples() * 5..];
                    let sinad = crate::signals::sinad_db(settled, hz, rate.hz());
                    assert!(sinad > 60.0, "{profile:?} {from:?}<->{to:?} {what}: SINAD {sinad:.1} dB");
                }
                let loss = crate::level::rms_dbfs(&input)
                    - crate::level::rms_dbfs(&back[from.frame_samples() * 5..]);
                assert!(loss.abs() < 0.2, "{profile:?} {from:?}<->{to:?}: {loss:.2} dB lost at {hz} Hz");
            }
        }
    }

    #[test]
    fn resampler_delay_matches_documentation() {
        let pairs = [
            (SampleRate::Hz8000, SampleRate::Hz16000),
            (SampleRate::Hz8000, SampleRate::Hz48000),
            (SampleRate::Hz16000, SampleRate::Hz48000),
            (SampleRate::Hz24000, SampleRate::Hz48000),
            (SampleRate::Hz16000, SampleRate::Hz24000),
            (SampleRate::Hz48000, SampleRate::Hz8000),
            (SampleRate::Hz48000, SampleRate::Hz16000),
        ];
        for profile in [ResamplerProfile::LowDelay, ResamplerProfile::HighQuality] {
            for (from, to) in pairs {
                let mut r = FrameResampler::new(from, to, profile).unwrap();
                let documented = match (profile, from.hz().min(to.hz())) {
                    (ResamplerProfile::LowDelay, 8000) => 2.5,
                    (ResamplerProfile::LowDelay, 16_000) => 1.25,
                    (ResamplerProfile::LowDelay, _) => 0.833,
                    (ResamplerProfile::HighQuality, 8000) => 10.0,
                    (ResamplerProfile::HighQuality, 16_000) => 5.0,
                    (ResamplerProfile::HighQuality, _) => 3.333,
                };
                // A 300 Hz tone burst, then the same burst at the output rate, cross-correlated.
                let len = from.frame_samples() * 20;
                let input = crate::signals::white_noise(3, len, 2000.0);
                let input = lowpass_for_both(&input, from, to);
                let output = run(&mut r, &input);
                let reference = sine_free_reference(&input, from, to);
                let lag = best_lag(&reference, &output, to.frame_samples() * 2);
                let measured_ms = lag as f64 * 1000.0 / f64::from(to.hz());
                assert!(
                    (measured_ms - documented).abs() <= 0.25,
                    "{profile:?} {from:?}->{to:?}: measured {measured_ms} ms, documented {documented} ms"
                );
                assert!((r.delay_ms() - documented).abs() < 0.001, "{profile:?} {from:?}->{to:?}");
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
