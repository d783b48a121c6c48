//! When a bridge passes packets through undecoded (see `leg/passthrough.rs`).
//!
//! Both legs of a local bridge must be plain RTP legs (not WebRTC, not carrier
//! streams) with the same codec and packet time, each allowing it, carrying DTMF across, with no
//! detector, mute or hold. The engine checks after anything that could change
//! the answer (a leg's outputs drained, a control applied) and switches both
//! legs together, so a clip, a digit to play or a recording that needs decoded
//! frames (a fork's, or one not of G.711 at 8 kHz) puts the bridge back
//! on the decoding path from the next packet, and it returns once they are done.
//!
//! A plain RTP leg bridged with a `loop:echo` local leg passes through too: the
//! echo has nothing to add, so each packet goes straight back out of the leg it
//! came in on (on that leg's own stream) and the echo stops ticking, until it
//! records, plays or is tapped.

use std::time::Instant;

use super::member::Member;
use super::{AudioControls, Engine};
use crate::ids::LegId;
use crate::leg::Forwarded;

impl Engine {
    /// Whether `leg` is passing packets straight to its bridge peer.
    pub fn is_passthrough(&self, leg: LegId) -> bool {
        matches!(self.legs.get(&leg), Some(Member::Rtp(l)) if l.is_passthrough())
    }

    fn passes_through(&self, leg: LegId) -> bool {
        let allowed = match self.legs.get(&leg) {
            Some(Member::Rtp(l)) => l.can_pass_through(),
            Some(Member::Local(l)) => l.can_reflect(),
            _ => false,
        };
        allowed
            && !self.streams.contains_key(&leg)
            && !self.detectors.contains_key(&leg)
            && !self.is_tapped(leg)
            && self.controls(leg) == AudioControls::default()
            && self.routes.get(&leg).is_some_and(|r| r.carry_dtmf && !r.remote)
    }

    /// Switch `leg`'s bridge into or out of passthrough as its state now allows.
    pub(super) fn refresh_passthrough(&mut self, leg: LegId) {
        let Some(peer) = self.routes.get(&leg).filter(|r| !r.remote).map(|r| r.peer) else { return };
        let joinable = match (self.legs.get(&leg), self.legs.get(&peer)) {
            // The same codec and packet time: each peer gets packets as it asked for them.
            (Some(Member::Rtp(a)), Some(Member::Rtp(b))) => {
                a.config().codec == b.config().codec && a.packet_ms() == b.packet_ms()
            }
            // An echo sends the RTP leg's packets back in its own codec.
            (Some(Member::Rtp(_)), Some(Member::Local(_)))
            | (Some(Member::Local(_)), Some(Member::Rtp(_))) => true,
            _ => false,
        };
        let on = joinable && self.passes_through(leg) && self.passes_through(peer);
        for id in [leg, peer] {
            self.set_passthrough(id, on);
        }
    }

    /// Turn passthrough on or off for one leg, re-arming its timer when it changes.
    pub(super) fn set_passthrough(&mut self, leg: LegId, on: bool) {
        match self.legs.get_mut(&leg) {
            Some(Member::Rtp(l)) if l.is_passthrough() != on => l.set_passthrough(on),
            Some(Member::Local(l)) if l.is_reflecting() != on => l.set_reflecting(on),
            _ => return,
        }
        self.arm(leg);
    }

    /// A packet received on a passthrough leg goes out of its peer, or back out of
    /// the leg itself when the peer is an echo (the caller drains that leg).
    pub(super) fn forward_to_peer(&mut self, now: Instant, leg: LegId, packet: &Forwarded<'_>) {
        let Some(peer) = self.routes.get(&leg).map(|r| r.peer) else { return };
        let out = if matches!(self.legs.get(&peer), Some(Member::Local(_))) { leg } else { peer };
        if let Some(Member::Rtp(l)) = self.legs.get_mut(&out) {
            l.forward(now, packet);
            if out != leg {
                self.after_leg_changed(out);
            }
        }
    }
}
