//! In steady state a conference mixes without touching the heap: dhat's
//! counting allocator watches ten seconds of mixed audio after a warm-up.
//! (Its own test binary, so no other test's allocations are counted.)

use std::time::Duration;

use bond_codecs::{g711, Codec, SampleRate};
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::Packetizer;
use bond_media_engine::sim::epoch;
use bond_media_engine::{Engine, EngineOutput, PartyRole};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn allocations() -> u64 {
    dhat::HeapStats::get().total_blocks
}

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
    run(&mut engine, 0, 100, &mut sent);
    let before = allocations();
    run(&mut engine, 100, 600, &mut sent);
    let during = allocations() - before;
    assert!(sent >= 590, "the caller kept hearing the conference ({sent} packets)");
    assert_eq!(during, 0, "{during} allocations in 500 mixed frames");
}
