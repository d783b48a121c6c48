//! A leg's sockets: an RTP port of the range, and the RTCP port beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::{RuntimeError, Shared};

/// Tries at most this many ports of the range for one leg.
const PORT_TRIES: usize = 16;

/// A port of the range and its socket. A port another program holds is skipped
/// (the allocator moves on round the range), up to [`PORT_TRIES`] of them.
pub(super) async fn bind_rtp_port(shared: Arc<Shared>) -> Result<(u16, Arc<UdpSocket>), RuntimeError> {
    let mut refused = String::new();
    for _ in 0..PORT_TRIES {
        let port = shared.ports().allocate().ok_or(RuntimeError::NoPorts)?;
        match UdpSocket::bind(SocketAddr::new(shared.config.bind_ip, port)).await {
            Ok(socket) => return Ok((port, Arc::new(socket))),
            Err(e) => {
                shared.ports().release(port);
                refused = format!("port {port}: {e}");
            }
        }
    }
    Err(RuntimeError::Socket(format!("{PORT_TRIES} ports refused, the last {refused}")))
}

/// The RTCP socket beside an RTP port; without it the leg goes without RTCP.
pub(super) async fn rtcp_socket(ip: std::net::IpAddr, rtp_port: u16) -> Option<Arc<UdpSocket>> {
    let port = rtp_port.checked_add(1)?;
    match UdpSocket::bind(SocketAddr::new(ip, port)).await {
        Ok(socket) => Some(Arc::new(socket)),
        Err(e) => {
            tracing::debug!(port, error = %e, "no RTCP port: the leg goes without RTCP");
            None
        }
    }
}
