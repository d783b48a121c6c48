//! A peer whose packets are not 20 ms long (its SDP's `ptime`): 30 ms and 10 ms
//! G.711 packets of a 1 kHz tone, and 5, 10, 40 and 60 ms Opus packets encoded
//! by libopus, one every packet time in simulated time, are heard as a clean
//! tone; the statistics count the peer's own packets. A leg sends the packet
//! time its peer asked for (G.711 and Opus 10, 30, 40, 60 ms; Opus as 10 or
//! 20 ms frames joined), audio waiting for its packet
//! leaves before a digit, and a bridge passes through only when both legs send
//! the same.

use std::time::{Duration, Instant};

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::g711::ulaw_encode_slice;
use bond_codecs::signals::sinad_db;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::leg::{DtmfTiming, RtpMedia};
use bond_media_engine::rtp::{Packetizer, RtpPacket, RtpStats};
use bond_media_engine::sim::{epoch, LinkProfile, SimNetwork};
use bond_media_engine::{DtmfSource, Engine, EngineOutput};

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

/// Opus packets of `ptime` ms, none lost: a clean tone, the peer's own packets counted.
fn check_clean_opus_tone(ptime: usize) {
    let (heard, stats) = opus_tone_at_ptime(ptime, 3, None);
    assert!(heard.len() >= 48_000 * 5 / 2, "ptime {ptime}: {} samples", heard.len());
    let steady = &heard[48_000 / 2..heard.len() - 4800];
    let sinad = sinad_db(steady, 1000.0, 48_000);
    assert!(sinad > 20.0, "ptime {ptime}: SINAD {sinad:.1} dB");
    assert_eq!(stats.packets_received as usize, 3000 / ptime, "the peer's packets, not frames");
    assert_eq!((stats.packets_lost, stats.packets_malformed), (0, 0));
    assert!(stats.frames_concealed <= 2, "ptime {ptime}: {} frames concealed", stats.frames_concealed);
}

#[test]
fn forty_and_sixty_ms_opus_packets_play_as_a_clean_tone() {
    check_clean_opus_tone(40);
    check_clean_opus_tone(60);
}

#[test]
fn five_and_ten_ms_opus_packets_are_joined_and_play_as_a_clean_tone() {
    check_clean_opus_tone(5);
    check_clean_opus_tone(10);
}

/// Opus packets of `ptime` ms with the one about 1.5 s in lost: between
/// `concealed` frames concealed, and the tone back after it.
fn check_opus_loss(ptime: usize, concealed: std::ops::RangeInclusive<u64>) {
    let (heard, stats) = opus_tone_at_ptime(ptime, 3, Some(1500 / ptime + 1));
    assert_eq!(stats.packets_lost, 1);
    assert!(concealed.contains(&stats.frames_concealed), "{} frames concealed", stats.frames_concealed);
    let after = &heard[48_000 * 2..heard.len() - 4800];
    let sinad = sinad_db(after, 1000.0, 48_000);
    assert!(sinad > 20.0, "ptime {ptime}: SINAD {sinad:.1} dB after the loss");
}

#[test]
fn a_lost_sixty_ms_opus_packet_is_concealed_as_three_frames_and_the_tone_goes_on() {
    check_opus_loss(60, 3..=5);
}

#[test]
fn a_lost_ten_ms_opus_packet_conceals_its_20_ms_and_the_tone_goes_on() {
    check_opus_loss(10, 1..=3);
}

/// A 1 kHz `codec` leg sending at `packet_ms` into a leg that hears it, with
/// `digits` sent as RFC 4733 events from the tone leg half-way: what the other
/// leg heard, its stats, and the digits it got as events.
fn sent_at_packet_time(
    codec: Codec,
    packet_ms: u32,
    seconds: u64,
    digits: &str,
) -> (Vec<i16>, RtpStats, String) {
    let mut net = SimNetwork::new(9);
    let now = net.now();
    let mut tone = net.engine.leg_config(codec);
    tone.send_events = true;
    let tone = net.engine.add_leg(now, tone, MediaSource::Tone { hz: 1000.0, dbm0: -10.0 }).unwrap();
    net.engine.set_rtp_media(now, tone, RtpMedia { packet_ms, ..RtpMedia::new(codec) }).unwrap();
    let mut ear = net.engine.leg_config(codec);
    ear.emit_heard = true;
    let ear = net.engine.add_leg(now, ear, MediaSource::Silence).unwrap();
    net.connect(tone, ear, LinkProfile::clean(), LinkProfile::clean());
    net.run_for(Duration::from_millis(seconds * 500));
    let digits: Vec<DtmfDigit> = digits.chars().map(|c| DtmfDigit::from_char(c).unwrap()).collect();
    net.engine.send_dtmf(tone, &digits, DtmfTiming::default()).unwrap();
    net.run_for(Duration::from_millis(seconds * 500));
    let events = net.digits(ear, DtmfSource::Rfc4733);
    (net.heard_samples(ear), net.engine.stats(ear).unwrap(), events)
}

#[test]
fn a_leg_sends_the_packet_time_its_peer_asked_for_as_one_continuous_stream() {
    for ms in [10, 30, 40, 60] {
        let (heard, stats, _) = sent_at_packet_time(Codec::Pcmu, ms, 3, "");
        let packets = stats.packets_received;
        assert!(packets.abs_diff(3000 / u64::from(ms)) <= 2, "{ms} ms: {packets} packets in 3 s");
        assert_eq!((stats.packets_lost, stats.packets_malformed), (0, 0), "{ms} ms");
        let steady = &heard[8000 / 2..heard.len() - 800];
        let sinad = sinad_db(steady, 1000.0, 8000);
        assert!(sinad > 30.0, "{ms} ms: SINAD {sinad:.1} dB");
    }
}

#[test]
fn digits_sent_between_packed_audio_arrive_once_and_the_stream_stays_whole() {
    for ms in [30, 60] {
        // The digits start 3 s in and take 1.2 s.
        let (heard, stats, digits) = sent_at_packet_time(Codec::Pcmu, ms, 6, "19#");
        assert_eq!(digits, "19#", "{ms} ms");
        assert_eq!((stats.packets_lost, stats.packets_malformed), (0, 0), "{ms} ms");
        let after = &heard[8000 * 9 / 2..heard.len() - 800];
        let sinad = sinad_db(after, 1000.0, 8000);
        assert!(sinad > 30.0, "{ms} ms: the tone resumes, SINAD {sinad:.1} dB");
    }
}

#[test]
fn an_opus_leg_sends_the_packet_time_asked_as_a_clean_tone_and_digits_between_them() {
    for ms in [10, 30, 40, 60] {
        let (_, stats, _) = sent_at_packet_time(Codec::Opus, ms, 3, "");
        let packets = stats.packets_received;
        assert!(packets.abs_diff(3000 / u64::from(ms)) <= 2, "{ms} ms: {packets} packets in 3 s");
        let (heard, stats, digits) = sent_at_packet_time(Codec::Opus, ms, 6, "4*");
        assert_eq!(digits, "4*", "{ms} ms");
        assert_eq!((stats.packets_lost, stats.packets_malformed), (0, 0), "{ms} ms");
        let after = &heard[48_000 * 4..heard.len() - 4800];
        let sinad = sinad_db(after, 1000.0, 48_000);
        assert!(sinad > 20.0, "{ms} ms: the tone after the digits, SINAD {sinad:.1} dB");
    }
}

#[test]
fn opus_packets_are_what_libopus_reads_as_their_packet_time() {
    for ms in [10u32, 30, 40, 60] {
        let mut engine = Engine::new(4);
        let mut now = epoch();
        let config = engine.leg_config(Codec::Opus);
        let leg = engine.add_leg(now, config, MediaSource::Tone { hz: 440.0, dbm0: -10.0 }).unwrap();
        engine.set_rtp_media(now, leg, RtpMedia { packet_ms: ms, ..RtpMedia::new(Codec::Opus) }).unwrap();
        let mut sent = Vec::new();
        for _ in 0..50 {
            tick(&mut engine, &mut now, &mut sent);
        }
        let expected = 1000 / ms as usize;
        assert!(sent.len().abs_diff(expected) <= 1, "{ms} ms: {} packets in a second", sent.len());
        let units = ms * 48;
        let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
        let mut pcm = [0i16; 5760];
        for pair in sent.windows(2) {
            assert_eq!(pair[1].0.wrapping_sub(pair[0].0), units, "{ms} ms: timestamps a packet apart");
        }
        for (_, _, payload) in &sent {
            assert_eq!(decoder.decode(payload, &mut pcm, false).unwrap(), units as usize, "{ms} ms");
        }
    }
}

/// What a leg sent: (timestamp, is an event, payload), in order.
type Sent = Vec<(u32, bool, Vec<u8>)>;

/// Run the engine's timers due at `now`, move `now` on a tick and collect
/// what was sent; whether anything was.
fn tick(engine: &mut Engine, now: &mut Instant, sent: &mut Sent) -> bool {
    engine.handle_timeout(*now);
    *now += Duration::from_millis(20);
    let before = sent.len();
    while let Some(output) = engine.poll_output() {
        if let EngineOutput::Transmit { data, .. } = output {
            let packet = RtpPacket::parse(&data).unwrap();
            let event = packet.header.payload_type != 0;
            sent.push((packet.header.timestamp, event, packet.payload.to_vec()));
        }
    }
    sent.len() > before
}

#[test]
fn audio_waiting_for_its_packet_leaves_before_a_digit_not_after_it() {
    let mut engine = Engine::new(4);
    let mut now = epoch();
    let mut config = engine.leg_config(Codec::Pcmu);
    config.send_events = true;
    let leg = engine.add_leg(now, config, MediaSource::External).unwrap();
    engine.set_rtp_media(now, leg, RtpMedia { packet_ms: 40, ..RtpMedia::new(Codec::Pcmu) }).unwrap();
    let loud = AudioFrame::from_samples(SampleRate::Hz8000, 0, &[8_000; 160]).unwrap();
    let mut sent = Vec::new();
    // Silence until a tick sends a 40 ms packet; the next one's 20 ms (loud) then waits.
    while !tick(&mut engine, &mut now, &mut sent) {}
    engine.push_frame(leg, &loud).unwrap();
    assert!(!tick(&mut engine, &mut now, &mut sent), "the loud 20 ms waits for the rest of its packet");
    engine.send_dtmf(leg, &[DtmfDigit::from_char('3').unwrap()], DtmfTiming::default()).unwrap();
    for _ in 0..30 {
        tick(&mut engine, &mut now, &mut sent);
    }

    let first_event = sent.iter().position(|(_, event, _)| *event).expect("the digit went as events");
    let loud_at = sent.iter().position(|(_, event, p)| !event && p.iter().any(|&b| b != 0xFF)).unwrap();
    assert!(loud_at < first_event, "the loud audio went before the digit, not after it");
    let (loud_ts, _, loud_payload) = &sent[loud_at];
    assert_eq!(loud_payload.len(), 160, "as a shorter packet of what was waiting");
    assert_eq!(loud_ts + 160, sent[first_event].0, "and the digit starts where it ends");
}
