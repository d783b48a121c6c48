//! A SIP leg's sockets in its driver: RTP (and RTCP on the port above, or
//! multiplexed), the peer's addresses (symmetric RTP, strict source), and SRTP:
//! what the leg sends is protected here and what it receives checked and
//! decrypted here, so the engine only ever sees plain RTP.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;

use crate::ids::LegId;
use crate::leg::Srtp;
use crate::rtp::srtp::{SrtpError, SrtpSession};

pub(super) struct LegSocket {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) port: u16,
    pub(super) remote: Option<SocketAddr>,
    /// Whether `remote` was taken from a received packet (symmetric RTP).
    pub(super) latched: bool,
    /// The socket's place in the driver's [`SocketSet`].
    pub(super) place: usize,
    /// RTCP on the next port up, when it could be bound.
    pub(super) rtcp: Option<RtcpSocket>,
    /// RTCP is sent from the RTP socket to `remote` (RFC 5761).
    pub(super) rtcp_mux: bool,
    /// SRTP/SRTCP on both sockets.
    pub(super) srtp: SocketSrtp,
}

/// What SRTP does to a leg socket's packets.
pub(super) enum SocketSrtp {
    /// Plain RTP both ways.
    Off,
    /// SRTP with no usable keys (none agreed yet, or keys refused): nothing
    /// is taken in, nothing goes out in the clear.
    Closed,
    On(Box<SrtpSession>),
}

/// A leg's RTCP port (RTP port + 1), read by the driver beside the RTP
/// socket. What arrives takes the RTP path: the engine tells RTCP from RTP by
/// its packet type (RFC 5761).
pub(super) struct RtcpSocket {
    pub(super) socket: Arc<UdpSocket>,
    /// Where the peer's RTCP came from; until then its RTP address's port + 1.
    pub(super) remote: Option<SocketAddr>,
    /// The socket's place in the driver's [`SocketSet`](super::socket_set::SocketSet).
    pub(super) place: usize,
}

impl LegSocket {
    /// Take SRTP on or off, or new keys, as `keys` says; the session (its
    /// rollover counters and replay windows) is kept while the keys are.
    pub(super) fn set_srtp(&mut self, leg: LegId, srtp: Srtp) {
        self.srtp = match (srtp, &self.srtp) {
            (Srtp::Off, _) => SocketSrtp::Off,
            (Srtp::Awaiting, _) => SocketSrtp::Closed,
            (Srtp::On(keys), SocketSrtp::On(session)) if session.has_keys(&keys.local, &keys.remote) => {
                return
            }
            (Srtp::On(keys), _) => match SrtpSession::new(&keys.local, &keys.remote) {
                Ok(session) => SocketSrtp::On(Box::new(session)),
                Err(e) => {
                    tracing::warn!(%leg, error = %e, "SRTP keys refused");
                    SocketSrtp::Closed
                }
            },
        };
    }

    /// Whether strict source drops a datagram from `from`: RTP once the leg has
    /// latched onto another address; RTCP once its sender is known (the RTCP
    /// port's latch, or with rtcp-mux the RTP one).
    pub(super) fn refuses(&self, from: SocketAddr, data: &[u8]) -> bool {
        let rtp_peer = self.remote.filter(|_| self.latched);
        let expected = match &self.rtcp {
            Some(rtcp) if !self.rtcp_mux && crate::rtp::rtcp::is_rtcp(data) => rtcp.remote,
            _ => rtp_peer,
        };
        expected.is_some_and(|peer| peer != from)
    }

    fn rtcp_remote(&self) -> Option<SocketAddr> {
        let rtcp = self.rtcp.as_ref()?;
        rtcp.remote.or_else(|| self.remote.map(|r| SocketAddr::new(r.ip(), r.port().wrapping_add(1))))
    }

    /// A datagram from the peer as the engine takes it: checked and
    /// decrypted when the leg is SRTP, else as it came.
    pub(super) fn open<'a>(&mut self, data: &'a [u8]) -> Result<Packet<'a>, SrtpError> {
        match &mut self.srtp {
            SocketSrtp::Off => Ok(Packet::AsItCame(data)),
            SocketSrtp::Closed => Err(SrtpError::no_keys_yet()),
            SocketSrtp::On(srtp) => srtp.unprotect(data).map(Packet::Changed),
        }
    }

    /// An RTP packet out to the peer, protected when the leg is SRTP.
    pub(super) fn send_rtp(&mut self, data: &[u8]) -> Sent {
        let Some(remote) = self.remote else { return Sent::Nowhere };
        let Ok(data) = protect(&mut self.srtp, data) else { return Sent::Dropped };
        match self.socket.try_send_to(&data, remote) {
            Ok(_) => Sent::Yes,
            Err(_) => Sent::Dropped,
        }
    }

    /// An RTCP packet out to the peer: from the RTP port with rtcp-mux, else
    /// from the port above to the peer's RTCP address; SRTCP when the leg is SRTP.
    pub(super) fn send_rtcp(&mut self, data: &[u8]) -> Sent {
        let sending = if self.rtcp_mux {
            self.remote.map(|remote| (&self.socket, remote))
        } else {
            self.rtcp.as_ref().zip(self.rtcp_remote()).map(|(rtcp, remote)| (&rtcp.socket, remote))
        };
        let Some((socket, remote)) = sending else { return Sent::Nowhere };
        let socket = socket.clone();
        let Ok(data) = protect(&mut self.srtp, data) else { return Sent::Dropped };
        match socket.try_send_to(&data, remote) {
            Ok(_) => Sent::Yes,
            Err(_) => Sent::Dropped,
        }
    }
}

/// What became of a packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    Yes,
    /// The socket would block, or SRTP could not protect it.
    Dropped,
    /// No peer address yet.
    Nowhere,
}

/// A packet as it came, or as SRTP made it (protected, or checked and decrypted).
pub(super) enum Packet<'a> {
    AsItCame(&'a [u8]),
    Changed(Bytes),
}

impl std::ops::Deref for Packet<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::AsItCame(data) => data,
            Self::Changed(data) => data,
        }
    }
}

fn protect<'a>(srtp: &mut SocketSrtp, data: &'a [u8]) -> Result<Packet<'a>, SrtpError> {
    match srtp {
        SocketSrtp::Off => Ok(Packet::AsItCame(data)),
        SocketSrtp::Closed => Err(SrtpError::no_keys_yet()),
        SocketSrtp::On(srtp) => srtp.protect(data).map(Packet::Changed),
    }
}
