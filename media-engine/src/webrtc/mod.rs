//! Browser legs: WebRTC (ICE, DTLS-SRTP, RTCP) by str0m, which is I/O-free like
//! the rest of the core. Every WebRTC leg shares one UDP port (and, for
//! browsers that cannot send UDP, a TCP listener on the same port: [`reach`]); the engine routes
//! a datagram to its leg by the ICE username fragment of a STUN request
//! ([`stun`]), then by the address those requests came from.

mod leg;
pub mod reach;
pub mod stun;

pub use leg::{WebRtcAnswer, WebRtcLeg, WebRtcOptions, CONNECT_TIMEOUT, DEFAULT_CODECS};
pub use reach::{HostCandidates, Transport};
pub use str0m::IceCreds;
