//! The kinds of leg the engine holds, behind one interface. A WebRTC leg is an
//! RTP leg inside str0m: audio, taps and controls go to the inner leg; network
//! input, time and output go through the WebRTC wrapper.

use std::time::Instant;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::{AudioFrame, SampleRate};

use crate::event::HangupCause;
use crate::leg::{Clip, DtmfTiming, FrameTaken, Leg, LegOutput, LocalLeg, MediaSource, RecordTap};
use crate::rtp::RtpStats;
use crate::webrtc::WebRtcLeg;

#[derive(Debug)]
pub(super) enum Member {
    Rtp(Box<Leg>),
    WebRtc(Box<WebRtcLeg>),
    Local(Box<LocalLeg>),
}

/// A leg's audio side: the RTP leg (bare or inside WebRTC), or a local leg.
enum Audio<'a> {
    Rtp(&'a Leg),
    Local(&'a LocalLeg),
}

enum AudioMut<'a> {
    Rtp(&'a mut Leg),
    Local(&'a mut LocalLeg),
}

impl Member {
    fn audio(&self) -> Audio<'_> {
        match self {
            Self::Rtp(l) => Audio::Rtp(l),
            Self::WebRtc(w) => Audio::Rtp(w.leg()),
            Self::Local(l) => Audio::Local(l),
        }
    }

    fn audio_mut(&mut self) -> AudioMut<'_> {
        match self {
            Self::Rtp(l) => AudioMut::Rtp(l),
            Self::WebRtc(w) => AudioMut::Rtp(w.leg_mut()),
            Self::Local(l) => AudioMut::Local(l),
        }
    }

    /// The RTP leg, bare or inside WebRTC.
    pub fn rtp(&self) -> Option<&Leg> {
        match self.audio() {
            Audio::Rtp(l) => Some(l),
            Audio::Local(_) => None,
        }
    }

    pub fn rtp_mut(&mut self) -> Option<&mut Leg> {
        match self.audio_mut() {
            AudioMut::Rtp(l) => Some(l),
            AudioMut::Local(_) => None,
        }
    }

    pub fn rate(&self) -> SampleRate {
        match self.audio() {
            Audio::Rtp(l) => l.rate(),
            Audio::Local(l) => l.rate(),
        }
    }

    pub fn is_ended(&self) -> bool {
        match self.audio() {
            Audio::Rtp(l) => l.is_ended(),
            Audio::Local(l) => l.is_ended(),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Rtp(l) => l.handle_timeout(now),
            Self::WebRtc(w) => w.handle_timeout(now),
            Self::Local(l) => l.handle_timeout(now),
        }
    }

    /// What the leg's party said on its latest tick.
    pub fn heard_frame(&self) -> &AudioFrame {
        match self.audio() {
            Audio::Rtp(l) => l.heard_frame(),
            Audio::Local(l) => l.heard_frame(),
        }
    }

    /// What the leg's party was sent on its latest tick.
    pub fn sent_frame(&self) -> &AudioFrame {
        match self.audio() {
            Audio::Rtp(l) => l.sent_frame(),
            Audio::Local(l) => l.sent_frame(),
        }
    }

    /// Report every frame the party says (a local leg always does).
    pub fn set_emit_heard(&mut self, on: bool) {
        if let Some(l) = self.rtp_mut() {
            l.set_emit_heard(on);
        }
    }

    /// What was mixed into the latest frame the party heard (a supervisor's whisper).
    pub fn mixed(&self) -> Option<&AudioFrame> {
        match self {
            Member::Rtp(l) => l.mixed(),
            Member::Local(l) => l.mixed(),
            Member::WebRtc(w) => w.leg().mixed(),
        }
    }

    /// Audio mixed into what the party hears on its next tick (a supervisor's path).
    pub fn mix_in(&mut self, frame: &AudioFrame) {
        match self.audio_mut() {
            AudioMut::Rtp(l) => l.mix_in(frame),
            AudioMut::Local(l) => l.mix_in(frame),
        }
    }

    /// Audio for the leg's party.
    pub fn handle_frame(&mut self, frame: &AudioFrame) -> FrameTaken {
        match self.audio_mut() {
            AudioMut::Rtp(l) => l.handle_frame(frame),
            AudioMut::Local(l) => l.handle_frame(frame),
        }
    }

    pub fn send_dtmf(&mut self, digits: &[DtmfDigit], timing: DtmfTiming) {
        match self.audio_mut() {
            AudioMut::Rtp(l) => l.send_dtmf(digits, timing),
            AudioMut::Local(l) => l.send_dtmf(digits, timing),
        }
    }

    pub fn play(&mut self, clip: Clip, overlay: bool) {
        match self.audio_mut() {
            AudioMut::Rtp(l) => l.play(clip, overlay),
            AudioMut::Local(l) => l.play(clip, overlay),
        }
    }

    pub fn stop_playback(&mut self, overlay: bool, all: bool) {
        match self.audio_mut() {
            AudioMut::Rtp(l) => l.stop_playback(overlay, all),
            AudioMut::Local(l) => l.stop_playback(overlay, all),
        }
    }

    /// An in-band digit is sounding in the party's audio (local legs have no detector).
    pub fn hears_dtmf(&self) -> bool {
        self.rtp().is_some_and(Leg::hears_dtmf)
    }

    pub fn set_recording(&mut self, tap: RecordTap) {
        match self {
            Self::Rtp(l) => l.set_recording(tap),
            Self::WebRtc(w) => w.set_recording(tap),
            Self::Local(l) => l.set_recording(tap != RecordTap::Off),
        }
    }

    /// Joining a bridge with a peer whose audio is at `peer` (`None`: leaving it):
    /// an RTP leg then sends what the bridge gives it (or silence) and reports
    /// what it hears. A local leg always does both.
    pub fn set_bridged(&mut self, peer: Option<SampleRate>) {
        if let Some(l) = self.rtp_mut() {
            l.set_source(if peer.is_some() { &MediaSource::External } else { &MediaSource::Silence });
            l.set_peer_band(peer);
            l.set_emit_heard(peer.is_some());
        }
    }

    /// What an RTP leg sends its party while on hold (a local leg has no party to play to).
    pub fn set_hold_source(&mut self, source: &MediaSource) {
        if let Some(l) = self.rtp_mut() {
            l.set_source(source);
        }
    }

    pub fn hangup(&mut self, cause: HangupCause) {
        match self {
            Self::Rtp(l) => l.hangup(cause),
            Self::WebRtc(w) => w.hangup(cause),
            Self::Local(l) => l.hangup(cause),
        }
    }

    pub fn poll_output(&mut self) -> Option<LegOutput> {
        match self {
            Self::Rtp(l) => l.poll_output(),
            Self::WebRtc(w) => w.poll_output(),
            Self::Local(l) => l.poll_output(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Rtp(l) => l.poll_timeout(),
            Self::WebRtc(w) => w.poll_timeout(),
            Self::Local(l) => l.poll_timeout(),
        }
    }

    pub fn stats(&self) -> RtpStats {
        match self.audio() {
            Audio::Rtp(l) => l.stats(),
            Audio::Local(l) => l.stats(),
        }
    }
}
