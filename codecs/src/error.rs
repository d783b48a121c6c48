/// Everything that can go wrong in the codecs. Bad input is an error, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("unsupported sample rate {0} Hz (Bond handles 8000, 16000, 24000 and 48000)")]
    UnsupportedSampleRate(u32),
    #[error("expected a frame at {expected} Hz, got {got} Hz")]
    RateMismatch { expected: u32, got: u32 },
    #[error("expected {expected} samples, got {got}")]
    FrameLength { expected: usize, got: usize },
    #[error("output buffer too small: need {needed}, have {got}")]
    OutputTooSmall { needed: usize, got: usize },
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    #[error("'{0}' is not a DTMF digit")]
    InvalidDigit(char),
    #[error("telephone-event {0} is not a DTMF digit")]
    UnknownTelephoneEvent(u8),
    #[error("opus: {0}")]
    Opus(String),
    #[error("resampler: {0}")]
    Resampler(String),
}
