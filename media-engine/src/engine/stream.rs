//! Carrier media-stream legs (Telnyx, Twilio): audio arrives as numbered chunks
//! of codec payload and leaves as 20 ms payloads, over a WebSocket the runtime's
//! caller owns. Inside, a stream leg is an RTP leg: each chunk is wrapped in an
//! RTP header (sequence = chunk number, timestamp = chunk x frame length), so
//! reordering, concealment, DTMF detection, recording and AMD come from the
//! same code as for SIP legs; what it sends is the RTP payload without its header.
//!
//! Marks: a `mark` from the carrier is answered once the audio it sent before
//! the mark has been played; `clear` drops the audio not yet played and answers
//! every pending mark at once.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::rtp::{plain_packet, PLAIN_HEADER};

/// What a stream leg sends its carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOutput {
    /// 20 ms of codec payload.
    Media(Bytes),
    /// A mark whose audio has played.
    Mark(String),
}

#[derive(Debug)]
pub(super) struct StreamState {
    ssrc: u32,
    payload_type: u8,
    samples_per_chunk: u32,
    /// Media chunks received so far.
    received: u64,
    /// Marks waiting for the audio before them: (frames to have played, name).
    marks: VecDeque<(u64, String)>,
    packet: Vec<u8>,
}

impl StreamState {
    pub fn new(ssrc: u32, payload_type: u8, samples_per_chunk: u32, max_payload: usize) -> Self {
        Self {
            ssrc,
            payload_type,
            samples_per_chunk,
            received: 0,
            marks: VecDeque::new(),
            packet: Vec::with_capacity(PLAIN_HEADER + max_payload),
        }
    }

    /// Chunk `chunk` as an RTP packet.
    pub fn packet(&mut self, chunk: u64, payload: &[u8]) -> &[u8] {
        self.received += 1;
        let timestamp = (chunk as u32).wrapping_mul(self.samples_per_chunk);
        plain_packet(&mut self.packet, false, self.payload_type, chunk as u16, timestamp, self.ssrc, payload)
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
