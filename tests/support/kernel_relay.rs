//! An in-kernel passthrough relay for measuring what one would save (issue 45):
//! `kernel_relay.bpf.c`, compiled with clang when started and attached with
//! aya to an interface's tc ingress (TCX, so it goes when this is dropped),
//! forwards the RTP of each routed relay port to its bridged peer with the
//! rewrite a passthrough leg makes in userspace, to a peer on this host or,
//! out of the interface that reaches it, on another. Routes are set the way a
//! relay would set them for a bridged pair. It is a measuring tool beside the
//! load generator, not a part of Bond: Bond does not install such routes.
//!
//! Needs root (CAP_BPF and CAP_NET_ADMIN), clang and libbpf-dev (`scripts/test`
//! installs them).

use std::net::SocketAddrV4;
use std::path::Path;
use std::process::Command;

use aya::maps::HashMap;
use aya::programs::{SchedClassifier, TcAttachType};
use aya::Ebpf;

const SOURCE: &str = include_str!("kernel_relay.bpf.c");
const KEY: usize = 8;
const ROUTE: usize = 72;

/// Where a routed packet goes, and how its RTP header is rewritten.
#[derive(Debug, Clone, Copy)]
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
}

/// The relay program, attached; it comes off when this is dropped.
#[derive(Debug)]
pub struct KernelRelay {
    bpf: Ebpf,
}

impl KernelRelay {
    /// Compile the program and attach it to `interface`'s ingress.
    pub fn start(interface: &str) -> Result<Self, String> {
        let object = compile()?;
        let mut bpf = Ebpf::load(&object).map_err(|e| format!("loading the relay program: {e}"))?;
        let program: &mut SchedClassifier = bpf
            .program_mut("relay")
            .ok_or("no relay program in the object")?
            .try_into()
            .map_err(|e| format!("relay program: {e}"))?;
        program.load().map_err(|e| format!("the kernel refused the relay program: {e}"))?;
        program
            .attach(interface, TcAttachType::Ingress)
            .map_err(|e| format!("attaching to {interface} (root?): {e}"))?;
        Ok(Self { bpf })
    }

    /// Route RTP arriving at the relay port `at`.
    pub fn route(&mut self, at: SocketAddrV4, route: &Route) -> Result<(), String> {
        self.routes()?.insert(key(at), encode(route), 0).map_err(|e| format!("route {at}: {e}"))
    }

    /// Packets and bytes forwarded from `at` so far.
    pub fn forwarded(&mut self, at: SocketAddrV4) -> Result<(u64, u64), String> {
        let value = self.route_value(at)?;
        let word = |i: usize| u64::from_ne_bytes(value[i..i + 8].try_into().expect("8 bytes"));
        Ok((word(40), word(48)))
    }

    /// The sequence number and timestamp of the newest packet the route from
    /// `at` wrote (none yet: `None`), for the sending leg to go on from when
    /// the route is removed.
    pub fn last_sent(&mut self, at: SocketAddrV4) -> Result<Option<(u16, u32)>, String> {
        let value = self.route_value(at)?;
        let sent = u16::from_ne_bytes([value[66], value[67]]) != 0;
        let seq = u16::from_ne_bytes([value[64], value[65]]);
        let ts = u32::from_ne_bytes(value[60..64].try_into().expect("4 bytes"));
        Ok(sent.then_some((seq, ts)))
    }

    fn route_value(&mut self, at: SocketAddrV4) -> Result<[u8; ROUTE], String> {
        self.routes()?.get(&key(at), 0).map_err(|e| format!("route {at}: {e}"))
    }

    fn routes(&mut self) -> Result<HashMap<&mut aya::maps::MapData, [u8; KEY], [u8; ROUTE]>, String> {
        let map = self.bpf.map_mut("routes").ok_or("no routes map")?;
        HashMap::try_from(map).map_err(|e| e.to_string())
    }
}

fn compile() -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (source, object) = (dir.path().join("relay.bpf.c"), dir.path().join("relay.o"));
    std::fs::write(&source, SOURCE).map_err(|e| e.to_string())?;
    let mut clang = Command::new("clang");
    clang.args(["-O2", "-g", "-target", "bpf", "-c"]).arg(&source).arg("-o").arg(&object);
    // The kernel headers' <asm/types.h> lives under the host's multiarch directory.
    let multiarch = Path::new("/usr/include/x86_64-linux-gnu");
    if multiarch.is_dir() {
        clang.arg("-I").arg(multiarch);
    }
    let out = clang.output().map_err(|e| format!("clang (Debian clang, libbpf-dev): {e}"))?;
    if !out.status.success() {
        return Err(format!("clang: {}", String::from_utf8_lossy(&out.stderr)));
    }
    std::fs::read(&object).map_err(|e| e.to_string())
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
    v[56..60].copy_from_slice(&r.out_ifindex.to_ne_bytes());
    v
}
