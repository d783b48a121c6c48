//! Answering-machine detection as a tap in the engine, in simulated time:
//! on local legs, on an RTP leg behind a lossy link, and with Bond's own audio
//! echoed back at the detector.

use std::time::Duration;

use bond_codecs::level::{rms_for_dbm0, sine_amplitude_for_dbm0};
use bond_codecs::signals::{sine, syllables};
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::amd::{AmdConfig, AmdEvent, GreetingEnd, GreetingWatch, Verdict};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{EngineEvent, LegId};

const RATE: u32 = 8_000;

/// Noise shaped into syllables: speech enough for a detector that listens for activity.
fn talk(ms: u32, seed: u64) -> Vec<i16> {
    syllables(seed, RATE, (RATE * ms / 1000) as usize, rms_for_dbm0(-18.0) * 1.6)
}

fn quiet(ms: u32) -> Vec<i16> {
    vec![0; (RATE * ms / 1000) as usize]
}

fn play(parts: &[Vec<i16>]) -> MediaSource {
    MediaSource::Play { samples: parts.concat().into(), rate: SampleRate::Hz8000, repeat: false }
}

fn amd_events(net: &SimNetwork, leg: LegId) -> Vec<(Duration, AmdEvent)> {
    net.events()
        .iter()
        .filter_map(|(at, e)| match e {
            EngineEvent::MachineDetection { leg: l, event } if *l == leg => Some((*at, *event)),
            _ => None,
        })
        .collect()
}

fn greeting_end() -> AmdConfig {
    AmdConfig { watch: GreetingWatch::EndOrBeep, ..AmdConfig::default() }
}

#[test]
fn a_local_leg_saying_hello_is_a_person_at_an_exact_simulated_time() {
    let mut net = SimNetwork::new(1);
    let leg = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, play(&[quiet(400), talk(500, 1)]));
    net.engine.start_amd(leg, AmdConfig::default()).unwrap();
    net.run_for(Duration::from_secs(6));
    let events = amd_events(&net, leg);
    assert_eq!(events.len(), 1, "{events:?}");
    let AmdEvent::Detection { verdict, at_millis, .. } = events[0].1 else { panic!("{events:?}") };
    assert_eq!(verdict, Verdict::Human);
    // Speech ends at 900 ms; the verdict comes 900 ms of quiet later, give or take a frame.
    assert!((1_800..=1_860).contains(&at_millis), "{at_millis}");
    // The same run again decides at the same millisecond.
    let mut again = SimNetwork::new(1);
    let leg2 = again.engine.add_local_leg(again.now(), SampleRate::Hz8000, play(&[quiet(400), talk(500, 1)]));
    again.engine.start_amd(leg2, AmdConfig::default()).unwrap();
    again.run_for(Duration::from_secs(6));
    assert_eq!(amd_events(&again, leg2)[0].1, events[0].1);
}

#[test]
fn a_greeting_and_beep_on_a_16_khz_leg_give_machine_then_beep() {
    let mut net = SimNetwork::new(2);
    let beep = sine(1_400.0, 16_000, 16_000 * 300 / 1000, sine_amplitude_for_dbm0(-14.0));
    let greeting: Vec<i16> =
        [quiet(300), talk(4_000, 2), quiet(400)].concat().iter().flat_map(|&s| [s, s]).collect();
    let samples = [greeting, beep].concat();
    let leg = net.engine.add_local_leg(
        net.now(),
        SampleRate::Hz16000,
        MediaSource::Play { samples: samples.into(), rate: SampleRate::Hz16000, repeat: false },
    );
    net.engine.start_amd(leg, greeting_end()).unwrap();
    net.run_for(Duration::from_secs(10));
    let events = amd_events(&net, leg);
    assert!(matches!(events[0].1, AmdEvent::Detection { verdict: Verdict::Machine, .. }), "{events:?}");
    match events[1].1 {
        AmdEvent::GreetingEnded { end: GreetingEnd::Beep { hz }, at_millis } => {
            assert!((hz - 1_400.0).abs() < 15.0);
            assert!((5_000..=5_100).contains(&at_millis), "beep ends at 5000 ms, reported at {at_millis}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn detection_on_an_rtp_leg_behind_a_lossy_link_still_finds_the_machine() {
    let mut net = SimNetwork::new(3);
    let now = net.now();
    let callee_cfg = net.engine.leg_config(Codec::Pcmu);
    let callee = net.engine.add_leg(now, callee_cfg, play(&[quiet(500), talk(8_000, 3)])).unwrap();
    let bond_cfg = net.engine.leg_config(Codec::Pcmu);
    let bond = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(callee, bond, LinkProfile::lossy(20, 15, 0.03, 7), LinkProfile::clean());
    net.engine.start_amd(bond, AmdConfig::default()).unwrap();
    // A greeting is a machine once it outlasts 5 s.
    net.run_for(Duration::from_secs(7));
    let events = amd_events(&net, bond);
    assert!(
        matches!(events.as_slice(), [(_, AmdEvent::Detection { verdict: Verdict::Machine, .. })]),
        "{events:?}"
    );
}

#[test]
fn a_prompt_bridged_into_an_echoing_line_is_not_taken_for_the_callee() {
    let mut net = SimNetwork::new(4);
    // The callee's line returns everything it hears (loop:echo); Bond plays it a long prompt.
    let callee = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Echo);
    let prompt = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, play(&[talk(3_000, 4)]));
    net.engine.start_amd(callee, AmdConfig::default()).unwrap();
    net.engine.bridge(callee, prompt).unwrap();
    net.run_for(Duration::from_secs(8));
    let events = amd_events(&net, callee);
    let AmdEvent::Detection { verdict, .. } = events[0].1 else { panic!("{events:?}") };
    assert_eq!(verdict, Verdict::Silence, "the echoed prompt was taken for speech: {events:?}");
}

#[test]
fn stopping_detection_reports_nothing_and_a_hung_up_leg_forgets_its_detector() {
    let mut net = SimNetwork::new(5);
    let leg = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, play(&[talk(5_000, 5)]));
    net.engine.start_amd(leg, AmdConfig::default()).unwrap();
    net.run_for(Duration::from_millis(500));
    assert!(net.engine.stop_amd(leg));
    net.run_for(Duration::from_secs(3));
    assert!(amd_events(&net, leg).is_empty());
    assert!(!net.engine.stop_amd(leg));
    let other = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Silence);
    net.engine.start_amd(other, AmdConfig::default()).unwrap();
    net.engine.hangup(other, bond_media_engine::HangupCause::NormalClearing).unwrap();
    net.run_for(Duration::from_millis(100));
    assert!(!net.engine.stop_amd(other));
}

#[test]
fn a_greeting_handed_out_at_a_pause_and_its_voicemail_words_make_a_machine() {
    let mut net = SimNetwork::new(4);
    let leg = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, play(&[quiet(400), talk(1_500, 4)]));
    let config = AmdConfig { words_language: Some("en"), ..AmdConfig::default() };
    net.engine.start_amd(leg, config).unwrap();
    net.run_for(Duration::from_millis(2_300));
    let asked: Vec<_> = net
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            EngineEvent::MachineDetectionWordsWanted { leg: l, greeting, rate, language } if *l == leg => {
                Some((greeting.len(), *rate, *language))
            }
            _ => None,
        })
        .collect();
    // Asked once, 200 ms into the pause: the greeting, with a little before it and the pause so far.
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!((asked[0].1, asked[0].2), (SampleRate::Hz8000, "en"));
    assert!((1_700 * 8..=2_000 * 8).contains(&asked[0].0), "{asked:?}");
    assert!(amd_events(&net, leg).is_empty(), "no verdict before the words or the full pause");
    assert!(net.engine.amd_heard_words(leg, "Hi, it's Sam. Please leave a message."));
    net.run_for(Duration::from_millis(100));
    let events = amd_events(&net, leg);
    assert!(matches!(events[..], [(_, AmdEvent::Detection { verdict: Verdict::Machine, .. })]), "{events:?}");
    // Detection is over: later words go nowhere.
    assert!(!net.engine.amd_heard_words(leg, "leave a message"));
}
