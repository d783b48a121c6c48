//! How browsers reach Bond's WebRTC port: at its addresses over UDP and, for a
//! browser whose firewall lets no UDP through, over TCP at the same addresses
//! (ICE-TCP, RFC 6544: Bond's candidates are passive, the browser connects).
//! On TCP each STUN, DTLS or SRTP packet is framed by a 16-bit length
//! (RFC 4571); [`Deframer`] takes a connection's bytes apart, I/O-free.

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use str0m::net::{Protocol, TcpType};
use str0m::Candidate;

/// The transport a packet came over or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub(super) fn protocol(self) -> Protocol {
        match self {
            Self::Udp => Protocol::Udp,
            Self::Tcp => Protocol::Tcp,
        }
    }

    pub(super) fn of(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Udp => Self::Udp,
            _ => Self::Tcp,
        }
    }
}

/// The addresses a new leg announces, over UDP and, with `tcp`, over TCP too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCandidates {
    pub addrs: Vec<SocketAddr>,
    pub tcp: bool,
}

impl HostCandidates {
    /// `addrs` over UDP only.
    pub fn udp(addrs: Vec<SocketAddr>) -> Self {
        Self { addrs, tcp: false }
    }

    /// str0m's candidates for them: each address over UDP, then (with `tcp`)
    /// each as a passive TCP candidate.
    pub(super) fn candidates(&self) -> Result<Vec<Candidate>, String> {
        let udp = self.addrs.iter().map(|&a| Candidate::host(a, "udp").map_err(|e| format!("{a}: {e}")));
        let tcp = self.addrs.iter().filter(|_| self.tcp).map(|&a| {
            let passive = Candidate::builder().tcp().host(a).tcptype(TcpType::Passive);
            passive.build().map_err(|e| format!("{a} (tcp): {e}"))
        });
        udp.chain(tcp).collect()
    }
}

/// The largest packet a frame's 16-bit length can carry.
pub const MAX_FRAMED: usize = u16::MAX as usize;

/// `packet` with its RFC 4571 length in front; `None` when it is too long.
pub fn frame(packet: &[u8]) -> Option<Bytes> {
    let length = u16::try_from(packet.len()).ok()?;
    let mut framed = BytesMut::with_capacity(2 + packet.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(packet);
    Some(framed.freeze())
}

/// A TCP connection's bytes in, whole packets out.
#[derive(Debug, Default)]
pub struct Deframer {
    buffer: BytesMut,
}

impl Deframer {
    /// Bytes as they were read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole packet, if its bytes are all in.
    pub fn next_packet(&mut self) -> Option<Bytes> {
        let length = usize::from(u16::from_be_bytes([*self.buffer.first()?, *self.buffer.get(1)?]));
        if self.buffer.len() < 2 + length {
            return None;
        }
        self.buffer.advance(2);
        Some(self.buffer.split_to(length).freeze())
    }

    /// Bytes held for a packet not complete yet.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_come_out_whole_however_the_bytes_are_split() {
        let stream: Vec<u8> =
            [b"stun".as_slice(), b"", b"dtls record"].iter().flat_map(|p| frame(p).unwrap()).collect();
        for cut in 0..stream.len() {
            let mut deframer = Deframer::default();
            let mut out = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                deframer.push(part);
                out.extend(std::iter::from_fn(|| deframer.next_packet()));
            }
            assert_eq!(out, [b"stun".as_slice(), b"", b"dtls record"], "cut at {cut}");
            assert_eq!(deframer.pending(), 0);
        }
    }

    #[test]
    fn a_packet_too_long_for_a_frame_is_refused() {
        assert!(frame(&vec![0; MAX_FRAMED]).is_some());
        assert!(frame(&vec![0; MAX_FRAMED + 1]).is_none());
    }

    #[test]
    fn tcp_candidates_are_passive_and_follow_the_udp_ones() {
        let addr: SocketAddr = "192.0.2.1:50000".parse().unwrap();
        let reach = HostCandidates { addrs: vec![addr], tcp: true };
        let candidates = reach.candidates().unwrap();
        let lines: Vec<String> = candidates.iter().map(Candidate::to_sdp_string).collect();
        assert!(lines[0].contains(" udp ") && lines[0].contains("192.0.2.1 50000 typ host"), "{lines:?}");
        assert!(lines[1].contains(" tcp ") && lines[1].ends_with("tcptype passive"), "{lines:?}");
        assert_eq!(HostCandidates::udp(vec![addr]).candidates().unwrap().len(), 1);
    }
}
