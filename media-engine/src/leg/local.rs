//! A local leg: a party that lives inside the engine (the built-in `loop:` legs).
//!
//! It has no network side. Every 20 ms it produces what its party says
//! (`Heard`, like an RTP leg's decoded audio) from its source: a tone, a file,
//! silence, or an echo of what it was sent one tick earlier. Frames sent to
//! it (from a bridge) are what its party hears.

use std::collections::VecDeque;
use std::time::Instant;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::{AudioFrame, SampleRate};

use super::dtmf_sender::{DtmfSender, DtmfTiming};
use super::player::{Clip, Player};
use super::source::{FrameTaken, MediaSource, SourceState};
use super::{LegOutput, PTIME};
use crate::event::{EngineEvent, HangupCause};
use crate::ids::LegId;
use crate::rtp::RtpStats;

/// Ticks a bridge's last frame is heard again while the next is late.
const STALE_TICKS: u32 = 2;

/// A leg whose party is built into the engine.
#[derive(Debug)]
pub struct LocalLeg {
    id: LegId,
    source: SourceState,
    epoch: Instant,
    next_tick: Option<Instant>,
    said: AudioFrame,
    /// Frames from the bridge, and what the party hears of them this tick
    /// (digits and clips replace them or play over them).
    heard: AudioFrame,
    /// Ticks since a frame came from the bridge: one that stopped coming (the
    /// bridge came apart) is not heard again past [`STALE_TICKS`].
    heard_age: u32,
    party: AudioFrame,
    dtmf: DtmfSender,
    player: Player,
    recording: bool,
    /// The engine sends the bridge peer's packets back itself: no ticks.
    reflecting: bool,
    frames: u64,
    ended: Option<HangupCause>,
    outputs: VecDeque<LegOutput>,
}

impl LocalLeg {
    pub fn new(id: LegId, rate: SampleRate, source: &MediaSource, now: Instant) -> Self {
        Self {
            id,
            source: SourceState::new(source, rate.hz()),
            epoch: now,
            next_tick: Some(now),
            said: AudioFrame::silent(rate, 0),
            heard: AudioFrame::silent(rate, 0),
            heard_age: 0,
            party: AudioFrame::silent(rate, 0),
            dtmf: DtmfSender::default(),
            player: Player::default(),
            recording: false,
            reflecting: false,
            frames: 0,
            ended: None,
            outputs: VecDeque::with_capacity(2),
        }
    }

    pub fn id(&self) -> LegId {
        self.id
    }

    pub fn rate(&self) -> SampleRate {
        self.said.rate()
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// What the party said on the latest tick.
    pub fn heard_frame(&self) -> &AudioFrame {
        &self.said
    }

    /// What the party heard on the latest tick.
    pub fn sent_frame(&self) -> &AudioFrame {
        &self.party
    }

    /// What the party hears (a frame from a bridge). Frames at another rate are ignored.
    pub fn handle_frame(&mut self, frame: &AudioFrame) -> FrameTaken {
        if frame.rate() != self.rate() {
            return FrameTaken::No;
        }
        self.heard.clone_from(frame);
        self.heard_age = 0;
        self.source.heard(&self.heard);
        match self.source.push(&self.heard) {
            // Heard, if not queued to be played.
            FrameTaken::No => FrameTaken::Yes,
            taken => taken,
        }
    }

    /// Whether the engine may send its bridge peer's packets straight back out
    /// of the peer instead (see `engine/passthrough.rs`): an echo with nothing of
    /// its own to play or record.
    pub fn can_reflect(&self) -> bool {
        self.source.is_echo() && !self.recording && self.player.is_idle() && self.dtmf.is_idle()
    }

    pub fn is_reflecting(&self) -> bool {
        self.reflecting
    }

    /// Stop ticking while the engine reflects the peer's packets; resume (due at
    /// once, realigned to the 20 ms grid, with nothing stale to echo) after.
    pub fn set_reflecting(&mut self, on: bool) {
        if on == self.reflecting || self.is_ended() {
            return;
        }
        self.reflecting = on;
        self.source.clear_echo();
        self.next_tick = if on { None } else { Some(self.epoch + PTIME * self.frames as u32) };
    }

    /// Output both directions of audio every tick as `Recorded`.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Play digits to the party.
    pub fn send_dtmf(&mut self, digits: &[DtmfDigit], timing: DtmfTiming) {
        self.dtmf.queue(digits, timing);
    }

    /// Play a clip to the party (see [`Leg::play`](super::Leg::play)).
    pub fn play(&mut self, clip: Clip, overlay: bool) {
        self.player.play(clip, overlay);
    }

    /// Audio mixed into what the party hears on the next tick.
    pub fn mix_in(&mut self, frame: &AudioFrame) {
        self.player.mix_in(frame);
    }

    /// What was mixed into the latest frame the party heard.
    pub fn mixed(&self) -> Option<&AudioFrame> {
        self.player.mixed()
    }

    pub fn stop_playback(&mut self, overlay: bool, all: bool) {
        self.player.stop(overlay, all);
        self.player.drain_events(self.id, &mut self.outputs);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(due) = self.next_tick.filter(|&due| due <= now) else { return };
        let elapsed = now.saturating_duration_since(self.epoch).max(due - self.epoch);
        let ticks = (elapsed.as_nanos() / PTIME.as_nanos()) as u32;
        self.next_tick = Some(self.epoch + PTIME * (ticks + 1));
        self.heard_age = self.heard_age.saturating_add(1);
        if self.heard_age > STALE_TICKS {
            self.heard.fill_silence();
        }
        self.party.clone_from(&self.heard);
        if !self.dtmf.is_idle() || !self.player.is_idle() {
            // Digits and clips reach the party in place of (or over) the bridged audio.
            self.player.fill(&mut self.party);
            self.player.drain_events(self.id, &mut self.outputs);
            if !self.dtmf.is_idle() {
                self.party.fill_silence();
                self.dtmf.fill(&mut self.party);
            }
            self.source.heard(&self.party);
        }
        self.source.fill(&mut self.said);
        self.frames += 1;
        self.said.timestamp = self.frames * self.rate().frame_samples() as u64;
        self.outputs.push_back(LegOutput::Heard);
        if self.recording {
            let at = u64::from(ticks) * super::samples_8k(PTIME);
            let inbound = self.said.clone();
            self.outputs.push_back(LegOutput::Recorded { at, inbound, outbound: self.party.clone() });
        }
    }

    pub fn hangup(&mut self, cause: HangupCause) {
        if self.is_ended() {
            return;
        }
        self.ended = Some(cause);
        self.next_tick = None;
        let stats = self.stats();
        self.outputs.push_back(LegOutput::Event(EngineEvent::LegEnded { leg: self.id, cause, stats }));
    }

    pub fn poll_output(&mut self) -> Option<LegOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// A local leg has no RTP; it reports the frames it produced as packets sent.
    pub fn stats(&self) -> RtpStats {
        RtpStats { packets_sent: self.frames, ..RtpStats::default() }
    }
}
