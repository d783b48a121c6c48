//! The tokio runtime layer: the only part of the engine that touches sockets,
//! tasks or the clock.
//!
//! One driver task owns an [`Engine`](crate::Engine) and every leg's UDP socket.
//! Each socket has a small reader task that forwards datagrams to the driver
//! over a bounded channel (a full channel drops and counts). The driver loop:
//!
//! 1. wait for a command, a datagram, or the engine's next deadline;
//! 2. hand it to the engine with `now` read from tokio's clock;
//! 3. drain the engine's outputs: send datagrams with `try_send_to` (never
//!    awaiting a slow socket), publish events on a broadcast channel.
//!
//! The control plane talks to it through a cloneable [`EngineHandle`].

mod driver;
mod handle;
mod ports;
mod recorder;

pub use crate::webrtc::{IceCreds, WebRtcAnswer};
pub use handle::{
    EngineHandle, LegInfo, LegSpec, RuntimeError, RuntimeMetrics, StreamInput, StreamLeg,
    TIMER_LATENESS_BUCKETS_US,
};
pub use ports::PortRange;
pub use recorder::{repair_partials, RecordChannels, RecordingSpec, RecordingSummary};

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

/// How the runtime binds and seeds legs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Address RTP sockets bind to.
    pub bind_ip: IpAddr,
    pub rtp_ports: PortRange,
    pub seed: u64,
    /// The one UDP port every WebRTC leg shares; `None`: no WebRTC legs.
    pub webrtc: Option<WebRtcPort>,
    /// How legs encode Opus.
    pub opus: bond_codecs::opus_codec::OpusConfig,
}

/// The shared WebRTC port, bound by the caller (so a taken port fails at start-up).
#[derive(Debug, Clone)]
pub struct WebRtcPort {
    pub socket: Arc<UdpSocket>,
    /// The address in Bond's ICE candidate: the socket's own, or this IP with the
    /// socket's port (a server behind 1:1 NAT, or bound to 0.0.0.0).
    pub public_ip: Option<IpAddr>,
}

impl WebRtcPort {
    /// The candidate address browsers are told to reach.
    pub fn candidate(&self) -> std::io::Result<SocketAddr> {
        let local = self.socket.local_addr()?;
        match self.public_ip {
            Some(ip) => Ok(SocketAddr::new(ip, local.port())),
            None if local.ip().is_unspecified() => Err(std::io::Error::other(
                "the WebRTC port is bound to an unspecified address: set a public IP for candidates",
            )),
            None => Ok(local),
        }
    }
}

/// Start the driver task on the current tokio runtime.
pub fn spawn(config: RuntimeConfig) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    driver::spawn(config)
}

/// The runtime's one clock read. `tokio::time::Instant` so paused-time tests drive it.
#[allow(clippy::disallowed_methods)] // the runtime layer owns the clock
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
