//! Real-time pacing of a carrier stream's chunks while its bridge passes them
//! through (`passthrough.rs`). Decoding, the leg's playout buffer and its 20 ms
//! tick pace what the stream's carrier sent; passing through skips both, so
//! this queue stands in for them, without their fixed delay:
//!
//! - chunks leave in chunk order: one behind what left, or a duplicate, is
//!   dropped; one ahead of a gap waits until [`REORDER_WINDOW`] more wait or it
//!   has waited [`GAP_WAIT`], then the gap is given up;
//! - at real-time pace, never in a burst: the chunks let out may run at most
//!   [`AHEAD`] ahead of one per 20 ms (so a chunk arriving early by the
//!   sender's jitter leaves at once), and never two within [`MIN_GAP`];
//! - a backlog is shed: when more than [`MAX_WAITING`] chunks wait (a burst
//!   after the carrier's socket stalled, or a sender running ahead), the oldest
//!   is dropped, as the playout buffer sheds frames.
//!
//! A chunk that arrives on time leaves at once. Strict pace has a price: after
//! a stall the chunks can catch up by [`AHEAD`] only, so what is left of the
//! stall stays as delay, at most the 80 ms of a full backlog (a decoded stream
//! leg holds 60 ms in its playout buffer throughout).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The length of a chunk.
const FRAME: Duration = Duration::from_millis(20);
/// How far ahead of real time the chunks let out may run.
const AHEAD: Duration = Duration::from_millis(40);
/// The least time between two chunks let out.
const MIN_GAP: Duration = Duration::from_millis(10);
/// How many chunks may wait behind a missing one before it is given up.
const REORDER_WINDOW: usize = 2;
/// How long a chunk waits for a missing one before it.
const GAP_WAIT: Duration = Duration::from_millis(40);
/// Chunks waiting beyond this many shed the oldest.
const MAX_WAITING: usize = 4;

#[derive(Debug)]
struct Waiting {
    chunk: u64,
    arrived: Instant,
    payload: Vec<u8>,
}

#[derive(Debug, Default)]
pub(super) struct Pacer {
    /// In chunk order.
    waiting: VecDeque<Waiting>,
    /// The chunk after the last one let out.
    next: Option<u64>,
    /// When the next chunk is due at one per 20 ms: it may leave [`AHEAD`] of this.
    due: Option<Instant>,
    last_out: Option<Instant>,
    /// Payload buffers to reuse.
    spare: Vec<Vec<u8>>,
}

impl Pacer {
    /// Chunk `chunk` arrived at `now`; false if it was dropped (behind what
    /// left, or already waiting).
    pub fn push(&mut self, now: Instant, chunk: u64, payload: &[u8]) -> bool {
        if self.next.is_some_and(|next| chunk < next) {
            return false;
        }
        let at = self.waiting.partition_point(|w| w.chunk < chunk);
        if self.waiting.get(at).is_some_and(|w| w.chunk == chunk) {
            return false;
        }
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(payload);
        self.waiting.insert(at, Waiting { chunk, arrived: now, payload: buffer });
        if self.waiting.len() > MAX_WAITING {
            if let Some(oldest) = self.waiting.pop_front() {
                self.next = Some(oldest.chunk + 1);
                self.spare.push(oldest.payload);
            }
        }
        true
    }

    /// The next chunk if it may leave at `now`: hand its payload back with [`recycle`](Self::recycle).
    pub fn pop_due(&mut self, now: Instant) -> Option<(u64, Vec<u8>)> {
        if self.next_due().is_none_or(|due| due > now) {
            return None;
        }
        let out = self.waiting.pop_front()?;
        self.next = Some(out.chunk + 1);
        // One chunk's time on from now, or from the last one's if that is later.
        self.due = Some(self.due.map_or(now, |due| due.max(now)) + FRAME);
        self.last_out = Some(now);
        Some((out.chunk, out.payload))
    }

    /// When the next chunk may leave; `None` while nothing waits.
    pub fn next_due(&self) -> Option<Instant> {
        let first = self.waiting.front()?;
        let in_order = self.next.is_none_or(|next| first.chunk == next);
        let mut at = match self.due {
            Some(due) => due.checked_sub(AHEAD).unwrap_or(due),
            None => first.arrived,
        };
        if let Some(last) = self.last_out {
            at = at.max(last + MIN_GAP);
        }
        if !in_order && self.waiting.len() <= REORDER_WINDOW {
            at = at.max(first.arrived + GAP_WAIT);
        }
        Some(at)
    }

    pub fn recycle(&mut self, payload: Vec<u8>) {
        self.spare.push(payload);
    }

    /// The next chunk whatever the time (passthrough ended: the playout buffer
    /// takes them); the pace starts afresh.
    pub fn pop_any(&mut self) -> Option<(u64, Vec<u8>)> {
        self.next = None;
        self.due = None;
        self.last_out = None;
        self.waiting.pop_front().map(|w| (w.chunk, w.payload))
    }

    pub fn first_arrival(&self) -> Option<Instant> {
        self.waiting.front().map(|w| w.arrived)
    }

    /// Drop what waits (`clear`).
    pub fn clear(&mut self) {
        let spare = &mut self.spare;
        spare.extend(self.waiting.drain(..).map(|w| w.payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks pushed at the given milliseconds; what leaves, and when (ms).
    fn paced(arrivals: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let start = crate::sim::epoch();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut pacer = Pacer::default();
        let mut out = Vec::new();
        let mut drain = |pacer: &mut Pacer, now: Instant| {
            while let Some((chunk, payload)) = pacer.pop_due(now) {
                out.push((chunk, (now - start).as_millis() as u64));
                pacer.recycle(payload);
            }
        };
        for &(ms, chunk) in arrivals {
            // Time runs to the arrival, waking at each chunk's due time.
            while let Some(due) = pacer.next_due().filter(|due| *due <= at(ms)) {
                drain(&mut pacer, due);
            }
            pacer.push(at(ms), chunk, &[chunk as u8]);
            drain(&mut pacer, at(ms));
        }
        while let Some(due) = pacer.next_due() {
            drain(&mut pacer, due);
        }
        out
    }

    #[test]
    fn chunks_arriving_every_20_ms_leave_at_once_even_with_jitter() {
        // (At least 10 ms apart: closer ones are spread.)
        let jitter = [0, 5, -5, 4, -4, 6, -3, 0];
        let arrivals: Vec<(u64, u64)> =
            jitter.iter().zip(0..).map(|(j, c)| ((100 + 20 * c as i64 + j) as u64, c)).collect();
        let left: Vec<(u64, u64)> = arrivals.iter().map(|&(ms, c)| (c, ms)).collect();
        assert_eq!(paced(&arrivals), left);
    }

    #[test]
    fn a_burst_leaves_at_real_time_pace_and_never_two_chunks_within_10_ms() {
        // A stall: chunks 1-5 arrive at once, then on time again.
        let mut arrivals: Vec<(u64, u64)> = vec![(0, 0)];
        arrivals.extend((1..=5).map(|c| (100, c)));
        arrivals.extend((6..=12).map(|c| (20 * c, c)));
        let out = paced(&arrivals);
        let chunks: Vec<u64> = out.iter().map(|(c, _)| *c).collect();
        assert_eq!(chunks, (0..=12).collect::<Vec<_>>(), "nothing lost, in order");
        for pair in out.windows(2) {
            assert!(pair[1].1 - pair[0].1 >= 10, "{pair:?}: two chunks within 10 ms");
        }
        // However long the run, no more than AHEAD (2 chunks) beyond one per 20 ms.
        for (i, a) in out.iter().enumerate() {
            for b in &out[i + 1..] {
                let chunks = b.0 - a.0;
                assert!(chunks * 20 <= b.1 - a.1 + 40, "{a:?} .. {b:?}: faster than real time");
            }
        }
        let (_, first_after_stall) = out[1];
        assert_eq!(first_after_stall, 100, "the stalled chunk leaves when it arrives");
    }

    #[test]
    fn a_backlog_beyond_four_chunks_sheds_the_oldest() {
        // Ten chunks at once after the first: the oldest of the backlog go.
        let mut arrivals: Vec<(u64, u64)> = vec![(0, 0)];
        arrivals.extend((1..=10).map(|c| (5, c)));
        let out = paced(&arrivals);
        let chunks: Vec<u64> = out.iter().map(|(c, _)| *c).collect();
        assert_eq!(chunks, [0, 7, 8, 9, 10]);
    }

    #[test]
    fn a_gap_is_given_up_after_two_more_chunks_or_40_ms() {
        // 2 never comes: 3 and 4 wait for it until 5 arrives.
        let out = paced(&[(0, 1), (20, 3), (25, 4), (30, 5)]);
        assert_eq!(out, [(1, 0), (3, 30), (4, 40), (5, 50)]);
        // The last chunk of a talk spurt waits 40 ms for the missing one.
        assert_eq!(paced(&[(0, 1), (20, 3)]), [(1, 0), (3, 60)]);
        // A swapped pair leaves in order.
        assert_eq!(paced(&[(0, 1), (20, 3), (25, 2), (60, 4)]), [(1, 0), (2, 25), (3, 35), (4, 60)]);
    }

    #[test]
    fn a_chunk_behind_what_left_or_a_duplicate_is_dropped() {
        let out = paced(&[(0, 5), (20, 4), (20, 6), (21, 6), (60, 8), (61, 8), (62, 7)]);
        let chunks: Vec<u64> = out.iter().map(|(c, _)| *c).collect();
        assert_eq!(chunks, [5, 6, 7, 8]);
    }
}
