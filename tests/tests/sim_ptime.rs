//! A peer whose packets are not 20 ms long (its SDP's `ptime`): 30 ms and 10 ms
//! G.711 packets of a 1 kHz tone, and 40 and 60 ms Opus packets encoded by
//! libopus, one every packet time in simulated time, are heard as a clean tone;
//! the statistics count the peer's own packets.

use std::time::Duration;

use bond_codecs::g711::ulaw_encode_slice;
use bond_codecs::signals::sinad_db;
use bond_codecs::Codec;
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::{Packetizer, RtpStats};
use bond_media_engine::sim::SimNetwork;

/// Send `seconds` of 1 kHz at `ptime_ms` per packet into a PCMU leg; what it heard, and its stats.
fn tone_at_ptime(ptime_ms: usize, seconds: usize) -> (Vec<i16>, RtpStats) {
    let mut net = SimNetwork::new(3);
    let mut config = net.engine.leg_config(Codec::Pcmu);
    config.emit_heard = true;
    let leg = net.engine.add_leg(net.now(), config, MediaSource::Silence).unwrap();
    let samples_per_packet = ptime_ms * 8;
    let mut packetizer = Packetizer::new(Ssrc(0x3030), 500, 90_000);
    let (mut pcm, mut ulaw, mut buf) =
        (vec![0i16; samples_per_packet], vec![0u8; samples_per_packet], [0u8; 1500]);
    for p in 0..seconds * 1000 / ptime_ms {
        for (n, s) in pcm.iter_mut().enumerate() {
            let t = (p * samples_per_packet + n) as f64 / 8000.0;
            *s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
        }
        ulaw_encode_slice(&pcm, &mut ulaw);
        let n = packetizer
            .write(PayloadType::new(0).unwrap(), &ulaw, samples_per_packet as u32, &mut buf)
            .unwrap();
        net.engine.handle_receive(net.now(), leg, &buf[..n]).unwrap();
        net.run_for(Duration::from_millis(ptime_ms as u64));
    }
    (net.heard_samples(leg), net.engine.stats(leg).unwrap())
}

#[test]
fn thirty_and_ten_ms_packets_play_as_a_clean_tone() {
    for ptime in [30, 10, 60] {
        let (heard, stats) = tone_at_ptime(ptime, 3);
        let steady = &heard[8000 / 2..heard.len() - 800];
        let sinad = sinad_db(steady, 1000.0, 8000);
        assert!(sinad > 30.0, "ptime {ptime}: SINAD {sinad:.1} dB");
        assert_eq!(stats.packets_received as usize, 3000 / ptime, "the peer's packets, not frames");
        assert_eq!((stats.packets_lost, stats.packets_malformed), (0, 0));
        assert!(stats.frames_concealed <= 2, "ptime {ptime}: {} frames concealed", stats.frames_concealed);
    }
}

/// `seconds` of 1 kHz in Opus packets of `ptime_ms` from libopus, the packet numbered `lost` not
/// sent; what the Opus leg heard (48 kHz), and its stats.
fn opus_tone_at_ptime(ptime_ms: usize, seconds: usize, lost: Option<usize>) -> (Vec<i16>, RtpStats) {
    let mut net = SimNetwork::new(3);
    let mut config = net.engine.leg_config(Codec::Opus);
    config.emit_heard = true;
    let pt = config.payload_type;
    let leg = net.engine.add_leg(net.now(), config, MediaSource::Silence).unwrap();
    let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let samples_per_packet = ptime_ms * 48;
    let mut packetizer = Packetizer::new(Ssrc(0x0905), 500, 90_000);
    let (mut pcm, mut opus_packet, mut buf) = (vec![0i16; samples_per_packet], [0u8; 1275], [0u8; 1500]);
    for p in 0..seconds * 1000 / ptime_ms {
        for (n, s) in pcm.iter_mut().enumerate() {
            let t = (p * samples_per_packet + n) as f64 / 48_000.0;
            *s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
        }
        let len = encoder.encode(&pcm, &mut opus_packet).unwrap();
        let n = packetizer.write(pt, &opus_packet[..len], samples_per_packet as u32, &mut buf).unwrap();
        if lost != Some(p) {
            net.engine.handle_receive(net.now(), leg, &buf[..n]).unwrap();
        }
        net.run_for(Duration::from_millis(ptime_ms as u64));
    }
    (net.heard_samples(leg), net.engine.stats(leg).unwrap())
}

#[test]
fn forty_and_sixty_ms_opus_packets_play_as_a_clean_tone() {
    for ptime in [40, 60] {
        let (heard, stats) = opus_tone_at_ptime(ptime, 3, None);
        assert!(heard.len() >= 48_000 * 5 / 2, "ptime {ptime}: {} samples", heard.len());
        let steady = &heard[48_000 / 2..heard.len() - 4800];
        let sinad = sinad_db(steady, 1000.0, 48_000);
        assert!(sinad > 20.0, "ptime {ptime}: SINAD {sinad:.1} dB");
        assert_eq!(stats.packets_received as usize, 3000 / ptime, "the peer's packets, not frames");
        assert_eq!((stats.packets_lost, stats.packets_malformed), (0, 0));
        assert!(stats.frames_concealed <= 2, "ptime {ptime}: {} frames concealed", stats.frames_concealed);
    }
}

#[test]
fn a_lost_sixty_ms_opus_packet_is_concealed_as_three_frames_and_the_tone_goes_on() {
    let (heard, stats) = opus_tone_at_ptime(60, 3, Some(25));
    assert_eq!(stats.packets_lost, 1);
    assert!((3..=5).contains(&stats.frames_concealed), "{} frames concealed", stats.frames_concealed);
    // After the loss (1.5 s in, played about 60 ms later) the tone is back.
    let after = &heard[48_000 * 2..heard.len() - 4800];
    let sinad = sinad_db(after, 1000.0, 48_000);
    assert!(sinad > 20.0, "SINAD {sinad:.1} dB after the loss");
}
