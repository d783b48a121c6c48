//! Passthrough bridges: two SIP legs with the same codec and packet time forward packets as
//! they arrive, undecoded, and fall back to decoding while something needs the
//! audio (recording, a clip, digits to play, mute, hold, a detector).

use std::sync::Arc;
use std::time::Duration;

use bond_codecs::dtmf::{DtmfDigit, TelephoneEvent};
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::amd::AmdConfig;
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::{Clip, DtmfTiming, LegConfig, MediaSource, PacketBatch, RecordTap, RtpMedia};
use bond_media_engine::rtp::{Packetizer, RtpPacket};
use bond_media_engine::sim::{epoch, LinkProfile, SimNetwork};
use bond_media_engine::{DtmfPassing, DtmfSource, Engine, EngineEvent, EngineOutput, HangupCause, LegId};
use bond_tests::tone_share;

const MS20: Duration = Duration::from_millis(20);

/// Two SIP-style legs (RFC 4733, passthrough allowed) with `codec_a`/`codec_b`, bridged.
pub(crate) fn bridged(
    engine: &mut Engine,
    codec_a: Codec,
    codec_b: Codec,
    dtmf: DtmfPassing,
) -> (LegId, LegId) {
    let now = epoch();
    let mut legs = [codec_a, codec_b].map(|codec| {
        let mut config = engine.leg_config(codec);
        config.send_events = true;
        config.passthrough = true;
        engine.add_leg(now, config, MediaSource::Silence).unwrap()
    });
    engine.bridge_with(legs[0], legs[1], dtmf).unwrap();
    legs.sort();
    (legs[0], legs[1])
}

/// What the engine transmitted for `leg`, parsed: (payload type, seq, timestamp, ssrc, marker, payload).
pub(crate) type Sent = (u8, u16, u32, u32, bool, Vec<u8>);

pub(crate) fn transmitted(engine: &mut Engine, leg: LegId) -> Vec<Sent> {
    let mut sent = Vec::new();
    while let Some(output) = engine.poll_output() {
        if let EngineOutput::Transmit { leg: l, data } = output {
            if l == leg {
                let p = RtpPacket::parse(&data).unwrap();
                let h = p.header;
                sent.push((
                    h.payload_type,
                    h.sequence_number,
                    h.timestamp,
                    h.ssrc,
                    h.marker,
                    p.payload.to_vec(),
                ));
            }
        }
    }
    sent
}

/// A peer's PCMU stream into a leg: packet `n` carries bytes `n, n+1, ...`.
pub(crate) struct Peer {
    packetizer: Packetizer,
    buf: [u8; 256],
}

impl Peer {
    pub(crate) fn new() -> Self {
        Self { packetizer: Packetizer::new(Ssrc(0xCAFE), 500, 90_000), buf: [0; 256] }
    }

    pub(crate) fn packet(&mut self, n: u8) -> Vec<u8> {
        let payload: Vec<u8> = (0..160).map(|i| n.wrapping_add(i as u8)).collect();
        let len = self.packetizer.write(PayloadType::new(0).unwrap(), &payload, 160, &mut self.buf).unwrap();
        self.buf[..len].to_vec()
    }
}

#[test]
fn a_packet_leaves_the_peer_leg_the_moment_it_arrives_with_its_payload_unchanged() {
    let mut engine = Engine::new(1);
    let (a, b) = bridged(&mut engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    assert!(engine.is_passthrough(a) && engine.is_passthrough(b));
    transmitted(&mut engine, b);
    let mut peer = Peer::new();
    let mut sent = Vec::new();
    for n in 0..10u8 {
        let at = epoch() + MS20 * u32::from(n);
        let packet = peer.packet(n);
        if n == 4 {
            continue; // lost on the way to Bond
        }
        engine.handle_receive(at, a, &packet).unwrap();
        // Forwarded at once: no tick ran in between.
        let out = transmitted(&mut engine, b);
        assert_eq!(out.len(), 1, "packet {n} forwarded on arrival");
        sent.extend(out);
    }
    let (pt, seq0, ts0, ssrc, marker, _) = sent[0].clone();
    assert_eq!(pt, 0);
    assert!(marker, "a new stream starts with the marker");
    assert_ne!(ssrc, 0xCAFE, "sent on the leg's own SSRC");
    for (i, (_, seq, ts, s, _, payload)) in sent.iter().enumerate() {
        let n = if i >= 4 { i + 1 } else { i } as u16;
        assert_eq!(*seq, seq0.wrapping_add(n), "the gap of the lost packet passes through");
        assert_eq!(*ts, ts0.wrapping_add(u32::from(n) * 160));
        assert_eq!(*s, ssrc);
        let expected: Vec<u8> = (0..160).map(|k| (n as u8).wrapping_add(k as u8)).collect();
        assert_eq!(payload, &expected, "payload unchanged");
    }
    // Nothing ticks while passing through: no deadline but the media timeout.
    assert!(engine.poll_timeout().unwrap() > epoch() + Duration::from_secs(20));
    assert_eq!(engine.stats(a).unwrap().packets_lost, 1);
    assert_eq!(engine.stats(b).unwrap().packets_sent, 9);
}

#[test]
fn telephone_events_cross_on_the_peer_legs_payload_type_and_are_reported_once() {
    let mut engine = Engine::new(2);
    let (a, b) = bridged(&mut engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    let mut p = Packetizer::new(Ssrc(9), 10, 8000);
    let mut buf = [0u8; 64];
    let digit = DtmfDigit::from_char('7').unwrap();
    let mut events = Vec::new();
    for (i, end) in [false, false, true, true].into_iter().enumerate() {
        let event = TelephoneEvent { digit, end, volume: 10, duration: 160 * (i as u16 + 1) };
        let n = p.write_at(PayloadType::new(101).unwrap(), &event.encode(), 8000, i == 0, &mut buf).unwrap();
        engine.handle_receive(epoch() + MS20 * i as u32, a, &buf[..n]).unwrap();
        while let Some(output) = engine.poll_output() {
            match output {
                EngineOutput::Transmit { leg, data } if leg == b => {
                    let packet = RtpPacket::parse(&data).unwrap();
                    events.push((packet.header.payload_type, packet.header.timestamp));
                }
                EngineOutput::Event(EngineEvent::DtmfReceived { leg, digit, source }) => {
                    assert_eq!((leg, digit.as_char(), source), (a, '7', DtmfSource::Rfc4733));
                }
                _ => {}
            }
        }
    }
    assert_eq!(events.len(), 4, "every event packet forwarded, none replayed as tones");
    assert!(events.iter().all(|&(pt, ts)| pt == 101 && ts == events[0].1), "one event, one timestamp");
}

#[test]
fn only_a_bridge_whose_audio_nobody_needs_passes_through() {
    type Setup = fn(&mut Engine, LegId, LegId);
    let cases: [(&str, Codec, DtmfPassing, Setup); 9] = [
        ("same codec", Codec::Pcmu, DtmfPassing::Both, |_, _, _| {}),
        ("different codecs", Codec::Pcma, DtmfPassing::Both, |_, _, _| {}),
        ("mute_dtmf", Codec::Pcmu, DtmfPassing::FromFirst, |_, _, _| {}),
        ("recording", Codec::Pcmu, DtmfPassing::Both, |e, a, _| {
            e.set_recording(a, RecordTap::Frames).unwrap()
        }),
        ("muted", Codec::Pcmu, DtmfPassing::Both, |e, _, b| e.set_mute(b, false, true).unwrap()),
        ("held", Codec::Pcmu, DtmfPassing::Both, |e, a, _| e.hold(a, &MediaSource::Silence).unwrap()),
        ("detector", Codec::Pcmu, DtmfPassing::Both, |e, a, _| e.start_amd(a, AmdConfig::default()).unwrap()),
        ("digits to send", Codec::Pcmu, DtmfPassing::Both, |e, _, b| {
            e.send_dtmf(b, &[DtmfDigit::from_char('1').unwrap()], DtmfTiming::default()).unwrap()
        }),
        ("a clip to play", Codec::Pcmu, DtmfPassing::Both, |e, a, _| {
            let clip = Clip {
                id: 1,
                rate: SampleRate::Hz8000,
                samples: Arc::from(vec![0i16; 800]),
                plays: None,
                duck: false,
            };
            e.play(a, clip, false).unwrap()
        }),
    ];
    for (i, (name, codec_b, dtmf, setup)) in cases.into_iter().enumerate() {
        let mut engine = Engine::new(3);
        let (a, b) = bridged(&mut engine, Codec::Pcmu, codec_b, dtmf);
        setup(&mut engine, a, b);
        let expected = i == 0;
        assert_eq!(engine.is_passthrough(a), expected, "{name}");
        assert_eq!(engine.is_passthrough(b), expected, "{name}");
    }
}

#[test]
fn legs_without_rfc4733_or_without_the_setting_always_decode() {
    let mut engine = Engine::new(4);
    let now = epoch();
    let mut plain = engine.leg_config(Codec::Pcmu);
    plain.send_events = true;
    let off = engine.add_leg(now, plain.clone(), MediaSource::Silence).unwrap();
    plain.passthrough = true;
    plain.telephone_event_pt = None;
    let no_events = engine.add_leg(now, plain, MediaSource::Silence).unwrap();
    engine.bridge(off, no_events).unwrap();
    assert!(!engine.is_passthrough(off) && !engine.is_passthrough(no_events));
}

#[test]
fn a_bridge_passes_through_only_while_both_legs_send_the_same_packet_time() {
    let mut engine = Engine::new(6);
    let (a, b) = bridged(&mut engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    let at = |packet_ms| RtpMedia { packet_ms, ..RtpMedia::new(Codec::Pcmu) };
    engine.set_rtp_media(epoch(), a, at(30)).unwrap();
    assert!(!engine.is_passthrough(a) && !engine.is_passthrough(b), "30 ms one way, 20 the other");
    engine.set_rtp_media(epoch(), b, at(30)).unwrap();
    assert!(engine.is_passthrough(a) && engine.is_passthrough(b), "30 ms both ways");
}

/// Two phones talking through a passthrough bridge over simulated links.
fn phones_through_a_bridge(net: &mut SimNetwork, a_link: LinkProfile) -> (LegId, LegId, LegId, LegId) {
    let now = net.now();
    let tone = MediaSource::Tone { hz: 1000.0, dbm0: -10.0 };
    let mut phone_cfg = net.engine.leg_config(Codec::Pcmu);
    phone_cfg.emit_heard = true;
    let phone_a = net.engine.add_leg(now, phone_cfg.clone(), tone).unwrap();
    let phone_cfg = net.engine.leg_config(Codec::Pcmu);
    let phone_b =
        net.engine.add_leg(now, LegConfig { emit_heard: true, ..phone_cfg }, MediaSource::Silence).unwrap();
    let (bond_a, bond_b) = bridged(&mut net.engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    net.connect(phone_a, bond_a, a_link, LinkProfile::clean());
    net.connect(phone_b, bond_b, LinkProfile::clean(), LinkProfile::clean());
    (phone_a, bond_a, phone_b, bond_b)
}

#[test]
fn loss_on_one_side_reaches_the_far_phone_and_its_own_buffer_conceals_it() {
    let mut net = SimNetwork::new(5);
    let (_, bond_a, phone_b, _) = phones_through_a_bridge(&mut net, LinkProfile::lossy(30, 15, 0.05, 7));
    net.run_for(Duration::from_secs(20));
    assert!(net.engine.is_passthrough(bond_a));
    let lost_into_bond = net.engine.stats(bond_a).unwrap().packets_lost;
    let lost_at_phone = net.engine.stats(phone_b).unwrap().packets_lost;
    assert!(lost_into_bond > 20, "the link lost {lost_into_bond}");
    assert_eq!(lost_at_phone, lost_into_bond, "passthrough neither hides nor adds loss");
    let heard = net.heard_samples(phone_b);
    assert!(tone_share(&heard[8000..], 1000.0, 8000) > 0.8);
}

#[test]
fn a_recording_takes_the_bridge_off_passthrough_and_the_far_stream_stays_in_sequence() {
    let mut net = SimNetwork::new(6);
    let (_, bond_a, phone_b, bond_b) = phones_through_a_bridge(&mut net, LinkProfile::clean());
    net.run_for(Duration::from_secs(2));
    assert!(net.engine.is_passthrough(bond_b));
    net.engine.set_recording(bond_a, RecordTap::Frames).unwrap();
    assert!(!net.engine.is_passthrough(bond_b));
    net.run_for(Duration::from_secs(2));
    let recorded = net.recorded(bond_a).len();
    assert!((99..=101).contains(&recorded), "{recorded} ticks recorded in 2 s");
    net.engine.set_recording(bond_a, RecordTap::Off).unwrap();
    assert!(net.engine.is_passthrough(bond_b));
    net.run_for(Duration::from_secs(2));

    // The far phone's stream had no gap, duplicate or jump at either switch.
    let stats = net.engine.stats(phone_b).unwrap();
    assert_eq!(stats.packets_lost, 0);
    assert_eq!(stats.packets_late, 0);
    let heard = net.heard_samples(phone_b);
    assert!(tone_share(&heard[8000..], 1000.0, 8000) > 0.9, "the tone throughout");
}

/// A recording's packets, decoded and laid out as the writer does: (inbound, outbound)
/// from the first packet's place on, silence where nothing arrived.
fn lay_out(batches: &[PacketBatch]) -> (Vec<i16>, Vec<i16>) {
    let packets: Vec<(bool, u64, Vec<u8>)> =
        batches.iter().flat_map(|b| b.packets().map(|(o, at, p)| (o, at, p.to_vec()))).collect();
    let start = packets.iter().map(|p| p.1).min().unwrap();
    let end = packets.iter().map(|p| p.1 + p.2.len() as u64).max().unwrap();
    let mut channels = [vec![0i16; (end - start) as usize], vec![0i16; (end - start) as usize]];
    for (outbound, at, payload) in packets {
        let from = (at - start) as usize;
        let channel = &mut channels[usize::from(outbound)];
        bond_codecs::g711::ulaw_decode_slice(&payload, &mut channel[from..from + payload.len()]);
    }
    let [inbound, outbound] = channels;
    (inbound, outbound)
}

#[test]
fn a_recording_that_takes_packets_keeps_the_bridge_on_passthrough_and_gets_both_directions() {
    let mut net = SimNetwork::new(16);
    let now = net.now();
    let phones = [1000.0, 500.0].map(|hz| {
        let config = net.engine.leg_config(Codec::Pcmu);
        net.engine.add_leg(now, config, MediaSource::Tone { hz, dbm0: -10.0 }).unwrap()
    });
    let (bond_a, bond_b) = bridged(&mut net.engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    // Jitter and loss on the way in: packets are placed by timestamp, not arrival.
    net.connect(phones[0], bond_a, LinkProfile::lossy(30, 15, 0.02, 3), LinkProfile::clean());
    net.connect(phones[1], bond_b, LinkProfile::clean(), LinkProfile::clean());
    net.run_for(Duration::from_secs(1));
    net.engine.set_recording(bond_a, RecordTap::FramesOrPackets).unwrap();
    net.run_for(Duration::from_secs(3));
    assert!(net.engine.is_passthrough(bond_a) && net.engine.is_passthrough(bond_b));
    assert!(net.recorded(bond_a).is_empty(), "no ticks while passing through");
    net.engine.set_recording(bond_a, RecordTap::Off).unwrap();
    net.run_for(Duration::from_secs(1));

    let batches = net.recorded_packets(bond_a);
    let (inbound, outbound) = lay_out(batches);
    let seconds = inbound.len() as f64 / 8000.0;
    assert!((2.9..=3.1).contains(&seconds), "{seconds} s recorded in 3 s");
    let inbound_at: Vec<u64> =
        batches.iter().flat_map(|b| b.packets().filter(|p| !p.0).map(|p| p.1)).collect();
    let (first, last) = (inbound_at.iter().min().unwrap(), inbound_at.iter().max().unwrap());
    let slots = ((last - first) / 160 + 1) as usize;
    assert!(inbound_at.iter().all(|at| (at - first) % 160 == 0), "every packet on the 20 ms grid");
    assert!((140..slots).contains(&inbound_at.len()), "{} of {slots} arrived", inbound_at.len());
    assert!(tone_share(&inbound, 1000.0, 8000) > 0.9, "left: the caller, in place despite the jitter");
    assert!(tone_share(&outbound, 500.0, 8000) > 0.9, "right: what the far side said");
    // In place: 20 ms of silence for each packet lost, none for a late one.
    let silent: usize = inbound.split(|&s| s != 0).filter(|run| run.len() >= 100).map(|run| run.len()).sum();
    let silent = silent / 160;
    assert_eq!(silent, slots - inbound_at.len(), "one silent frame for each packet lost");
}

#[test]
fn a_recording_that_takes_packets_still_decodes_a_bridge_that_must_decode() {
    let mut engine = Engine::new(17);
    let l16 = Codec::L16 { rate: SampleRate::Hz16000, order: bond_codecs::l16::ByteOrder::BigEndian };
    let (a, b) = bridged(&mut engine, l16, l16, DtmfPassing::Both);
    assert!(engine.is_passthrough(a) && engine.is_passthrough(b));
    engine.set_recording(a, RecordTap::FramesOrPackets).unwrap();
    assert!(!engine.is_passthrough(a) && !engine.is_passthrough(b), "L16 is recorded as frames");
    for codec in [Codec::Pcma, Codec::G722, Codec::Opus] {
        let (c, d) = bridged(&mut engine, codec, codec, DtmfPassing::Both);
        engine.set_recording(c, RecordTap::FramesOrPackets).unwrap();
        assert!(engine.is_passthrough(c) && engine.is_passthrough(d), "{codec:?}");
    }
}

#[test]
fn a_clip_played_to_one_side_interrupts_passthrough_until_it_ends() {
    let mut net = SimNetwork::new(7);
    let (_, _, phone_b, bond_b) = phones_through_a_bridge(&mut net, LinkProfile::clean());
    net.run_for(Duration::from_secs(1));
    let beep: Vec<i16> = bond_codecs::signals::sine(440.0, 8000, 8000, 8000.0);
    let clip =
        Clip { id: 9, rate: SampleRate::Hz8000, samples: Arc::from(beep), plays: Some(1), duck: false };
    net.engine.play(bond_b, clip, false).unwrap();
    assert!(!net.engine.is_passthrough(bond_b));
    net.run_for(Duration::from_secs(2));
    assert!(net.engine.is_passthrough(bond_b), "back once the clip ended");
    let heard = net.heard_samples(phone_b);
    let at = |from: f64, to: f64| heard[(from * 8000.0) as usize..(to * 8000.0) as usize].to_vec();
    assert!(tone_share(&at(1.2, 1.9), 440.0, 8000) > 0.9, "the clip");
    assert!(tone_share(&at(2.3, 2.9), 1000.0, 8000) > 0.9, "the other side again");
}

#[test]
fn a_silent_peer_still_times_out_while_its_bridge_passes_through() {
    let mut net = SimNetwork::new(8);
    let (phone_a, bond_a, _, _) = phones_through_a_bridge(&mut net, LinkProfile::clean());
    net.run_for(Duration::from_secs(40));
    assert!(net.events().iter().all(|(_, e)| !matches!(e, EngineEvent::LegEnded { .. })), "media flows");
    net.engine.hangup(phone_a, HangupCause::NormalClearing).unwrap();
    net.run_for(Duration::from_secs(29));
    let timed_out = |net: &SimNetwork| {
        net.events().iter().any(|(_, e)| {
            matches!(e, EngineEvent::LegEnded { leg, cause: HangupCause::MediaTimeout, .. } if *leg == bond_a)
        })
    };
    assert!(!timed_out(&net), "not before 30 s of silence");
    net.run_for(Duration::from_secs(2));
    assert!(timed_out(&net));
}

/// A SIP-style leg (RFC 4733, passthrough allowed) bridged with a `loop:echo` local leg.
pub(crate) fn echoed(engine: &mut Engine, send_events: bool) -> (LegId, LegId) {
    let mut config = engine.leg_config(Codec::Pcmu);
    config.send_events = send_events;
    config.passthrough = true;
    let leg = engine.add_leg(epoch(), config, MediaSource::Silence).unwrap();
    let echo = engine.add_local_leg(epoch(), SampleRate::Hz8000, MediaSource::Echo);
    engine.bridge(leg, echo).unwrap();
    (leg, echo)
}

#[test]
fn an_echo_sends_each_packet_straight_back_until_it_records_and_again_after() {
    let mut engine = Engine::new(5);
    let (leg, echo) = echoed(&mut engine, true);
    assert!(engine.is_passthrough(leg), "an idle echo reflects");
    transmitted(&mut engine, leg);
    let mut peer = Peer::new();
    let mut back = Vec::new();
    for n in 0..10u8 {
        engine.handle_receive(epoch() + MS20 * u32::from(n), leg, &peer.packet(n)).unwrap();
        let out = transmitted(&mut engine, leg);
        assert_eq!(out.len(), 1, "packet {n} comes back the moment it arrives");
        back.extend(out);
    }
    let (_, seq0, ts0, ssrc, marker, _) = back[0].clone();
    assert!(marker && ssrc != 0xCAFE, "on the leg's own stream");
    for (n, (_, seq, ts, s, _, payload)) in back.iter().enumerate() {
        assert_eq!((*seq, *ts, *s), (seq0.wrapping_add(n as u16), ts0.wrapping_add(n as u32 * 160), ssrc));
        let expected: Vec<u8> = (0..160).map(|k| (n as u8).wrapping_add(k as u8)).collect();
        assert_eq!(payload, &expected, "payload unchanged");
    }
    assert!(engine.poll_timeout().unwrap() > epoch() + Duration::from_secs(20), "neither leg ticks");

    // Recording the echo needs its audio: decoded and echoed a tick later, through the playout buffer.
    engine.set_recording(echo, RecordTap::Frames).unwrap();
    assert!(!engine.is_passthrough(leg));
    let mut at = epoch() + MS20 * 10;
    let mut decoded = 0;
    for n in 10..40u8 {
        engine.handle_receive(at, leg, &peer.packet(n)).unwrap();
        assert!(transmitted(&mut engine, leg).is_empty(), "nothing goes back on arrival");
        at += MS20;
        while engine.poll_timeout().is_some_and(|t| t <= at) {
            engine.handle_timeout(at);
            decoded += transmitted(&mut engine, leg).len();
        }
    }
    assert!((25..=31).contains(&decoded), "one packet a tick: {decoded}");
    engine.set_recording(echo, RecordTap::Off).unwrap();
    assert!(engine.is_passthrough(leg), "back to reflecting once the recording stops");
    let _ = transmitted(&mut engine, leg);
    engine.handle_receive(at, leg, &peer.packet(40)).unwrap();
    let again = transmitted(&mut engine, leg);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].3, ssrc, "one stream throughout");

    engine.unbridge(leg).unwrap();
    assert!(!engine.is_passthrough(leg));
    assert!(engine.poll_timeout().is_some_and(|t| t <= at + MS20), "both tick again on their own");
}

#[test]
fn an_echo_on_a_leg_without_rfc_4733_decodes() {
    let mut engine = Engine::new(6);
    let (leg, _) = echoed(&mut engine, false);
    assert!(!engine.is_passthrough(leg), "in-band digits need the decoder's detector");
}
