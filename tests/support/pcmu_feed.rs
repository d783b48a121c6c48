//! A steady PCMU caller for engine tests that watch the heap: one 1 kHz
//! packet into a leg every 20 ms of simulated time, each tick's outputs
//! drained, counting the RTP packets the engine sent. Its buffers live on the
//! stack, so feeding allocates nothing itself, and it can count what the
//! engine allocates in steady state (in a test binary whose global allocator
//! is dhat's, with a profiler running).

use std::ops::Range;
use std::time::{Duration, Instant};

use bond_codecs::g711;
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::rtp::Packetizer;
use bond_media_engine::{Engine, EngineOutput, LegId};

#[derive(Debug)]
pub struct PcmuFeed {
    start: Instant,
    packetizer: Packetizer,
    payload: [u8; 160],
    packet: [u8; 200],
    /// RTP packets the engine sent (to any leg) while fed.
    pub sent: u64,
}

impl PcmuFeed {
    pub fn new(start: Instant) -> Self {
        let mut payload = [0u8; 160];
        g711::ulaw_encode_slice(&bond_codecs::signals::sine(1000.0, 8000, 160, 8000.0), &mut payload);
        Self { start, packetizer: Packetizer::new(Ssrc(9), 0, 0), payload, packet: [0; 200], sent: 0 }
    }

    /// Feed `leg` for the 20 ms ticks in `ticks` (counted from `start`).
    pub fn run(&mut self, engine: &mut Engine, leg: LegId, ticks: Range<u32>) {
        for tick in ticks {
            let now = self.start + Duration::from_millis(20 * u64::from(tick));
            let pt = PayloadType::new(0).expect("PT 0");
            let n = self.packetizer.write(pt, &self.payload, 160, &mut self.packet).expect("fits");
            engine.handle_receive(now, leg, &self.packet[..n]).expect("valid RTP");
            engine.handle_timeout(now);
            while let Some(output) = engine.poll_output() {
                if let EngineOutput::Transmit { data, .. } = output {
                    self.sent += u64::from(!data.is_empty());
                }
            }
        }
    }

    /// Feed `leg` 100 ticks to warm up (buffers and queues reach their size),
    /// then ten seconds of steady state (500 ticks): the heap blocks dhat
    /// counted during the steady state.
    pub fn allocations_in_steady_state(&mut self, engine: &mut Engine, leg: LegId) -> u64 {
        self.run(engine, leg, 0..100);
        let before = dhat::HeapStats::get().total_blocks;
        self.run(engine, leg, 100..600);
        dhat::HeapStats::get().total_blocks - before
    }
}
