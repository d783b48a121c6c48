//! Datagrams through the driver's own sockets: reading the RTP sockets that
//! woke, checking a datagram's source and SRTP before the engine sees it,
//! latching the peer's address (symmetric RTP), and sending what the engine
//! outputs without ever waiting on a socket.

use std::net::SocketAddr;

use super::{Driver, RuntimeMetrics, WEBRTC_PORT};
use crate::ids::LegId;
use crate::runtime::leg_socket::{Packet, Sent};
use crate::runtime::now;
use crate::webrtc::{stun, Transport};

impl Driver {
    pub(super) fn receive(
        &mut self,
        leg: LegId,
        transport: Transport,
        from: SocketAddr,
        to: Option<SocketAddr>,
        data: &[u8],
    ) {
        let metrics = &self.shared.metrics;
        RuntimeMetrics::add(&metrics.packets_received, 1);
        if leg == WEBRTC_PORT {
            let Some(port) = &self.shared.webrtc else { return };
            match self.engine.handle_webrtc_datagram(now(), transport, from, to.unwrap_or(port.local), data) {
                // An accepted check: the leg's media will come from there too.
                Ok(id) if stun::is_stun(data) => self.shared.webrtc_routes.learn_peer(from, id),
                Ok(_) => {}
                Err(e) => {
                    RuntimeMetrics::add(&metrics.packets_rejected, 1);
                    tracing::trace!(%from, error = %e, "WebRTC datagram refused");
                }
            }
            return;
        }
        if self.shared.config.strict_source && self.sockets.get(&leg).is_some_and(|s| s.refuses(from, data)) {
            RuntimeMetrics::add(&metrics.packets_rejected, 1);
            tracing::trace!(%leg, %from, "datagram from another address than the latched peer");
            return;
        }
        let opened = self.sockets.get_mut(&leg).map_or(Ok(Packet::AsItCame(data)), |s| s.open(data));
        let data = match &opened {
            Ok(data) => &data[..],
            // A bad tag, a replay or plain RTP: never decoded, never latched onto.
            Err(e) => {
                RuntimeMetrics::add(&metrics.packets_rejected, 1);
                RuntimeMetrics::add(&metrics.srtp_rejected, 1);
                tracing::trace!(%leg, %from, error = %e, "SRTP packet refused");
                return;
            }
        };
        if let Err(e) = self.engine.handle_receive(now(), leg, data) {
            RuntimeMetrics::add(&metrics.packets_rejected, 1);
            tracing::trace!(%leg, %from, error = %e, "datagram refused");
            return;
        }
        // Symmetric RTP: answer where the first accepted packet came from, whatever
        // the SDP said (a peer behind NAT does not know its public address). RTCP
        // latches the RTCP address the same way.
        if let Some(socket) = self.sockets.get_mut(&leg) {
            if crate::rtp::rtcp::is_rtcp(data) {
                if let Some(rtcp) = socket.rtcp.as_mut().filter(|r| r.remote.is_none()) {
                    rtcp.remote = Some(from);
                }
            } else if !socket.latched {
                socket.remote = Some(from);
                socket.latched = true;
                self.reroute_offloads(leg);
            }
        }
    }

    /// Read every RTP socket that has woken until it would block. What a
    /// socket's packets produce leaves before the next socket is read, so the
    /// first packet of a large batch does not wait for the last.
    pub(super) fn read_rtp_sockets(&mut self) {
        let ready = self.rtp_sockets.take_ready();
        let mut buf = std::mem::take(&mut self.rtp_buf);
        for &place in &ready {
            while let Some((leg, from, len)) = self.rtp_sockets.recv(place, &mut buf) {
                self.receive(leg, Transport::Udp, from, None, &buf[..len]);
            }
            self.flush();
        }
        self.rtp_buf = buf;
        self.rtp_sockets.give_back(ready);
    }

    pub(super) fn transmit(&mut self, leg: LegId, data: &[u8]) {
        let Some(socket) = self.sockets.get_mut(&leg) else { return };
        match socket.send_rtp(data) {
            Sent::Yes => RuntimeMetrics::add(&self.shared.metrics.packets_sent, 1),
            Sent::Dropped => RuntimeMetrics::add(&self.shared.metrics.packets_dropped, 1),
            Sent::Nowhere => {}
        }
    }

    pub(super) fn transmit_rtcp(&mut self, leg: LegId, data: &[u8]) {
        let Some(socket) = self.sockets.get_mut(&leg) else { return };
        if socket.send_rtcp(data) == Sent::Dropped {
            RuntimeMetrics::add(&self.shared.metrics.packets_dropped, 1);
        }
    }
}
