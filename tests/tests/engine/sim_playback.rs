//! Clips played to a party in simulated time (`playback_start`, `speak`): in
//! place of the bridged audio or mixed over it, queued, stopped, and on a
//! built-in leg.

use std::sync::Arc;
use std::time::Duration;

use bond_codecs::signals::sine;
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{Clip, MediaSource};
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{EngineError, EngineEvent, LegId};
use bond_tests::tone_share;

/// A phone that records what it hears, over a clean link to Bond's PCMU leg
/// `bond`, which is bridged to a local 700 Hz tone.
fn bridged_phone(net: &mut SimNetwork) -> (LegId, LegId) {
    let now = net.now();
    let mut phone_cfg = net.engine.leg_config(Codec::Pcmu);
    phone_cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, phone_cfg, MediaSource::Silence).unwrap();
    let bond_cfg = net.engine.leg_config(Codec::Pcmu);
    let bond = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    let tone =
        net.engine.add_local_leg(now, SampleRate::Hz8000, MediaSource::Tone { hz: 700.0, dbm0: -12.0 });
    net.engine.bridge(bond, tone).unwrap();
    (phone, bond)
}

fn clip(id: u64, hz: f64, secs: f64, plays: Option<u32>) -> Clip {
    let samples = sine(hz, 8000, (8000.0 * secs) as usize, 8000.0);
    Clip { id, rate: SampleRate::Hz8000, samples: Arc::from(samples), plays, duck: false }
}

/// Playback events on `leg`, with the simulated time since the start they came out at.
fn playback_events(net: &SimNetwork, on: LegId) -> Vec<(Duration, String)> {
    net.events()
        .iter()
        .filter_map(|(at, e)| {
            let at = *at;
            match e {
                EngineEvent::PlaybackStarted { leg, id } if *leg == on => Some((at, format!("started {id}"))),
                EngineEvent::PlaybackEnded { leg, id, end } if *leg == on => {
                    Some((at, format!("ended {id} {end:?}")))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn a_clip_replaces_the_bridged_audio_while_it_plays_then_the_bridge_is_heard_again() {
    let mut net = SimNetwork::new(31);
    let (phone, bond) = bridged_phone(&mut net);
    net.run_for(Duration::from_secs(1));
    net.engine.play(bond, clip(1, 1500.0, 1.0, Some(2)), false).unwrap();
    net.run_for(Duration::from_secs(3));

    let heard = net.heard_samples(phone);
    // The phone heard 1 s of bridge, 2 s of the clip (twice), then the bridge again.
    let during = &heard[8000 + 1600..8000 + 14_400];
    assert!(tone_share(during, 1500.0, 8000) > 0.9, "the clip, not the bridge");
    assert!(tone_share(during, 700.0, 8000) < 0.01);
    assert!(tone_share(&heard[heard.len() - 4000..], 700.0, 8000) > 0.9, "the bridge again after");
    let events = playback_events(&net, bond);
    let names: Vec<_> = events.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(names, ["started 1", "ended 1 Completed"]);
    let played = events[1].0 - events[0].0;
    assert!(played >= Duration::from_millis(1980) && played <= Duration::from_millis(2020), "{played:?}");
}

#[test]
fn an_overlay_is_mixed_over_the_bridged_audio() {
    let mut net = SimNetwork::new(32);
    let (phone, bond) = bridged_phone(&mut net);
    net.run_for(Duration::from_millis(500));
    net.engine.play(bond, clip(7, 1500.0, 1.0, Some(1)), true).unwrap();
    net.run_for(Duration::from_secs(1));
    let heard = net.heard_samples(phone);
    let during = &heard[heard.len() - 6000..heard.len() - 2000];
    let (clip_share, bridge_share) = (tone_share(during, 1500.0, 8000), tone_share(during, 700.0, 8000));
    assert!(clip_share > 0.3 && bridge_share > 0.3, "both heard: clip {clip_share}, bridge {bridge_share}");
}

#[test]
fn stopping_current_plays_the_next_clip_and_stopping_all_empties_the_queue() {
    let mut net = SimNetwork::new(33);
    let (phone, bond) = bridged_phone(&mut net);
    net.run_for(Duration::from_millis(200));
    net.engine.play(bond, clip(1, 1000.0, 1.0, None), false).unwrap();
    net.engine.play(bond, clip(2, 1500.0, 1.0, None), false).unwrap();
    net.engine.play(bond, clip(3, 2000.0, 1.0, None), false).unwrap();
    net.run_for(Duration::from_secs(3));
    net.engine.stop_playback(bond, false, false).unwrap();
    net.run_for(Duration::from_secs(1));
    let heard = net.heard_samples(phone);
    assert!(tone_share(&heard[heard.len() - 4000..], 1500.0, 8000) > 0.9, "clip 2 after clip 1 stopped");
    net.engine.stop_playback(bond, false, true).unwrap();
    net.run_for(Duration::from_secs(1));
    let heard = net.heard_samples(phone);
    assert!(tone_share(&heard[heard.len() - 4000..], 700.0, 8000) > 0.9, "the bridge once all stopped");
    let names: Vec<_> = playback_events(&net, bond).into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        names,
        ["started 1", "ended 1 Stopped", "started 2", "ended 2 Stopped", "ended 3 Stopped"],
        "a queued clip ends without starting"
    );
}

#[test]
fn a_clip_played_to_a_local_echo_comes_back_to_its_bridged_caller() {
    let mut net = SimNetwork::new(34);
    let now = net.now();
    let mut phone_cfg = net.engine.leg_config(Codec::Pcmu);
    phone_cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, phone_cfg, MediaSource::Silence).unwrap();
    let bond_cfg = net.engine.leg_config(Codec::Pcmu);
    let bond = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    let echo = net.engine.add_local_leg(now, SampleRate::Hz8000, MediaSource::Echo);
    net.engine.bridge(bond, echo).unwrap();
    net.run_for(Duration::from_millis(500));
    net.engine.play(echo, clip(5, 1200.0, 1.0, Some(1)), false).unwrap();
    net.run_for(Duration::from_millis(1500));
    let heard = net.heard_samples(phone);
    assert!(tone_share(&heard[heard.len() - 8000..heard.len() - 4000], 1200.0, 8000) > 0.9);
    let names: Vec<_> = playback_events(&net, echo).into_iter().map(|(_, e)| e).collect();
    assert_eq!(names, ["started 5", "ended 5 Completed"]);
}

#[test]
fn a_clip_at_another_rate_or_for_an_unknown_leg_is_refused() {
    let mut net = SimNetwork::new(35);
    let (_, bond) = bridged_phone(&mut net);
    let wide = Clip { rate: SampleRate::Hz16000, ..clip(1, 1000.0, 0.1, Some(1)) };
    let refused = net.engine.play(bond, wide, false);
    assert!(matches!(refused, Err(EngineError::ClipRate { leg, rate: SampleRate::Hz8000 }) if leg == bond));
    assert!(matches!(
        net.engine.play(LegId(999_999), clip(1, 1000.0, 0.1, Some(1)), false),
        Err(EngineError::UnknownLeg(_))
    ));
}
