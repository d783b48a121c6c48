//! The relays `bridge-load` can measure besides Bond: a userspace rtpengine
//! set up over its ng protocol, the in-kernel relay (`--relay kernel`, the
//! tc program of `bond_tests::kernel_relay`), and none at all (`--relay none`:
//! each side sends straight to the other, the generator's own cost).

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex};

use bond_tests::kernel_relay::{KernelRelay, Route};
use bond_tests::rtpengine::RtpEngine;
use bond_tests::sip_lite;

use super::{Targets, PCMU};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relay {
    Bond,
    RtpEngine,
    Kernel,
    None,
}

impl Relay {
    pub(super) fn parse(name: Option<&str>) -> Result<Self, String> {
        match name {
            None | Some("bond") => Ok(Self::Bond),
            Some("rtpengine") => Ok(Self::RtpEngine),
            Some("kernel") => Ok(Self::Kernel),
            Some("none") => Ok(Self::None),
            Some(other) => Err(format!("--relay {other}: bond, rtpengine, kernel or none")),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Bond => "bond",
            Self::RtpEngine => "rtpengine (userspace)",
            Self::Kernel => "kernel (tc program on lo)",
            Self::None => "none (sides send to each other)",
        }
    }
}

/// Set up every pair in rtpengine: A offers, B answers.
pub(super) async fn setup_rtpengine(
    rtpengine: &mut RtpEngine,
    a_media: &[SocketAddr],
    b_media: &[SocketAddr],
    targets: &Arc<Mutex<Targets>>,
) -> Result<(), String> {
    for i in 0..a_media.len() {
        let call = format!("call-{i}");
        let (from_tag, to_tag) = (format!("a{i}"), format!("b{i}"));
        let offer = sip_lite::sdp(a_media[i], PCMU);
        let to_b = rtpengine.negotiate("offer", &call, &[("from-tag", &from_tag)], &offer).await?;
        let answer = sip_lite::sdp(b_media[i], PCMU);
        let tags = [("from-tag", from_tag.as_str()), ("to-tag", to_tag.as_str())];
        let to_a = rtpengine.negotiate("answer", &call, &tags, &answer).await?;
        let mut t = targets.lock().expect("lock");
        t.b[i] = sip_lite::media_addr(&to_b);
        t.a[i] = sip_lite::media_addr(&to_a);
    }
    Ok(())
}

/// Each side sends straight to the other.
pub(super) fn setup_direct(a_media: &[SocketAddr], b_media: &[SocketAddr], targets: &Mutex<Targets>) {
    let mut t = targets.lock().expect("lock");
    t.a = b_media.iter().copied().map(Some).collect();
    t.b = a_media.iter().copied().map(Some).collect();
}

/// The kernel relay's two ports of each pair, bound so that nothing else takes
/// them (what is not routed lands there, unread) and routed to each other's
/// side as a passthrough bridge would be: its own SSRC and offsets per direction.
pub(super) fn setup_kernel(
    relay: &mut KernelRelay,
    a_media: &[SocketAddr],
    b_media: &[SocketAddr],
    targets: &Mutex<Targets>,
) -> Result<Vec<UdpSocket>, String> {
    let v4 = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => Ok(v4),
        SocketAddr::V6(_) => Err("the kernel relay is IPv4 only".to_owned()),
    };
    let mut ports = Vec::with_capacity(a_media.len() * 2);
    for i in 0..a_media.len() {
        let ((port_a, at_a), (port_b, at_b)) = (bind()?, bind()?);
        let seed = i as u32;
        let route = |from: SocketAddrV4, via: SocketAddrV4, to: SocketAddrV4, direction: u32| Route {
            from,
            via,
            to,
            in_pt: 0,
            out_pt: 0,
            in_ssrc: 0,
            out_ssrc: 0x4b00_0000 | seed << 1 | direction,
            seq_offset: (seed * 7_919 + direction * 104_729) as u16,
            ts_offset: seed.wrapping_mul(2_654_435_761).wrapping_add(direction),
            out_ifindex: 0,
            clock_rate: 8000,
        };
        relay.route(at_a, &route(v4(a_media[i])?, at_b, v4(b_media[i])?, 0))?;
        relay.route(at_b, &route(v4(b_media[i])?, at_a, v4(a_media[i])?, 1))?;
        let mut t = targets.lock().expect("lock");
        (t.a[i], t.b[i]) = (Some(SocketAddr::V4(at_a)), Some(SocketAddr::V4(at_b)));
        drop(t);
        ports.extend([port_a, port_b]);
    }
    Ok(ports)
}

/// A relay port on 127.0.0.1, and its address.
fn bind() -> Result<(UdpSocket, SocketAddrV4), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    match socket.local_addr().map_err(|e| e.to_string())? {
        SocketAddr::V4(at) => Ok((socket, at)),
        SocketAddr::V6(_) => Err("bound 127.0.0.1, got IPv6".into()),
    }
}

/// Packets the kernel relay forwarded, over every pair's two ports.
pub(super) fn forwarded(relay: &mut KernelRelay, targets: &Mutex<Targets>) -> Result<u64, String> {
    let t = targets.lock().expect("lock");
    let mut total = 0;
    for at in t.a.iter().chain(&t.b).flatten() {
        let SocketAddr::V4(at) = at else { continue };
        total += relay.forwarded(*at)?.0;
    }
    Ok(total)
}
