use crate::ids::LegId;

/// Errors of the media core. Input from the network never panics: it ends up here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no such leg {0}")]
    UnknownLeg(LegId),
    #[error("leg {0} has ended")]
    LegEnded(LegId),
    #[error(transparent)]
    Rtp(#[from] crate::rtp::RtpError),
    #[error(transparent)]
    Codec(#[from] bond_codecs::CodecError),
    #[error("leg {0} is already bridged")]
    AlreadyBridged(LegId),
    #[error("leg {0} is not bridged")]
    NotBridged(LegId),
    #[error("no such conference {0}")]
    UnknownConference(LegId),
    #[error("webrtc: {0}")]
    WebRtc(String),
    #[error("invalid leg configuration: {0}")]
    Config(&'static str),
    /// A clip made for another rate than the leg's (an Opus leg's rate follows
    /// its bridge: see `Leg::code_opus_at`).
    #[error("a clip for leg {leg} must be at its rate, {} Hz", rate.hz())]
    ClipRate { leg: LegId, rate: bond_codecs::SampleRate },
}
