//! The two kinds of leg the engine holds, behind one interface.

use std::time::Instant;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::{AudioFrame, SampleRate};

use crate::event::HangupCause;
use crate::leg::{DtmfTiming, Leg, LegOutput, LocalLeg, MediaSource};
use crate::rtp::RtpStats;

#[derive(Debug)]
pub(super) enum Member {
    Rtp(Box<Leg>),
    Local(Box<LocalLeg>),
}

impl Member {
    pub fn rate(&self) -> SampleRate {
        match self {
            Self::Rtp(l) => l.rate(),
            Self::Local(l) => l.rate(),
        }
    }

    pub fn is_ended(&self) -> bool {
        match self {
            Self::Rtp(l) => l.is_ended(),
            Self::Local(l) => l.is_ended(),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Rtp(l) => l.handle_timeout(now),
            Self::Local(l) => l.handle_timeout(now),
        }
    }

    /// What the leg's party said on its latest tick.
    pub fn heard_frame(&self) -> &AudioFrame {
        match self {
            Self::Rtp(l) => l.heard_frame(),
            Self::Local(l) => l.heard_frame(),
        }
    }

    /// What the leg's party was sent on its latest tick.
    pub fn sent_frame(&self) -> &AudioFrame {
        match self {
            Self::Rtp(l) => l.sent_frame(),
            Self::Local(l) => l.sent_frame(),
        }
    }

    /// Report every frame the party says (a local leg always does).
    pub fn set_emit_heard(&mut self, on: bool) {
        if let Self::Rtp(l) = self {
            l.set_emit_heard(on);
        }
    }

    /// Audio for the leg's party.
    pub fn handle_frame(&mut self, frame: &AudioFrame) -> bool {
        match self {
            Self::Rtp(l) => l.handle_frame(frame),
            Self::Local(l) => l.handle_frame(frame),
        }
    }

    pub fn send_dtmf(&mut self, digits: &[DtmfDigit], timing: DtmfTiming) {
        match self {
            Self::Rtp(l) => l.send_dtmf(digits, timing),
            Self::Local(l) => l.send_dtmf(digits, timing),
        }
    }

    /// An in-band digit is sounding in the party's audio (local legs have no detector).
    pub fn hears_dtmf(&self) -> bool {
        match self {
            Self::Rtp(l) => l.hears_dtmf(),
            Self::Local(_) => false,
        }
    }

    pub fn set_recording(&mut self, on: bool) {
        match self {
            Self::Rtp(l) => l.set_recording(on),
            Self::Local(l) => l.set_recording(on),
        }
    }

    /// Joining or leaving a bridge: an RTP leg then sends what the bridge gives it
    /// (or silence) and reports what it hears. A local leg always does both.
    pub fn set_bridged(&mut self, bridged: bool) {
        if let Self::Rtp(l) = self {
            l.set_source(if bridged { &MediaSource::External } else { &MediaSource::Silence });
            l.set_emit_heard(bridged);
        }
    }

    /// What an RTP leg sends its party while on hold (a local leg has no party to play to).
    pub fn set_hold_source(&mut self, source: &MediaSource) {
        if let Self::Rtp(l) = self {
            l.set_source(source);
        }
    }

    pub fn hangup(&mut self, cause: HangupCause) {
        match self {
            Self::Rtp(l) => l.hangup(cause),
            Self::Local(l) => l.hangup(cause),
        }
    }

    pub fn poll_output(&mut self) -> Option<LegOutput> {
        match self {
            Self::Rtp(l) => l.poll_output(),
            Self::Local(l) => l.poll_output(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Rtp(l) => l.poll_timeout(),
            Self::Local(l) => l.poll_timeout(),
        }
    }

    pub fn stats(&self) -> RtpStats {
        match self {
            Self::Rtp(l) => l.stats(),
            Self::Local(l) => l.stats(),
        }
    }
}
