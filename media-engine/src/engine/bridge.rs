//! Bridges: joining two legs (in this engine or across two), taking them
//! apart, what crosses between engines for a remote half, and where each
//! bridged leg's audio goes: the peer, and a resampler when the rates differ.

use std::collections::VecDeque;

use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, SampleRate};

use std::time::Instant;

use bond_codecs::dtmf::DtmfDigit;

use super::relay::{PassOffer, Relay};
use super::{Engine, EngineOutput};
use crate::event::DtmfSource;
use crate::ids::LegId;
use crate::leg::DtmfTiming;
use crate::EngineError;

/// One direction of a bridge: audio heard on a leg goes to `peer`.
#[derive(Debug)]
pub(super) struct Route {
    pub peer: LegId,
    /// The peer lives in another engine: frames and digits leave as [`Relay`](super::Relay)s.
    pub remote: bool,
    /// Whether DTMF heard on this leg reaches the peer (Telnyx `mute_dtmf` turns it off).
    pub carry_dtmf: bool,
    resampler: Option<FrameResampler>,
    /// The peer's rate.
    to: SampleRate,
    /// Room for a resampled or held-back frame, made when first needed: a
    /// route that passes its leg's frames on as they are (or its packets,
    /// passing through) never needs it.
    scratch: Option<AudioFrame>,
    /// With DTMF muted, audio waits here two ticks so a digit can be blanked from
    /// its first sample: the detector needs up to two frames to be sure.
    held: VecDeque<AudioFrame>,
    /// The room of the frame that last left `held`, for the next to enter.
    spare: Option<AudioFrame>,
    /// A remote peer's latest passthrough offer, the last this side told it
    /// (`None` before the first, or to tell it again), and whether to ask for
    /// the peer's again: see `relay.rs`.
    pub peer_offer: Option<PassOffer>,
    pub told: Option<Option<PassOffer>>,
    pub ask: bool,
}

/// Ticks of audio held back on a route that mutes DTMF.
const MUTE_LOOKAHEAD: usize = 2;

impl Route {
    pub fn new(peer: LegId, from: SampleRate, to: SampleRate, carry_dtmf: bool) -> Result<Self, EngineError> {
        let resampler =
            (from != to).then(|| FrameResampler::new(from, to, ResamplerProfile::LowDelay)).transpose()?;
        let held = VecDeque::with_capacity(if carry_dtmf { 0 } else { MUTE_LOOKAHEAD + 1 });
        Ok(Self {
            peer,
            remote: false,
            carry_dtmf,
            resampler,
            to,
            scratch: None,
            held,
            spare: None,
            peer_offer: None,
            told: None,
            ask: false,
        })
    }

    /// A route to a peer in another engine. Its first offer asks for the
    /// peer's: the runtime joins the two halves one after the other, so the
    /// peer's first offer may have arrived before this half existed, and been refused.
    pub fn into_remote(self) -> Self {
        Self { remote: true, ask: true, ..self }
    }

    /// The frame to give the peer this tick. With DTMF muted it is the one from two
    /// ticks ago, silenced if a digit was sounding in or around it.
    pub fn forward<'a>(&'a mut self, frame: &'a AudioFrame, digit_sounding: bool) -> Option<&'a AudioFrame> {
        if self.carry_dtmf {
            return Some(self.convert(frame));
        }
        let mut room = self.spare.take().unwrap_or_else(|| AudioFrame::silent(self.to, 0));
        room.clone_from(self.convert(frame));
        self.held.push_back(room);
        if digit_sounding {
            self.held.iter_mut().for_each(AudioFrame::fill_silence);
        }
        if self.held.len() <= MUTE_LOOKAHEAD {
            return None;
        }
        let mut held = self.held.pop_front()?;
        let scratch = scratch(&mut self.scratch, self.to);
        std::mem::swap(scratch, &mut held);
        self.spare = Some(held);
        Some(scratch)
    }

    /// The frame in the peer's rate (resampled into scratch space, no
    /// allocation after the first).
    pub fn convert<'a>(&'a mut self, frame: &'a AudioFrame) -> &'a AudioFrame {
        let Some(r) = &mut self.resampler else { return frame };
        let scratch = scratch(&mut self.scratch, self.to);
        if r.process(frame, scratch).is_err() {
            scratch.fill_silence();
        }
        scratch
    }
}

fn scratch(room: &mut Option<AudioFrame>, rate: SampleRate) -> &mut AudioFrame {
    room.get_or_insert_with(|| AudioFrame::silent(rate, 0))
}

/// How a digit received on one leg of a bridge is played to the other.
const RELAYED_DIGIT: DtmfTiming = DtmfTiming { tone_ms: 100, gap_ms: 50 };

/// Which way DTMF passes through a bridge of `(first, second)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfPassing {
    Both,
    /// Only the first leg's digits reach the second.
    FromFirst,
    /// Only the second leg's digits reach the first.
    FromSecond,
    None,
}

impl DtmfPassing {
    /// Whether digits pass from the first leg to the second, and from the second to the first.
    pub fn directions(self) -> (bool, bool) {
        (matches!(self, Self::Both | Self::FromFirst), matches!(self, Self::Both | Self::FromSecond))
    }
}

impl Engine {
    /// Join `a` and `b`: each hears the other from the next tick on, DTMF included.
    pub fn bridge(&mut self, a: LegId, b: LegId) -> Result<(), EngineError> {
        self.bridge_with(a, b, DtmfPassing::Both)
    }

    /// Join `a` and `b`, passing DTMF as `dtmf` says. A digit a leg receives as
    /// RFC 4733 is played in-band to the peer. Where digits must not pass, the
    /// audio is held back 40 ms so an in-band digit is silenced whole.
    pub fn bridge_with(&mut self, a: LegId, b: LegId, dtmf: DtmfPassing) -> Result<(), EngineError> {
        if a == b {
            return Err(EngineError::Config("a leg cannot be bridged with itself"));
        }
        self.leg_mut(a)?;
        self.leg_mut(b)?;
        for leg in [a, b] {
            if self.routes.contains_key(&leg) {
                return Err(EngineError::AlreadyBridged(leg));
            }
        }
        // An Opus leg codes at its peer's rate, so nothing is resampled between them.
        let rate_b = self.leg_mut(b)?.rate();
        let rate_a = self.fit_opus_rate(a, rate_b)?;
        let rate_b = self.fit_opus_rate(b, rate_a)?;
        let (carry_a_to_b, carry_b_to_a) = dtmf.directions();
        let a_to_b = Route::new(b, rate_a, rate_b, carry_a_to_b)?;
        let b_to_a = Route::new(a, rate_b, rate_a, carry_b_to_a)?;
        self.routes.insert(a, a_to_b);
        self.routes.insert(b, b_to_a);
        for (leg, peer_rate) in [(a, rate_b), (b, rate_a)] {
            self.set_bridged(leg, Some(peer_rate))?;
        }
        self.refresh_passthrough(a);
        Ok(())
    }

    /// Join `leg` with `peer`, a leg of another engine whose PCM rate is `peer_rate`:
    /// this engine holds the direction from `leg` to `peer` and outputs it as
    /// [`Relay`]s; the peer's engine holds the other with the same call. `carry_dtmf`:
    /// whether digits `leg` receives reach `peer`.
    pub fn bridge_remote(
        &mut self,
        leg: LegId,
        peer: LegId,
        peer_rate: SampleRate,
        carry_dtmf: bool,
    ) -> Result<(), EngineError> {
        if self.legs.contains_key(&peer) {
            return Err(EngineError::Config("the peer is a leg of this engine: bridge them here"));
        }
        let rate = self.leg_mut(leg)?.rate();
        if self.routes.contains_key(&leg) {
            return Err(EngineError::AlreadyBridged(leg));
        }
        self.routes.insert(leg, Route::new(peer, rate, peer_rate, carry_dtmf)?.into_remote());
        self.set_bridged(leg, Some(peer_rate))?;
        Ok(())
    }

    /// What another engine relays to one of this engine's legs. Refused when the
    /// bridge it belongs to no longer stands (frames in flight as it came apart).
    pub fn handle_relay(&mut self, now: Instant, relay: Relay) -> Result<(), EngineError> {
        let (to, from) = relay.ends();
        if self.conferences.contains_key(&to) {
            self.conference_relay(relay);
            return Ok(());
        }
        if !self.routes.get(&to).is_some_and(|r| r.remote && r.peer == from) {
            return Err(EngineError::NotBridged(to));
        }
        match relay {
            // One in flight as the leg switched to passthrough goes nowhere.
            Relay::Frame { .. } if self.is_passthrough(to) => self.retell_offer(to),
            Relay::Frame { mut frame, .. } => {
                // The sender applied its party's mute; this side applies what its own party may hear.
                if !self.controls(to).passes_outbound() {
                    frame.fill_silence();
                }
                self.frames_dropped += self.leg_mut(to)?.handle_frame(&frame).dropped();
                return Ok(());
            }
            Relay::Packet { packet, .. } => {
                if self.send_forwarded(now, to, &packet.forwarded()) {
                    self.after_forwarded(to);
                    return Ok(());
                }
                self.retell_offer(to);
            }
            Relay::Passthrough { offer, ask, .. } => {
                if let Some(route) = self.routes.get_mut(&to) {
                    route.peer_offer = offer;
                    if ask {
                        route.told = None;
                    }
                }
            }
            Relay::Dtmf { digit, .. } => self.leg_mut(to)?.send_dtmf(&[digit], RELAYED_DIGIT),
            Relay::Unbridge { .. } => {
                self.routes.remove(&to);
                self.leave_bridge(to);
            }
        }
        self.after_leg_changed(to);
        Ok(())
    }

    /// Take `leg` and its peer out of their bridge; returns the peer. A peer in
    /// another engine is told with a [`Relay::Unbridge`].
    pub fn unbridge(&mut self, leg: LegId) -> Result<LegId, EngineError> {
        let route = self.routes.remove(&leg).ok_or(EngineError::NotBridged(leg))?;
        self.leave_bridge(leg);
        if self.conferences.contains_key(&route.peer) {
            self.drop_party(route.peer, leg);
        } else if route.remote {
            self.outputs.push_back(EngineOutput::Relay(Relay::Unbridge { from: leg, to: route.peer }));
        } else {
            self.routes.remove(&route.peer);
            self.leave_bridge(route.peer);
        }
        Ok(route.peer)
    }

    /// A leg out of its bridge hears its own source again and reports what it
    /// hears only for its detector.
    pub(super) fn leave_bridge(&mut self, id: LegId) {
        self.set_passthrough(id, false);
        let detected = self.detectors.contains_key(&id);
        if self.set_bridged(id, None).is_ok() {
            // An Opus leg that coded at its peer's rate codes at its own again.
            let _ = self.fit_opus_rate(id, SampleRate::Hz48000);
            if let Some(member) = self.legs.get_mut(&id) {
                member.set_emit_heard(detected);
            }
        }
    }

    /// Code `leg`'s Opus at `rate`, or as near as its codec goes (before it
    /// joins a bridge with a peer at `rate`, in this engine or another), unless
    /// something else takes its audio at the rate it has (a detector, a
    /// supervisor, hold music made for that rate, a recording, a clip playing:
    /// see `Leg::code_opus_at`); returns the leg's rate after.
    pub fn fit_opus_rate(&mut self, leg: LegId, rate: SampleRate) -> Result<SampleRate, EngineError> {
        let fixed =
            self.is_tapped(leg) || self.detectors.contains_key(&leg) || self.hold_sources.contains_key(&leg);
        let member = self.leg_mut(leg)?;
        match member.rtp_mut() {
            Some(rtp) if !fixed => rtp.code_opus_at(rate)?,
            _ => {}
        }
        Ok(member.rate())
    }

    /// The leg `leg` is bridged with.
    pub fn bridged_with(&self, leg: LegId) -> Option<LegId> {
        self.routes.get(&leg).map(|r| r.peer)
    }

    /// A digit that arrived as RFC 4733 on a bridged leg is played in-band to the peer.
    pub(super) fn relay_dtmf(&mut self, from: LegId, digit: DtmfDigit, source: DtmfSource) {
        let Some(route) = self.routes.get(&from).filter(|r| r.carry_dtmf) else { return };
        let peer = route.peer;
        // In passthrough an RFC 4733 digit's own packets went across, unless the
        // peer is a carrier stream, which carries no events: it plays the digit.
        if source == DtmfSource::Rfc4733 && self.is_passthrough(from) && self.peer_takes_events(from) {
            return;
        }
        if route.remote {
            self.outputs.push_back(EngineOutput::Relay(Relay::Dtmf { from, to: peer, digit }));
        } else if let Some(peer_leg) = self.legs.get_mut(&peer) {
            peer_leg.send_dtmf(&[digit], RELAYED_DIGIT);
            // Digits to play take the bridge off passthrough.
            self.refresh_passthrough(peer);
        }
    }
}
