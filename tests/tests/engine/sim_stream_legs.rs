//! Carrier media-stream legs in simulated time: chunks in (out of order, some
//! missing), 20 ms payloads out, bridged across codecs, marks and clear; and
//! passed through undecoded to a leg of the same codec.

use std::time::Duration;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::signals::{sinad_db, sine};
use bond_codecs::{g711, Codec, SampleRate};
use bond_media_engine::leg::{DtmfTiming, MediaSource, RecordTap};
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{EngineEvent, LegId, StreamOutput};
use bond_tests::{heard_digits, stream_pcm, tone_share};

/// Chunks numbered from 1, as carriers number them.
fn numbered(chunks: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    (1..).zip(chunks).collect()
}

/// Feed chunks in real time (one per 20 ms), in the order given.
fn feed(net: &mut SimNetwork, leg: LegId, chunks: &[(u64, Vec<u8>)]) {
    for (chunk, payload) in chunks {
        net.engine.handle_stream_media(net.now(), leg, *chunk, payload).unwrap();
        net.run_for(Duration::from_millis(20));
    }
}

/// Two stream legs, of `codec_a` and `codec_b`, bridged.
fn bridged_streams(
    net: &mut SimNetwork,
    codec_a: Codec,
    codec_b: Codec,
    passthrough: bool,
) -> (LegId, LegId) {
    let a = net.engine.add_stream_leg(net.now(), codec_a, passthrough).unwrap();
    let b = net.engine.add_stream_leg(net.now(), codec_b, passthrough).unwrap();
    net.engine.bridge(a, b).unwrap();
    (a, b)
}

fn marks_of(net: &SimNetwork, leg: LegId) -> Vec<(Duration, String)> {
    net.streamed()
        .iter()
        .filter_map(|(at, l, out)| match out {
            StreamOutput::Mark(name) if *l == leg => Some((*at, name.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_tone_streamed_into_one_leg_comes_out_of_the_bridged_one_paced_at_20_ms() {
    let mut net = SimNetwork::new(1);
    let l16 = Codec::L16 { rate: SampleRate::Hz16000, order: Default::default() };
    let (a, b) = bridged_streams(&mut net, Codec::Pcmu, l16, false);
    // Chunks arrive with neighbours swapped, and one never arrives.
    let mut chunks = numbered(encoded_tone(Codec::Pcmu, 1_000.0, 150));
    for pair in chunks.chunks_mut(2) {
        pair.reverse();
    }
    chunks.retain(|(c, _)| *c != 60);
    feed(&mut net, a, &chunks);
    net.run_for(Duration::from_millis(200));

    let out = net.stream_media(b);
    // One payload per 20 ms tick, the whole time (silence before audio arrives).
    let ticks = net.elapsed().as_millis() as usize / 20;
    assert!(out.len().abs_diff(ticks) <= 1, "{} payloads in {ticks} ticks", out.len());
    assert!(out.iter().all(|p| p.len() == 640), "L16 16 kHz: 640 bytes per 20 ms");
    let pcm: Vec<i16> =
        out.iter().flat_map(|p| p.chunks(2).map(|b| i16::from_be_bytes([b[0], b[1]]))).collect();
    let middle = &pcm[16_000..16_000 * 2];
    assert!(sinad_db(middle, 1_000.0, 16_000) > 20.0, "SINAD {:.1}", sinad_db(middle, 1_000.0, 16_000));
    assert!(tone_share(middle, 1_000.0, 16_000) > 0.9);
}

/// `count` 20 ms chunks of a tone encoded with `codec`.
fn encoded_tone(codec: Codec, hz: f64, count: usize) -> Vec<Vec<u8>> {
    let rate = codec.sample_rate();
    let mut encoder = codec.encoder().unwrap();
    let pcm = sine(hz, rate.hz(), rate.frame_samples() * count, 6_000.0);
    pcm.chunks(rate.frame_samples())
        .map(|c| {
            let frame = bond_codecs::AudioFrame::from_samples(rate, 0, c).unwrap();
            let mut out = vec![0; codec.max_payload_len()];
            let n = encoder.encode(&frame, &mut out).unwrap();
            out.truncate(n);
            out
        })
        .collect()
}

#[test]
fn g722_and_opus_streams_bridge_to_a_pcmu_stream() {
    for codec in [Codec::G722, Codec::Opus] {
        let mut net = SimNetwork::new(4);
        let (a, b) = bridged_streams(&mut net, codec, Codec::Pcmu, false);
        let chunks = numbered(encoded_tone(codec, 700.0, 100));
        feed(&mut net, a, &chunks);
        let pcm = stream_pcm(&net, b, g711::ulaw_decode_slice);
        let middle = &pcm[8_000..16_000];
        assert!(tone_share(middle, 700.0, 8_000) > 0.9, "{codec:?}: {}", tone_share(middle, 700.0, 8_000));
    }
}

#[test]
fn a_mark_is_answered_when_the_audio_before_it_has_played_and_clear_answers_the_rest() {
    let mut net = SimNetwork::new(2);
    let a = net.engine.add_stream_leg(net.now(), Codec::Pcmu, false).unwrap();
    // Ten chunks arrive at once, then a mark: it is due once they have played.
    for (i, p) in encoded_tone(Codec::Pcmu, 500.0, 10).into_iter().enumerate() {
        net.engine.handle_stream_media(net.now(), a, i as u64 + 1, &p).unwrap();
    }
    net.engine.handle_stream_mark(a, "after-ten".into()).unwrap();
    net.run_for(Duration::from_millis(100));
    assert!(marks_of(&net, a).is_empty(), "answered before its audio played");
    net.run_for(Duration::from_millis(400));
    let marks = marks_of(&net, a);
    assert_eq!(marks.len(), 1);
    // 60 ms of buffering plus ten frames: about 260 ms.
    assert!((Duration::from_millis(200)..=Duration::from_millis(300)).contains(&marks[0].0), "{marks:?}");

    // A mark with nothing queued is answered at once.
    net.engine.handle_stream_mark(a, "idle".into()).unwrap();
    net.run_for(Duration::from_millis(20));
    assert_eq!(marks_of(&net, a).last().unwrap().1, "idle");

    // Clear drops what is queued and answers pending marks now.
    for (i, p) in encoded_tone(Codec::Pcmu, 500.0, 50).into_iter().enumerate() {
        net.engine.handle_stream_media(net.now(), a, 100 + i as u64, &p).unwrap();
    }
    net.engine.handle_stream_mark(a, "pending".into()).unwrap();
    net.run_for(Duration::from_millis(100));
    net.engine.handle_stream_clear(a).unwrap();
    let at = net.elapsed();
    net.run_for(Duration::from_millis(20));
    let marks = marks_of(&net, a);
    assert_eq!(marks.last().unwrap(), &(at, "pending".to_owned()));
}

#[test]
fn a_signalled_digit_is_an_event_and_reaches_the_bridged_leg_in_band() {
    // PCMU to PCMA decodes; PCMU to PCMU passes through, and leaves it while the digit sounds.
    for (codec, decode, passes) in [
        (Codec::Pcma, g711::alaw_decode_slice as fn(&[u8], &mut [i16]), false),
        (Codec::Pcmu, g711::ulaw_decode_slice, true),
    ] {
        let mut net = SimNetwork::new(3);
        let (a, b) = bridged_streams(&mut net, Codec::Pcmu, codec, true);
        net.run_for(Duration::from_millis(100));
        assert_eq!(net.engine.is_passthrough(a), passes, "{codec:?}");
        net.engine.handle_signalled_dtmf(a, DtmfDigit::from_char('7').unwrap()).unwrap();
        net.run_for(Duration::from_millis(400));
        assert!(net
            .events()
            .iter()
            .any(|(_, e)| matches!(e, EngineEvent::DtmfReceived { leg, .. } if *leg == a)));
        assert_eq!(
            heard_digits(&stream_pcm(&net, b, decode)),
            "7",
            "{codec:?}: the digit played to the other leg"
        );
        assert_eq!(net.engine.is_passthrough(a), passes, "{codec:?}: after the digit");
    }
}

#[test]
fn two_streams_of_one_codec_pass_each_chunk_on_as_it_arrives_in_chunk_order() {
    let mut net = SimNetwork::new(6);
    let (a, b) = bridged_streams(&mut net, Codec::Pcmu, Codec::Pcmu, true);
    assert!(net.engine.is_passthrough(a) && net.engine.is_passthrough(b));
    // Chunks arrive with neighbours swapped, and one never arrives.
    let sent = numbered(encoded_tone(Codec::Pcmu, 1_000.0, 150));
    // (The first sets the order: one behind it would be dropped.)
    let mut chunks = sent.clone();
    for pair in chunks[1..].chunks_mut(2) {
        pair.reverse();
    }
    chunks.retain(|(c, _)| *c != 60);
    let mut arrived = std::collections::HashMap::new();
    for (chunk, payload) in &chunks {
        arrived.insert(*chunk, net.elapsed());
        net.engine.handle_stream_media(net.now(), a, *chunk, payload).unwrap();
        net.run_for(Duration::from_millis(20));
    }

    let expected: Vec<&(u64, Vec<u8>)> = sent.iter().filter(|(c, _)| *c != 60).collect();
    let out = net.stream_media_at(b);
    assert_eq!(out.len(), expected.len(), "every chunk once, and nothing else (no ticks)");
    for ((at, payload), (chunk, sent)) in out.iter().zip(expected) {
        assert_eq!(payload, sent, "chunk {chunk}: in chunk order, unchanged");
        // It leaves when it arrives, or when the one before it does: at most 40 ms
        // later, where the window gives up on the missing chunk.
        let waited = *at - arrived[chunk];
        assert!(waited <= Duration::from_millis(40), "chunk {chunk} waited {waited:?}");
    }
    assert!(net.stream_media(a).is_empty(), "nothing came the other way");
}

#[test]
fn a_mark_on_a_passthrough_stream_is_answered_once_its_audio_is_passed_on() {
    let mut net = SimNetwork::new(7);
    let (a, b) = bridged_streams(&mut net, Codec::Pcmu, Codec::Pcmu, true);
    net.run_for(Duration::from_millis(100));
    // Four chunks at once, and the mark after them: it waits for the last to leave.
    let start = net.elapsed();
    for (i, p) in encoded_tone(Codec::Pcmu, 500.0, 4).into_iter().enumerate() {
        net.engine.handle_stream_media(net.now(), a, i as u64 + 1, &p).unwrap();
    }
    net.engine.handle_stream_mark(a, "after-four".into()).unwrap();
    net.run_for(Duration::from_millis(100));
    let left: Vec<Duration> = net.stream_media_at(b).iter().map(|(at, _)| *at - start).collect();
    let ms = |ms| Duration::from_millis(ms);
    assert_eq!(left, [ms(0), ms(10), ms(20), ms(30)], "paced: the burst runs ahead by 40 ms at most");
    assert_eq!(marks_of(&net, a), [(start + ms(30), "after-four".to_owned())]);
}

#[test]
fn a_stalled_carrier_burst_is_spread_out_in_order_and_catches_up() {
    let mut net = SimNetwork::new(9);
    let (a, b) = bridged_streams(&mut net, Codec::Pcmu, Codec::Pcmu, true);
    let chunks = numbered(encoded_tone(Codec::Pcmu, 1_000.0, 100));
    // Chunks 31-34 are held up by the carrier's socket and come with chunk 35.
    feed(&mut net, a, &chunks[..30]);
    net.run_for(Duration::from_millis(80));
    for (chunk, payload) in &chunks[30..35] {
        net.engine.handle_stream_media(net.now(), a, *chunk, payload).unwrap();
    }
    net.run_for(Duration::from_millis(20));
    feed(&mut net, a, &chunks[35..]);
    net.run_for(Duration::from_millis(200));

    let out = net.stream_media_at(b);
    let payloads: Vec<&Vec<u8>> = out.iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, chunks.iter().map(|(_, p)| p).collect::<Vec<_>>(), "all, in order");
    let first = out[0].0;
    for (i, (at, _)) in out.iter().enumerate() {
        if let Some((next, _)) = out.get(i + 1) {
            assert!(*next - *at >= Duration::from_millis(10), "chunks {} and {} within 10 ms", i + 1, i + 2);
        }
        let on_time = first + Duration::from_millis(20 * i as u64);
        assert!(*at + Duration::from_millis(40) >= on_time, "chunk {} more than 40 ms early", i + 1);
    }
    // The 80 ms of the stall are caught up at twice real time: the last chunk leaves as it arrives.
    let (last, _) = out.last().unwrap();
    assert_eq!(*last - first, Duration::from_millis(20 * 99));
}

#[test]
fn chunks_waiting_to_be_paced_when_passthrough_ends_are_played_decoded() {
    let mut net = SimNetwork::new(10);
    let (a, b) = bridged_streams(&mut net, Codec::Pcmu, Codec::Pcmu, true);
    net.run_for(Duration::from_millis(100));
    for (i, p) in encoded_tone(Codec::Pcmu, 500.0, 4).into_iter().enumerate() {
        net.engine.handle_stream_media(net.now(), a, i as u64 + 1, &p).unwrap();
    }
    // A recording of decoded frames takes the bridge off passthrough: three chunks wait.
    net.engine.set_recording(a, RecordTap::Frames).unwrap();
    assert!(!net.engine.is_passthrough(a));
    net.run_for(Duration::from_millis(300));
    let pcm = stream_pcm(&net, b, g711::ulaw_decode_slice);
    let toned = pcm.chunks(160).filter(|frame| tone_share(frame, 500.0, 8_000) > 0.9).count();
    // (Concealment may stretch the last one.)
    assert!(toned >= 4, "{toned}: the passed chunk and the three that waited");
}

#[test]
fn a_sip_leg_and_a_stream_pass_through_and_a_telephone_event_reaches_the_stream_in_band() {
    let mut net = SimNetwork::new(8);
    let now = net.now();
    let mut phone_cfg = net.engine.leg_config(Codec::Pcmu);
    phone_cfg.send_events = true;
    phone_cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, phone_cfg, MediaSource::Tone { hz: 1_000.0, dbm0: -10.0 }).unwrap();
    let mut bond_cfg = net.engine.leg_config(Codec::Pcmu);
    bond_cfg.send_events = true;
    bond_cfg.passthrough = true;
    let sip = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(phone, sip, LinkProfile::clean(), LinkProfile::clean());
    let stream = net.engine.add_stream_leg(now, Codec::Pcmu, true).unwrap();
    net.engine.bridge(sip, stream).unwrap();
    assert!(net.engine.is_passthrough(sip) && net.engine.is_passthrough(stream));

    // The carrier streams a 600 Hz tone; the phone sends 1 kHz and then a digit.
    let chunks = numbered(encoded_tone(Codec::Pcmu, 600.0, 100));
    feed(&mut net, stream, &chunks[..50]);
    net.engine.send_dtmf(phone, &[DtmfDigit::from_char('5').unwrap()], DtmfTiming::default()).unwrap();
    feed(&mut net, stream, &chunks[50..]);
    assert!(net.engine.is_passthrough(sip) && net.engine.is_passthrough(stream), "again after the digit");

    let media = net.stream_media(stream);
    assert!(media.iter().all(|p| p.len() == 160), "no telephone-event payload reaches the carrier");
    let pcm = stream_pcm(&net, stream, g711::ulaw_decode_slice);
    assert_eq!(heard_digits(&pcm), "5", "the digit, played in-band");
    assert!(tone_share(&pcm[2_000..7_000], 1_000.0, 8_000) > 0.9, "the phone's tone before it");
    let reported = net.events().iter().filter(|(_, e)| matches!(e, EngineEvent::DtmfReceived { .. })).count();
    assert_eq!(reported, 1, "the digit is reported once");
    let heard = net.heard_samples(phone);
    assert!(tone_share(&heard[2_000..7_000], 600.0, 8_000) > 0.9, "the phone hears the carrier's tone");
}

#[test]
fn a_recorded_stream_leg_records_what_its_carrier_sent_and_what_it_was_sent() {
    let mut net = SimNetwork::new(5);
    let a = net.engine.add_stream_leg(net.now(), Codec::Pcmu, false).unwrap();
    let tone =
        net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Tone { hz: 600.0, dbm0: -10.0 });
    net.engine.bridge(a, tone).unwrap();
    net.engine.set_recording(a, RecordTap::Frames).unwrap();
    let chunks = numbered(encoded_tone(Codec::Pcmu, 1_000.0, 100));
    feed(&mut net, a, &chunks);
    let recorded = net.recorded(a);
    assert!(recorded.len() >= 95, "{} recorded ticks", recorded.len());
    let inbound: Vec<i16> = recorded[20..90].iter().flat_map(|(i, _)| i.samples().to_vec()).collect();
    let outbound: Vec<i16> = recorded[20..90].iter().flat_map(|(_, o)| o.samples().to_vec()).collect();
    assert!(tone_share(&inbound, 1_000.0, 8_000) > 0.9, "the carrier's audio");
    assert!(tone_share(&outbound, 600.0, 8_000) > 0.9, "what the bridge sent the carrier");
}

#[test]
fn chunks_of_40_ms_are_cut_into_20_ms_frames_and_never_passed_through() {
    for passthrough in [false, true] {
        let mut net = SimNetwork::new(11);
        let (a, b) = bridged_streams(&mut net, Codec::Pcmu, Codec::Pcmu, passthrough);
        let tone = encoded_tone(Codec::Pcmu, 700.0, 100);
        let chunks: Vec<(u64, Vec<u8>)> = (1..).zip(tone.chunks(2).map(|p| p.concat())).collect();
        for (chunk, payload) in &chunks {
            net.engine.handle_stream_media(net.now(), a, *chunk, payload).unwrap();
            assert!(!net.engine.is_passthrough(a), "passthrough {passthrough}: chunk {chunk}");
            net.run_for(Duration::from_millis(40));
        }
        net.run_for(Duration::from_millis(200));
        assert!(net.stream_media(b).iter().all(|p| p.len() == 160), "20 ms frames to the carrier");
        let pcm = stream_pcm(&net, b, g711::ulaw_decode_slice);
        let share = tone_share(&pcm[4_000..12_000], 700.0, 8_000);
        assert!(share > 0.9, "passthrough {passthrough}: tone share {share:.2}");
    }
}
