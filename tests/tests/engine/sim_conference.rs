//! Conferences in simulated time: phones over clean links to Bond's legs, each
//! saying its own tone, mixed by the engine's conference. Each party must hear
//! every other party it may hear and never itself, across codecs and rates,
//! roles (monitor, whisper), hold, and engines.

use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{Engine, HangupCause, LegId, PartyRole};
use bond_tests::tone_share;

const TONES: [f64; 4] = [700.0, 1100.0, 1500.0, 1900.0];

/// A phone saying `hz` on a Bond leg of `codec`; returns (phone, Bond's leg).
fn phone(net: &mut SimNetwork, codec: Codec, hz: f64) -> (LegId, LegId) {
    let now = net.now();
    let mut cfg = net.engine.leg_config(codec);
    cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, cfg, MediaSource::Tone { hz, dbm0: -16.0 }).unwrap();
    let cfg = net.engine.leg_config(codec);
    let bond = net.engine.add_leg(now, cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    (phone, bond)
}

/// What `phone` heard over the last second, as shares of each tone in [`TONES`].
fn heard(net: &SimNetwork, phone: LegId) -> [f64; 4] {
    let rate = net.heard(phone).last().map_or(8000, |f| f.rate().hz());
    let samples = net.heard_samples(phone);
    let last = &samples[samples.len() - (rate as usize * 4 / 5)..];
    TONES.map(|hz| tone_share(last, hz, rate))
}

/// The loudest sample `phone` heard over the last 800 ms.
fn peak(net: &SimNetwork, phone: LegId) -> u16 {
    let samples = net.heard_samples(phone);
    samples[samples.len() - 3_200..].iter().map(|s| s.unsigned_abs()).max().unwrap_or(0)
}

#[test]
fn three_parties_each_hear_the_other_two_and_never_themselves() {
    let mut net = SimNetwork::new(91);
    let (p0, l0) = phone(&mut net, Codec::Pcmu, TONES[0]);
    let (p1, l1) = phone(&mut net, Codec::Opus, TONES[1]);
    let (p2, l2) = phone(&mut net, Codec::G722, TONES[2]);
    let conference = net.engine.create_conference(net.now());
    for leg in [l0, l1, l2] {
        net.engine.join_conference(conference, leg, PartyRole::Speaker).unwrap();
    }
    net.run_for(Duration::from_secs(2));
    for (i, phone) in [p0, p1, p2].into_iter().enumerate() {
        let shares = heard(&net, phone);
        for (j, share) in shares.iter().take(3).enumerate() {
            if i == j {
                assert!(*share < 0.01, "party {i} hears itself: {shares:.2?}");
            } else {
                assert!(*share > 0.3, "party {i} does not hear party {j}: {shares:.2?}");
            }
        }
    }
    assert_eq!(net.engine.conference_parties(conference), Some(vec![l0, l1, l2]));
}

#[test]
fn a_monitor_hears_everyone_and_a_whisper_reaches_only_its_party() {
    let mut net = SimNetwork::new(92);
    let (customer, customer_leg) = phone(&mut net, Codec::Pcmu, TONES[0]);
    let (agent, agent_leg) = phone(&mut net, Codec::Pcmu, TONES[1]);
    let (coach, coach_leg) = phone(&mut net, Codec::Pcmu, TONES[2]);
    let (monitor, monitor_leg) = phone(&mut net, Codec::Pcmu, TONES[3]);
    let conference = net.engine.create_conference(net.now());
    net.engine.join_conference(conference, customer_leg, PartyRole::Speaker).unwrap();
    net.engine.join_conference(conference, agent_leg, PartyRole::Speaker).unwrap();
    net.engine.join_conference(conference, coach_leg, PartyRole::Whisper(vec![agent_leg])).unwrap();
    net.engine.join_conference(conference, monitor_leg, PartyRole::Monitor).unwrap();
    net.run_for(Duration::from_secs(2));

    let [c, a, s, m] = heard(&net, agent);
    assert!(
        c > 0.3 && s > 0.3 && a < 0.01 && m < 0.01,
        "the agent hears the customer and the coach: {c:.2} {s:.2}"
    );
    let [_, a, s, m] = heard(&net, customer);
    assert!(a > 0.9 && s < 0.01 && m < 0.01, "the customer hears the agent only: {a:.2} {s:.2} {m:.2}");
    let [c, a, s, _] = heard(&net, monitor);
    assert!(
        c > 0.2 && a > 0.2 && s < 0.01,
        "the monitor hears the speakers, not the whisper: {c:.2} {a:.2} {s:.2}"
    );
    let [c, a, _, m] = heard(&net, coach);
    assert!(c > 0.3 && a > 0.3 && m < 0.01, "the coach hears the call: {c:.2} {a:.2}");

    // The coach becomes a speaker: now the customer hears it too.
    net.engine.set_party_role(conference, coach_leg, PartyRole::Speaker).unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(heard(&net, customer)[2] > 0.3, "barging: the customer hears the coach");
}

#[test]
fn a_held_party_is_not_heard_and_hears_its_hold_music() {
    let mut net = SimNetwork::new(93);
    let (p0, l0) = phone(&mut net, Codec::Pcmu, TONES[0]);
    let (p1, l1) = phone(&mut net, Codec::Pcmu, TONES[1]);
    let (p2, l2) = phone(&mut net, Codec::Pcmu, TONES[2]);
    let conference = net.engine.create_conference(net.now());
    for leg in [l0, l1, l2] {
        net.engine.join_conference(conference, leg, PartyRole::Speaker).unwrap();
    }
    net.engine.hold(l2, &MediaSource::Tone { hz: TONES[3], dbm0: -16.0 }).unwrap();
    net.run_for(Duration::from_secs(2));
    let [a, b, _, music] = heard(&net, p2);
    assert!(music > 0.9 && a < 0.01 && b < 0.01, "the held party hears music only: {music:.2}");
    assert!(heard(&net, p0)[2] < 0.01 && heard(&net, p1)[2] < 0.01, "nobody hears the held party");
    assert!(heard(&net, p0)[1] > 0.9, "the others go on");

    net.engine.unhold(l2).unwrap();
    net.run_for(Duration::from_secs(1));
    let [a, b, _, music] = heard(&net, p2);
    assert!(a > 0.3 && b > 0.3 && music < 0.01, "back in the conference: {a:.2} {b:.2}");
    assert!(heard(&net, p0)[2] > 0.3);
}

#[test]
fn a_party_that_hangs_up_leaves_and_the_end_returns_the_rest_to_their_own_source() {
    let mut net = SimNetwork::new(94);
    let (p0, l0) = phone(&mut net, Codec::Pcmu, TONES[0]);
    let (_, l1) = phone(&mut net, Codec::Pcmu, TONES[1]);
    let (p2, l2) = phone(&mut net, Codec::Pcmu, TONES[2]);
    let conference = net.engine.create_conference(net.now());
    for leg in [l0, l1, l2] {
        net.engine.join_conference(conference, leg, PartyRole::Speaker).unwrap();
    }
    assert!(net.engine.join_conference(conference, l0, PartyRole::Speaker).is_err(), "a party joins once");
    net.run_for(Duration::from_secs(1));
    net.engine.hangup(l1, HangupCause::NormalClearing).unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.engine.conference_parties(conference), Some(vec![l0, l2]));
    let [_, gone, other, _] = heard(&net, p0);
    assert!(gone < 0.01 && other > 0.9, "the one who hung up is gone: {gone:.2} {other:.2}");

    net.engine.unbridge(l2).unwrap();
    assert_eq!(net.engine.conference_parties(conference), Some(vec![l0]));
    assert_eq!(net.engine.end_conference(conference).unwrap(), vec![l0]);
    net.run_for(Duration::from_secs(1));
    assert!(peak(&net, p0) < 200 && peak(&net, p2) < 200, "after the end each hears its own (silent) source");
    assert!(net.engine.end_conference(conference).is_err());
    assert!(net.engine.bridge(l0, l2).is_ok(), "and the legs can be bridged again");
}

#[test]
fn parties_in_two_engines_hear_each_other_through_relays() {
    // Two engines numbering their legs apart, as the runtime's shards do.
    let mut a = SimNetwork::with_engine(Engine::with_leg_ids(1, 1, 2));
    let mut b = SimNetwork::with_engine(Engine::with_leg_ids(2, 2, 2));
    let (pa0, la0) = phone(&mut a, Codec::Pcmu, TONES[0]);
    let (pa1, la1) = phone(&mut a, Codec::Pcmu, TONES[1]);
    let (pb, lb) = phone(&mut b, Codec::Opus, TONES[2]);
    let conference = a.engine.create_conference(a.now());
    a.engine.join_conference(conference, la0, PartyRole::Speaker).unwrap();
    a.engine.join_conference(conference, la1, PartyRole::Speaker).unwrap();
    let rate = b.engine.rate(lb).unwrap();
    a.engine.join_conference_remote(conference, lb, rate, PartyRole::Speaker).unwrap();
    b.engine.bridge_remote(lb, conference, rate, true).unwrap();

    let step = Duration::from_millis(10);
    let run = |a: &mut SimNetwork, b: &mut SimNetwork, steps| {
        for _ in 0..steps {
            a.run_for(step);
            b.run_for(step);
            for relay in a.take_relays() {
                let _ = b.engine.handle_relay(b.now(), relay);
            }
            for relay in b.take_relays() {
                let _ = a.engine.handle_relay(a.now(), relay);
            }
        }
    };
    run(&mut a, &mut b, 200);
    let [x, y, z, _] = heard(&b, pb);
    assert!(x > 0.3 && y > 0.3 && z < 0.01, "the remote party hears both others: {x:.2} {y:.2} {z:.2}");
    assert!(heard(&a, pa0)[2] > 0.3 && heard(&a, pa1)[2] > 0.3, "and both hear it");

    b.engine.unbridge(lb).unwrap();
    run(&mut a, &mut b, 100);
    assert_eq!(a.engine.conference_parties(conference), Some(vec![la0, la1]));
    assert!(heard(&a, pa0)[2] < 0.01, "once it left nobody hears it");
}

#[test]
fn a_clip_played_to_the_conference_reaches_every_party_with_its_events() {
    use bond_media_engine::leg::{Clip, PlaybackEnd};
    use bond_media_engine::{EngineEvent, CONFERENCE_CLIP_RATE};

    let mut net = SimNetwork::new(95);
    let (p0, l0) = phone(&mut net, Codec::Pcmu, TONES[0]);
    let (p1, l1) = phone(&mut net, Codec::Opus, TONES[1]);
    let conference = net.engine.create_conference(net.now());
    for leg in [l0, l1] {
        net.engine.join_conference(conference, leg, PartyRole::Speaker).unwrap();
    }
    let samples = bond_codecs::signals::sine(TONES[3], 48_000, 48_000, 2500.0);
    let clip =
        Clip { id: 7, rate: CONFERENCE_CLIP_RATE, samples: samples.into(), plays: Some(2), duck: false };
    net.engine.play_to_conference(conference, clip, true).unwrap();
    net.run_for(Duration::from_millis(1500));
    for phone in [p0, p1] {
        let [a, b, _, clip] = heard(&net, phone);
        assert!(clip > 0.2 && a + b > 0.2, "each party hears the clip over the other: {clip:.2}");
    }
    net.run_for(Duration::from_secs(1));
    let playback: Vec<_> = net
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            EngineEvent::PlaybackStarted { leg, id } => Some((*leg, *id, None)),
            EngineEvent::PlaybackEnded { leg, id, end } => Some((*leg, *id, Some(*end))),
            _ => None,
        })
        .collect();
    assert_eq!(playback, [(conference, 7, None), (conference, 7, Some(PlaybackEnd::Completed))]);
    net.run_for(Duration::from_secs(1));
    assert!(heard(&net, p0)[3] < 0.01, "after two plays it is over");
}
