//! How late the frames Bond made itself reached the generator: a transcoding
//! bridge's packets carry no mark, but each comes from one of Bond's 20 ms
//! ticks, so its RTP timestamp says when it was due. Per stream (SSRC), the
//! arrival (the kernel's stamp) minus the timestamp's time is the frame's delay
//! plus a constant; the stream's smallest such offset in the window is taken as
//! on time, and each frame's lateness is its offset above that. Bond's ticks and
//! the kernel's stamps are both slewed by NTP alike, so they do not drift apart.

use std::collections::HashMap;

use bond_tests::load::{above_best, LateWindows};

/// A frame later than this counts against its 100 ms window (issue 7's p99 target).
const LATE_US: u64 = 5_000;

#[derive(Debug, Default)]
pub(super) struct Pacing {
    streams: HashMap<u32, Stream>,
}

#[derive(Debug)]
struct Stream {
    last_ts: u32,
    /// The timestamp unwrapped, in the stream's clock.
    ts: i64,
    /// Arrival (µs after the origin), frame by frame.
    arrivals_us: Vec<u64>,
    /// Arrival minus the timestamp's time, frame by frame.
    offsets_us: Vec<i64>,
}

impl Pacing {
    /// An RTP packet of a stream with a `clock_hz` clock arrived at `arrived_us`.
    pub(super) fn add(&mut self, datagram: &[u8], arrived_us: u64, clock_hz: u32) {
        let (Some(ts), Some(ssrc)) = (be32(datagram, 4), be32(datagram, 8)) else { return };
        let stream = self.streams.entry(ssrc).or_insert(Stream {
            last_ts: ts,
            ts: 0,
            arrivals_us: Vec::new(),
            offsets_us: Vec::new(),
        });
        stream.ts += i64::from(ts.wrapping_sub(stream.last_ts) as i32);
        stream.last_ts = ts;
        let due_us = stream.ts * 1_000_000 / i64::from(clock_hz);
        stream.arrivals_us.push(arrived_us);
        stream.offsets_us.push(arrived_us as i64 - due_us);
    }

    pub(super) fn merge(&mut self, other: Pacing) {
        self.streams.extend(other.streams);
    }

    /// Every frame's lateness (µs), sorted; how many streams they came in;
    /// and the frames over 5 ms by 100 ms window of when they were due (µs
    /// after `start_us`).
    pub(super) fn lateness_us(&self, start_us: u64) -> (Vec<u64>, usize, LateWindows) {
        let mut windows = LateWindows::new(LATE_US);
        let mut late = Vec::new();
        for s in self.streams.values() {
            for (&arrived_us, late_us) in s.arrivals_us.iter().zip(above_best(&s.offsets_us)) {
                windows.add(arrived_us.saturating_sub(late_us).saturating_sub(start_us), late_us);
                late.push(late_us);
            }
        }
        late.sort_unstable();
        (late, self.streams.len(), windows)
    }
}

fn be32(datagram: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(datagram.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::Pacing;

    fn packet(ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0];
        p.extend(ts.to_be_bytes());
        p.extend(ssrc.to_be_bytes());
        p
    }

    #[test]
    fn each_frame_is_late_by_its_delay_over_its_streams_best_across_a_timestamp_wrap() {
        let mut pacing = Pacing::default();
        let start = u32::MAX - 160; // wraps after the first frame
        for (n, delay_us) in [300u64, 100, 2_100, 100].into_iter().enumerate() {
            let ts = start.wrapping_add(160 * n as u32);
            pacing.add(&packet(ts, 7), 1_000_000 + 20_000 * n as u64 + delay_us, 8_000);
        }
        // Another stream, on a 48 kHz clock, always 5 ms behind: on time for itself.
        for n in 0..3u32 {
            pacing.add(&packet(960 * n, 9), 2_000_000 + 20_000 * u64::from(n) + 5_000, 48_000);
        }
        let (late, streams, windows) = pacing.lateness_us(0);
        assert_eq!(streams, 2);
        assert_eq!(late, vec![0, 0, 0, 0, 0, 200, 2_000]);
        assert_eq!(windows.to_string(), "over 5 ms: 0, in 0 of the 100 ms windows");
    }
}
