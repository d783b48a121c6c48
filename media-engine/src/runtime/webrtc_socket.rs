//! The shared WebRTC port: one UDP socket for every browser (and a TCP listener
//! on the same port for browsers that cannot send UDP, `webrtc_tcp.rs`), which
//! addresses it announces, and which local address each datagram arrived at.
//!
//! Bound to a concrete address, the port announces that address. Bound to a
//! wildcard (`0.0.0.0`, the default, or `::`), it announces every address of
//! the host's interfaces (of that family, link-local ones left out, loopback
//! last), read again for each new leg so an address added later is announced
//! too. With a public IP (a server behind 1:1 NAT, or one that should be
//! reached at one address only), it announces that address alone.
//!
//! On a wildcard socket the kernel says which local address a datagram was
//! sent to (`IP_PKTINFO`, through quinn-udp), and replies leave from that same
//! address: a browser that reached Bond at one address of a host with several
//! must get its answers from there, or its ICE checks fail.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::BytesMut;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::driver::{Datagram, WEBRTC_PORT};
use super::handle::RuntimeMetrics;
use super::shard_of;
use super::webrtc_routes::WebRtcRoutes;
use super::webrtc_tcp::{self, TcpPeers};
use crate::rtp::MAX_RTP_PACKET;
use crate::webrtc::{HostCandidates, Transport};

/// The open port, and its reader task (stopped when this is dropped).
pub(super) struct WebRtcSocket {
    socket: Arc<UdpSocket>,
    state: Arc<UdpSocketState>,
    /// The address the socket is bound to (its IP may be a wildcard).
    pub local: SocketAddr,
    public_ip: Option<IpAddr>,
    reader: JoinHandle<()>,
    /// ICE-TCP (`webrtc_tcp.rs`): the connected browsers, and the listener's task.
    tcp: Option<(Arc<TcpPeers>, JoinHandle<()>)>,
}

impl Drop for WebRtcSocket {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some((_, listener)) = &self.tcp {
            listener.abort();
        }
    }
}

impl WebRtcSocket {
    /// Take over `port`'s socket and start reading it, each datagram to the
    /// driver of the leg it is for.
    pub fn open(
        port: &super::WebRtcPort,
        shards: &[mpsc::Sender<Datagram>],
        routes: &Arc<WebRtcRoutes>,
        metrics: &Arc<RuntimeMetrics>,
    ) -> io::Result<Self> {
        let std_socket = port.socket.try_clone()?;
        std_socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(std_socket)?);
        let state = Arc::new(UdpSocketState::new((&*socket).into())?);
        let local = socket.local_addr()?;
        let reader = Reader { shards: shards.to_vec(), routes: routes.clone(), metrics: metrics.clone() };
        let tcp = match &port.tcp {
            Some(listener) => {
                let listener = listener.try_clone()?;
                listener.set_nonblocking(true)?;
                let peers = Arc::new(TcpPeers::default());
                let listener = tokio::net::TcpListener::from_std(listener)?;
                Some((peers.clone(), webrtc_tcp::spawn(listener, reader.clone(), peers)))
            }
            None => None,
        };
        let reader = tokio::spawn(reader.run(socket.clone(), state.clone(), local.port()));
        let opened = Self { socket, state, local, public_ip: port.public_ip, reader, tcp };
        let announced = opened.candidates();
        if announced.addrs.is_empty() {
            return Err(io::Error::other(format!(
                "the WebRTC port {local} has no address to announce: set webrtc.public_ip"
            )));
        }
        tracing::info!(%local, ?announced, "WebRTC port open");
        Ok(opened)
    }

    /// The addresses a new leg announces (see the module docs), over TCP too
    /// when the port takes TCP.
    pub fn candidates(&self) -> HostCandidates {
        HostCandidates { addrs: self.addresses(), tcp: self.tcp.is_some() }
    }

    fn addresses(&self) -> Vec<SocketAddr> {
        let port = self.local.port();
        if let Some(ip) = self.public_ip {
            return vec![SocketAddr::new(ip, port)];
        }
        if !self.local.ip().is_unspecified() {
            return vec![self.local];
        }
        interface_ips(self.local.is_ipv6()).into_iter().map(|ip| SocketAddr::new(ip, port)).collect()
    }

    /// Send `data` to `to` over `transport`: down `to`'s TCP connection, or
    /// as a datagram (see [`WebRtcSocket::send_datagram`]). `false`: a TCP
    /// peer with no connection to send on (see [`TcpPeers::send`]).
    pub fn send(
        &self,
        transport: Transport,
        from: Option<IpAddr>,
        to: SocketAddr,
        data: &[u8],
    ) -> io::Result<bool> {
        match (transport, &self.tcp) {
            (Transport::Tcp, Some((peers, _))) => peers.send(to, data),
            (Transport::Tcp, None) => Ok(false),
            (Transport::Udp, _) => self.send_datagram(from, to, data).map(|()| true),
        }
    }

    /// Send `data` to `to`, from local address `from` when the leg gave one
    /// and the socket is bound to a wildcard (else from the socket's address).
    fn send_datagram(&self, from: Option<IpAddr>, to: SocketAddr, data: &[u8]) -> io::Result<()> {
        let src_ip = from.filter(|_| self.local.ip().is_unspecified());
        let transmit = Transmit { destination: to, ecn: None, contents: data, segment_size: None, src_ip };
        self.socket.try_io(Interest::WRITABLE, || self.state.try_send((&*self.socket).into(), &transmit))
    }
}

/// The host's addresses a wildcard socket of that family takes datagrams on,
/// loopback last; link-local addresses (which need a scope) are left out.
fn interface_ips(v6: bool) -> Vec<IpAddr> {
    let interfaces = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the host's addresses for WebRTC candidates");
            return Vec::new();
        }
    };
    let mut ips: Vec<IpAddr> = interfaces
        .iter()
        .filter(|i| !i.is_link_local())
        .map(if_addrs::Interface::ip)
        .filter(|ip| ip.is_ipv6() == v6 && !ip.is_unspecified() && !ip.is_multicast())
        .collect();
    ips.sort_by_key(IpAddr::is_loopback);
    ips.dedup();
    ips
}

/// Reads the port and hands each datagram to its leg's driver (the TCP
/// connections hand theirs through a clone).
#[derive(Clone)]
pub(super) struct Reader {
    shards: Vec<mpsc::Sender<Datagram>>,
    routes: Arc<WebRtcRoutes>,
    metrics: Arc<RuntimeMetrics>,
}

/// What one read may bring (GRO joins datagrams of one sender into one read).
const READ_BUFFER: usize = 64 * 1024;

/// Full-size datagrams copied into one allocation (about 35 G.711 packets;
/// each allocation is freed once its packets are handled).
const SLAB: usize = 4;

impl Reader {
    async fn run(self, socket: Arc<UdpSocket>, state: Arc<UdpSocketState>, port: u16) {
        let mut buf = vec![0; READ_BUFFER];
        let mut slab = BytesMut::new();
        loop {
            if socket.readable().await.is_err() {
                return;
            }
            let mut meta = [RecvMeta::default()];
            let read = socket.try_io(Interest::READABLE, || {
                let mut bufs = [IoSliceMut::new(&mut buf)];
                state.recv((&*socket).into(), &mut bufs, &mut meta)
            });
            // Would block (a spurious wake-up), or ICMP port unreachable and the like: keep listening.
            if read.is_err() {
                continue;
            }
            let [meta] = meta;
            let to = meta.dst_ip.map(|ip| SocketAddr::new(ip, port));
            for datagram in buf[..meta.len].chunks(meta.stride.max(1)) {
                if slab.capacity() < datagram.len() {
                    slab.reserve(MAX_RTP_PACKET * SLAB);
                }
                slab.extend_from_slice(datagram);
                let data = slab.split().freeze();
                if !self.dispatch(Transport::Udp, meta.addr, to, data) {
                    return;
                }
            }
        }
    }

    /// Hand a packet to its driver; false once the drivers are gone.
    pub(super) fn dispatch(
        &self,
        transport: Transport,
        from: SocketAddr,
        to: Option<SocketAddr>,
        data: bytes::Bytes,
    ) -> bool {
        // One engine sorts out its own legs (and refuses strangers, counted).
        let shard = match self.shards.len() {
            1 => 0,
            n => match self.routes.route(from, &data) {
                Some(leg) => shard_of(leg, n),
                None => {
                    RuntimeMetrics::add(&self.metrics.packets_rejected, 1);
                    return true;
                }
            },
        };
        match self.shards[shard].try_send((WEBRTC_PORT, transport, from, to, data)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                RuntimeMetrics::add(&self.metrics.packets_dropped, 1);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_addresses_are_of_one_family_with_loopback_last() {
        for v6 in [false, true] {
            let ips = interface_ips(v6);
            assert!(ips.iter().all(|ip| ip.is_ipv6() == v6), "{ips:?}");
            let first_loopback = ips.iter().position(IpAddr::is_loopback).unwrap_or(ips.len());
            assert!(ips[first_loopback..].iter().all(IpAddr::is_loopback), "{ips:?}");
        }
        // Every Linux host has an IPv4 loopback address.
        assert!(interface_ips(false).contains(&IpAddr::from([127, 0, 0, 1])));
    }
}
