//! What the engine tells the world: typed events, drained with `poll_output`.

use bond_codecs::dtmf::DtmfDigit;

use crate::amd::AmdEvent;
use crate::ids::LegId;
use crate::leg::PlaybackEnd;
use crate::rtp::RtpStats;

/// Why a leg ended. The control plane maps these to Telnyx `hangup_cause`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HangupCause {
    /// Hung up on request.
    NormalClearing,
    /// No RTP arrived within the inactivity timeout.
    MediaTimeout,
    /// The engine is shutting down.
    Shutdown,
    /// A WebRTC leg never connected (ICE or DTLS failed or timed out).
    ConnectionFailed,
    /// A WebRTC leg's connection was lost (ICE consent or DTLS ended).
    ConnectionLost,
}

impl HangupCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NormalClearing => "normal_clearing",
            Self::MediaTimeout => "media_timeout",
            Self::Shutdown => "shutdown",
            Self::ConnectionFailed => "connection_failed",
            Self::ConnectionLost => "connection_lost",
        }
    }
}

/// How a DTMF digit reached the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Detected in the audio.
    InBand,
    /// Signalled beside the audio: a carrier stream's `dtmf` frame (later SIP INFO).
    Signal,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EngineEvent {
    LegEnded {
        leg: LegId,
        cause: HangupCause,
        stats: RtpStats,
    },
    DtmfReceived {
        leg: LegId,
        digit: DtmfDigit,
        source: DtmfSource,
    },
    /// A clip given to [`Engine::play`](crate::Engine::play) began playing.
    PlaybackStarted {
        leg: LegId,
        id: u64,
    },
    PlaybackEnded {
        leg: LegId,
        id: u64,
        end: PlaybackEnd,
    },
    /// The answering-machine detector running on the leg reports.
    MachineDetection {
        leg: LegId,
        event: AmdEvent,
    },
    /// The detector asks what the callee's greeting so far says (PCM at
    /// `rate`, spoken in `language`); hand the transcript to
    /// [`Engine::amd_heard_words`](crate::Engine::amd_heard_words).
    MachineDetectionWordsWanted {
        leg: LegId,
        greeting: std::sync::Arc<[i16]>,
        rate: bond_codecs::SampleRate,
        language: &'static str,
    },
}
