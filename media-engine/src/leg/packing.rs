//! Audio packets of the peer's packet time (the `a=ptime` of its SDP). The leg
//! still encodes 20 ms a tick.
//!
//! For G.711 and G.722, whose payload bytes are RTP timestamp units (8 a
//! millisecond), each tick's bytes are appended here and a packet leaves as
//! soon as a whole packet time of them is waiting: 10 ms makes two packets a
//! tick, 40 ms one every other tick, 30 ms two every three ticks (on the 2nd and
//! 3rd: 20 then 40 ms apart, which the peer's jitter buffer takes as 10 ms of
//! jitter). For Opus, 40 and 60 ms packets join two or three of the encoder's
//! 20 ms frames, and for 10 and 30 ms the leg encodes each tick as two 10 ms
//! frames, sent one a packet or three joined (`opus_join.rs`).
//!
//! Anything that must not wait behind the audio (a telephone-event, a tick
//! that could not be encoded, the switch to passthrough) first sends what is
//! waiting as one shorter packet, so timestamps stay in order.

use std::collections::VecDeque;

use bond_codecs::Codec;
use bytes::BytesMut;

use super::opus_join::{OpusJoin, FRAME_UNITS};
use super::{packet_room, transmit_written, Leg, LegOutput};
use crate::ids::PayloadType;
use crate::rtp::Packetizer;

/// Bytes a millisecond of G.711 or G.722 (64 kbit/s).
const BYTES_PER_MS: usize = 8;

#[derive(Debug)]
pub(super) enum Packing {
    /// G.711 and G.722: packets cut from the encoded bytes.
    Bytes(BytePacking),
    /// Opus: the encoder's frames joined.
    Opus(OpusJoin),
}

#[derive(Debug)]
pub(super) struct BytePacking {
    /// Bytes in a packet.
    packet: usize,
    /// Encoded audio not sent yet, always less than a packet after a tick.
    pending: Vec<u8>,
}

impl Packing {
    /// Packets of `ms` for `codec`; `None` when they are the tick's own 20 ms
    /// (or `ms` is not 10, 30, 40 or 60).
    pub fn new(codec: Codec, ms: u32) -> Option<Self> {
        match (codec, ms) {
            (Codec::Pcmu | Codec::Pcma | Codec::G722, 10 | 30 | 40 | 60) => {
                let packet = ms as usize * BYTES_PER_MS;
                let pending = Vec::with_capacity(packet + 20 * BYTES_PER_MS);
                Some(Self::Bytes(BytePacking { packet, pending }))
            }
            (Codec::Opus, 40 | 60) => Some(Self::Opus(OpusJoin::new(ms as usize / 20, FRAME_UNITS))),
            (Codec::Opus, 10 | 30) => Some(Self::Opus(OpusJoin::new(ms as usize / 10, FRAME_UNITS / 2))),
            _ => None,
        }
    }

    pub fn packet_ms(&self) -> u32 {
        match self {
            Self::Bytes(b) => (b.packet / BYTES_PER_MS) as u32,
            Self::Opus(o) => o.packet_ms(),
        }
    }

    /// Append a tick's encoded audio and hand every whole packet waiting to
    /// `send`, with its length in timestamp units.
    pub fn push(&mut self, encoded: &[u8], mut send: impl FnMut(&[u8], u32)) {
        match self {
            Self::Bytes(b) => {
                b.pending.extend_from_slice(encoded);
                let mut sent = 0;
                while b.pending.len() - sent >= b.packet {
                    send(&b.pending[sent..sent + b.packet], b.packet as u32);
                    sent += b.packet;
                }
                b.pending.drain(..sent);
            }
            Self::Opus(o) => o.push(encoded, send),
        }
    }

    /// How many frames the encoder makes of each 20 ms tick.
    fn frames_a_tick(&self) -> usize {
        match self {
            Self::Bytes(_) => 1,
            Self::Opus(o) => o.frames_a_tick(),
        }
    }

    /// What is waiting, in timestamp units.
    pub fn waiting(&self) -> u32 {
        match self {
            Self::Bytes(b) => b.pending.len() as u32,
            Self::Opus(o) => o.waiting(),
        }
    }

    /// Drop what is waiting; returns its length in timestamp units.
    pub fn discard(&mut self) -> u32 {
        match self {
            Self::Bytes(b) => {
                let units = b.pending.len() as u32;
                b.pending.clear();
                units
            }
            Self::Opus(o) => o.discard(),
        }
    }

    /// Whatever is waiting, as one (shorter) packet.
    pub fn take_rest(&mut self, mut send: impl FnMut(&[u8], u32)) {
        match self {
            Self::Bytes(b) if !b.pending.is_empty() => {
                send(&b.pending, b.pending.len() as u32);
                b.pending.clear();
            }
            Self::Bytes(_) => {}
            Self::Opus(o) => o.take_rest(send),
        }
    }
}

/// Where a leg's packets go: its stream's numbering, its send buffer, its outputs.
pub(super) struct Sender<'a> {
    pub packetizer: &'a mut Packetizer,
    pub tx: &'a mut BytesMut,
    pub outputs: &'a mut VecDeque<LegOutput>,
}

impl Sender<'_> {
    /// One RTP packet of `payload` covering `duration` timestamp units, out as `Transmit`.
    pub fn send(&mut self, payload_type: PayloadType, payload: &[u8], duration: u32) {
        let written =
            self.packetizer.write(payload_type, payload, duration, packet_room(self.tx, payload.len()));
        transmit_written(self.tx, self.outputs, written);
    }
}

impl Leg {
    /// Encode this tick's audio (`outgoing`) and send it: as the encoder's
    /// 10 ms frames when the packets are made of them, else as 20 ms. A frame
    /// that cannot be encoded sends what is waiting and leaves its time unsent.
    pub(super) fn encode_and_send(&mut self, duration: u32) {
        let parts = self.packing.as_ref().map_or(1, |p| p.frames_a_tick());
        let part_duration = duration / parts as u32;
        for part in 0..parts {
            match self.encoder.encode_part(self.frames.sent(), part, parts, &mut self.payload) {
                Ok(len) => self.send_audio(len, part_duration),
                Err(_) => {
                    self.send_packed_rest();
                    self.packetizer.skip(part_duration);
                }
            }
        }
    }

    /// `len` encoded bytes (in `payload`): packed when the peer asked for
    /// another packet time than 20 ms, else one packet.
    fn send_audio(&mut self, len: usize, duration: u32) {
        let pt = self.config.payload_type;
        let payload = &self.payload[..len];
        let mut sender =
            Sender { packetizer: &mut self.packetizer, tx: &mut self.tx, outputs: &mut self.outputs };
        match self.packing.as_mut() {
            Some(packing) => packing.push(payload, |p, units| sender.send(pt, p, units)),
            None => sender.send(pt, payload, duration),
        }
    }

    /// Send the packed audio still waiting, as one shorter packet.
    pub(super) fn send_packed_rest(&mut self) {
        let pt = self.config.payload_type;
        let mut sender =
            Sender { packetizer: &mut self.packetizer, tx: &mut self.tx, outputs: &mut self.outputs };
        if let Some(packing) = self.packing.as_mut() {
            packing.take_rest(|p, units| sender.send(pt, p, units));
        }
    }

    /// The packet time this leg sends at, in ms.
    pub fn packet_ms(&self) -> u32 {
        self.packing.as_ref().map_or(20, |p| p.packet_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets_over(ms: u32, ticks: usize) -> Vec<Vec<usize>> {
        let mut packing = Packing::new(Codec::Pcmu, ms).unwrap();
        (0..ticks)
            .map(|_| {
                let mut sent = Vec::new();
                packing.push(&[0; 160], |p, units| {
                    assert_eq!(units as usize, p.len());
                    sent.push(p.len());
                });
                sent
            })
            .collect()
    }

    #[test]
    fn each_tick_sends_the_whole_packets_waiting() {
        assert_eq!(packets_over(10, 2), [vec![80, 80], vec![80, 80]]);
        assert_eq!(packets_over(30, 6), [vec![], vec![240], vec![240], vec![], vec![240], vec![240]]);
        assert_eq!(packets_over(40, 4), [vec![], vec![320], vec![], vec![320]]);
        assert_eq!(packets_over(60, 3), [vec![], vec![], vec![480]]);
    }

    #[test]
    fn twenty_ms_needs_no_packing_and_the_rest_goes_as_one_packet() {
        assert!(Packing::new(Codec::Pcmu, 20).is_none());
        assert!(Packing::new(Codec::Opus, 20).is_none());
        assert!(Packing::new(Codec::Opus, 25).is_none(), "not a whole number of 10 ms frames");
        assert!(Packing::new(Codec::G722, 25).is_none());
        let mut packing = Packing::new(Codec::G722, 30).unwrap();
        packing.push(&[1; 160], |_, _| panic!("not a whole packet yet"));
        let mut rest = Vec::new();
        packing.take_rest(|p, _| rest.extend_from_slice(p));
        assert_eq!(rest.len(), 160);
        packing.take_rest(|_, _| panic!("nothing is left"));
    }

    #[test]
    fn opus_at_sixty_ms_joins_three_frames_and_counts_them_waiting() {
        let mut packing = Packing::new(Codec::Opus, 60).unwrap();
        let mut sent = Vec::new();
        for frame in 1..=4u8 {
            packing.push(&[0x78, frame], |p, units| sent.push((p.to_vec(), units)));
        }
        assert_eq!(sent, [(vec![0x7b, 0x83, 1, 1, 1, 2, 3], 2880)]);
        assert_eq!((packing.packet_ms(), packing.waiting()), (60, 960));
        assert_eq!(packing.discard(), 960);
    }
}
