//! The unit of audio that moves through Bond: 20 ms of mono i16 PCM.

use crate::CodecError;

/// Length of every frame Bond moves, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Largest frame: 20 ms at 48 kHz.
pub const MAX_FRAME_SAMPLES: usize = 960;

/// The PCM rates Bond processes internally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SampleRate {
    Hz8000,
    Hz16000,
    Hz24000,
    Hz48000,
}

impl SampleRate {
    pub const ALL: [SampleRate; 4] = [Self::Hz8000, Self::Hz16000, Self::Hz24000, Self::Hz48000];

    pub const fn hz(self) -> u32 {
        match self {
            Self::Hz8000 => 8_000,
            Self::Hz16000 => 16_000,
            Self::Hz24000 => 24_000,
            Self::Hz48000 => 48_000,
        }
    }

    /// Samples in one 20 ms frame at this rate.
    pub const fn frame_samples(self) -> usize {
        (self.hz() / 50) as usize
    }

    pub fn from_hz(hz: u32) -> Result<Self, CodecError> {
        match hz {
            8_000 => Ok(Self::Hz8000),
            16_000 => Ok(Self::Hz16000),
            24_000 => Ok(Self::Hz24000),
            48_000 => Ok(Self::Hz48000),
            other => Err(CodecError::UnsupportedSampleRate(other)),
        }
    }
}

/// 20 ms of mono PCM at a known rate, stamped with its media time.
///
/// The samples live inline (no heap), so frames can be reused in steady state
/// without allocating. `timestamp` counts samples at `rate` since the start of
/// the stream the frame belongs to, like an unwrapped RTP timestamp.
#[derive(Clone)]
pub struct AudioFrame {
    rate: SampleRate,
    pub timestamp: u64,
    samples: [i16; MAX_FRAME_SAMPLES],
}

impl AudioFrame {
    /// A frame of silence.
    pub fn silent(rate: SampleRate, timestamp: u64) -> Self {
        Self { rate, timestamp, samples: [0; MAX_FRAME_SAMPLES] }
    }

    /// A frame holding a copy of `samples`, which must be exactly one frame long at `rate`.
    pub fn from_samples(rate: SampleRate, timestamp: u64, samples: &[i16]) -> Result<Self, CodecError> {
        let mut frame = Self::silent(rate, timestamp);
        if samples.len() != rate.frame_samples() {
            return Err(CodecError::FrameLength { expected: rate.frame_samples(), got: samples.len() });
        }
        frame.samples_mut().copy_from_slice(samples);
        Ok(frame)
    }

    pub fn rate(&self) -> SampleRate {
        self.rate
    }

    /// Change the rate (and so the length) of the frame; the samples are left as they are.
    pub fn set_rate(&mut self, rate: SampleRate) {
        self.rate = rate;
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples[..self.rate.frame_samples()]
    }

    pub fn samples_mut(&mut self) -> &mut [i16] {
        let n = self.rate.frame_samples();
        &mut self.samples[..n]
    }

    pub fn fill_silence(&mut self) {
        self.samples_mut().fill(0);
    }

    /// Mean power of the frame in dB relative to a full-scale square wave (dBFS).
    pub fn level_dbfs(&self) -> f64 {
        crate::level::rms_dbfs(self.samples())
    }
}

impl std::fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioFrame")
            .field("rate", &self.rate)
            .field("timestamp", &self.timestamp)
            .field("level_dbfs", &format_args!("{:.1}", self.level_dbfs()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_length_follows_rate() {
        for rate in SampleRate::ALL {
            let frame = AudioFrame::silent(rate, 0);
            assert_eq!(frame.samples().len() as u32 * 50, rate.hz());
        }
    }

    #[test]
    fn from_samples_rejects_wrong_length() {
        let err = AudioFrame::from_samples(SampleRate::Hz8000, 0, &[0; 100]).unwrap_err();
        assert!(matches!(err, CodecError::FrameLength { expected: 160, got: 100 }));
    }

    #[test]
    fn unknown_rate_is_an_error() {
        assert!(SampleRate::from_hz(44_100).is_err());
        assert_eq!(SampleRate::from_hz(16_000).unwrap(), SampleRate::Hz16000);
    }
}
