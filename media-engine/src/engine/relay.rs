//! What crosses between engines when a bridge joins legs of two of them.
//!
//! The runtime runs one engine per core, and the control plane may bridge any
//! two legs. Each engine then holds one direction of the bridge (a remote
//! [`Route`](super::bridge::Route)): what its leg's party says is converted to the
//! peer's rate as in a local bridge and leaves as a [`Relay::Frame`]; the driver
//! hands it to the peer's engine, which plays it to the peer. Digits and the end
//! of the bridge cross the same way. A relay for a bridge that no longer stands
//! is refused, so frames in flight when a bridge comes apart go nowhere.
//!
//! Such a bridge passes packets through too (`passthrough.rs`): each engine
//! tells the other whether its leg may, and with what codec and packet time
//! ([`Relay::Passthrough`], sent when that changes), and a leg passes through
//! while both may with the same. Each side switches when it learns of the
//! other, so for the one relay's flight a packet or frame may meet a leg that
//! has not switched yet: it is dropped. Such a relay also makes its engine
//! tell its offer again and ask for the other's, so the two agree again even
//! if an offer was lost (a full relay queue drops relays). A half's first offer
//! asks for the other's too: the runtime joins the halves one after the other,
//! and an offer reaching a leg before its half exists is refused. An echo in
//! another engine than its peer answers the peer's offer with the same codec
//! and packet time, marked as an echo, and the peer's engine reflects.

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::{AudioFrame, Codec};
use bytes::Bytes;

use crate::ids::LegId;
use crate::leg::Forwarded;

#[derive(Debug)]
pub enum Relay {
    /// What `from`'s party said, at `to`'s rate, for `to`'s party.
    Frame { from: LegId, to: LegId, frame: AudioFrame },
    /// A packet `from` received while passing through, for `to` to send on.
    Packet { from: LegId, to: LegId, packet: Box<RelayedPacket> },
    /// Whether `from` may pass packets through now, and how; with `ask`, `to`'s
    /// engine is to tell its own again.
    Passthrough { from: LegId, to: LegId, offer: Option<PassOffer>, ask: bool },
    /// A digit `from` received as RFC 4733 or signalled, to be played to `to`.
    Dtmf { from: LegId, to: LegId, digit: DtmfDigit },
    /// `from` left the bridge (unbridged or ended): `to` leaves it too.
    Unbridge { from: LegId, to: LegId },
}

impl Relay {
    /// The leg (in another engine) the relay is for, and the one it came from.
    pub fn ends(&self) -> (LegId, LegId) {
        match self {
            Self::Frame { from, to, .. }
            | Self::Packet { from, to, .. }
            | Self::Passthrough { from, to, .. }
            | Self::Dtmf { from, to, .. }
            | Self::Unbridge { from, to } => (*to, *from),
        }
    }

    /// The leg (in another engine) the relay is for.
    pub fn to(&self) -> LegId {
        self.ends().0
    }
}

/// What a leg passing through needs of its peer: the same codec and packet
/// time; whether telephone-events can go to it (a carrier stream and a browser
/// take none); and whether what it passes on comes out of a stream's pacer, in
/// order. An idle `loop:echo` offers its peer's own codec and packet time back
/// with `echo`: the peer's engine then sends each packet back out of the leg it
/// came in on, and nothing crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassOffer {
    pub codec: Codec,
    pub packet_ms: u32,
    pub takes_events: bool,
    pub paced: bool,
    pub echo: bool,
}

impl PassOffer {
    /// Whether two legs offering these may pass through to each other.
    pub fn matches(&self, other: &Self) -> bool {
        (self.codec, self.packet_ms) == (other.codec, other.packet_ms)
    }
}

/// A [`Forwarded`] packet that owns its payload, to cross to another engine.
#[derive(Debug, Clone)]
pub struct RelayedPacket {
    pub event: bool,
    pub marker: bool,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload: Bytes,
}

impl RelayedPacket {
    pub fn new(packet: &Forwarded<'_>) -> Self {
        Self {
            event: packet.event,
            marker: packet.marker,
            ssrc: packet.ssrc,
            seq: packet.seq,
            timestamp: packet.timestamp,
            payload: Bytes::copy_from_slice(packet.payload),
        }
    }

    pub fn forwarded(&self) -> Forwarded<'_> {
        Forwarded {
            event: self.event,
            marker: self.marker,
            ssrc: self.ssrc,
            seq: self.seq,
            timestamp: self.timestamp,
            payload: &self.payload,
        }
    }
}
