//! Reader tasks for the sockets a driver does not read itself (see
//! `socket_set.rs` for the RTP sockets it does): each leg's RTCP socket, and
//! the shared WebRTC port, whose datagrams go to the driver of the leg they are
//! for. A reader forwards what arrives over its driver's bounded datagram
//! channel; when that is full the datagram is dropped and counted.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::driver::{Datagram, WEBRTC_PORT};
use super::handle::RuntimeMetrics;
use super::shard_of;
use super::webrtc_routes::WebRtcRoutes;
use crate::ids::LegId;
use crate::rtp::MAX_RTP_PACKET;

/// Where a socket's reader sends what arrives.
pub(super) enum Dispatch {
    /// A leg's own socket: everything to its driver, as that leg's.
    Leg(LegId, mpsc::Sender<Datagram>),
    /// The shared WebRTC port: each datagram to the driver of the leg it is for.
    WebRtc { shards: Vec<mpsc::Sender<Datagram>>, routes: Arc<WebRtcRoutes> },
}

impl Dispatch {
    /// The driver queue for a datagram, and the leg id it travels under; `None`: for no leg.
    fn target(&self, from: SocketAddr, datagram: &[u8]) -> Option<(&mpsc::Sender<Datagram>, LegId)> {
        match self {
            Self::Leg(leg, driver) => Some((driver, *leg)),
            // One engine sorts out its own legs (and refuses strangers, counted).
            Self::WebRtc { shards, .. } if shards.len() == 1 => Some((&shards[0], WEBRTC_PORT)),
            Self::WebRtc { shards, routes } => {
                let leg = routes.route(from, datagram)?;
                Some((&shards[shard_of(leg, shards.len())], WEBRTC_PORT))
            }
        }
    }
}

/// Full-size datagrams the WebRTC port's reader receives into one allocation
/// (about 35 G.711 packets; each allocation is freed once its packets are handled).
pub(super) const RTP_SLAB: usize = 4;

/// Read datagrams into slabs of `slab` packets (RTCP, a few a minute, takes 1).
pub(super) async fn read_socket(
    socket: Arc<UdpSocket>,
    to_drivers: Dispatch,
    metrics: Arc<RuntimeMetrics>,
    slab: usize,
) {
    let mut buf = BytesMut::with_capacity(MAX_RTP_PACKET * slab);
    loop {
        // Received into the slab's spare room as it is (no zeroing first).
        buf.clear();
        if buf.capacity() < MAX_RTP_PACKET {
            buf.reserve(MAX_RTP_PACKET * slab);
        }
        let from = match socket.recv_buf_from(&mut buf).await {
            Ok((_, from)) => from,
            // ICMP port unreachable and the like: keep listening.
            Err(_) => continue,
        };
        let Some((driver, leg)) = to_drivers.target(from, &buf) else {
            RuntimeMetrics::add(&metrics.packets_rejected, 1);
            continue;
        };
        let datagram = buf.split().freeze();
        match driver.try_send((leg, from, datagram)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => RuntimeMetrics::add(&metrics.packets_dropped, 1),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
