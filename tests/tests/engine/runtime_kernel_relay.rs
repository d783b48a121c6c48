//! The runtime with the in-kernel relay on (`rtp.kernel_relay`): a passthrough
//! bridge of two plain RTP legs is carried by the kernel once each direction's
//! first packet has crossed, the far peer gets the same stream it would get
//! from userspace (Bond's SSRC, sequence numbers one after another, payload
//! unchanged), the legs count what the kernel forwarded, and when a clip takes
//! the bridge off passthrough the leg's own packets go on from the kernel's
//! last sequence number. A leg bridged with `loop:echo` is reflected by the
//! kernel the same way. Needs root, as the suite's machines have.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bond_codecs::{Codec, SampleRate};
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::{Clip, MediaSource, RtpMedia};
use bond_media_engine::rtp::rtcp::is_rtcp;
use bond_media_engine::rtp::{Packetizer, RtpPacket};
use bond_media_engine::runtime::{self, LegSpec, PortRange, RuntimeConfig, RuntimeMetrics};
use tokio::net::UdpSocket;

fn config(first_port: u16) -> RuntimeConfig {
    RuntimeConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        rtp_ports: PortRange::new(first_port, first_port + 20).unwrap(),
        seed: 21,
        webrtc: None,
        opus: Default::default(),
        shards: 1,
        passthrough: true,
        rtcp: true,
        driver_threads: true,
        strict_source: true,
        kernel_relay: true,
    }
}

/// RTP `b`'s peer received: (seq, timestamp, ssrc, first payload byte).
fn drain(socket: &UdpSocket, got: &mut Vec<(u16, u32, u32, u8)>) {
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = socket.try_recv_from(&mut buf) {
        if let Some(p) = RtpPacket::parse(&buf[..n]).ok().filter(|_| !is_rtcp(&buf[..n])) {
            got.push((p.header.sequence_number, p.header.timestamp, p.header.ssrc, p.payload[0]));
        }
    }
}

/// Sort what a peer received by sequence number, from the first one's.
fn in_stream_order(got: &mut [(u16, u32, u32, u8)]) {
    let Some(&(first, ..)) = got.first() else { return };
    got.sort_by_key(|p| p.0.wrapping_sub(first) as i16);
}

#[tokio::test]
async fn a_passthrough_bridge_is_relayed_in_the_kernel_and_its_stream_goes_on_after_it() {
    let (engine, _task) = runtime::spawn(config(42000));
    let mut peers = Vec::new();
    for _ in 0..2 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let remote = Some(socket.local_addr().unwrap());
        let spec = LegSpec {
            media: RtpMedia::new(Codec::Pcmu),
            source: MediaSource::Silence,
            remote,
            media_timeout: None,
        };
        peers.push((socket, engine.create_leg(spec).await.unwrap()));
    }
    let (a, b) = (peers[0].1, peers[1].1);
    engine.bridge(a.id, b.id, bond_media_engine::DtmfPassing::Both).await.unwrap();
    // Counted once bridged: until then b ticks its own silence out.
    let sent_before = engine.stats(b.id).await.unwrap().unwrap().packets_sent;

    // Both peers send 2 s of PCMU; a's payload bytes count its packets.
    let mut packetizers = [Packetizer::new(Ssrc(0x0A), 100, 0), Packetizer::new(Ssrc(0x0B), 900, 0)];
    let mut packet = [0u8; 200];
    let mut at_b = Vec::new();
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    for tick in 0..100u8 {
        pacing.tick().await;
        for (side, (socket, leg)) in peers.iter().enumerate() {
            let payload = [tick; 160];
            let n =
                packetizers[side].write(PayloadType::new(0).unwrap(), &payload, 160, &mut packet).unwrap();
            socket.send_to(&packet[..n], leg.local_addr).await.unwrap();
        }
        drain(&peers[1].0, &mut at_b);
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await; // a report of the routes' counts
    drain(&peers[1].0, &mut at_b);
    let metrics = engine.metrics();
    let offloaded = RuntimeMetrics::get(&metrics.packets_offloaded);
    assert!(offloaded >= 180, "most of 200 packets crossed in the kernel, {offloaded}");
    assert_eq!(RuntimeMetrics::get(&metrics.offload_routes), 2, "one route each way");
    // A packet still waiting in b's socket when the route went in leaves after
    // the kernel's next one if the test's pacing burst (a stalled task sends
    // its late packets at once): by sequence number they are one stream.
    in_stream_order(&mut at_b);
    let payloads: Vec<u8> = at_b.iter().map(|p| p.3).collect();
    assert_eq!(payloads, (0..100).collect::<Vec<u8>>(), "every packet, once, unchanged");
    let stats = engine.stats(a.id).await.unwrap().unwrap();
    assert_eq!((stats.packets_received, stats.packets_lost), (100, 0), "{stats:?}");
    assert_eq!(engine.stats(b.id).await.unwrap().unwrap().packets_sent, sent_before + 100);

    // A clip for b's party: b decodes and sends its own packets again, from
    // where the kernel left its stream.
    let beep: Vec<i16> = bond_codecs::signals::sine(440.0, 8000, 4000, 8000.0);
    let clip =
        Clip { id: 1, rate: SampleRate::Hz8000, samples: Arc::from(beep), plays: Some(1), duck: false };
    engine.play(b.id, clip, false).await.unwrap();
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    for tick in 100..120u8 {
        pacing.tick().await;
        let n = packetizers[0].write(PayloadType::new(0).unwrap(), &[tick; 160], 160, &mut packet).unwrap();
        peers[0].0.send_to(&packet[..n], a.local_addr).await.unwrap();
        drain(&peers[1].0, &mut at_b);
    }
    assert!(at_b.len() >= 110, "the clip plays: {} packets", at_b.len());
    in_stream_order(&mut at_b);
    let ssrc = at_b[0].2;
    for pair in at_b.windows(2) {
        let ((seq0, ts0, ..), (seq1, ts1, s1, _)) = (pair[0], pair[1]);
        assert_eq!(s1, ssrc, "one stream");
        assert_eq!(seq1, seq0.wrapping_add(1), "sequence numbers one after another: {pair:?}");
        assert!(ts1.wrapping_sub(ts0) as i32 > 0, "time goes forward: {pair:?}");
    }
}

#[tokio::test]
async fn a_call_into_an_echo_is_reflected_in_the_kernel() {
    let (engine, _task) = runtime::spawn(config(42030));
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let remote = Some(peer.local_addr().unwrap());
    let spec = LegSpec {
        media: RtpMedia::new(Codec::Pcmu),
        source: MediaSource::Silence,
        remote,
        media_timeout: None,
    };
    let leg = engine.create_leg(spec).await.unwrap();
    let echo = engine.create_local_leg(SampleRate::Hz8000, MediaSource::Echo).await.unwrap();
    engine.bridge(leg.id, echo, bond_media_engine::DtmfPassing::Both).await.unwrap();
    let mut packetizer = Packetizer::new(Ssrc(0x0C), 7, 0);
    let (mut packet, mut back) = ([0u8; 200], Vec::new());
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    for tick in 0..100u8 {
        pacing.tick().await;
        let n = packetizer.write(PayloadType::new(0).unwrap(), &[tick; 160], 160, &mut packet).unwrap();
        peer.send_to(&packet[..n], leg.local_addr).await.unwrap();
        drain(&peer, &mut back);
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await; // a report of the route's counts
    drain(&peer, &mut back);
    let payloads: Vec<u8> = back.iter().map(|p| p.3).filter(|&b| b != 0xFF).collect();
    assert_eq!(payloads, (0..100).collect::<Vec<u8>>(), "every packet back, in order, unchanged");
    let offloaded = RuntimeMetrics::get(&engine.metrics().packets_offloaded);
    assert!(offloaded >= 90, "most of them reflected in the kernel, {offloaded}");
}
