//! Where each bridged leg's audio goes: the peer, and a resampler when the rates differ.

use std::collections::VecDeque;

use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, SampleRate};

use super::relay::PassOffer;
use crate::ids::LegId;
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
    scratch: AudioFrame,
    /// With DTMF muted, audio waits here two ticks so a digit can be blanked from
    /// its first sample: the detector needs up to two frames to be sure.
    held: VecDeque<AudioFrame>,
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
            scratch: AudioFrame::silent(to, 0),
            held,
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
        let converted = self.convert(frame).clone();
        self.held.push_back(converted);
        if digit_sounding {
            self.held.iter_mut().for_each(AudioFrame::fill_silence);
        }
        if self.held.len() <= MUTE_LOOKAHEAD {
            return None;
        }
        self.scratch = self.held.pop_front()?;
        Some(&self.scratch)
    }

    /// The frame in the peer's rate (resampled into scratch space, no allocation).
    pub fn convert<'a>(&'a mut self, frame: &'a AudioFrame) -> &'a AudioFrame {
        match &mut self.resampler {
            None => frame,
            Some(r) => match r.process(frame, &mut self.scratch) {
                Ok(()) => &self.scratch,
                Err(_) => {
                    self.scratch.fill_silence();
                    &self.scratch
                }
            },
        }
    }
}
