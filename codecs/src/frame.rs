//! The unit of audio that moves through Bond: 20 ms of mono i16 PCM.

use crate::CodecError;

/// Length of every frame Bond moves, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// The PCM rates Bond processes internally, ordered from the lowest (so
/// `a.min(b)` is the narrower).
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
/// The samples are sized to the rate: an 8 kHz frame holds 320 bytes where
/// room for 48 kHz would take 1,920, and a leg keeps several frames. A frame
/// reused in place ([`reset`](Self::reset), [`set_rate`](Self::set_rate),
/// `clone_from`) keeps its room when its rate falls and allocates only the
/// first time it grows, so a steady stream allocates nothing. `timestamp`
/// counts samples at `rate` since the start of the stream the frame belongs
/// to, like an unwrapped RTP timestamp.
pub struct AudioFrame {
    rate: SampleRate,
    pub timestamp: u64,
    /// Exactly one frame's worth at `rate`.
    samples: Vec<i16>,
}

impl AudioFrame {
    /// A frame of silence.
    pub fn silent(rate: SampleRate, timestamp: u64) -> Self {
        Self { rate, timestamp, samples: vec![0; rate.frame_samples()] }
    }

    /// A frame holding a copy of `samples`, which must be exactly one frame long at `rate`.
    pub fn from_samples(rate: SampleRate, timestamp: u64, samples: &[i16]) -> Result<Self, CodecError> {
        if samples.len() != rate.frame_samples() {
            return Err(CodecError::FrameLength { expected: rate.frame_samples(), got: samples.len() });
        }
        Ok(Self { rate, timestamp, samples: samples.to_vec() })
    }

    /// Silence at `rate` and `timestamp`, in the room the frame already has.
    pub fn reset(&mut self, rate: SampleRate, timestamp: u64) {
        self.rate = rate;
        self.timestamp = timestamp;
        self.samples.clear();
        self.samples.resize(rate.frame_samples(), 0);
    }

    pub fn rate(&self) -> SampleRate {
        self.rate
    }

    /// Change the rate (and so the length) of the frame. The samples up to the
    /// shorter length are left as they are; any added are silent.
    pub fn set_rate(&mut self, rate: SampleRate) {
        self.rate = rate;
        self.samples.resize(rate.frame_samples(), 0);
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn samples_mut(&mut self) -> &mut [i16] {
        &mut self.samples
    }

    pub fn fill_silence(&mut self) {
        self.samples.fill(0);
    }

    /// Mean power of the frame in dB relative to a full-scale square wave (dBFS).
    pub fn level_dbfs(&self) -> f64 {
        crate::level::rms_dbfs(self.samples())
    }
}

impl Clone for AudioFrame {
    fn clone(&self) -> Self {
        Self { rate: self.rate, timestamp: self.timestamp, samples: self.samples.clone() }
    }

    /// Copies into the room `self` already has (the derived one would allocate).
    fn clone_from(&mut self, source: &Self) {
        self.rate = source.rate;
        self.timestamp = source.timestamp;
        self.samples.clone_from(&source.samples);
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
    fn a_frame_reused_at_a_lower_rate_keeps_its_room() {
        let mut frame = AudioFrame::silent(SampleRate::Hz48000, 0);
        let room = frame.samples.as_ptr();
        frame.reset(SampleRate::Hz8000, 7);
        assert_eq!((frame.samples().len(), frame.timestamp), (160, 7));
        frame.set_rate(SampleRate::Hz48000);
        frame.clone_from(&AudioFrame::silent(SampleRate::Hz16000, 3));
        assert_eq!(frame.samples().len(), 320);
        assert_eq!(frame.samples.as_ptr(), room, "reused in place, not reallocated");
    }

    #[test]
    fn growing_a_frame_silences_the_added_samples() {
        let mut frame = AudioFrame::from_samples(SampleRate::Hz8000, 0, &[5; 160]).unwrap();
        frame.set_rate(SampleRate::Hz16000);
        assert!(frame.samples()[..160].iter().all(|&s| s == 5));
        assert!(frame.samples()[160..].iter().all(|&s| s == 0));
    }

    #[test]
    fn unknown_rate_is_an_error() {
        assert!(SampleRate::from_hz(44_100).is_err());
        assert_eq!(SampleRate::from_hz(16_000).unwrap(), SampleRate::Hz16000);
    }
}
