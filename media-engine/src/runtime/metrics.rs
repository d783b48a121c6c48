//! The runtime's counters for `/metrics`: legs, packets, what was dropped
//! rather than waited for, and how late the drivers ran the engines' timers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters the runtime keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct RuntimeMetrics {
    pub legs_active: AtomicU64,
    pub legs_created: AtomicU64,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    /// Datagrams dropped: an RTCP or WebRTC reader channel full, or a socket send would block
    /// (an RTP socket the driver reads itself overflows in the kernel, uncounted here).
    pub packets_dropped: AtomicU64,
    pub packets_rejected: AtomicU64,
    /// SRTP/SRTCP packets refused: a bad authentication tag, a replay, or plain
    /// RTP on an SRTP leg (counted in `packets_rejected` too).
    pub srtp_rejected: AtomicU64,
    /// Packets bridged legs sent on undecoded (passthrough, or reflected by `loop:echo`).
    pub packets_passed_through: AtomicU64,
    /// Packets the in-kernel relay passed on for bridged legs (never seen by the engine).
    pub packets_offloaded: AtomicU64,
    /// Routes handed to the in-kernel relay.
    pub offload_routes: AtomicU64,
    /// Stream frames dropped: the engine's queue or a carrier socket's was full.
    pub stream_frames_dropped: AtomicU64,
    /// Recorded frames the writers could not take in time.
    pub recording_frames_dropped: AtomicU64,
    /// Frames a bridged leg dropped from its queue to take newer ones: its
    /// peer's clock runs ahead of its own.
    pub bridge_frames_dropped: AtomicU64,
    /// Forked ticks their consumers could not take in time.
    pub fork_frames_dropped: AtomicU64,
    /// Frames, digits or unbridges for a bridge peer on another shard that its
    /// queue could not take.
    pub relays_dropped: AtomicU64,
    /// How late the driver ran the engine's timers (leg ticks, str0m's timers):
    /// each run counts once, by its earliest due timer, in the bucket of
    /// `TIMER_LATENESS_BUCKETS_US` it falls in (the last is "more").
    pub timer_lateness: [AtomicU64; TIMER_LATENESS_BUCKETS_US.len() + 1],
}

/// Upper bounds (µs) of the timer-lateness buckets.
pub const TIMER_LATENESS_BUCKETS_US: [u64; 9] = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000];

impl RuntimeMetrics {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The engine's timers ran `late` after they were due.
    pub(crate) fn timer_ran_late(&self, late: Duration) {
        let us = late.as_micros() as u64;
        let bucket = TIMER_LATENESS_BUCKETS_US.iter().position(|&bound| us <= bound);
        Self::add(&self.timer_lateness[bucket.unwrap_or(TIMER_LATENESS_BUCKETS_US.len())], 1);
    }

    /// A leg was created (and is active until it ends).
    pub(crate) fn leg_opened(&self) {
        Self::add(&self.legs_created, 1);
        Self::add(&self.legs_active, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_lateness_lands_in_the_first_bucket_that_holds_it() {
        let metrics = RuntimeMetrics::default();
        for us in [0, 100, 101, 4_999, 5_000, 60_000] {
            metrics.timer_ran_late(Duration::from_micros(us));
        }
        let counts: Vec<u64> = metrics.timer_lateness.iter().map(RuntimeMetrics::get).collect();
        // <=100: 0 and 100; <=250: 101; <=5000: 4999 and 5000; more: 60000.
        assert_eq!(counts, [2, 1, 0, 0, 0, 2, 0, 0, 0, 1]);
    }
}
