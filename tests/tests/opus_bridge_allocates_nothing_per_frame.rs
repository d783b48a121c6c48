//! A PCMU caller bridged to an Opus leg, with DTMF muted so each frame waits
//! two ticks in the bridge, moves audio without touching the heap: the caller's
//! packets are decoded, held, coded as Opus at the peer's rate and sent, and
//! the silent Opus leg's losses are concealed, all in rooms made during the
//! warm-up. (Its own test binary, so no other test's allocations are counted.)

use bond_codecs::Codec;
use bond_media_engine::engine::DtmfPassing;
use bond_media_engine::ids::PayloadType;
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::epoch;
use bond_media_engine::Engine;
use bond_tests::pcmu_feed::PcmuFeed;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

#[test]
fn a_pcmu_caller_bridged_to_an_opus_leg_with_dtmf_muted_allocates_nothing_per_frame() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let start = epoch();
    let mut engine = Engine::new(1);
    let mut caller_config = engine.leg_config(Codec::Pcmu);
    caller_config.media_timeout = None;
    caller_config.detect_inband_dtmf = true;
    let caller = engine.add_leg(start, caller_config, MediaSource::Silence).unwrap();
    let mut opus_config = engine.leg_config(Codec::Opus);
    opus_config.payload_type = PayloadType::new(111).unwrap();
    opus_config.media_timeout = None;
    let opus = engine.add_leg(start, opus_config, MediaSource::Silence).unwrap();
    engine.bridge_with(caller, opus, DtmfPassing::None).unwrap();

    let mut feed = PcmuFeed::new(start);
    let during = feed.allocations_in_steady_state(&mut engine, caller);
    let sent = feed.sent;
    assert!(sent >= 1_000, "both legs kept sending ({sent} packets)");
    assert_eq!(during, 0, "{during} allocations in 500 bridged frames");
}
