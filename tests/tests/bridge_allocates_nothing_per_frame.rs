//! In steady state a bridge moves audio without touching the heap: dhat's
//! counting allocator watches ten seconds of bridged audio after a warm-up.
//! (Its own test binary, so no other test's allocations are counted.)

use std::time::Duration;

use bond_codecs::{g711, Codec, SampleRate};
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::Packetizer;
use bond_media_engine::sim::epoch;
use bond_media_engine::{Engine, EngineOutput};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn allocations() -> u64 {
    dhat::HeapStats::get().total_blocks
}

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

    let mut packetizer = Packetizer::new(Ssrc(9), 0, 0);
    let mut payload = [0u8; 160];
    g711::ulaw_encode_slice(&bond_codecs::signals::sine(1000.0, 8000, 160, 8000.0), &mut payload);
    let mut packet = [0u8; 200];
    let mut sent = 0u64;
    let mut run = |engine: &mut Engine, from: u32, to: u32, sent: &mut u64| {
        for tick in from..to {
            let now = start + Duration::from_millis(20 * u64::from(tick));
            let n = packetizer.write(PayloadType::new(0).unwrap(), &payload, 160, &mut packet).unwrap();
            engine.handle_receive(now, caller, &packet[..n]).unwrap();
            engine.handle_timeout(now);
            while let Some(output) = engine.poll_output() {
                if let EngineOutput::Transmit { data, .. } = output {
                    *sent += u64::from(!data.is_empty());
                }
            }
        }
    };
    run(&mut engine, 0, 100, &mut sent); // warm-up: buffers and queues reach their size
    let before = allocations();
    run(&mut engine, 100, 600, &mut sent); // ten seconds of steady state
    let during = allocations() - before;
    assert!(sent >= 590, "the bridge kept sending ({sent} packets)");
    assert_eq!(during, 0, "{during} allocations in 500 bridged frames");
}
