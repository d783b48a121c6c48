//! SRTP at the runtime's sockets (SDES keys in `RtpMedia::srtp`): a peer with
//! the mirrored keys sends a protected tone to an echo leg and gets it back
//! protected; a packet with a bad tag, a replay and a plain RTP packet from the
//! same peer are refused, counted, and never reach the leg. An SRTP leg bridged
//! to a plain one passes packets through undecoded, decrypted one way and
//! re-protected the other.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bond_codecs::g711;
use bond_codecs::signals::Oscillator;
use bond_codecs::Codec;
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::{MediaSource, RtpMedia, Srtp, SrtpKeys};
use bond_media_engine::rtp::rtcp::is_rtcp;
use bond_media_engine::rtp::srtp::{SrtpKey, SrtpSession, SrtpSuite, KEY_MATERIAL};
use bond_media_engine::rtp::{Packetizer, RtpPacket};
use bond_media_engine::runtime::{self, LegSpec, PortRange, RuntimeConfig, RuntimeMetrics};
use bond_tests::tone_share;
use tokio::net::UdpSocket;

fn config(first_port: u16) -> RuntimeConfig {
    RuntimeConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtp_ports: PortRange::new(first_port, first_port + 20).unwrap(),
        seed: 12,
        webrtc: None,
        opus: Default::default(),
        shards: 1,
        passthrough: true,
        rtcp: true,
        driver_threads: true,
        strict_source: true,
        kernel_relay: false,
    }
}

/// What `read` gives once it reaches `wanted`, or after a second of trying.
async fn read_until<F, Fut>(mut read: F, wanted: u64) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    for _ in 0..100 {
        let now = read().await;
        if now >= wanted {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    read().await
}

#[tokio::test]
async fn an_srtp_leg_echoes_a_protected_tone_and_refuses_bad_tags_and_plain_rtp() {
    let (engine, _task) = runtime::spawn(config(41800));
    let bond_key = SrtpKey { suite: SrtpSuite::AesCm128HmacSha1_80, material: [3; KEY_MATERIAL] };
    let peer_key = SrtpKey { suite: SrtpSuite::AesCm128HmacSha1_80, material: [9; KEY_MATERIAL] };
    let media = RtpMedia {
        srtp: Srtp::On(SrtpKeys { local: bond_key, remote: peer_key }),
        ..RtpMedia::new(Codec::Pcmu)
    };
    let spec = LegSpec { media, source: MediaSource::Echo, remote: None, media_timeout: None };
    let leg = engine.create_leg(spec).await.unwrap();
    let mut peer_srtp = SrtpSession::new(&peer_key, &bond_key).unwrap();

    let peer = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.unwrap();
    let mut packetizer = Packetizer::new(Ssrc(42), 1000, 0);
    let mut osc = Oscillator::new(1000.0, 8000, 8000.0);
    let (mut pcm, mut payload, mut packet) = ([0i16; 160], [0u8; 160], [0u8; 200]);
    let (mut returned, mut recv_buf) = (Vec::new(), [0u8; 1500]);
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    let mut last_protected = Vec::new();
    for _ in 0..50 {
        pacing.tick().await;
        osc.fill(&mut pcm);
        g711::ulaw_encode_slice(&pcm, &mut payload);
        let n = packetizer.write(PayloadType::new(0).unwrap(), &payload, 160, &mut packet).unwrap();
        last_protected = peer_srtp.protect(&packet[..n]).unwrap().to_vec();
        peer.send_to(&last_protected, leg.local_addr).await.unwrap();
        while let Ok((n, _)) = peer.try_recv_from(&mut recv_buf) {
            if is_rtcp(&recv_buf[..n]) {
                continue;
            }
            assert!(RtpPacket::parse(&recv_buf[..n]).is_ok());
            let plain = peer_srtp.unprotect(&recv_buf[..n]).expect("Bond's packets verify with its key");
            let rtp = RtpPacket::parse(&plain).unwrap();
            let mut decoded = [0i16; 160];
            g711::ulaw_decode_slice(rtp.payload, &mut decoded);
            returned.extend_from_slice(&decoded);
        }
    }
    assert!(returned.len() >= 160 * 25, "got {} samples back", returned.len());
    assert!(tone_share(&returned[returned.len() - 1600..], 1000.0, 8000) > 0.9, "the echo is the tone");

    let received = || async { engine.stats(leg.id).await.unwrap().unwrap().packets_received };
    assert_eq!(read_until(&received, 50).await, 50, "every protected packet reached the leg");
    let mut tampered = last_protected.clone();
    *tampered.last_mut().unwrap() ^= 0xff;
    peer.send_to(&tampered, leg.local_addr).await.unwrap();
    let n = packetizer.write(PayloadType::new(0).unwrap(), &payload, 160, &mut packet).unwrap();
    peer.send_to(&packet[..n], leg.local_addr).await.unwrap();
    peer.send_to(&last_protected, leg.local_addr).await.unwrap(); // a replay
    let metrics = engine.metrics();
    assert_eq!(read_until(|| async { RuntimeMetrics::get(&metrics.srtp_rejected) }, 3).await, 3);
    assert_eq!(received().await, 50, "none of them reached the leg");
}

#[tokio::test]
async fn an_srtp_leg_and_a_plain_one_bridged_pass_packets_through_re_protected_not_decoded() {
    // One shard: the bridge is local to one engine, so it passes through.
    let (engine, _task) = runtime::spawn(RuntimeConfig { shards: 1, ..config(41850) });
    let bond_key = SrtpKey { suite: SrtpSuite::AesCm128HmacSha1_32, material: [5; KEY_MATERIAL] };
    let peer_key = SrtpKey { suite: SrtpSuite::AesCm128HmacSha1_32, material: [6; KEY_MATERIAL] };
    let srtp = Srtp::On(SrtpKeys { local: bond_key, remote: peer_key });
    let mut peers = Vec::new();
    for keys in [srtp, Srtp::Off] {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let media = RtpMedia { srtp: keys, ..RtpMedia::new(Codec::Pcmu) };
        let remote = Some(socket.local_addr().unwrap());
        let spec = LegSpec { media, source: MediaSource::Silence, remote, media_timeout: None };
        peers.push((socket, engine.create_leg(spec).await.unwrap()));
    }
    let (secure, plain) = (peers[0].1.id, peers[1].1.id);
    engine.bridge(secure, plain, bond_media_engine::DtmfPassing::Both).await.unwrap();
    let mut peer_srtp = SrtpSession::new(&peer_key, &bond_key).unwrap();
    let mut packetizers = [Packetizer::new(Ssrc(1), 0, 0), Packetizer::new(Ssrc(2), 0, 0)];
    let (mut packet, mut buf) = ([0u8; 200], [0u8; 1500]);
    let (mut to_plain, mut to_secure) = (Vec::new(), Vec::new());
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    for tick in 0..50u8 {
        pacing.tick().await;
        // Payload bytes that say who sent them and when: passthrough leaves them as they are.
        for (side, (socket, leg)) in peers.iter().enumerate() {
            let payload = [tick.wrapping_mul(2) + side as u8; 160];
            let n =
                packetizers[side].write(PayloadType::new(0).unwrap(), &payload, 160, &mut packet).unwrap();
            let datagram = match side {
                0 => peer_srtp.protect(&packet[..n]).unwrap().to_vec(),
                _ => packet[..n].to_vec(),
            };
            socket.send_to(&datagram, leg.local_addr).await.unwrap();
        }
        while let Ok((n, _)) = peers[1].0.try_recv_from(&mut buf) {
            if let Some(rtp) = RtpPacket::parse(&buf[..n]).ok().filter(|_| !is_rtcp(&buf[..n])) {
                to_plain.push(rtp.payload[0]);
            }
        }
        while let Ok((n, _)) = peers[0].0.try_recv_from(&mut buf) {
            if is_rtcp(&buf[..n]) {
                continue;
            }
            let plain = peer_srtp.unprotect(&buf[..n]).expect("re-protected with Bond's key");
            to_secure.push(RtpPacket::parse(&plain).unwrap().payload[0]);
        }
    }
    // What the SRTP side sent reached the plain side decrypted, bytes unchanged, and back the other way.
    assert!(to_plain.len() >= 40 && to_plain.iter().all(|b| b % 2 == 0), "{to_plain:?}");
    assert!(to_secure.len() >= 40 && to_secure.iter().all(|b| b % 2 == 1), "{to_secure:?}");
    assert!(RuntimeMetrics::get(&engine.metrics().packets_passed_through) >= 80, "undecoded, both ways");
}

#[tokio::test]
async fn a_leg_awaiting_its_peers_key_takes_nothing_in_until_the_answer_gives_it() {
    let (engine, _task) = runtime::spawn(config(41900));
    let bond_key = SrtpKey { suite: SrtpSuite::AesCm128HmacSha1_80, material: [7; KEY_MATERIAL] };
    let peer_key = SrtpKey { suite: SrtpSuite::AesCm128HmacSha1_80, material: [8; KEY_MATERIAL] };
    let media =
        RtpMedia { srtp: Srtp::Awaiting, send: false, expect_media: false, ..RtpMedia::new(Codec::Pcmu) };
    let spec = LegSpec { media, source: MediaSource::Echo, remote: None, media_timeout: None };
    let leg = engine.create_leg(spec).await.unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut peer_srtp = SrtpSession::new(&peer_key, &bond_key).unwrap();
    let mut packetizer = Packetizer::new(Ssrc(3), 0, 0);
    let mut packet = [0u8; 200];
    let mut send = |protect: bool| {
        let n = packetizer.write(PayloadType::new(0).unwrap(), &[0x55; 160], 160, &mut packet).unwrap();
        if protect {
            peer_srtp.protect(&packet[..n]).unwrap().to_vec()
        } else {
            packet[..n].to_vec()
        }
    };
    // Early media before the answer: SRTP Bond has no key for yet, and plain RTP.
    for protect in [true, false] {
        peer.send_to(&send(protect), leg.local_addr).await.unwrap();
    }
    let metrics = engine.metrics();
    let received = || async { engine.stats(leg.id).await.unwrap().unwrap().packets_received };
    assert_eq!(read_until(|| async { RuntimeMetrics::get(&metrics.srtp_rejected) }, 2).await, 2);
    assert_eq!(received().await, 0, "nothing decoded before the keys");

    let keys = Srtp::On(SrtpKeys { local: bond_key, remote: peer_key });
    engine.update_rtp(leg.id, RtpMedia { srtp: keys, ..RtpMedia::new(Codec::Pcmu) }, None).await.unwrap();
    peer.send_to(&send(true), leg.local_addr).await.unwrap();
    assert_eq!(read_until(&received, 1).await, 1, "the answer's key opens the leg");
}
