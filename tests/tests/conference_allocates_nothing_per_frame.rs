//! In steady state a conference mixes without touching the heap: dhat's
//! counting allocator watches ten seconds of mixed audio after a warm-up.
//! (Its own test binary, so no other test's allocations are counted.)

use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::epoch;
use bond_media_engine::{Engine, PartyRole};
use bond_tests::pcmu_feed::PcmuFeed;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

#[test]
fn a_conference_of_a_pcmu_caller_and_two_echoes_at_other_rates_allocates_nothing_per_frame() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let start = epoch();
    let mut engine = Engine::new(2);
    let mut config = engine.leg_config(Codec::Pcmu);
    config.media_timeout = None;
    let caller = engine.add_leg(start, config, MediaSource::Silence).unwrap();
    let conference = engine.create_conference(start);
    engine.join_conference(conference, caller, PartyRole::Speaker).unwrap();
    for rate in [SampleRate::Hz16000, SampleRate::Hz48000] {
        let echo = engine.add_local_leg(start, rate, MediaSource::Echo);
        engine.join_conference(conference, echo, PartyRole::Speaker).unwrap();
    }

    let mut feed = PcmuFeed::new(start);
    let during = feed.allocations_in_steady_state(&mut engine, caller);
    let sent = feed.sent;
    assert!(sent >= 590, "the caller kept hearing the conference ({sent} packets)");
    assert_eq!(during, 0, "{during} allocations in 500 mixed frames");
}
