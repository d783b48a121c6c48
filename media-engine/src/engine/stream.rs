//! Carrier media-stream legs (Telnyx, Twilio): audio arrives as numbered chunks
//! of codec payload and leaves as 20 ms payloads, over a WebSocket the runtime's
//! caller owns. Inside, a stream leg is an RTP leg: each chunk is wrapped in an
//! RTP header (sequence = chunk number, timestamp = chunk number x the chunk's
//! length, so chunks of other lengths than 20 ms are cut into 20 ms frames), so
//! reordering, concealment, DTMF detection, recording and AMD come from the
//! same code as for SIP legs; what it sends is the RTP payload without its header.
//!
//! Passthrough (`passthrough.rs`): a stream leg bridged to a leg of the same
//! codec and packet time hands its chunks on undecoded, in chunk order and at
//! real-time pace (`pacer.rs`), in place of its playout buffer and tick; a
//! chunk passed on counts as played. Packets passed to it from a SIP leg
//! reach its carrier in sequence order (UDP may reorder them): one that
//! arrives ahead of a gap waits for the missing one until [`REORDER_WINDOW`]
//! more are waiting, then the gap is given up; one behind what was sent is
//! dropped. Their pace is the phone's; another stream's chunks come paced and
//! in order from that stream's pacer.
//!
//! Marks: a `mark` from the carrier is answered once the audio it sent before
//! the mark has been played; `clear` drops the audio not yet played and answers
//! every pending mark at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bond_codecs::{opus_codec, Codec};
use bytes::Bytes;

use super::member::Member;
use super::pacer::Pacer;
use super::{Engine, EngineOutput};
use crate::ids::LegId;
use crate::leg::MediaSource;
use crate::rtp::{plain_packet, PLAIN_HEADER};
use crate::EngineError;

/// What a stream leg sends its carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOutput {
    /// 20 ms of codec payload.
    Media(Bytes),
    /// A mark whose audio has played.
    Mark(String),
}

/// How many packets passed through may wait behind a missing one.
const REORDER_WINDOW: usize = 2;

#[derive(Debug)]
pub(super) struct StreamState {
    ssrc: u32,
    payload_type: u8,
    codec: Codec,
    /// RTP timestamp units of the latest chunk.
    chunk_units: u32,
    /// Media chunks received so far.
    received: u64,
    /// Chunks received while passing through, on their way to the leg.
    pacer: Pacer,
    /// Marks waiting for the audio before them: (frames to have played, name).
    marks: VecDeque<(u64, String)>,
    packet: Vec<u8>,
    /// Passthrough: the sequence number the carrier gets next, and the packets
    /// waiting for it (payloads by sequence number).
    next_seq: Option<u16>,
    waiting: Vec<(u16, Bytes)>,
}

impl StreamState {
    pub fn new(ssrc: u32, payload_type: u8, codec: Codec) -> Self {
        Self {
            ssrc,
            payload_type,
            codec,
            chunk_units: codec.rtp_clock_rate() / 50,
            received: 0,
            pacer: Pacer::default(),
            marks: VecDeque::new(),
            packet: Vec::with_capacity(PLAIN_HEADER + codec.max_payload_len()),
            next_seq: None,
            waiting: Vec::with_capacity(REORDER_WINDOW + 1),
        }
    }

    /// Chunk `chunk` as an RTP packet, in the stream's buffer: hand it back with [`reuse`](Self::reuse).
    pub fn packet(&mut self, chunk: u64, payload: &[u8]) -> Vec<u8> {
        let timestamp = (chunk as u32).wrapping_mul(self.chunk_units);
        let mut packet = std::mem::take(&mut self.packet);
        plain_packet(&mut packet, false, self.payload_type, chunk as u16, timestamp, self.ssrc, payload);
        packet
    }

    /// Take the length of a chunk that arrived (carriers keep it the same);
    /// true if whether chunks are 20 ms long changed.
    fn note_length(&mut self, payload: &[u8]) -> bool {
        let units = match self.codec {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => Some(payload.len()),
            Codec::L16 { .. } => Some(payload.len() / 2),
            Codec::Opus => opus_codec::packet_samples(payload),
            _ => None,
        };
        let Some(units) = units.and_then(|u| u32::try_from(u).ok()).filter(|&u| u > 0) else { return false };
        let was_20_ms = self.is_20_ms();
        self.chunk_units = units;
        was_20_ms != self.is_20_ms()
    }

    /// Whether the carrier's chunks are 20 ms long, as passthrough needs.
    pub fn is_20_ms(&self) -> bool {
        self.chunk_units == self.codec.rtp_clock_rate() / 50
    }

    pub fn reuse(&mut self, packet: Vec<u8>) {
        self.packet = packet;
    }

    /// An RTP packet the leg sent, to its carrier as the payload alone: at once
    /// when the leg made it, in sequence order with `reorder` (passed through from a SIP leg).
    pub fn send(&mut self, packet: &Bytes, reorder: bool, mut out: impl FnMut(StreamOutput)) {
        let payload = packet.slice(PLAIN_HEADER.min(packet.len())..);
        if !reorder || packet.len() < PLAIN_HEADER {
            return out(StreamOutput::Media(payload));
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let next = *self.next_seq.get_or_insert(seq);
        let ahead = seq.wrapping_sub(next);
        if ahead >= 0x8000 || self.waiting.iter().any(|(s, _)| *s == seq) {
            return; // behind what was sent, or a duplicate
        }
        let at = self.waiting.partition_point(|(s, _)| s.wrapping_sub(next) < ahead);
        self.waiting.insert(at, (seq, payload));
        self.release(self.waiting.len() > REORDER_WINDOW, out);
    }

    /// Passthrough ends (or starts): whatever waits goes now, in order.
    pub fn end_passthrough(&mut self, mut out: impl FnMut(StreamOutput)) {
        for (_, payload) in self.waiting.drain(..) {
            out(StreamOutput::Media(payload));
        }
        self.next_seq = None;
    }

    /// Send the waiting packets that are next in sequence; with `skip_gap`, the
    /// first waiting one is next whatever is missing before it.
    fn release(&mut self, mut skip_gap: bool, mut out: impl FnMut(StreamOutput)) {
        let mut sent = 0;
        for (seq, payload) in &self.waiting {
            if Some(*seq) != self.next_seq && !skip_gap {
                break;
            }
            skip_gap = false;
            out(StreamOutput::Media(payload.clone()));
            self.next_seq = Some(seq.wrapping_add(1));
            sent += 1;
        }
        self.waiting.drain(..sent);
    }

    /// A mark: due once as many frames have played as chunks have arrived.
    pub fn mark(&mut self, name: String, played: u64) {
        let due = self.received.max(played);
        self.marks.push_back((due, name));
    }

    /// Marks whose audio has played.
    pub fn due_marks(&mut self, played: u64) -> impl Iterator<Item = String> + '_ {
        std::iter::from_fn(move || match self.marks.front() {
            Some((due, _)) if *due <= played => self.marks.pop_front().map(|(_, name)| name),
            _ => None,
        })
    }

    /// Every pending mark (after a `clear`); what was received counts as played.
    pub fn clear(&mut self, played: u64) -> impl Iterator<Item = String> + '_ {
        self.received = played;
        self.marks.drain(..).map(|(_, name)| name)
    }
}

/// Initial buffering of a stream leg's chunks.
const STREAM_PLAYOUT_DELAY: Duration = Duration::from_millis(60);

impl Engine {
    /// Add a carrier media-stream leg (Telnyx, Twilio) for `codec`: feed it with
    /// [`Engine::handle_stream_media`]; it outputs [`EngineOutput::Stream`]. With
    /// `passthrough`, a bridge to a leg of the same codec may pass its chunks on
    /// undecoded (see `passthrough.rs`).
    pub fn add_stream_leg(
        &mut self,
        now: Instant,
        codec: Codec,
        passthrough: bool,
    ) -> Result<LegId, EngineError> {
        let mut config = self.leg_config(codec);
        config.passthrough = passthrough;
        // Chunks come over TCP in small bursts; the leg ends when the socket does.
        config.playout_delay = STREAM_PLAYOUT_DELAY;
        config.media_timeout = None;
        let state = StreamState::new(self.rng.next_u64() as u32, config.payload_type.get(), codec);
        let id = self.add_leg(now, config, MediaSource::Silence)?;
        self.streams.insert(id, state);
        Ok(id)
    }

    /// Chunk number `chunk` of a stream leg's audio (codec payload, 20 ms).
    pub fn handle_stream_media(
        &mut self,
        now: Instant,
        leg: LegId,
        chunk: u64,
        payload: &[u8],
    ) -> Result<(), EngineError> {
        let state = self.streams.get_mut(&leg).ok_or(EngineError::Config("not a stream leg"))?;
        state.received += 1;
        if state.note_length(payload) {
            self.refresh_passthrough(leg);
        }
        if !self.is_passthrough(leg) {
            return self.receive_chunk(now, leg, chunk, payload);
        }
        if let Some(state) = self.streams.get_mut(&leg) {
            state.pacer.push(now, chunk, payload);
        }
        self.release_paced(now, leg);
        Ok(())
    }

    /// Hand the leg the chunks its pacer lets out at `now`, or, once the leg
    /// has left passthrough, every chunk waiting (its playout buffer takes them).
    pub(super) fn release_paced(&mut self, now: Instant, leg: LegId) {
        let passthrough = self.is_passthrough(leg);
        loop {
            let Some(state) = self.streams.get_mut(&leg) else { return };
            let next = if passthrough { state.pacer.pop_due(now) } else { state.pacer.pop_any() };
            let Some((chunk, payload)) = next else { break };
            // Nothing is lost here: a leg that ended already said so.
            let _ = self.receive_chunk(now, leg, chunk, &payload);
            if let Some(state) = self.streams.get_mut(&leg) {
                state.pacer.recycle(payload);
            }
        }
        self.arm(leg);
    }

    /// When the stream's pacer next lets a chunk out (at once once passthrough ended).
    pub(super) fn paced_deadline(&self, leg: LegId) -> Option<Instant> {
        let state = self.streams.get(&leg)?;
        if self.is_passthrough(leg) {
            state.pacer.next_due()
        } else {
            state.pacer.first_arrival()
        }
    }

    fn receive_chunk(
        &mut self,
        now: Instant,
        leg: LegId,
        chunk: u64,
        payload: &[u8],
    ) -> Result<(), EngineError> {
        let state = self.streams.get_mut(&leg).ok_or(EngineError::Config("not a stream leg"))?;
        // The packet's buffer is lent out while the leg (or its passthrough peer) takes it.
        let packet = state.packet(chunk, payload);
        let result = self.handle_receive(now, leg, &packet);
        if let Some(state) = self.streams.get_mut(&leg) {
            state.reuse(packet);
        }
        result
    }

    /// The carrier asks to hear of `name` once the audio it sent so far has played.
    pub fn handle_stream_mark(&mut self, leg: LegId, name: String) -> Result<(), EngineError> {
        let played = self.played_frames(leg)?;
        let state = self.streams.get_mut(&leg).ok_or(EngineError::Config("not a stream leg"))?;
        state.mark(name, played);
        self.after_leg_changed(leg);
        Ok(())
    }

    /// The carrier drops the audio it sent that has not played yet: every mark is answered.
    pub fn handle_stream_clear(&mut self, leg: LegId) -> Result<(), EngineError> {
        let played = self.played_frames(leg)?;
        if let Some(Member::Rtp(l)) = self.legs.get_mut(&leg) {
            l.flush_playout();
        }
        let state = self.streams.get_mut(&leg).ok_or(EngineError::Config("not a stream leg"))?;
        state.pacer.clear();
        for name in state.clear(played) {
            self.outputs.push_back(EngineOutput::Stream { leg, output: StreamOutput::Mark(name) });
        }
        Ok(())
    }

    fn played_frames(&self, leg: LegId) -> Result<u64, EngineError> {
        match self.legs.get(&leg) {
            Some(Member::Rtp(l)) => Ok(l.played_frames()),
            Some(_) => Err(EngineError::Config("not a stream leg")),
            None => Err(EngineError::UnknownLeg(leg)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `send` lets out for RTP packets with these sequence numbers (payload = seq).
    fn passed(seqs: &[u16]) -> Vec<u16> {
        let mut state = StreamState::new(1, 0, Codec::Pcmu);
        let mut out = Vec::new();
        for &seq in seqs {
            let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet.extend_from_slice(&seq.to_be_bytes());
            state.send(&Bytes::from(packet), true, |o| match o {
                StreamOutput::Media(p) => out.push(u16::from_be_bytes([p[0], p[1]])),
                StreamOutput::Mark(_) => unreachable!(),
            });
        }
        out
    }

    #[test]
    fn passed_packets_leave_in_order_across_the_wrap_and_a_gap_is_given_up_after_the_window() {
        assert_eq!(passed(&[65534, 0, 65535, 1]), [65534, 65535, 0, 1]);
        // 3 never comes: 4 and 5 wait, 6 is one too many.
        assert_eq!(passed(&[1, 2, 4, 5, 6, 3, 7]), [1, 2, 4, 5, 6, 7]);
    }

    #[test]
    fn a_passed_packet_behind_what_was_sent_or_a_duplicate_is_dropped() {
        assert_eq!(passed(&[5, 4, 6, 6, 8, 8, 7]), [5, 6, 7, 8]);
    }
}
