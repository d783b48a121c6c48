//! The tokio runtime with real UDP sockets on loopback: a test peer sends RTP to
//! an echo leg and gets its tone back; hangup and shutdown end legs with events.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bond_codecs::g711;
use bond_codecs::signals::Oscillator;
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::{MediaSource, RtpMedia};
use bond_media_engine::rtp::{Packetizer, RtpPacket};
use bond_media_engine::runtime::{self, LegSpec, PortRange, RuntimeConfig};
use bond_media_engine::{EngineEvent, HangupCause};
use bond_tests::tone_share;
use tokio::net::UdpSocket;

pub(super) fn config(first_port: u16) -> RuntimeConfig {
    RuntimeConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtp_ports: PortRange::new(first_port, first_port + 20).unwrap(),
        seed: 11,
        webrtc: None,
        opus: Default::default(),
        shards: 2,
        passthrough: true,
        rtcp: true,
        driver_threads: true,
        strict_source: true,
        kernel_relay: false,
    }
}

fn echo_spec() -> LegSpec {
    LegSpec {
        media: RtpMedia::new(Codec::Pcmu),
        source: MediaSource::Echo,
        remote: None,
        media_timeout: Some(Duration::from_secs(5)),
    }
}

#[tokio::test]
async fn an_echo_leg_returns_rtp_from_a_real_socket() {
    let (engine, _task) = runtime::spawn(config(41000));
    let leg = engine.create_leg(echo_spec()).await.unwrap();
    assert_eq!(leg.local_addr.port() % 2, 0, "RTP on an even port");

    let peer = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.unwrap();
    let mut packetizer = Packetizer::new(Ssrc(42), 1000, 0);
    let mut osc = Oscillator::new(1000.0, 8000, 8000.0);
    let mut pcm = [0i16; 160];
    let mut payload = [0u8; 160];
    let mut packet = [0u8; 200];
    let mut returned = Vec::new();
    let mut recv_buf = [0u8; 1500];
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..50 {
        pacing.tick().await;
        osc.fill(&mut pcm);
        g711::ulaw_encode_slice(&pcm, &mut payload);
        let n = packetizer.write(PayloadType::new(0).unwrap(), &payload, 160, &mut packet).unwrap();
        peer.send_to(&packet[..n], leg.local_addr).await.unwrap();
        while let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_millis(1), peer.recv_from(&mut recv_buf)).await
        {
            assert_eq!(from, leg.local_addr, "symmetric RTP: replies come from the leg's port");
            let rtp = RtpPacket::parse(&recv_buf[..n]).unwrap();
            let mut decoded = [0i16; 160];
            g711::ulaw_decode_slice(rtp.payload, &mut decoded);
            returned.extend_from_slice(&decoded);
        }
    }
    // The first frames are silence while the playout buffer fills; the last ones echo the tone.
    assert!(returned.len() >= 160 * 25, "got {} samples back", returned.len());
    let tail = &returned[returned.len() - 160 * 10..];
    assert!(tone_share(tail, 1000.0, 8000) > 0.9, "echo is the tone");

    let stats = engine.stats(leg.id).await.unwrap().unwrap();
    assert_eq!(stats.packets_received, 50);
    assert!(bond_media_engine::runtime::RuntimeMetrics::get(&engine.metrics().packets_received) >= 50);
}

#[tokio::test]
async fn a_leg_multiplexing_rtcp_sends_its_reports_from_and_to_the_rtp_ports() {
    let (engine, _task) = runtime::spawn(config(41500));
    let peer = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.unwrap();
    // Nothing may go to the port above the peer's RTP port.
    let rtcp_port = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), peer.local_addr().unwrap().port() + 1);
    let above = UdpSocket::bind(rtcp_port).await.ok();
    let spec = LegSpec {
        media: RtpMedia { rtcp_mux: true, ..RtpMedia::new(Codec::Pcmu) },
        remote: Some(peer.local_addr().unwrap()),
        ..echo_spec()
    };
    let leg = engine.create_leg(spec).await.unwrap();
    let mut packetizer = Packetizer::new(Ssrc(42), 1000, 0);
    let mut packet = [0u8; 200];
    let mut recv_buf = [0u8; 1500];
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    let mut report = None;
    // The first report is due within 1.5 x 2.5 s of the leg's start.
    for _ in 0..250 {
        pacing.tick().await;
        let n = packetizer.write(PayloadType::new(0).unwrap(), &[0xff; 160], 160, &mut packet).unwrap();
        peer.send_to(&packet[..n], leg.local_addr).await.unwrap();
        while let Ok((n, from)) = peer.try_recv_from(&mut recv_buf) {
            if bond_media_engine::rtp::rtcp::is_rtcp(&recv_buf[..n]) {
                report = Some((recv_buf[1], from));
            }
        }
        if report.is_some() {
            break;
        }
    }
    let (packet_type, from) = report.expect("an RTCP report on the RTP port");
    assert_eq!(packet_type, 200, "a sender report");
    assert_eq!(from, leg.local_addr, "sent from the leg's RTP port");
    if let Some(above) = above {
        assert!(above.try_recv_from(&mut recv_buf).is_err(), "nothing on the port above");
    }
}

#[tokio::test]
async fn reports_the_peer_sends_to_the_port_above_reach_the_leg() {
    let (engine, _task) = runtime::spawn(config(41540));
    let peer = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.unwrap();
    let peer_rtcp = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.unwrap();
    let spec = LegSpec { remote: Some(peer.local_addr().unwrap()), ..echo_spec() };
    let leg = engine.create_leg(spec).await.unwrap();
    let leg_rtcp = SocketAddr::new(leg.local_addr.ip(), leg.local_addr.port() + 1);
    let mut packetizer = Packetizer::new(Ssrc(42), 1000, 0);
    let mut packet = [0u8; 200];
    // A receiver report with no blocks (RFC 3550 6.4.2): header and sender SSRC.
    let report = [0x80, 201, 0, 1, 0, 0, 0, 42];
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    let mut heard = 0;
    for _ in 0..100 {
        pacing.tick().await;
        let n = packetizer.write(PayloadType::new(0).unwrap(), &[0xff; 160], 160, &mut packet).unwrap();
        peer.send_to(&packet[..n], leg.local_addr).await.unwrap();
        peer_rtcp.send_to(&report, leg_rtcp).await.unwrap();
        heard = engine.stats(leg.id).await.unwrap().map_or(0, |stats| stats.remote.reports);
        if heard >= 3 {
            break;
        }
    }
    assert!(heard >= 3, "the leg counted {heard} of the peer's reports");
}

#[tokio::test]
async fn hangup_and_shutdown_end_legs_with_events() {
    let (engine, task) = runtime::spawn(config(41100));
    let mut events = engine.subscribe();
    let a = engine.create_leg(echo_spec()).await.unwrap();
    let b = engine.create_leg(echo_spec()).await.unwrap();
    assert_ne!(a.local_addr, b.local_addr);

    engine.hangup(a.id).await.unwrap();
    let EngineEvent::LegEnded { leg, cause, .. } = events.recv().await.unwrap() else { panic!() };
    assert_eq!((leg, cause), (a.id, HangupCause::NormalClearing));
    assert!(engine.hangup(a.id).await.is_err(), "an ended leg is gone");

    engine.shutdown().await.unwrap();
    let EngineEvent::LegEnded { leg, cause, .. } = events.recv().await.unwrap() else { panic!() };
    assert_eq!((leg, cause), (b.id, HangupCause::Shutdown));
    task.await.unwrap();
    assert!(engine.create_leg(echo_spec()).await.is_err(), "a stopped engine refuses commands");
}

#[tokio::test]
async fn an_exhausted_port_range_is_a_clear_error() {
    let mut cfg = config(41200);
    cfg.rtp_ports = PortRange::new(41200, 41202).unwrap();
    let (engine, _task) = runtime::spawn(cfg);
    engine.create_leg(echo_spec()).await.unwrap();
    engine.create_leg(echo_spec()).await.unwrap();
    let err = engine.create_leg(echo_spec()).await.unwrap_err();
    assert!(err.to_string().contains("exhausted"), "{err}");
}

/// A peer socket playing `hz` into a leg, 20 ms at a time.
struct TonePeer {
    socket: UdpSocket,
    to: SocketAddr,
    packetizer: Packetizer,
    osc: Oscillator,
    heard: Vec<i16>,
}

impl TonePeer {
    async fn new(to: SocketAddr, hz: f64, ssrc: u32) -> Self {
        let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.unwrap();
        Self {
            socket,
            to,
            packetizer: Packetizer::new(Ssrc(ssrc), 1, 0),
            osc: Oscillator::new(hz, 8000, 8000.0),
            heard: Vec::new(),
        }
    }

    async fn send_frame(&mut self) {
        let (mut pcm, mut payload) = ([0i16; 160], [0u8; 160]);
        self.osc.fill(&mut pcm);
        g711::ulaw_encode_slice(&pcm, &mut payload);
        self.send_payload(&payload).await;
    }

    async fn send_payload(&mut self, payload: &[u8]) {
        let mut packet = [0u8; 200];
        let n = self.packetizer.write(PayloadType::new(0).unwrap(), payload, 160, &mut packet).unwrap();
        self.socket.send_to(&packet[..n], self.to).await.unwrap();
    }

    /// Take what arrived; whether a payload of `marker` bytes was among it.
    fn receive_waiting(&mut self, marker: u8) -> bool {
        let mut buf = [0u8; 1500];
        let mut marked = false;
        while let Ok((n, _)) = self.socket.try_recv_from(&mut buf) {
            let rtp = RtpPacket::parse(&buf[..n]).unwrap();
            marked |= rtp.payload.iter().all(|&b| b == marker);
            let mut decoded = [0i16; 160];
            g711::ulaw_decode_slice(rtp.payload, &mut decoded);
            self.heard.extend_from_slice(&decoded);
        }
        marked
    }
}

fn shard_of(leg: bond_media_engine::LegId) -> u64 {
    (leg.0 - 1) % 2
}

/// The name of the thread a task ran on.
async fn thread_of(task: tokio::task::JoinHandle<Option<String>>) -> String {
    task.await.unwrap().unwrap_or_default()
}

fn this_thread() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

#[tokio::test]
async fn settled_handles_take_turns_over_equal_shards_and_run_tasks_beside_their_legs() {
    let (engine, _task) = runtime::spawn(config(41440));
    // Settled in a burst, before either has a leg.
    let homes = [engine.settled(), engine.settled()];
    let mut shards = Vec::new();
    for home in &homes {
        let before = thread_of(home.spawn_home(async { this_thread() })).await;
        let leg = home.create_leg(echo_spec()).await.unwrap();
        let beside = thread_of(engine.near(leg.id).spawn_home(async { this_thread() })).await;
        assert!(before.starts_with("bond-media-"), "ran on {before}");
        assert_eq!(before, beside, "a settled handle's task runs where its leg does");
        shards.push(shard_of(leg.id));
    }
    assert_ne!(shards[0], shards[1], "two sockets settled at once go to two shards");
}

#[tokio::test]
async fn legs_on_two_shards_bridge_over_real_sockets() {
    let (engine, _task) = runtime::spawn(config(41300));
    assert_eq!(engine.shards(), 2);
    let a = engine.create_leg(echo_spec()).await.unwrap();
    let b = engine.create_leg(echo_spec()).await.unwrap();
    assert_ne!(shard_of(a.id), shard_of(b.id), "a new leg goes to the emptier shard");
    let near_a = engine.near(a.id).create_leg(echo_spec()).await.unwrap();
    assert_eq!(shard_of(near_a.id), shard_of(a.id), "near() places a leg with its future peer");

    engine.bridge(a.id, b.id, bond_media_engine::DtmfPassing::Both).await.unwrap();
    let mut peer_a = TonePeer::new(a.local_addr, 1000.0, 1).await;
    let mut peer_b = TonePeer::new(b.local_addr, 600.0, 2).await;
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..75 {
        pacing.tick().await;
        peer_a.send_frame().await;
        peer_b.send_frame().await;
        peer_a.receive_waiting(0x7F);
        peer_b.receive_waiting(0x7F);
    }
    for (peer, hz) in [(&peer_a, 600.0), (&peer_b, 1000.0)] {
        assert!(peer.heard.len() >= 160 * 40, "{} samples", peer.heard.len());
        let tail = &peer.heard[peer.heard.len() - 160 * 20..];
        assert!(tone_share(tail, hz, 8000) > 0.9, "hears the other shard's {hz} Hz");
    }
    // The bridge passes packets through across the shards: mu-law 0x7F (minus
    // zero) reaches the far peer as it was sent; decoded and encoded again it
    // would come out as 0xFF.
    let mut passed_through = false;
    for _ in 0..25 {
        pacing.tick().await;
        peer_a.send_payload(&[0x7F; 160]).await;
        passed_through |= peer_b.receive_waiting(0x7F);
    }
    assert!(passed_through, "no packet crossed the shards undecoded");

    // Hanging one up takes the other out of the bridge: it can be bridged again at once.
    engine.hangup(a.id).await.unwrap();
    let mut bridged_again = Err(runtime::RuntimeError::Stopped);
    for _ in 0..50 {
        bridged_again = engine.bridge(b.id, near_a.id, bond_media_engine::DtmfPassing::Both).await;
        if bridged_again.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bridged_again.unwrap();
    assert_eq!(bond_media_engine::runtime::RuntimeMetrics::get(&engine.metrics().relays_dropped), 0);
}

#[tokio::test]
async fn a_port_another_program_holds_is_skipped() {
    let first = 41800;
    let _held = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, first)).unwrap();
    let (engine, _task) = runtime::spawn(config(first));
    let leg = engine.create_leg(echo_spec()).await.unwrap();
    assert_eq!(leg.local_addr.port(), first + 2, "the next even port of the range");
}

#[tokio::test]
async fn a_leg_bridged_to_an_echo_on_the_other_shard_gets_its_packets_back_undecoded() {
    let (engine, _task) = runtime::spawn(config(41700));
    let leg = engine.create_leg(LegSpec { source: MediaSource::Silence, ..echo_spec() }).await.unwrap();
    let echo = engine.create_local_leg(SampleRate::Hz8000, MediaSource::Echo).await.unwrap();
    assert_ne!(shard_of(leg.id), shard_of(echo), "a new leg goes to the emptier shard");
    engine.bridge(leg.id, echo, bond_media_engine::DtmfPassing::Both).await.unwrap();

    let mut peer = TonePeer::new(leg.local_addr, 1000.0, 3).await;
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..50 {
        pacing.tick().await;
        peer.send_frame().await;
        peer.receive_waiting(0x7F);
    }
    let tail = &peer.heard[peer.heard.len().saturating_sub(160 * 20)..];
    assert!(tone_share(tail, 1000.0, 8000) > 0.9, "the peer hears itself");
    // Mu-law 0x7F (minus zero) comes back as it was sent only if nothing decoded it.
    let mut reflected = false;
    for _ in 0..25 {
        pacing.tick().await;
        peer.send_payload(&[0x7F; 160]).await;
        reflected |= peer.receive_waiting(0x7F);
    }
    assert!(reflected, "no packet came back undecoded");
    assert_eq!(runtime::RuntimeMetrics::get(&engine.metrics().relays_dropped), 0);
}

/// `count` PCMU packets of silence from `socket` to `to`, 20 ms apart.
async fn send_packets(socket: &UdpSocket, to: SocketAddr, ssrc: u32, count: usize) {
    let mut packetizer = Packetizer::new(Ssrc(ssrc), 1000, 0);
    let mut packet = [0u8; 200];
    for _ in 0..count {
        let n = packetizer.write(PayloadType::new(0).unwrap(), &[0xff; 160], 160, &mut packet).unwrap();
        socket.send_to(&packet[..n], to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn once_latched_a_leg_drops_rtp_from_any_other_address() {
    for strict in [true, false] {
        let (engine, _task) = runtime::spawn(RuntimeConfig { strict_source: strict, ..config(41800) });
        let leg = engine.create_leg(echo_spec()).await.unwrap();
        let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        let (peer, intruder) =
            (UdpSocket::bind(loopback).await.unwrap(), UdpSocket::bind(loopback).await.unwrap());
        send_packets(&peer, leg.local_addr, 1, 10).await;
        send_packets(&intruder, leg.local_addr, 2, 10).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = engine.stats(leg.id).await.unwrap().unwrap();
        let expected = if strict { 10 } else { 20 };
        assert_eq!(stats.packets_received, expected, "strict source {strict}: {stats:?}");
        let mut buf = [0u8; 1500];
        let to_intruder = tokio::time::timeout(Duration::from_millis(50), intruder.recv_from(&mut buf)).await;
        assert!(to_intruder.is_err(), "the leg answers only its latched peer");
        engine.shutdown().await.unwrap();
    }
}
