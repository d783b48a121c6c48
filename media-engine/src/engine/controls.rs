//! Per-leg audio controls: mute each direction, and hold, whose source a
//! leg keeps hearing while its bridges come and go.

use bond_codecs::SampleRate;

use super::Engine;
use crate::ids::LegId;
use crate::leg::MediaSource;
use crate::EngineError;

/// Per-leg audio controls: mute each direction, hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioControls {
    /// What the party says does not reach the bridge.
    pub mute_inbound: bool,
    /// The party hears nothing from the bridge.
    pub mute_outbound: bool,
    /// On hold: neither direction passes the bridge; the party hears the hold source.
    pub held: bool,
}

impl AudioControls {
    pub(super) fn passes_inbound(&self) -> bool {
        !self.mute_inbound && !self.held
    }

    pub(super) fn passes_outbound(&self) -> bool {
        !self.mute_outbound && !self.held
    }
}

impl Engine {
    /// Mute what a leg's party says (`inbound`) and/or what it hears (`outbound`).
    pub fn set_mute(&mut self, leg: LegId, inbound: bool, outbound: bool) -> Result<(), EngineError> {
        self.leg_mut(leg)?;
        let controls = self.controls.entry(leg).or_default();
        controls.mute_inbound = inbound;
        controls.mute_outbound = outbound;
        self.refresh_passthrough(leg);
        Ok(())
    }

    /// Put a leg on hold: its party hears `hold_source` (silence, or music from
    /// `MediaSource::Play`), and nothing passes the bridge either way until `unhold`.
    /// Music made for another rate than the leg's is refused with
    /// [`EngineError::ClipRate`].
    pub fn hold(&mut self, leg: LegId, hold_source: &MediaSource) -> Result<(), EngineError> {
        let member = self.leg_mut(leg)?;
        if let MediaSource::Play { rate, .. } = hold_source {
            if *rate != member.rate() {
                return Err(EngineError::ClipRate { leg, rate: member.rate() });
            }
        }
        member.set_hold_source(hold_source);
        self.hold_sources.insert(leg, hold_source.clone());
        self.controls.entry(leg).or_default().held = true;
        self.refresh_passthrough(leg);
        Ok(())
    }

    pub fn unhold(&mut self, leg: LegId) -> Result<(), EngineError> {
        let bridged = self.routes.contains_key(&leg);
        self.leg_mut(leg)?.set_hold_source(if bridged {
            &MediaSource::External
        } else {
            &MediaSource::Silence
        });
        self.controls.entry(leg).or_default().held = false;
        self.hold_sources.remove(&leg);
        self.refresh_passthrough(leg);
        Ok(())
    }

    /// A leg's mute and hold state.
    pub fn controls(&self, leg: LegId) -> AudioControls {
        self.controls.get(&leg).copied().unwrap_or_default()
    }

    /// A leg joins a bridge (hearing its peer, at `peer`'s rate) or leaves one
    /// (hearing its own source); a held leg goes on hearing its hold source.
    pub(super) fn set_bridged(&mut self, leg: LegId, peer: Option<SampleRate>) -> Result<(), EngineError> {
        let member = self.legs.get_mut(&leg).ok_or(EngineError::UnknownLeg(leg))?;
        member.set_bridged(peer);
        if let Some(source) = self.hold_sources.get(&leg) {
            member.set_hold_source(source);
        }
        Ok(())
    }
}
