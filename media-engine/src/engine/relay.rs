//! What crosses between engines when a bridge joins legs of two of them.
//!
//! The runtime runs one engine per core, and the control plane may bridge any
//! two legs. Each engine then holds one direction of the bridge (a remote
//! [`Route`](super::bridge::Route)): what its leg's party says is converted to the
//! peer's rate as in a local bridge and leaves as a [`Relay::Frame`]; the driver
//! hands it to the peer's engine, which plays it to the peer. Digits and the end
//! of the bridge cross the same way. A relay for a bridge that no longer stands
//! is refused, so frames in flight when a bridge comes apart go nowhere.

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::AudioFrame;

use crate::ids::LegId;

#[derive(Debug)]
pub enum Relay {
    /// What `from`'s party said, at `to`'s rate, for `to`'s party.
    Frame { from: LegId, to: LegId, frame: Box<AudioFrame> },
    /// A digit `from` received as RFC 4733 or signalled, to be played to `to`.
    Dtmf { from: LegId, to: LegId, digit: DtmfDigit },
    /// `from` left the bridge (unbridged or ended): `to` leaves it too.
    Unbridge { from: LegId, to: LegId },
}

impl Relay {
    /// The leg (in another engine) the relay is for.
    pub fn to(&self) -> LegId {
        match self {
            Self::Frame { to, .. } | Self::Dtmf { to, .. } | Self::Unbridge { to, .. } => *to,
        }
    }
}
