//! The in-kernel relay `bridge-load --relay kernel` measures (issue 45): a
//! routed relay port's RTP reaches the far peer from the relay's other port,
//! rewritten as a passthrough leg rewrites it, and everything else still
//! reaches the relay's own socket; the rewritten UDP checksum is one the
//! receiver verifies. Needs root, clang and libbpf-dev, as the test suite's
//! machines have (`scripts/test`).

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use bond_tests::kernel_relay::{KernelRelay, Route};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

fn socket() -> (UdpSocket, SocketAddrV4) {
    bound(SocketAddrV4::new([127, 0, 0, 1].into(), 0))
}

/// A socket bound at `at` (port 0: any), reads waiting at most 2 s, and its address.
pub(crate) fn bound(at: SocketAddrV4) -> (UdpSocket, SocketAddrV4) {
    let socket = UdpSocket::bind(at).expect("bind");
    socket.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let SocketAddr::V4(addr) = socket.local_addr().expect("bound") else { unreachable!("bound to IPv4") };
    (socket, addr)
}

pub(crate) fn rtp(payload_type: u8, seq: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 0x80 | payload_type];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..160).map(|i| i as u8));
    packet
}

/// Packets from `from` to the relay's port, PCMU in, sent on from `via` to `to` as PCMA.
pub(crate) fn route(from: SocketAddrV4, via: SocketAddrV4, to: SocketAddrV4) -> Route {
    Route {
        from,
        via,
        to,
        in_pt: 0,
        out_pt: 8,
        in_ssrc: 0x1111_2222,
        out_ssrc: 0xabcd_ef01,
        seq_offset: 1_000,
        ts_offset: 160_000,
        out_ifindex: 0,
        clock_rate: 8000,
    }
}

fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 1500];
    let (n, from) = socket.recv_from(&mut buf).expect("a datagram within 2 s");
    (buf[..n].to_vec(), from)
}

#[test]
fn a_routed_packet_reaches_the_far_peer_rewritten_and_the_rest_reaches_the_relay() {
    let mut relay = KernelRelay::start("lo").expect("the relay program attaches");
    let ((a, a_addr), (b, b_addr)) = (socket(), socket());
    let ((relay_a, relay_a_addr), (_relay_b, relay_b_addr)) = (socket(), socket());
    relay.route(relay_a_addr, &route(a_addr, relay_b_addr, b_addr)).expect("route");
    assert_eq!(relay.last_sent(relay_a_addr).expect("route"), None);

    let sent = rtp(0, 65_000, 0xffff_ff00, 0x1111_2222);
    a.send_to(&sent, relay_a_addr).expect("send");
    let (got, from) = receive(&b);
    assert_eq!(from, SocketAddr::V4(relay_b_addr), "sent from the relay's far port");
    assert_eq!(got[0], 0x80, "version 2, no padding, extension or CSRCs");
    assert_eq!(got[1], 0x80 | 8, "the marker kept, the far side's payload type");
    assert_eq!(u16::from_be_bytes([got[2], got[3]]), 65_000u16.wrapping_add(1_000));
    assert_eq!(u32::from_be_bytes(got[4..8].try_into().unwrap()), 0xffff_ff00u32.wrapping_add(160_000));
    assert_eq!(u32::from_be_bytes(got[8..12].try_into().unwrap()), 0xabcd_ef01);
    assert_eq!(got[12..], sent[12..], "the payload as it came");
    // Ethernet, IPv4 and UDP headers around the datagram.
    assert_eq!(relay.forwarded(relay_a_addr).expect("counts"), (1, (14 + 20 + 8 + sent.len()) as u64));
    let newest = (65_000u16.wrapping_add(1_000), 0xffff_ff00u32.wrapping_add(160_000));
    assert_eq!(relay.last_sent(relay_a_addr).expect("route"), Some(newest));

    // A late packet (one sequence number back) is sent on but is not the newest.
    let late = rtp(0, 64_999, 0xffff_fe60, 0x1111_2222);
    a.send_to(&late, relay_a_addr).expect("send");
    assert_eq!(u16::from_be_bytes(receive(&b).0[2..4].try_into().unwrap()), 64_999u16.wrapping_add(1_000));
    assert_eq!(relay.last_sent(relay_a_addr).expect("route"), Some(newest));

    // Another stream, a telephone-event, another sender: the relay's socket has them, untouched.
    let (other, _) = socket();
    for (sender, packet) in [
        (&a, rtp(0, 1, 2, 0x3333_4444)),
        (&a, rtp(101, 1, 2, 0x1111_2222)),
        (&other, rtp(0, 1, 2, 0x1111_2222)),
    ] {
        sender.send_to(&packet, relay_a_addr).expect("send");
        let (got, from) = receive(&relay_a);
        assert_eq!(got, packet);
        assert_eq!(from, sender.local_addr().unwrap());
    }
    assert_eq!(relay.forwarded(relay_a_addr).expect("counts").0, 2);

    drop(relay);
    a.send_to(&sent, relay_a_addr).expect("send");
    assert_eq!(receive(&relay_a).0, sent, "the program is gone with the relay");
}

/// The one's-complement sum of `data` as 16-bit words, not yet inverted.
fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// A UDP datagram with its checksum computed in full (RFC 768), as a raw
/// socket sends it: the kernel neither fills it in nor trusts it, so the
/// receiving stack checks it, on loopback too.
pub(crate) fn udp_datagram(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8], spoil: bool) -> Vec<u8> {
    let length = (8 + payload.len()) as u16;
    let mut datagram =
        [from.port().to_be_bytes(), to.port().to_be_bytes(), length.to_be_bytes(), [0, 0]].concat();
    datagram.extend_from_slice(payload);
    let pseudo = [from.ip().octets(), to.ip().octets()].concat();
    let sum = ones_sum(&pseudo, u32::from(length) + 17);
    let checksum = !(ones_sum(&datagram, sum) as u16) ^ if spoil { 0x0101 } else { 0 };
    datagram[6..8].copy_from_slice(&checksum.to_be_bytes());
    datagram
}

#[test]
fn the_rewritten_datagram_carries_a_udp_checksum_the_receiver_verifies() {
    let mut relay = KernelRelay::start("lo").expect("the relay program attaches");
    let ((_a, a_addr), (b, b_addr)) = (socket(), socket());
    let ((_relay_a, relay_a_addr), (_relay_b, relay_b_addr)) = (socket(), socket());
    relay.route(relay_a_addr, &route(a_addr, relay_b_addr, b_addr)).expect("route");
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).expect("a raw socket (root)");
    b.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let mut buf = [0u8; 1500];

    // A spoiled checksum stays spoiled through the rewrite and the receiver drops
    // the datagram: it does check what arrives this way.
    let packet = rtp(0, 40_000, 123_456, 0x1111_2222);
    raw.send_to(&udp_datagram(a_addr, relay_a_addr, &packet, true), &SockAddr::from(relay_a_addr))
        .expect("send");
    assert!(b.recv_from(&mut buf).is_err(), "a datagram with a bad checksum was delivered");
    assert_eq!(relay.forwarded(relay_a_addr).expect("counts").0, 1, "the relay did rewrite it");

    raw.send_to(&udp_datagram(a_addr, relay_a_addr, &packet, false), &SockAddr::from(relay_a_addr))
        .expect("send");
    let (n, from) = b.recv_from(&mut buf).expect("the rewritten datagram passes the receiver's checksum");
    assert_eq!(from, SocketAddr::V4(relay_b_addr));
    assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 41_000);
    assert_eq!(buf[12..n], packet[12..]);
}

/// Taking a route away while its peer sends as fast as it can: the counts
/// `remove` returns hold every packet the route relayed, so a leg that goes on
/// from them never repeats a sequence number its peer already had.
#[test]
fn a_route_taken_away_under_a_running_stream_counts_every_packet_it_relayed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut relay = KernelRelay::start("lo").expect("the relay program attaches");
    for round in 0..10 {
        let ((a, a_addr), (b, b_addr)) = (socket(), socket());
        let ((_relay_a, relay_a_addr), (_relay_b, relay_b_addr)) = (socket(), socket());
        relay.route(relay_a_addr, &route(a_addr, relay_b_addr, b_addr)).expect("route");
        let stop = Arc::new(AtomicBool::new(false));
        let sending = Arc::clone(&stop);
        let sender = std::thread::spawn(move || {
            for seq in 0..u16::MAX {
                if sending.load(Ordering::Relaxed) {
                    break;
                }
                a.send_to(&rtp(0, seq, u32::from(seq) * 160, 0x1111_2222), relay_a_addr).expect("send");
            }
        });
        b.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let receiver = std::thread::spawn(move || {
            let (mut buf, mut seqs) = ([0u8; 1500], Vec::new());
            while let Ok((n, _)) = b.recv_from(&mut buf) {
                seqs.extend((n >= 12).then(|| u16::from_be_bytes([buf[2], buf[3]])));
            }
            seqs
        });
        std::thread::sleep(Duration::from_millis(5));
        let counts = relay.remove(relay_a_addr).expect("the route's last counts");
        std::thread::sleep(Duration::from_millis(5));
        stop.store(true, Ordering::Relaxed);
        sender.join().expect("sender");
        let seqs = receiver.join().expect("receiver");
        let (newest, _) = counts.last_sent.expect("the route relayed packets before it went");
        let after = seqs.iter().filter(|&&s| (s.wrapping_sub(newest) as i16) > 0).count();
        assert_eq!(after, 0, "round {round}: relayed after the counts, which end at {newest}");
        assert!(seqs.len() as u64 <= counts.packets, "round {round}: {} > {counts:?}", seqs.len());
    }
}

/// A route keeps the jitter (RFC 3550 A.8) of the stream it relays, as the
/// receiving leg would in userspace: packets sent back to back whose
/// timestamps step by 20 ms each arrive 160 clock units early, and the
/// estimate climbs towards 160; the same packets stamped alike keep it near 0.
#[test]
fn a_route_measures_the_jitter_of_the_stream_it_relays() {
    let mut relay = KernelRelay::start("lo").expect("the relay program attaches");
    let mut jitter = |step: u32| {
        let ((a, a_addr), (b, b_addr)) = (socket(), socket());
        let ((_relay_a, relay_a_addr), (_relay_b, relay_b_addr)) = (socket(), socket());
        relay.route(relay_a_addr, &route(a_addr, relay_b_addr, b_addr)).expect("route");
        for seq in 0..20u16 {
            a.send_to(&rtp(0, seq, u32::from(seq) * step, 0x1111_2222), relay_a_addr).expect("send");
        }
        for _ in 0..20 {
            receive(&b);
        }
        let counts = relay.remove(relay_a_addr).expect("the route's counts");
        assert_eq!(counts.packets, 20);
        counts.jitter_q4.expect("kept from the second packet on") / 16
    };
    let (stepped, still) = (jitter(160), jitter(0));
    // 160 x (1 - (15/16)^19) = 113 for packets that arrive all at once.
    assert!((60..=160).contains(&stepped), "timestamps 20 ms apart, sent at once: {stepped}");
    assert!(still < 20, "timestamps alike, sent at once: {still}");
}
