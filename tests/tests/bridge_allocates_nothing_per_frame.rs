//! In steady state a bridge moves audio without touching the heap: dhat's
//! counting allocator watches ten seconds of bridged audio after a warm-up.
//! (Its own test binary, so no other test's allocations are counted.)

use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::epoch;
use bond_media_engine::Engine;
use bond_tests::pcmu_feed::PcmuFeed;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

#[test]
fn a_pcmu_caller_bridged_to_a_16khz_echo_allocates_nothing_per_frame() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let start = epoch();
    let mut engine = Engine::new(1);
    let mut config = engine.leg_config(Codec::Pcmu);
    config.media_timeout = None;
    config.detect_inband_dtmf = true;
    let caller = engine.add_leg(start, config, MediaSource::Silence).unwrap();
    let echo = engine.add_local_leg(start, SampleRate::Hz16000, MediaSource::Echo);
    engine.bridge(caller, echo).unwrap();

    let mut feed = PcmuFeed::new(start);
    let during = feed.allocations_in_steady_state(&mut engine, caller);
    let sent = feed.sent;
    assert!(sent >= 590, "the bridge kept sending ({sent} packets)");
    assert_eq!(during, 0, "{during} allocations in 500 bridged frames");
}
