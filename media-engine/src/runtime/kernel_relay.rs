//! The in-kernel passthrough relay: `bpf/relay.bpf.c`, compiled by `build.rs`
//! and attached with aya to the tc ingress of network interfaces (as TCX, so
//! it comes off when this is dropped). For each routed relay port it rewrites
//! the bridged peer's RTP as a passthrough leg would in userspace (addresses
//! and ports, payload type, SSRC, sequence number and timestamp moved by fixed
//! offsets, checksums updated) and sends it on: up the stack to a peer on this
//! host, or out of the interface that reaches a peer on another. What a route
//! does not cover (RTCP, telephone-events, another sender or SSRC) reaches the
//! relay port's socket as before.
//!
//! Needs root (CAP_BPF and CAP_NET_ADMIN). The drivers use it through
//! `driver/offload.rs`; the load tests measure it on its own.

use std::net::{Ipv4Addr, SocketAddrV4};

use aya::maps::{HashMap, MapData};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::Ebpf;

/// The compiled program (empty when clang was missing at build time).
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/relay.bpf.o"));
const KEY: usize = 8;
const ROUTE: usize = 56;
const COUNTS: usize = 40;
/// Where `closed` sits in `struct route`.
const CLOSED: usize = 44;
/// The map update flag that writes a value under its `bpf_spin_lock`.
const BPF_F_LOCK: u64 = 4;

/// Where a routed packet goes, and how its RTP header is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The only source accepted; others pass to the relay port's socket.
    pub from: SocketAddrV4,
    /// The relay's address on the far side (the new source).
    pub via: SocketAddrV4,
    /// The far peer (the new destination).
    pub to: SocketAddrV4,
    pub in_pt: u8,
    pub out_pt: u8,
    /// The incoming SSRC the offsets hold for (0: any).
    pub in_ssrc: u32,
    pub out_ssrc: u32,
    pub seq_offset: u16,
    pub ts_offset: u32,
    /// The interface `to` is reached by, for a peer on another host (its
    /// index, `/sys/class/net/NAME/ifindex`); 0: a peer on this host.
    pub out_ifindex: u32,
    /// The incoming stream's RTP clock rate, Hz, for its jitter (0: none kept).
    pub clock_rate: u32,
}

/// What a route has forwarded so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteCounts {
    pub packets: u64,
    /// Whole frames as the interface saw them (link-layer header included).
    pub bytes: u64,
    /// The sequence number and timestamp of the newest packet written, for
    /// the sending leg to go on from (a late packet does not move them back).
    pub last_sent: Option<(u16, u32)>,
    /// The incoming stream's interarrival jitter (RFC 3550 A.8) in clock
    /// units scaled by 16, once two packets have crossed.
    pub jitter_q4: Option<u32>,
}

/// The relay program, loaded; it comes off every interface when dropped.
#[derive(Debug)]
pub struct KernelRelay {
    bpf: Ebpf,
}

impl KernelRelay {
    /// Load the program into the kernel, attached nowhere yet.
    pub fn load() -> Result<Self, String> {
        if OBJECT.is_empty() {
            return Err("Bond was built without the relay program (clang and libbpf-dev)".into());
        }
        let mut bpf = Ebpf::load(OBJECT).map_err(|e| format!("loading the relay program: {e}"))?;
        let program = classifier(&mut bpf)?;
        program.load().map_err(|e| format!("the kernel refused the relay program (root?): {e}"))?;
        Ok(Self { bpf })
    }

    /// Load the program and attach it to `interface`'s ingress.
    pub fn start(interface: &str) -> Result<Self, String> {
        let mut relay = Self::load()?;
        relay.attach(interface)?;
        Ok(relay)
    }

    /// The relay for the runtime: loaded and attached to every interface of
    /// the host (a packet is routed by the interface it arrives on, whatever
    /// address the relay's sockets are bound to). `None`, with the reason
    /// logged, if it cannot load; passthrough then stays in userspace.
    pub(crate) fn for_runtime() -> Option<Self> {
        let mut relay = match Self::load() {
            Ok(relay) => relay,
            Err(e) => {
                tracing::warn!(error = %e, "the in-kernel relay cannot run: passthrough stays in userspace");
                return None;
            }
        };
        let mut attached = Vec::new();
        for interface in interfaces() {
            match relay.attach(&interface) {
                Ok(()) => attached.push(interface),
                Err(e) => tracing::warn!(error = %e, "the in-kernel relay is not on this interface"),
            }
        }
        if attached.is_empty() {
            tracing::warn!("the in-kernel relay is on no interface: passthrough stays in userspace");
            return None;
        }
        tracing::info!(interfaces = ?attached, "passthrough bridges are relayed in the kernel");
        Some(relay)
    }

    /// Relay what arrives on `interface` from now on.
    pub fn attach(&mut self, interface: &str) -> Result<(), String> {
        classifier(&mut self.bpf)?
            .attach(interface, TcAttachType::Ingress)
            .map(drop)
            .map_err(|e| format!("attaching to {interface}: {e}"))
    }

    /// Route RTP arriving at the relay port `at` (address 0.0.0.0: at any
    /// address), counting from zero.
    pub fn route(&mut self, at: SocketAddrV4, route: &Route) -> Result<(), String> {
        let error = |e| format!("route {at}: {e}");
        self.map::<COUNTS>("counts")?.insert(key(at), [0; COUNTS], 0).map_err(error)?;
        self.map::<ROUTE>("routes")?.insert(key(at), encode(route), 0).map_err(error)
    }

    /// Take the route of `at` away; what it forwarded until then, to the last
    /// packet. The route is closed first, under the lock the program counts
    /// each packet under, so no packet it relays is missing from these counts
    /// (one read and then a removal would miss a packet relayed between them,
    /// and the leg's own stream would then repeat its sequence number).
    pub fn remove(&mut self, at: SocketAddrV4) -> Result<RouteCounts, String> {
        let error = |e| format!("route {at}: {e}");
        let mut routes = self.map::<ROUTE>("routes")?;
        let mut closed = routes.get(&key(at), 0).map_err(error)?;
        closed[CLOSED..CLOSED + 4].copy_from_slice(&1u32.to_ne_bytes());
        routes.insert(key(at), closed, BPF_F_LOCK).map_err(error)?;
        routes.remove(&key(at)).map_err(error)?;
        let counts = self.counts(at)?;
        self.map::<COUNTS>("counts")?.remove(&key(at)).map_err(error)?;
        Ok(counts)
    }

    /// What the route of `at` has forwarded so far.
    pub fn counts(&mut self, at: SocketAddrV4) -> Result<RouteCounts, String> {
        let value: [u8; COUNTS] =
            self.map("counts")?.get(&key(at), 0).map_err(|e| format!("route {at}: {e}"))?;
        let u64_at = |i: usize| u64::from_ne_bytes(value[i..i + 8].try_into().unwrap_or_default());
        let ts = u32::from_ne_bytes([value[16], value[17], value[18], value[19]]);
        let seq = u16::from_ne_bytes([value[20], value[21]]);
        let sent = u16::from_ne_bytes([value[22], value[23]]) != 0;
        let jitter_q4 = u32::from_ne_bytes([value[36], value[37], value[38], value[39]]);
        let packets = u64_at(0);
        Ok(RouteCounts {
            packets,
            bytes: u64_at(8),
            last_sent: sent.then_some((seq, ts)),
            jitter_q4: (packets >= 2).then_some(jitter_q4),
        })
    }

    /// Packets and bytes forwarded from `at` so far.
    pub fn forwarded(&mut self, at: SocketAddrV4) -> Result<(u64, u64), String> {
        self.counts(at).map(|c| (c.packets, c.bytes))
    }

    /// The sequence number and timestamp of the newest packet the route from
    /// `at` wrote (none yet: `None`).
    pub fn last_sent(&mut self, at: SocketAddrV4) -> Result<Option<(u16, u32)>, String> {
        self.counts(at).map(|c| c.last_sent)
    }

    /// The program's map `name`, of values `N` bytes long.
    fn map<const N: usize>(
        &mut self,
        name: &str,
    ) -> Result<HashMap<&mut MapData, [u8; KEY], [u8; N]>, String> {
        let map = self.bpf.map_mut(name).ok_or_else(|| format!("no {name} map"))?;
        HashMap::try_from(map).map_err(|e| e.to_string())
    }
}

fn classifier(bpf: &mut Ebpf) -> Result<&mut SchedClassifier, String> {
    bpf.program_mut("relay")
        .ok_or("no relay program in the object")?
        .try_into()
        .map_err(|e| format!("relay program: {e}"))
}

fn key(at: SocketAddrV4) -> [u8; KEY] {
    let mut k = [0; KEY];
    k[0..4].copy_from_slice(&at.ip().octets());
    k[4..6].copy_from_slice(&at.port().to_be_bytes());
    k
}

/// `struct route` of the C source, byte for byte: addresses and ports in
/// network order, the rest in the host's.
fn encode(r: &Route) -> [u8; ROUTE] {
    let mut v = [0; ROUTE];
    v[0..4].copy_from_slice(&r.from.ip().octets());
    v[4..6].copy_from_slice(&r.from.port().to_be_bytes());
    v[6..8].copy_from_slice(&r.via.port().to_be_bytes());
    v[8..12].copy_from_slice(&r.via.ip().octets());
    v[12..16].copy_from_slice(&r.to.ip().octets());
    v[16..18].copy_from_slice(&r.to.port().to_be_bytes());
    v[18] = r.in_pt;
    v[19] = r.out_pt;
    v[20..24].copy_from_slice(&r.in_ssrc.to_ne_bytes());
    v[24..28].copy_from_slice(&r.out_ssrc.to_ne_bytes());
    v[28..32].copy_from_slice(&r.ts_offset.to_ne_bytes());
    v[32..34].copy_from_slice(&r.seq_offset.to_ne_bytes());
    v[36..40].copy_from_slice(&r.out_ifindex.to_ne_bytes());
    v[48..52].copy_from_slice(&r.clock_rate.to_ne_bytes());
    v
}

/// Every network interface of this host, by name (`/sys/class/net`, whose
/// entries with an `ifindex` are interfaces; `bonding_masters` is not).
pub fn interfaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter(|entry| entry.path().join("ifindex").exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect()
}

/// The address the relay sends to `to` from, and the interface that reaches
/// it (0 when `to` is this host), as the kernel's routing would choose them
/// for a socket bound to `bind` (0.0.0.0: any address).
pub fn path_to(bind: Ipv4Addr, to: Ipv4Addr) -> Option<(Ipv4Addr, u32)> {
    let probe = std::net::UdpSocket::bind((bind, 0)).ok()?;
    probe.connect((to, 9)).ok()?;
    let std::net::SocketAddr::V4(local) = probe.local_addr().ok()? else { return None };
    let source = *local.ip();
    let own = if_addrs::get_if_addrs().ok()?;
    if to.is_loopback() || own.iter().any(|i| i.ip() == std::net::IpAddr::V4(to)) {
        return Some((source, 0));
    }
    let name = own.iter().find(|i| i.ip() == std::net::IpAddr::V4(source))?.name.clone();
    let index = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
    Some((source, index.trim().parse().ok()?))
}
