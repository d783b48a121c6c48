//! Carrier media-stream legs in simulated time: chunks in (out of order, some
//! missing), 20 ms payloads out, bridged across codecs, marks and clear.

use std::time::Duration;

use bond_codecs::signals::{sinad_db, sine};
use bond_codecs::{g711, Codec, SampleRate};
use bond_media_engine::leg::RecordTap;
use bond_media_engine::sim::SimNetwork;
use bond_media_engine::{EngineEvent, LegId, StreamOutput};
use bond_tests::tone_share;

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

fn media_of(net: &SimNetwork, leg: LegId) -> Vec<Vec<u8>> {
    net.streamed()
        .iter()
        .filter_map(|(_, l, out)| match out {
            StreamOutput::Media(p) if *l == leg => Some(p.to_vec()),
            _ => None,
        })
        .collect()
}

/// A stream leg's G.711 payloads as PCM.
fn decoded(net: &SimNetwork, leg: LegId, decode: fn(&[u8], &mut [i16])) -> Vec<i16> {
    media_of(net, leg)
        .iter()
        .flat_map(|p| {
            let mut out = vec![0; p.len()];
            decode(p, &mut out);
            out
        })
        .collect()
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
    let a = net.engine.add_stream_leg(net.now(), Codec::Pcmu).unwrap();
    let b = net
        .engine
        .add_stream_leg(net.now(), Codec::L16 { rate: SampleRate::Hz16000, order: Default::default() })
        .unwrap();
    net.engine.bridge(a, b).unwrap();
    // Chunks arrive with neighbours swapped, and one never arrives.
    let mut chunks = numbered(encoded_tone(Codec::Pcmu, 1_000.0, 150));
    for pair in chunks.chunks_mut(2) {
        pair.reverse();
    }
    chunks.retain(|(c, _)| *c != 60);
    feed(&mut net, a, &chunks);
    net.run_for(Duration::from_millis(200));

    let out = media_of(&net, b);
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
        let a = net.engine.add_stream_leg(net.now(), codec).unwrap();
        let b = net.engine.add_stream_leg(net.now(), Codec::Pcmu).unwrap();
        net.engine.bridge(a, b).unwrap();
        let chunks = numbered(encoded_tone(codec, 700.0, 100));
        feed(&mut net, a, &chunks);
        let pcm = decoded(&net, b, g711::ulaw_decode_slice);
        let middle = &pcm[8_000..16_000];
        assert!(tone_share(middle, 700.0, 8_000) > 0.9, "{codec:?}: {}", tone_share(middle, 700.0, 8_000));
    }
}

#[test]
fn a_mark_is_answered_when_the_audio_before_it_has_played_and_clear_answers_the_rest() {
    let mut net = SimNetwork::new(2);
    let a = net.engine.add_stream_leg(net.now(), Codec::Pcmu).unwrap();
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
    let mut net = SimNetwork::new(3);
    let a = net.engine.add_stream_leg(net.now(), Codec::Pcmu).unwrap();
    let b = net.engine.add_stream_leg(net.now(), Codec::Pcma).unwrap();
    net.engine.bridge(a, b).unwrap();
    net.run_for(Duration::from_millis(100));
    net.engine.handle_signalled_dtmf(a, bond_codecs::dtmf::DtmfDigit::from_char('7').unwrap()).unwrap();
    net.run_for(Duration::from_millis(400));
    assert!(net
        .events()
        .iter()
        .any(|(_, e)| matches!(e, EngineEvent::DtmfReceived { leg, .. } if *leg == a)));
    let pcm = decoded(&net, b, g711::alaw_decode_slice);
    let mut detector = bond_codecs::dtmf::DtmfDetector::new(8_000);
    detector.push(&pcm);
    let heard: Vec<_> = std::iter::from_fn(|| detector.poll_event()).collect();
    assert!(!heard.is_empty(), "the digit was not played to the other leg");
}

#[test]
fn a_recorded_stream_leg_records_what_its_carrier_sent_and_what_it_was_sent() {
    let mut net = SimNetwork::new(5);
    let a = net.engine.add_stream_leg(net.now(), Codec::Pcmu).unwrap();
    let tone = net.engine.add_local_leg(
        net.now(),
        SampleRate::Hz8000,
        bond_media_engine::leg::MediaSource::Tone { hz: 600.0, dbm0: -10.0 },
    );
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
