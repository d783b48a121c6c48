//! Reader tasks for each leg's RTCP socket, which a driver does not read itself
//! (see `socket_set.rs` for the RTP sockets it does, and `webrtc_socket.rs` for
//! the shared WebRTC port). A reader forwards what arrives over its driver's
//! bounded datagram channel; when that is full the datagram is dropped and counted.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::webrtc::Transport;

use super::driver::Datagram;
use super::handle::RuntimeMetrics;
use crate::ids::LegId;
use crate::rtp::MAX_RTP_PACKET;

/// Read `leg`'s datagrams and send them to its driver.
pub(super) async fn read_socket(
    socket: Arc<UdpSocket>,
    leg: LegId,
    driver: mpsc::Sender<Datagram>,
    metrics: Arc<RuntimeMetrics>,
) {
    // RTCP comes a few packets a minute: one packet's room at a time.
    let mut buf = BytesMut::with_capacity(MAX_RTP_PACKET);
    loop {
        // Received into the slab's spare room as it is (no zeroing first).
        buf.clear();
        if buf.capacity() < MAX_RTP_PACKET {
            buf.reserve(MAX_RTP_PACKET);
        }
        let from = match socket.recv_buf_from(&mut buf).await {
            Ok((_, from)) => from,
            // ICMP port unreachable and the like: keep listening.
            Err(_) => continue,
        };
        let datagram = buf.split().freeze();
        match driver.try_send((leg, Transport::Udp, from, None, datagram)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => RuntimeMetrics::add(&metrics.packets_dropped, 1),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
