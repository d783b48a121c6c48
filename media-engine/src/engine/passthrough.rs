//! When a bridge passes packets through undecoded (see `leg/passthrough.rs`).
//!
//! Both legs must be RTP legs (SIP, WebRTC) or carrier streams with the same
//! codec and packet time, each allowing it, carrying DTMF across, with no
//! detector, mute or hold. A WebRTC leg's packets come out of str0m, so the
//! engine forwards them once the call that fed str0m returns
//! ([`Engine::forward_received`]). The engine checks after anything that could change
//! the answer (a leg's outputs drained, a control applied) and switches both
//! legs together, so a clip, a digit to play or a recording that needs decoded
//! frames (a fork's, or one at another rate than the leg's) puts the bridge back
//! on the decoding path from the next packet, and it returns once they are done.
//! When the legs live in two engines, each engine tells the other what its leg
//! offers and packets cross as relays (`relay.rs`).
//!
//! A carrier stream takes no telephone-events, and a browser plays none: a
//! digit passed towards either is played to it in-band, which takes the bridge
//! off passthrough while it sounds. See `stream.rs` for the order a stream's packets leave in.
//!
//! An RTP or WebRTC leg bridged with a `loop:echo` local leg passes through too: the
//! echo has nothing to add, so each packet goes straight back out of the leg it
//! came in on (on that leg's own stream) and the echo stops ticking, until it
//! records, plays or is tapped. An echo in another engine offers its peer's
//! codec back (`relay.rs`), and the peer's engine reflects in the same way.

use std::time::Instant;

use super::member::Member;
use super::relay::{PassOffer, Relay, RelayedPacket};
use super::stream::StreamState;
use super::{AudioControls, Engine, EngineOutput};
use crate::ids::LegId;
use crate::leg::{Forwarded, Leg};

impl Engine {
    /// Whether `leg` is passing packets straight to its bridge peer.
    pub fn is_passthrough(&self, leg: LegId) -> bool {
        self.legs.get(&leg).and_then(Member::rtp).is_some_and(Leg::is_passthrough)
    }

    fn passes_through(&self, leg: LegId) -> bool {
        // A stream signals its digits beside the audio; a browser sends them as
        // telephone-events when it negotiated them (a SIP leg must, to pass through).
        let allowed = match self.legs.get(&leg) {
            Some(Member::Rtp(l)) => l.can_pass_through(self.streams.contains_key(&leg)),
            Some(Member::WebRtc(w)) => {
                w.leg().can_pass_through(w.leg().config().telephone_event_pt.is_some())
            }
            Some(Member::Local(l)) => l.can_reflect(),
            None => false,
        };
        allowed
            && self.streams.get(&leg).is_none_or(StreamState::is_20_ms)
            && !self.detectors.contains_key(&leg)
            && !self.is_tapped(leg)
            && self.controls(leg) == AudioControls::default()
            && self.routes.get(&leg).is_some_and(|r| r.carry_dtmf)
    }

    /// What `leg` offers a peer in another engine to pass through with, if it
    /// may now. An echo offers back what its peer offered, once it has.
    fn pass_offer(&self, leg: LegId) -> Option<PassOffer> {
        if !self.passes_through(leg) {
            return None;
        }
        let Some(l) = self.legs.get(&leg)?.rtp() else {
            // Of local legs only an echo passes through: it sends back what its peer
            // sends, events and all, and (as in one engine) takes no events itself.
            let peer = self.routes.get(&leg)?.peer_offer.filter(|offer| !offer.echo)?;
            return Some(PassOffer { takes_events: false, paced: false, echo: true, ..peer });
        };
        Some(PassOffer {
            codec: l.config().codec,
            packet_ms: l.packet_ms(),
            takes_events: self.takes_events(leg),
            paced: self.streams.contains_key(&leg),
            echo: false,
        })
    }

    /// Whether `leg` is sent the telephone-events its bridge peer passes on: a
    /// SIP leg is; a carrier stream and a browser are played the digit instead.
    fn takes_events(&self, leg: LegId) -> bool {
        matches!(self.legs.get(&leg), Some(Member::Rtp(_))) && !self.streams.contains_key(&leg)
    }

    /// Whether `leg`'s bridge peer can be sent telephone-events while passing through.
    pub(super) fn peer_takes_events(&self, leg: LegId) -> bool {
        match self.routes.get(&leg) {
            Some(route) if route.remote => route.peer_offer.is_some_and(|o| o.takes_events),
            Some(route) => self.takes_events(route.peer),
            None => false,
        }
    }

    /// Whether `leg`'s bridge peer is a carrier stream (whose pacer puts its chunks in order).
    pub(super) fn peer_is_stream(&self, leg: LegId) -> bool {
        match self.routes.get(&leg) {
            Some(route) if route.remote => route.peer_offer.is_some_and(|o| o.paced),
            Some(route) => self.streams.contains_key(&route.peer),
            None => false,
        }
    }

    /// Switch `leg`'s bridge into or out of passthrough as its state now allows.
    pub(super) fn refresh_passthrough(&mut self, leg: LegId) {
        let Some(route) = self.routes.get(&leg) else { return };
        let peer = route.peer;
        if route.remote {
            return self.refresh_remote_passthrough(leg, peer);
        }
        let joinable = match (self.legs.get(&leg), self.legs.get(&peer)) {
            (None, _) | (_, None) | (Some(Member::Local(_)), Some(Member::Local(_))) => false,
            // An echo sends the other leg's packets back in that leg's own codec.
            (Some(Member::Local(_)), _) | (_, Some(Member::Local(_))) => {
                self.passes_through(leg) && self.passes_through(peer)
            }
            _ => self.pass_offer(leg).zip(self.pass_offer(peer)).is_some_and(|(a, b)| a.matches(&b)),
        };
        for id in [leg, peer] {
            self.set_passthrough(id, joinable);
        }
        self.check_offloads(leg);
    }

    /// A bridge across engines: tell the peer's engine when what `leg` offers
    /// changes, and pass through while both offers match.
    fn refresh_remote_passthrough(&mut self, leg: LegId, peer: LegId) {
        let offer = self.pass_offer(leg);
        let Some(route) = self.routes.get_mut(&leg) else { return };
        if route.told != Some(offer) {
            route.told = Some(offer);
            let ask = std::mem::take(&mut route.ask);
            self.outputs.push_back(EngineOutput::Relay(Relay::Passthrough {
                from: leg,
                to: peer,
                offer,
                ask,
            }));
        }
        let on = offer.zip(route.peer_offer).is_some_and(|(a, b)| a.matches(&b));
        self.set_passthrough(leg, on);
    }

    /// A relay for the other mode reached `leg`: its peer sees the bridge
    /// otherwise. Tell it `leg`'s offer again and ask for its own.
    pub(super) fn retell_offer(&mut self, leg: LegId) {
        if let Some(route) = self.routes.get_mut(&leg) {
            route.told = None;
            route.ask = true;
        }
    }

    /// Turn passthrough on or off for one leg, re-arming its timer when it changes.
    pub(super) fn set_passthrough(&mut self, leg: LegId, on: bool) {
        if !on {
            self.end_offloads(leg);
        }
        match self.legs.get_mut(&leg) {
            Some(Member::Local(l)) if l.is_reflecting() != on => l.set_reflecting(on),
            Some(member) => match member.rtp_mut() {
                Some(l) if l.is_passthrough() != on => l.set_passthrough(on),
                _ => return,
            },
            None => return,
        }
        if let Some(state) = self.streams.get_mut(&leg) {
            state.end_passthrough(|output| self.outputs.push_back(EngineOutput::Stream { leg, output }));
        }
        self.arm(leg);
    }

    /// A packet received on a passthrough leg goes out of its peer (through the
    /// peer's engine if it has its own), or back out of the leg itself when the
    /// peer is an echo, in this engine or another (the caller drains that leg).
    pub(super) fn forward_to_peer(&mut self, now: Instant, leg: LegId, packet: &Forwarded<'_>) {
        let Some(route) = self.routes.get(&leg) else { return };
        let (peer, remote) = (route.peer, route.remote);
        let echo = if remote {
            route.peer_offer.is_some_and(|offer| offer.echo)
        } else {
            matches!(self.legs.get(&peer), Some(Member::Local(_)))
        };
        if remote && !echo {
            let packet = Box::new(RelayedPacket::new(packet));
            self.outputs.push_back(EngineOutput::Relay(Relay::Packet { from: leg, to: peer, packet }));
            return;
        }
        let out = if echo { leg } else { peer };
        let sent = self.send_forwarded(now, out, packet);
        if sent && self.offloading && !packet.event {
            self.offer_offload(leg, out);
        }
        if out != leg {
            self.after_forwarded(out);
        }
    }

    /// `leg` sends a packet its bridge peer passed through, if it is passing
    /// through itself; false if not (one relayed from another engine as it switched).
    pub(super) fn send_forwarded(&mut self, now: Instant, leg: LegId, packet: &Forwarded<'_>) -> bool {
        match self.legs.get_mut(&leg) {
            Some(Member::Rtp(l)) if l.is_passthrough() => l.forward(now, packet),
            Some(Member::WebRtc(w)) if w.leg().is_passthrough() => w.forward(now, packet),
            _ => return false,
        }
        self.passed_through += 1;
        true
    }

    /// How many packets legs have sent on undecoded (passed through or
    /// reflected) since the last call.
    pub fn take_passed_through(&mut self) -> u64 {
        std::mem::take(&mut self.passed_through)
    }

    /// Forward what a WebRTC leg received while passing through (str0m hands
    /// its packets over inside the leg's own call, where the peer is out of reach).
    pub(super) fn forward_received(&mut self, now: Instant, leg: LegId) {
        let Some(Member::WebRtc(w)) = self.legs.get_mut(&leg) else { return };
        let Some(queue) = w.take_forwarded() else { return };
        for packet in queue.iter() {
            self.forward_to_peer(now, leg, &packet);
        }
        if let Some(Member::WebRtc(w)) = self.legs.get_mut(&leg) {
            w.restore_forwarded(queue);
        }
    }
}
