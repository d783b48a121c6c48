//! A bridge between legs of two engines (the runtime's shards): each engine holds
//! one direction and relays frames, digits and the bridge's end to the other.

use std::time::Duration;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{DtmfTiming, MediaSource, RecordTap};
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{Engine, EngineError, LegId, Relay};
use bond_tests::{heard_digits, stream_pcm, tone_share};

/// A phone playing `source` to its own Bond leg, in an engine numbering legs from `first` by two.
fn shard(first: u64, codec: Codec, source: MediaSource) -> (SimNetwork, LegId, LegId) {
    shard_with(first, codec, source, false)
}

/// The same, with a SIP-style Bond leg (RFC 4733 both ways) that may pass through.
fn passing_shard(first: u64, codec: Codec, source: MediaSource) -> (SimNetwork, LegId, LegId) {
    shard_with(first, codec, source, true)
}

fn shard_with(
    first: u64,
    codec: Codec,
    source: MediaSource,
    passthrough: bool,
) -> (SimNetwork, LegId, LegId) {
    let mut net = SimNetwork::with_engine(Engine::with_leg_ids(first, first, 2));
    let now = net.now();
    let mut phone_cfg = net.engine.leg_config(codec);
    phone_cfg.emit_heard = true;
    phone_cfg.send_events = passthrough;
    let phone = net.engine.add_leg(now, phone_cfg, source).unwrap();
    let mut bond_cfg = net.engine.leg_config(codec);
    bond_cfg.send_events = passthrough;
    bond_cfg.passthrough = passthrough;
    let bond = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    (net, phone, bond)
}

/// Run both engines side by side for `duration`, handing each the other's relays every 10 ms.
/// Returns the relays each refused.
fn run_both(a: &mut SimNetwork, b: &mut SimNetwork, duration: Duration) -> (usize, usize) {
    let step = Duration::from_millis(10);
    let mut refused = (0, 0);
    for _ in 0..duration.as_millis() / step.as_millis() {
        a.run_for(step);
        b.run_for(step);
        for relay in a.take_relays() {
            refused.1 += usize::from(b.engine.handle_relay(b.now(), relay).is_err());
        }
        for relay in b.take_relays() {
            refused.0 += usize::from(a.engine.handle_relay(a.now(), relay).is_err());
        }
    }
    refused
}

fn tone(hz: f64) -> MediaSource {
    MediaSource::Tone { hz, dbm0: -10.0 }
}

fn bridge_across(a: &mut SimNetwork, leg_a: LegId, b: &mut SimNetwork, leg_b: LegId) {
    let rate_a = a.engine.rate(leg_a).unwrap();
    let rate_b = b.engine.rate(leg_b).unwrap();
    a.engine.bridge_remote(leg_a, leg_b, rate_b, true).unwrap();
    b.engine.bridge_remote(leg_b, leg_a, rate_a, true).unwrap();
}

#[test]
fn each_party_hears_the_other_across_engines_and_rates() {
    let (mut a, phone_a, bond_a) = shard(1, Codec::Pcmu, tone(1000.0));
    let (mut b, phone_b, bond_b) = shard(2, Codec::Opus, tone(600.0));
    assert_ne!(bond_a, bond_b, "the engines number their legs apart");
    bridge_across(&mut a, bond_a, &mut b, bond_b);
    assert_eq!(a.engine.bridged_with(bond_a), Some(bond_b));
    let refused = run_both(&mut a, &mut b, Duration::from_secs(3));
    assert_eq!(refused, (0, 0));

    let heard_a = a.heard_samples(phone_a);
    assert!(tone_share(&heard_a[8000..], 600.0, 8000) > 0.9, "phone A hears B's 600 Hz at 8 kHz");
    let heard_b = b.heard_samples(phone_b);
    assert!(tone_share(&heard_b[48_000..], 1000.0, 48_000) > 0.9, "phone B hears A's 1 kHz at 48 kHz");
}

#[test]
fn a_leg_ending_takes_its_remote_peer_out_of_the_bridge() {
    let (mut a, _, bond_a) = shard(1, Codec::Pcmu, tone(1000.0));
    let (mut b, _, bond_b) = shard(2, Codec::Pcmu, tone(600.0));
    bridge_across(&mut a, bond_a, &mut b, bond_b);
    run_both(&mut a, &mut b, Duration::from_millis(500));

    a.engine.hangup(bond_a, bond_media_engine::HangupCause::NormalClearing).unwrap();
    run_both(&mut a, &mut b, Duration::from_millis(100));
    assert_eq!(b.engine.bridged_with(bond_b), None, "B heard of the end through a relay");
    // A frame still in flight for the old bridge is refused, not played.
    let stray = Relay::Frame {
        from: bond_a,
        to: bond_b,
        frame: bond_codecs::AudioFrame::silent(SampleRate::Hz8000, 0),
    };
    assert!(matches!(b.engine.handle_relay(b.now(), stray), Err(EngineError::NotBridged(_))));
    // B's leg is free for a new bridge.
    let echo = b.engine.add_local_leg(b.now(), SampleRate::Hz8000, MediaSource::Echo);
    b.engine.bridge(bond_b, echo).unwrap();
}

#[test]
fn unbridging_one_side_unbridges_the_other_and_silences_both() {
    let (mut a, phone_a, bond_a) = shard(1, Codec::Pcmu, tone(1000.0));
    let (mut b, _, bond_b) = shard(2, Codec::Pcmu, tone(600.0));
    bridge_across(&mut a, bond_a, &mut b, bond_b);
    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert_eq!(b.engine.unbridge(bond_b).unwrap(), bond_a);
    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert_eq!(a.engine.bridged_with(bond_a), None);
    let heard = a.heard_samples(phone_a);
    assert!(heard.len() > 12_000, "{} samples", heard.len());
    assert!(tone_share(&heard[4000..8000], 600.0, 8000) > 0.9, "bridged: B's tone");
    assert!(heard[12_000..].iter().all(|s| s.abs() < 64), "unbridged: silence");
}

#[test]
fn bridging_remotely_refuses_a_local_peer_and_a_bridged_leg() {
    let (mut a, phone_a, bond_a) = shard(1, Codec::Pcmu, tone(1000.0));
    assert!(matches!(
        a.engine.bridge_remote(bond_a, phone_a, SampleRate::Hz8000, true),
        Err(EngineError::Config(_))
    ));
    a.engine.bridge_remote(bond_a, LegId(1000), SampleRate::Hz8000, true).unwrap();
    assert!(matches!(
        a.engine.bridge_remote(bond_a, LegId(1002), SampleRate::Hz8000, true),
        Err(EngineError::AlreadyBridged(_))
    ));
    assert!(matches!(
        a.engine.bridge_remote(LegId(999), LegId(1002), SampleRate::Hz8000, true),
        Err(EngineError::UnknownLeg(_))
    ));
}

#[test]
fn digits_received_on_one_engine_are_played_to_the_party_on_the_other() {
    let (mut a, phone_a, bond_a) = shard(1, Codec::Pcmu, MediaSource::Silence);
    let (mut b, phone_b, bond_b) = shard(2, Codec::Pcmu, MediaSource::Silence);
    bridge_across(&mut a, bond_a, &mut b, bond_b);
    run_both(&mut a, &mut b, Duration::from_millis(300));
    // A's party presses keys (in-band); B's party must hear them, carried in the relayed audio.
    let digits: Vec<DtmfDigit> = "4#".chars().map(|c| DtmfDigit::from_char(c).unwrap()).collect();
    a.engine.send_dtmf(phone_a, &digits, DtmfTiming { tone_ms: 120, gap_ms: 120 }).unwrap();
    // A digit Bond is told of beside the audio (as a carrier signals one) crosses as a relay.
    a.engine.handle_signalled_dtmf(bond_a, DtmfDigit::from_char('7').unwrap()).unwrap();
    run_both(&mut a, &mut b, Duration::from_secs(2));
    let heard = b.inband_digits(phone_b);
    let mut sorted: Vec<char> = heard.chars().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, ['#', '4', '7'], "heard {heard:?}");
}

#[test]
fn legs_of_two_engines_pass_packets_through_while_both_offer_the_same_codec() {
    let (mut a, phone_a, bond_a) = passing_shard(1, Codec::Pcmu, tone(1000.0));
    let (mut b, phone_b, bond_b) = passing_shard(2, Codec::Pcmu, tone(600.0));
    bridge_across(&mut a, bond_a, &mut b, bond_b);
    let refused = run_both(&mut a, &mut b, Duration::from_secs(1));
    assert_eq!(refused, (0, 0));
    assert!(a.engine.is_passthrough(bond_a) && b.engine.is_passthrough(bond_b));

    // A digit for B's party: B's leg may not pass through while it plays, so A's stops too.
    b.engine.send_dtmf(bond_b, &[DtmfDigit::from_char('1').unwrap()], DtmfTiming::default()).unwrap();
    run_both(&mut a, &mut b, Duration::from_millis(100));
    assert!(!a.engine.is_passthrough(bond_a) && !b.engine.is_passthrough(bond_b), "while B plays a digit");
    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert!(a.engine.is_passthrough(bond_a) && b.engine.is_passthrough(bond_b), "after it");
    run_both(&mut a, &mut b, Duration::from_secs(1));

    let heard_a = a.heard_samples(phone_a);
    let heard_b = b.heard_samples(phone_b);
    // Each phone hears the other in both passthrough spells (before and after the digit).
    for range in [2_000..6_000, 20_000..24_000] {
        assert!(tone_share(&heard_a[range.clone()], 600.0, 8000) > 0.9, "A hears B at {range:?}");
        assert!(tone_share(&heard_b[range.clone()], 1000.0, 8000) > 0.9, "B hears A at {range:?}");
    }
}

#[test]
fn legs_of_two_engines_with_different_codecs_decode() {
    let (mut a, _, bond_a) = passing_shard(1, Codec::Pcmu, tone(1000.0));
    let (mut b, phone_b, bond_b) = passing_shard(2, Codec::Pcma, tone(600.0));
    bridge_across(&mut a, bond_a, &mut b, bond_b);
    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert!(!a.engine.is_passthrough(bond_a) && !b.engine.is_passthrough(bond_b));
    let heard_b = b.heard_samples(phone_b);
    assert!(tone_share(&heard_b[2_000..6_000], 1000.0, 8000) > 0.9);
}

#[test]
fn a_telephone_event_passed_through_to_a_stream_on_another_engine_is_played_to_it_in_band() {
    let (mut a, phone_a, bond_a) = passing_shard(1, Codec::Pcmu, tone(1000.0));
    let mut b = SimNetwork::with_engine(Engine::with_leg_ids(2, 2, 2));
    let stream = b.engine.add_stream_leg(b.now(), Codec::Pcmu, true).unwrap();
    bridge_across(&mut a, bond_a, &mut b, stream);
    run_both(&mut a, &mut b, Duration::from_millis(500));
    assert!(a.engine.is_passthrough(bond_a) && b.engine.is_passthrough(stream));

    a.engine.send_dtmf(phone_a, &[DtmfDigit::from_char('9').unwrap()], DtmfTiming::default()).unwrap();
    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert!(a.engine.is_passthrough(bond_a) && b.engine.is_passthrough(stream), "again after the digit");

    let media = b.stream_media(stream);
    assert!(media.iter().all(|p| p.len() == 160), "no telephone-event payload reaches the carrier");
    let pcm = stream_pcm(&b, stream, bond_codecs::g711::ulaw_decode_slice);
    assert_eq!(heard_digits(&pcm), "9", "the digit, played in-band once");
    assert!(tone_share(&pcm[1_000..3_000], 1000.0, 8000) > 0.9, "the phone's tone before it");
}

#[test]
fn a_lost_passthrough_offer_is_told_again_and_both_sides_agree() {
    let (mut a, _, bond_a) = passing_shard(1, Codec::Pcmu, tone(1000.0));
    let (mut b, phone_b, bond_b) = passing_shard(2, Codec::Pcmu, tone(600.0));
    bridge_across(&mut a, bond_a, &mut b, bond_b);
    // A's first offer is lost (a full relay queue); B's arrives, so A passes
    // through while B, not knowing, still decodes.
    a.run_for(Duration::from_millis(40));
    b.run_for(Duration::from_millis(40));
    let lost = a.take_relays().into_iter().filter(|r| matches!(r, Relay::Passthrough { .. })).count();
    assert_eq!(lost, 1);
    for relay in b.take_relays() {
        a.engine.handle_relay(a.now(), relay).unwrap();
    }
    assert!(a.engine.is_passthrough(bond_a) && !b.engine.is_passthrough(bond_b));

    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert!(a.engine.is_passthrough(bond_a) && b.engine.is_passthrough(bond_b));
    let heard_b = b.heard_samples(phone_b);
    assert!(tone_share(&heard_b[heard_b.len() - 4_000..], 1000.0, 8000) > 0.9, "B hears A");
}

#[test]
fn a_half_that_joins_after_its_peers_offer_was_refused_still_passes_the_first_chunks_through() {
    let mut a = SimNetwork::with_engine(Engine::with_leg_ids(1, 1, 2));
    let mut b = SimNetwork::with_engine(Engine::with_leg_ids(2, 2, 2));
    let stream_a = a.engine.add_stream_leg(a.now(), Codec::Pcmu, true).unwrap();
    let stream_b = b.engine.add_stream_leg(b.now(), Codec::Pcmu, true).unwrap();
    // The runtime joins the halves one after the other, so A's offer can reach
    // B's engine before B's half of the bridge exists: it is refused.
    a.engine.bridge_remote(stream_a, stream_b, SampleRate::Hz8000, true).unwrap();
    a.run_for(Duration::from_millis(10));
    let early = a.take_relays();
    assert!(early.iter().any(|r| matches!(r, Relay::Passthrough { .. })));
    for relay in early {
        assert!(b.engine.handle_relay(b.now(), relay).is_err(), "B's half is not there yet");
    }
    b.engine.bridge_remote(stream_b, stream_a, SampleRate::Hz8000, true).unwrap();
    run_both(&mut a, &mut b, Duration::from_millis(100));
    assert!(a.engine.is_passthrough(stream_a) && b.engine.is_passthrough(stream_b), "before any media");

    // Every chunk either carrier sends from the first reaches the other.
    for chunk in 1..=5u8 {
        a.engine.handle_stream_media(a.now(), stream_a, chunk.into(), &[chunk; 160]).unwrap();
        b.engine.handle_stream_media(b.now(), stream_b, chunk.into(), &[100 + chunk; 160]).unwrap();
        run_both(&mut a, &mut b, Duration::from_millis(20));
    }
    run_both(&mut a, &mut b, Duration::from_millis(40));
    let firsts = |media: Vec<Vec<u8>>, of: std::ops::RangeInclusive<u8>| {
        media.iter().map(|p| p[0]).filter(|b| of.contains(b)).collect::<Vec<u8>>()
    };
    assert_eq!(firsts(b.stream_media(stream_b), 1..=5), [1, 2, 3, 4, 5]);
    assert_eq!(firsts(a.stream_media(stream_a), 101..=105), [101, 102, 103, 104, 105]);
}

#[test]
fn an_echo_on_another_engine_has_its_peers_engine_reflect_the_packets_until_it_records() {
    let (mut a, phone_a, bond_a) = passing_shard(1, Codec::Pcmu, tone(1000.0));
    let mut b = SimNetwork::with_engine(Engine::with_leg_ids(2, 2, 2));
    let echo = b.engine.add_local_leg(b.now(), SampleRate::Hz8000, MediaSource::Echo);
    bridge_across(&mut a, bond_a, &mut b, echo);
    assert_eq!(run_both(&mut a, &mut b, Duration::from_millis(500)), (0, 0));
    assert!(a.engine.is_passthrough(bond_a), "the echo offered the leg's own codec back");
    a.engine.take_passed_through();
    a.run_for(Duration::from_millis(200));
    assert!(a.take_relays().is_empty(), "nothing crosses to the echo's engine");
    assert!(a.engine.take_passed_through() >= 9, "each packet is reflected by the leg's engine");

    // Recording the echo needs its audio: the bridge decodes across the engines ...
    b.engine.set_recording(echo, RecordTap::Frames).unwrap();
    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert!(!a.engine.is_passthrough(bond_a));
    // ... and reflects again once it stops.
    b.engine.set_recording(echo, RecordTap::Off).unwrap();
    run_both(&mut a, &mut b, Duration::from_secs(1));
    assert!(a.engine.is_passthrough(bond_a));

    let heard = a.heard_samples(phone_a);
    // Reflected (from 0.3 s), echoed through the other engine (1.2-1.6 s), reflected again (2.1 s on).
    for range in [2_400..5_600, 9_600..12_800, 16_800..20_000] {
        assert!(tone_share(&heard[range.clone()], 1000.0, 8000) > 0.9, "the phone hears itself at {range:?}");
    }
}
