//! Real-time pacing of a carrier stream's chunks while its bridge passes them
//! through (`passthrough.rs`). Decoding, the leg's playout buffer and its 20 ms
//! tick pace what the stream's carrier sent; passing through skips both, so
//! this queue stands in for them, without their fixed delay.
//!
//! Chunks are placed on the carrier's own timeline: the first chunk is due when
//! it arrives and each later one 20 ms per chunk number after it.
//! - A chunk on time leaves as it arrives.
//! - Ahead of the timeline (a sender that sends a second of speech at once), it
//!   waits until at most [`AHEAD`] before its time: real-time pace, with the
//!   sender's jitter taken at once.
//! - Behind it (the carrier's socket stalled, or Bond fell behind), it leaves at
//!   once, but never two chunks within [`MIN_GAP`], so a burst is spread out
//!   and the delay is caught up at twice real time. One more than [`REPLAN`]
//!   behind starts the timeline afresh (a sender that stopped and resumed).
//! - In chunk order: one behind what left, or a duplicate, is dropped; one
//!   ahead of a gap waits until [`REORDER_WINDOW`] more wait or it has waited
//!   [`GAP_WAIT`], then the gap is given up.
//! - Each chunk that leaves before its time moves the timeline [`SLIDE`]
//!   earlier (1 % of a chunk), so a carrier whose clock runs fast is followed
//!   instead of being held back further and further; a second sent at once
//!   plays out 1 % fast.
//! - More than [`MAX_WAITING`] chunks waiting shed the oldest (a sender far
//!   ahead), as the playout buffer sheds frames.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The length of a chunk.
const FRAME: Duration = Duration::from_millis(20);
/// How far before its time on the timeline a chunk may leave.
const AHEAD: Duration = Duration::from_millis(40);
/// The least time between two chunks let out.
const MIN_GAP: Duration = Duration::from_millis(10);
/// How far a chunk leaving before its time moves the timeline earlier.
const SLIDE: Duration = Duration::from_micros(200);
/// How late a chunk may be before the timeline starts again at it.
const REPLAN: Duration = Duration::from_secs(1);
/// How many chunks may wait behind a missing one before it is given up.
const REORDER_WINDOW: usize = 2;
/// How long a chunk waits for a missing one before it.
const GAP_WAIT: Duration = Duration::from_millis(40);
/// Chunks waiting beyond this many (2 s) shed the oldest.
const MAX_WAITING: usize = 100;

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
    /// The timeline: chunk `.1` was due at `.0`.
    timeline: Option<(Instant, u64)>,
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
        // A chunk far off its time starts the timeline again: late, or its
        // number jumped ahead with nothing waiting (else the oldest are shed).
        let on_timeline = self.due(chunk).is_some_and(|due| {
            now.saturating_duration_since(due) <= REPLAN
                && due.saturating_duration_since(now) <= FRAME * MAX_WAITING as u32
        });
        let late = self.due(chunk).is_some_and(|due| now.saturating_duration_since(due) > REPLAN);
        if !on_timeline && (late || self.waiting.is_empty()) {
            self.timeline = Some((now, chunk));
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

    /// When `chunk` is due on the timeline.
    fn due(&self, chunk: u64) -> Option<Instant> {
        let (at, first) = self.timeline?;
        let chunks = u32::try_from(chunk.checked_sub(first)?).ok()?;
        at.checked_add(FRAME.checked_mul(chunks)?)
    }

    /// The next chunk if it may leave at `now`: hand its payload back with [`recycle`](Self::recycle).
    pub fn pop_due(&mut self, now: Instant) -> Option<(u64, Vec<u8>)> {
        if self.next_due().is_none_or(|due| due > now) {
            return None;
        }
        let out = self.waiting.pop_front()?;
        if self.due(out.chunk).is_some_and(|due| now < due) {
            if let Some((at, chunk)) = self.timeline {
                self.timeline = Some((at.checked_sub(SLIDE).unwrap_or(at), chunk));
            }
        }
        self.next = Some(out.chunk + 1);
        self.last_out = Some(now);
        Some((out.chunk, out.payload))
    }

    /// When the next chunk may leave; `None` while nothing waits.
    pub fn next_due(&self) -> Option<Instant> {
        let first = self.waiting.front()?;
        let in_order = self.next.is_none_or(|next| first.chunk == next);
        let mut at = first.arrived;
        if let Some(due) = self.due(first.chunk) {
            at = at.max(due.checked_sub(AHEAD).unwrap_or(due));
        }
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
        self.timeline = None;
        self.last_out = None;
        self.waiting.pop_front().map(|w| (w.chunk, w.payload))
    }

    pub fn first_arrival(&self) -> Option<Instant> {
        self.waiting.front().map(|w| w.arrived)
    }

    /// Drop what waits (`clear`).
    pub fn clear(&mut self) {
        self.spare.extend(self.waiting.drain(..).map(|w| w.payload));
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
    fn a_stalled_burst_leaves_spread_out_and_catches_up_at_twice_real_time() {
        // A stall: chunks 1-5 arrive at once, then on time again.
        let mut arrivals: Vec<(u64, u64)> = vec![(0, 0)];
        arrivals.extend((1..=5).map(|c| (100, c)));
        arrivals.extend((6..=12).map(|c| (20 * c, c)));
        let out = paced(&arrivals);
        let times: Vec<u64> = out.iter().map(|(_, ms)| *ms).collect();
        assert_eq!(out.iter().map(|(c, _)| *c).collect::<Vec<_>>(), (0..=12).collect::<Vec<_>>());
        assert_eq!(times, [0, 100, 110, 120, 130, 140, 150, 160, 170, 180, 200, 220, 240]);
    }

    #[test]
    fn chunks_sent_ahead_of_time_leave_at_real_time_pace_at_most_40_ms_early() {
        // A second of speech sent at once.
        let mut arrivals: Vec<(u64, u64)> = vec![(0, 0)];
        arrivals.extend((1..=50).map(|c| (5, c)));
        let out = paced(&arrivals);
        assert_eq!(out.len(), 51, "nothing lost");
        for (i, &(chunk, ms)) in out.iter().enumerate() {
            assert_eq!(chunk, i as u64);
            // At most 40 ms early, and 1 % fast (and 1 ms for whole milliseconds).
            assert!((ms + 41) * 100 >= 20 * chunk * 99, "chunk {chunk} left at {ms} ms");
        }
        for pair in out.windows(2) {
            assert!(pair[1].1 - pair[0].1 >= 10, "{pair:?}: two chunks within 10 ms");
        }
        assert_eq!(out[50].1, 950, "a second's speech in 950 ms (960 at real time less 1 %)");
    }

    #[test]
    fn a_carrier_whose_clock_runs_half_a_percent_fast_is_followed() {
        // A chunk every 19.9 ms: after 2,000 chunks it is 200 ms ahead of real time.
        let arrivals: Vec<(u64, u64)> = (0..2_000).map(|c| (c * 199 / 10, c)).collect();
        let out = paced(&arrivals);
        assert_eq!(out.len(), 2_000);
        let (chunk, left) = out[1_999];
        assert!(
            left - arrivals[chunk as usize].0 <= 2,
            "the last chunk waited {} ms",
            left - arrivals[1_999].0
        );
    }

    #[test]
    fn a_sender_resuming_after_a_pause_is_paced_from_its_first_chunk() {
        let mut arrivals: Vec<(u64, u64)> = (0..5).map(|c| (20 * c, c)).collect();
        arrivals.extend((5..=30).map(|c| (3_000, c)));
        let out = paced(&arrivals);
        assert_eq!(out.len(), 31);
        for &(chunk, ms) in &out[5..] {
            assert!((ms + 41 - 3_000) * 100 >= 20 * (chunk - 5) * 99, "chunk {chunk} left at {ms} ms");
        }
    }

    #[test]
    fn more_than_two_seconds_waiting_sheds_the_oldest() {
        let mut arrivals: Vec<(u64, u64)> = vec![(0, 0)];
        arrivals.extend((1..=150).map(|c| (5, c)));
        let out = paced(&arrivals);
        let chunks: Vec<u64> = out.iter().map(|(c, _)| *c).collect();
        let kept: Vec<u64> = std::iter::once(0).chain(51..=150).collect();
        assert_eq!(chunks, kept);
        assert_eq!(out[1].1, 51 * 20 - 40, "still on the timeline");
    }

    #[test]
    fn a_jump_in_the_numbering_starts_the_timeline_again() {
        // (The chunks skipped are a gap: given up after 40 ms.)
        let out = paced(&[(0, 0), (20, 1), (40, 5_000), (60, 5_001), (80, 5_002), (100, 5_003)]);
        assert_eq!(out, [(0, 0), (1, 20), (5_000, 80), (5_001, 90), (5_002, 100), (5_003, 110)]);
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
