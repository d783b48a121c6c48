//! The tokio runtime layer: the only part of the engine that touches sockets,
//! tasks or the clock.
//!
//! The work is split into shards, one per core by default: each is a driver (on
//! a thread of its own with a single-threaded runtime, or with
//! `driver_threads` off a task on the caller's runtime) that owns an [`Engine`](crate::Engine) and the UDP sockets of that engine's
//! legs. A leg's id names its shard (shard `k` of `n` numbers legs `k+1`,
//! `k+1+n`, ...), so the [`EngineHandle`] sends each command straight to the
//! right driver; new legs go to the shard holding the fewest, or next to a leg
//! they will be bridged with. A bridge between legs of two shards is held half
//! by each engine, which relay frames to each other over bounded queues.
//!
//! A driver reads its legs' RTP and RTCP sockets itself: each socket's waker
//! puts it on the driver's ready list, and the driver reads the sockets on it
//! until they would block (`socket_set.rs`). The shared WebRTC port has a
//! reader task that forwards datagrams over a bounded channel (a full channel
//! drops and counts), picking the driver by ICE ufrag or peer address (see
//! `webrtc_routes.rs`). Each driver loops:
//!
//! 1. wait for a command, a readable socket, a datagram, or the engine's next deadline;
//! 2. hand it to the engine with `now` read from tokio's clock;
//! 3. drain the engine's outputs: send datagrams with `try_send_to` (never
//!    awaiting a slow socket), relay bridge frames to other shards, publish
//!    events on a broadcast channel (one for all shards).
//!
//! The control plane talks to it through a cloneable [`EngineHandle`].

mod bridging;
mod conference;
mod driver;
mod driver_thread;
mod fork;
mod handle;
pub mod kernel_relay;
mod leg_socket;
mod metrics;
mod packet_decode;
mod ports;
mod record_repair;
mod record_rerate;
mod record_timeline;
mod record_writer;
mod recorder;
mod socket_set;
mod webrtc_routes;
mod webrtc_socket;
mod webrtc_tcp;

pub use crate::webrtc::{IceCreds, WebRtcAnswer};
pub use fork::{Fork, ForkTick};
pub use handle::{
    EngineHandle, LegInfo, LegSpec, RuntimeError, RuntimeMetrics, StreamInput, StreamLeg,
    TIMER_LATENESS_BUCKETS_US,
};
pub use ports::PortRange;
pub use record_repair::repair_partials;
pub use recorder::{RecordChannels, RecordingSpec, RecordingSummary};

use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use bond_codecs::signals::SplitMix64;

use crate::ids::LegId;

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
    /// Engines (drivers) to spread legs over; 0: one per available core.
    pub shards: usize,
    /// Bridged SIP and WebRTC legs with the same codec forward packets undecoded (see `leg/passthrough.rs`).
    pub passthrough: bool,
    /// RTP legs send and read RTCP on their port + 1 (see `rtp/rtcp.rs`).
    pub rtcp: bool,
    /// Each shard's driver on a thread of its own, with its own single-threaded
    /// runtime; false: the drivers are tasks on the caller's runtime.
    pub driver_threads: bool,
    /// Once a leg has latched onto its peer's address (symmetric RTP), RTP and
    /// RTCP from any other address are dropped (counted as rejected), as
    /// rtpengine's strict-source does: nobody else can inject audio into a call.
    pub strict_source: bool,
    /// Carry passthrough bridges of plain RTP legs in the kernel (a tc eBPF
    /// program, `kernel_relay.rs`); needs root. Without it, or if it cannot
    /// load, packets pass through in userspace.
    pub kernel_relay: bool,
}

impl RuntimeConfig {
    /// The number of shards to run.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        }
    }
}

/// The shard that holds `leg`, of `shards`.
pub(crate) fn shard_of(leg: LegId, shards: usize) -> usize {
    (leg.0.saturating_sub(1) % shards.max(1) as u64) as usize
}

/// Each shard's engine seed, drawn from Bond's one seed. (Not `seed + k * γ`:
/// γ is SplitMix64's own step, so shard k's draws would be shard 0's from its
/// k-th on, and legs on two shards would share SSRCs, sequence numbers and
/// timestamps.)
pub(crate) fn shard_seeds(seed: u64) -> impl Iterator<Item = u64> {
    let mut seeds = SplitMix64::new(seed);
    std::iter::repeat_with(move || seeds.next_u64())
}

/// The shared WebRTC port, bound by the caller (so a taken port fails at start-up).
#[derive(Debug, Clone)]
pub struct WebRtcPort {
    pub socket: Arc<UdpSocket>,
    /// The one address browsers are told to reach (with the socket's port): a
    /// server behind 1:1 NAT. Unset: the socket's own address, or every
    /// address of the host when it is bound to a wildcard (`webrtc_socket.rs`).
    pub public_ip: Option<IpAddr>,
    /// A TCP listener on the socket's address and port: browsers that cannot
    /// send UDP reach Bond over TCP (ICE-TCP, `webrtc_tcp.rs`). `None`: UDP only.
    pub tcp: Option<Arc<std::net::TcpListener>>,
    /// What browsers are answered with, best first (see [`crate::webrtc::WebRtcOptions`]).
    pub codecs: Vec<bond_codecs::Codec>,
}

/// Start the drivers (see [`RuntimeConfig::driver_threads`]); the task returned
/// ends when they all have.
pub fn spawn(config: RuntimeConfig) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    driver::spawn(config)
}

/// The runtime's one clock read, tokio's (a driver on its own thread reads its own runtime's).
#[allow(clippy::disallowed_methods)] // the runtime layer owns the clock
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Wall-clock time since the Unix epoch (for RTCP's NTP timestamps).
#[allow(clippy::disallowed_methods)] // the runtime layer owns the clock
pub(crate) fn unix_time() -> std::time::Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bond_codecs::Codec;

    use super::shard_seeds;
    use crate::engine::Engine;

    #[test]
    fn legs_on_different_shards_draw_different_ssrcs() {
        let shards = 4;
        let mut engines: Vec<Engine> = shard_seeds(7)
            .take(shards)
            .enumerate()
            .map(|(k, seed)| Engine::with_leg_ids(seed, k as u64 + 1, shards as u64))
            .collect();
        let mut ssrcs = HashSet::new();
        for engine in &mut engines {
            for _ in 0..1_000 {
                assert!(ssrcs.insert(engine.leg_config(Codec::Pcmu).ssrc), "an SSRC drawn twice");
            }
        }
    }
}
