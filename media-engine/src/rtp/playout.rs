//! The receive side of a leg: puts packets back in order and hands out one
//! payload per 20 ms tick, or says the frame is missing so it can be concealed.
//!
//! Playout starts `delay` after the first packet and then runs at the leg's
//! 20 ms tick. The depth adapts both ways:
//! - an underrun (the frame due has not arrived and nothing newer has) stops
//!   playout (concealed frames fill in) until the target depth is buffered
//!   again, for at most [`MAX_STRETCH`] ticks: a network delay spike or a sender
//!   whose clock runs slow is absorbed instead of every later packet arriving
//!   "late";
//! - a backlog well past the target (a burst after a spike, a fast sender
//!   clock) is shed one frame at a time, bringing the delay back down.
//!
//! It also reorders within its window, drops late packets, unwraps 16-bit
//! sequence numbers and restarts on an SSRC change.

use std::time::{Duration, Instant};

use crate::ids::Ssrc;

/// Packets the buffer can hold ahead of playout (40 x 20 ms = 800 ms).
const SLOTS: usize = 40;
/// Ticks an underrun may wait for the stream (8 x 20 ms: a 40 ms start reaches 200 ms).
pub const MAX_STRETCH: u32 = 8;

#[derive(Debug, Clone, Default)]
struct Slot {
    ext_seq: Option<u64>,
    timestamp: u32,
    /// Room only while a packet is held (or was just played): empty slots
    /// give theirs to the buffer's `spare`.
    payload: Vec<u8>,
}

/// What playout yields at a tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Not started yet (no packet, or still filling): play nothing, count nothing.
    Waiting,
    /// The frame's payload.
    Frame { payload: &'a [u8], timestamp: u32 },
    /// The frame is missing: conceal it.
    Missing,
}

/// Outcome of inserting a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Stored {
        ext_seq: u64,
    },
    /// Arrived after its playout time, or already held.
    Late,
}

/// Reorders packets of one stream and plays them out at a fixed delay.
#[derive(Debug)]
pub struct PlayoutBuffer {
    /// `SLOTS` places, made with the first packet (a leg passing packets
    /// through never stores one).
    slots: Vec<Slot>,
    /// Payload room not held by a slot, for the next packet: the buffer makes
    /// as many as it ever held packets at once (a few, at a steady depth),
    /// not one per slot. Each grows once if a later payload is larger, up to
    /// `max_payload`.
    spare: Vec<Vec<u8>>,
    /// The slot `pop` lent its payload from; the room goes back to `spare`
    /// on the next call.
    lent: Option<usize>,
    delay: Duration,
    ssrc: Option<Ssrc>,
    highest: u64,
    next_play: u64,
    start_at: Option<Instant>,
    playing: bool,
    target_backlog: u64,
    /// After an underrun: ticks spent waiting for the target depth again.
    rebuffering: Option<u32>,
    max_payload: usize,
}

impl PlayoutBuffer {
    /// `delay` is the initial buffering delay; a payload is kept up to `max_payload` bytes.
    pub fn new(delay: Duration, max_payload: usize) -> Self {
        Self {
            slots: Vec::new(),
            spare: Vec::new(),
            lent: None,
            delay,
            ssrc: None,
            highest: 0,
            next_play: 0,
            start_at: None,
            playing: false,
            target_backlog: (delay.as_millis() / 20) as u64 + 1,
            rebuffering: None,
            max_payload,
        }
    }

    /// Store a packet. A new SSRC restarts the stream.
    pub fn insert(&mut self, now: Instant, ssrc: Ssrc, seq: u16, timestamp: u32, payload: &[u8]) -> Inserted {
        self.take_back_lent();
        if self.ssrc != Some(ssrc) {
            self.restart(now, ssrc, seq);
        }
        let ext_seq = super::sequence::extend_seq(self.highest, seq);
        if ext_seq < self.next_play {
            return Inserted::Late;
        }
        if ext_seq >= self.next_play + SLOTS as u64 {
            // Far ahead (a jump in the sender's sequence): resynchronise on it.
            self.clear_slots();
            self.next_play = ext_seq;
        }
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); SLOTS];
        }
        let slot = &mut self.slots[(ext_seq % SLOTS as u64) as usize];
        if slot.ext_seq == Some(ext_seq) {
            return Inserted::Late;
        }
        if slot.ext_seq.is_none() {
            slot.payload = self.spare.pop().unwrap_or_default();
        }
        slot.ext_seq = Some(ext_seq);
        slot.timestamp = timestamp;
        slot.payload.clear();
        slot.payload.extend_from_slice(&payload[..payload.len().min(self.max_payload)]);
        self.highest = self.highest.max(ext_seq);
        Inserted::Stored { ext_seq }
    }

    /// The payload due at this tick.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        self.take_back_lent();
        if !self.playing {
            match self.start_at {
                Some(at) if now >= at => self.playing = true,
                _ => return Playout::Waiting,
            }
        }
        // A sender running fast builds a backlog: shed one frame to hold the delay.
        if self.highest >= self.next_play + self.target_backlog + 3 {
            self.take(self.next_play);
            self.next_play += 1;
        }
        let seq = self.next_play;
        if self.highest < seq && self.rebuffering.is_none() {
            self.rebuffering = Some(0); // underrun: nothing at or after `seq` yet
        }
        if let Some(waited) = self.rebuffering {
            let depth = (self.highest + 1).saturating_sub(seq);
            if depth < self.target_backlog - 1 && waited < MAX_STRETCH {
                self.rebuffering = Some(waited + 1);
                return Playout::Missing;
            }
            self.rebuffering = None;
        }
        self.next_play += 1;
        let index = (seq % SLOTS as u64) as usize;
        match self.slots.get_mut(index) {
            Some(slot) if slot.ext_seq == Some(seq) => {
                slot.ext_seq = None;
                self.lent = Some(index);
                Playout::Frame { payload: &slot.payload, timestamp: slot.timestamp }
            }
            _ => Playout::Missing,
        }
    }

    fn take(&mut self, seq: u64) {
        let index = (seq % SLOTS as u64) as usize;
        if self.slots.get(index).is_some_and(|s| s.ext_seq == Some(seq)) {
            self.empty(index);
        }
    }

    /// Empty a slot, its payload's room kept for the next packet.
    fn empty(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.ext_seq = None;
        if slot.payload.capacity() > 0 {
            self.spare.push(std::mem::take(&mut slot.payload));
        }
    }

    fn take_back_lent(&mut self) {
        // `reset`, the only thing that takes the slots away, forgets the lent one.
        if let Some(index) = self.lent.take() {
            self.empty(index);
        }
    }

    fn restart(&mut self, now: Instant, ssrc: Ssrc, seq: u16) {
        self.clear_slots();
        self.ssrc = Some(ssrc);
        // Start the extended space high enough that reordered earlier packets stay positive.
        self.highest = (1 << 32) + u64::from(seq);
        self.next_play = self.highest;
        if self.start_at.is_none() {
            self.start_at = Some(now + self.delay);
        }
    }

    /// Drop everything waiting to be played; play on from the next packet to arrive.
    pub fn flush(&mut self) {
        self.clear_slots();
        self.next_play = self.highest + 1;
    }

    /// Forget the stream: the next packet starts playout afresh after the
    /// initial delay. The slots' room goes too (a leg passing packets through
    /// holds none), and comes back with that packet.
    pub fn reset(&mut self) {
        self.slots = Vec::new();
        self.spare = Vec::new();
        self.lent = None;
        self.ssrc = None;
        self.start_at = None;
        self.playing = false;
        self.rebuffering = None;
    }

    fn clear_slots(&mut self) {
        for index in 0..self.slots.len() {
            self.empty(index);
        }
        self.lent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    fn played(buf: &mut PlayoutBuffer, now: Instant) -> Option<Option<u8>> {
        match buf.pop(now) {
            Playout::Waiting => None,
            Playout::Frame { payload, .. } => Some(Some(payload[0])),
            Playout::Missing => Some(None),
        }
    }

    #[test]
    fn reorders_within_the_window_and_reports_gaps() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::from_millis(40), 160);
        let ssrc = Ssrc(1);
        for (i, seq) in [100u16, 102, 101, 104].into_iter().enumerate() {
            buf.insert(t0 + MS20 * i as u32 / 4, ssrc, seq, u32::from(seq) * 160, &[seq as u8]);
        }
        assert_eq!(played(&mut buf, t0), None, "still filling");
        let t = t0 + Duration::from_millis(40);
        let got: Vec<_> = (0..5).map(|i| played(&mut buf, t + MS20 * i)).collect();
        assert_eq!(got, vec![Some(Some(100)), Some(Some(101)), Some(Some(102)), Some(None), Some(Some(104))]);
    }

    #[test]
    fn a_buffer_holds_no_room_until_its_first_packet_nor_after_a_reset() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::ZERO, 160);
        assert!(buf.slots.is_empty());
        buf.insert(t0, Ssrc(1), 10, 0, &[10]);
        assert_eq!(buf.slots.len(), SLOTS);
        buf.reset();
        assert!(buf.slots.is_empty());
        assert_eq!(played(&mut buf, t0), None, "a reset stream waits for its next packet");
        buf.insert(t0, Ssrc(1), 11, 0, &[11]);
        assert_eq!(played(&mut buf, t0), Some(Some(11)));
    }

    #[test]
    fn sequence_wrap_keeps_order() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::ZERO, 160);
        for seq in [65534u16, 65535, 0, 1] {
            buf.insert(t0, Ssrc(1), seq, 0, &[seq as u8]);
        }
        let got: Vec<_> = (0..4).map(|_| played(&mut buf, t0)).collect();
        assert_eq!(got, vec![Some(Some(254)), Some(Some(255)), Some(Some(0)), Some(Some(1))]);
    }

    #[test]
    fn late_and_duplicate_packets_are_refused() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::ZERO, 160);
        buf.insert(t0, Ssrc(1), 10, 0, &[10]);
        assert_eq!(buf.insert(t0, Ssrc(1), 10, 0, &[10]), Inserted::Late);
        played(&mut buf, t0);
        assert_eq!(buf.insert(t0, Ssrc(1), 10, 0, &[10]), Inserted::Late);
        assert_eq!(buf.insert(t0, Ssrc(1), 9, 0, &[9]), Inserted::Late);
    }

    #[test]
    fn ssrc_change_restarts_the_stream() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::ZERO, 160);
        buf.insert(t0, Ssrc(1), 500, 0, &[1]);
        played(&mut buf, t0);
        buf.insert(t0, Ssrc(2), 7, 0, &[2]);
        assert_eq!(played(&mut buf, t0), Some(Some(2)));
    }

    #[test]
    fn a_backlog_from_a_fast_sender_is_shed() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::from_millis(40), 160);
        for seq in 0..12u16 {
            buf.insert(t0, Ssrc(1), seq, 0, &[seq as u8]);
        }
        let t = t0 + Duration::from_millis(40);
        let first = played(&mut buf, t);
        assert_eq!(first, Some(Some(1)), "frame 0 shed to hold the delay");
    }

    #[test]
    fn a_slow_sender_is_absorbed_by_growing_the_delay_not_by_dropping_its_packets() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::from_millis(40), 160);
        // The sender's clock is 2 % slow: packet n arrives at n x 20.4 ms.
        let mut late = 0;
        let mut played_frames = 0;
        let mut next_packet = 0u32;
        for tick in 0..1500u32 {
            let now = t0 + MS20 * tick;
            while t0 + Duration::from_micros(20_400) * next_packet <= now {
                if buf.insert(now, Ssrc(1), next_packet as u16, next_packet * 160, &[1]) == Inserted::Late {
                    late += 1;
                }
                next_packet += 1;
            }
            if matches!(buf.pop(now), Playout::Frame { .. }) {
                played_frames += 1;
            }
        }
        assert_eq!(late, 0, "no packet of a slow sender is dropped");
        assert!(played_frames + 2 >= next_packet, "{played_frames} of {next_packet} played");
    }

    #[test]
    fn a_delay_spike_grows_the_delay_and_the_burst_after_it_is_shed_back() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::from_millis(40), 160);
        let mut late = 0;
        for tick in 0..400u32 {
            let now = t0 + MS20 * tick;
            // Packets 100..107 are held 140 ms by the network and arrive together.
            let arriving: Vec<u32> = match tick {
                100..=106 => vec![],
                107 => (100..=107).collect(),
                t => vec![t],
            };
            for seq in arriving {
                if buf.insert(now, Ssrc(1), seq as u16, seq * 160, &[1]) == Inserted::Late {
                    late += 1;
                }
            }
            buf.pop(now);
        }
        assert_eq!(late, 0, "packets late after the spike");
        let depth = buf.highest + 1 - buf.next_play;
        assert!(depth <= buf.target_backlog + 2, "the added delay was shed again: {depth} frames buffered");
    }

    /// Payload rooms the buffer holds, in slots and spare.
    fn rooms(buf: &PlayoutBuffer) -> usize {
        buf.slots.iter().filter(|s| s.payload.capacity() > 0).count() + buf.spare.len()
    }

    #[test]
    fn a_steady_stream_keeps_room_for_the_packets_it_holds_not_for_every_slot() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::from_millis(40), 160);
        for tick in 0..200u32 {
            let now = t0 + MS20 * tick;
            buf.insert(now, Ssrc(1), tick as u16, tick * 160, &[tick as u8; 160]);
            if tick >= 2 {
                assert_eq!(played(&mut buf, now), Some(Some((tick - 2) as u8)));
            }
        }
        assert!(rooms(&buf) <= 4, "{} payload rooms for a 40 ms depth", rooms(&buf));
        // A burst needs more room for a while; what it made is reused, not made again.
        let now = t0 + MS20 * 200;
        for seq in 200..210u32 {
            buf.insert(now, Ssrc(1), seq as u16, seq * 160, &[seq as u8; 160]);
        }
        let after_burst = rooms(&buf);
        for tick in 200..400u32 {
            let now = t0 + MS20 * tick;
            if tick >= 210 {
                buf.insert(now, Ssrc(1), tick as u16, tick * 160, &[tick as u8; 160]);
            }
            buf.pop(now);
        }
        assert_eq!(rooms(&buf), after_burst);
    }

    #[test]
    fn oversized_payloads_are_truncated_not_reallocated() {
        let t0 = crate::sim::epoch();
        let mut buf = PlayoutBuffer::new(Duration::ZERO, 4);
        buf.insert(t0, Ssrc(1), 1, 0, &[1; 100]);
        let Playout::Frame { payload, .. } = buf.pop(t0) else { panic!() };
        assert_eq!(payload.len(), 4);
    }
}
