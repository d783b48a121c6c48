//! Handing a passthrough direction to the kernel.
//!
//! While a bridge of two plain RTP legs passes packets through (see
//! `passthrough.rs`), the rewrite a packet gets on its way from one leg to the
//! other is fixed: the sending leg's payload type and SSRC, its sequence number
//! and timestamp moved by the offsets it took at the first packet. With
//! offloading on ([`Engine::set_offloading`]; the runtime turns it on when it
//! has loaded the in-kernel relay), the engine hands that rewrite out as an
//! [`Offload`] once the sending leg has forwarded its first audio packet, and
//! again whenever it takes new offsets (the incoming SSRC changed). The
//! runtime routes the direction in the kernel, so its packets stop reaching the
//! engine; what the route does not carry (telephone-events, RTCP, another
//! SSRC) still arrives here and goes on as before, on the same offsets.
//!
//! The runtime reports what each route forwarded ([`Engine::handle_offloaded`]):
//! the receiving leg counts those packets as received (its media timeout and
//! statistics go on) and the sending leg as sent, going on after the newest
//! (its RTCP reports, and its own packets when the bridge stops passing
//! through, follow the kernel's). The engine says [`EngineOutput::OffloadEnded`]
//! as soon as anything takes the bridge off passthrough or asks for its
//! packets (a recording, a clip, a digit to play, a detector, an unbridge, a
//! hangup); the runtime then takes the route away and reports its last counts.
//!
//! A leg bridged with a `loop:echo` that reflects offers its own direction
//! (`from` = `to`): the kernel sends each packet straight back to the peer.
//! Legs whose packets need userspace stay there: carrier streams, WebRTC
//! (SRTP), bridges across engines, and recorded legs.

use std::time::Instant;

use super::member::Member;
use super::{Engine, EngineOutput};
use crate::ids::LegId;

/// One passthrough direction the kernel may carry: the peer's packets that
/// arrive at `from`'s socket, rewritten onto `to`'s stream and sent to `to`'s peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offload {
    pub from: LegId,
    pub to: LegId,
    /// The audio payload type `from` receives, and the one `to` sends.
    pub in_pt: u8,
    pub out_pt: u8,
    /// The incoming stream the offsets hold for, and `to`'s own SSRC.
    pub in_ssrc: u32,
    pub out_ssrc: u32,
    pub seq_offset: u16,
    pub ts_offset: u32,
    /// The RTP clock rate of the stream `from` receives, for its jitter.
    pub clock_rate: u32,
}

/// What the kernel relayed of one direction since the last report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relayed {
    pub packets: u64,
    /// Their payload, in bytes.
    pub bytes: u64,
    /// The newest packet written onto `to`'s stream: (sequence number, timestamp).
    pub last_sent: Option<(u16, u32)>,
    /// The incoming stream's interarrival jitter as the kernel saw it (RFC
    /// 3550 A.8), in clock units scaled by 16.
    pub jitter_q4: Option<u32>,
}

impl Engine {
    /// Offer passthrough directions to the kernel from now on (see the module docs).
    pub fn set_offloading(&mut self, on: bool) {
        self.offloading = on;
    }

    /// After `to` forwarded an audio packet `from` received: offer the direction
    /// if it may be offloaded and its rewrite is new.
    pub(super) fn offer_offload(&mut self, from: LegId, to: LegId) {
        let Some(offload) = self.offload_of(from, to) else { return };
        if self.offloads.get(&from) != Some(&offload) {
            self.offloads.insert(from, offload);
            self.outputs.push_back(EngineOutput::Offload(offload));
        }
    }

    /// The rewrite of the direction `from` -> `to`, if the kernel may carry it now.
    fn offload_of(&self, from: LegId, to: LegId) -> Option<Offload> {
        let route = self.routes.get(&from).filter(|_| self.offloading)?;
        // An echo in this engine that reflects: the leg sends its peer's packets back itself.
        let echoed = || matches!(self.legs.get(&route.peer), Some(Member::Local(l)) if l.is_reflecting());
        if route.remote || !(route.peer == to || from == to && echoed()) {
            return None;
        }
        let plain = |id: LegId| match self.legs.get(&id) {
            Some(Member::Rtp(l)) if !self.streams.contains_key(&id) => {
                Some(l).filter(|l| l.is_passthrough() && !l.records_packets())
            }
            _ => None,
        };
        let (receiving, sending) = (plain(from)?, plain(to)?);
        let (in_ssrc, seq_offset, ts_offset) = sending.rebase()?;
        Some(Offload {
            from,
            to,
            in_pt: receiving.config().payload_type.get(),
            out_pt: sending.config().payload_type.get(),
            in_ssrc,
            out_ssrc: sending.config().ssrc.0,
            seq_offset,
            ts_offset,
            clock_rate: receiving.config().codec.rtp_clock_rate(),
        })
    }

    /// End the offloaded directions of `leg` and its bridge peer that may no
    /// longer be carried (the bridge left passthrough, or a leg records).
    pub(super) fn check_offloads(&mut self, leg: LegId) {
        let peer = self.routes.get(&leg).map(|r| r.peer);
        for from in [Some(leg), peer].into_iter().flatten() {
            let Some(offload) = self.offloads.get(&from) else { continue };
            if self.offload_of(from, offload.to).is_none() {
                self.offloads.remove(&from);
                self.outputs.push_back(EngineOutput::OffloadEnded { from });
            }
        }
    }

    /// End every offloaded direction into or out of `leg` (leaving passthrough).
    pub(super) fn end_offloads(&mut self, leg: LegId) {
        if self.offloads.is_empty() {
            return;
        }
        let ended: Vec<LegId> =
            self.offloads.values().filter(|o| o.from == leg || o.to == leg).map(|o| o.from).collect();
        for from in ended {
            self.offloads.remove(&from);
            self.outputs.push_back(EngineOutput::OffloadEnded { from });
        }
    }

    /// What the kernel forwarded of the direction from `from` to `to` since the
    /// last report: the receiving leg counts it as received (and takes the
    /// kernel's jitter), the sending leg as sent, going on after the newest.
    /// Either leg may be gone already.
    pub fn handle_offloaded(&mut self, now: Instant, offload: &Offload, relayed: Relayed) {
        let Relayed { packets, bytes, last_sent, jitter_q4 } = relayed;
        let highest = last_sent.map(|(seq, _)| (offload.in_ssrc, seq.wrapping_sub(offload.seq_offset)));
        if let Some(Member::Rtp(l)) = self.legs.get_mut(&offload.from) {
            l.credit_received(now, packets, bytes, highest, jitter_q4);
        }
        if let Some(Member::Rtp(l)) = self.legs.get_mut(&offload.to) {
            l.credit_sent(packets, bytes, last_sent);
        }
        self.passed_through += packets;
    }
}
