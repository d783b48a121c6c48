//! Audio packets of the peer's packet time (the `a=ptime` of its SDP) for G.711
//! and G.722, whose payload bytes are RTP timestamp units (8 a millisecond).
//! The leg still encodes 20 ms a tick; each tick's bytes are appended here and
//! a packet leaves as soon as a whole packet time of them is waiting: 10 ms
//! makes two packets a tick, 40 ms one every other tick, 30 ms two every three
//! ticks (on the 2nd and 3rd: 20 then 40 ms apart, which the peer's jitter
//! buffer takes as 10 ms of jitter).
//!
//! Anything that must not wait behind the audio (a telephone-event, a tick
//! that could not be encoded, the switch to passthrough) first sends what is
//! waiting as one shorter packet, so timestamps stay in order.

use std::collections::VecDeque;

use bond_codecs::Codec;
use bytes::BytesMut;

use super::{packet_room, transmit_written, Leg, LegOutput};
use crate::ids::PayloadType;
use crate::rtp::Packetizer;

/// Bytes a millisecond of G.711 or G.722 (64 kbit/s).
const BYTES_PER_MS: usize = 8;

#[derive(Debug)]
pub(super) struct Packing {
    /// Bytes in a packet.
    packet: usize,
    /// Encoded audio not sent yet, always less than a packet after a tick.
    pending: Vec<u8>,
}

impl Packing {
    /// Packets of `ms` for `codec`; `None` when they are the tick's own 20 ms
    /// (or `codec` is Opus, or `ms` is not 10, 30, 40 or 60).
    pub fn new(codec: Codec, ms: u32) -> Option<Self> {
        let sample_based = matches!(codec, Codec::Pcmu | Codec::Pcma | Codec::G722);
        let packet = ms as usize * BYTES_PER_MS;
        (sample_based && matches!(ms, 10 | 30 | 40 | 60))
            .then(|| Self { packet, pending: Vec::with_capacity(packet + 20 * BYTES_PER_MS) })
    }

    pub fn packet_ms(&self) -> u32 {
        (self.packet / BYTES_PER_MS) as u32
    }

    /// Append a tick's encoded audio.
    pub fn push(&mut self, encoded: &[u8]) {
        self.pending.extend_from_slice(encoded);
    }

    /// The next whole packet waiting, if any: hand it to `send`, then it is gone.
    pub fn take_packet(&mut self, send: impl FnOnce(&[u8])) -> bool {
        if self.pending.len() < self.packet {
            return false;
        }
        send(&self.pending[..self.packet]);
        self.pending.drain(..self.packet);
        true
    }

    /// What is waiting, in timestamp units.
    pub fn waiting(&self) -> u32 {
        self.pending.len() as u32
    }

    /// Drop what is waiting; returns its length in timestamp units.
    pub fn discard(&mut self) -> u32 {
        let units = self.waiting();
        self.pending.clear();
        units
    }

    /// Whatever is waiting, as one (shorter) packet.
    pub fn take_rest(&mut self, send: impl FnOnce(&[u8])) {
        if !self.pending.is_empty() {
            send(&self.pending);
            self.pending.clear();
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
    /// This tick's `len` encoded bytes (in `payload`): packed when the peer
    /// asked for another packet time than 20 ms, else one packet.
    pub(super) fn send_audio(&mut self, len: usize, duration: u32) {
        let pt = self.config.payload_type;
        let payload = &self.payload[..len];
        let mut sender =
            Sender { packetizer: &mut self.packetizer, tx: &mut self.tx, outputs: &mut self.outputs };
        match self.packing.as_mut() {
            Some(packing) => {
                packing.push(payload);
                while packing.take_packet(|p| sender.send(pt, p, p.len() as u32)) {}
            }
            None => sender.send(pt, payload, duration),
        }
    }

    /// Send the packed audio still waiting, as one shorter packet.
    pub(super) fn send_packed_rest(&mut self) {
        let pt = self.config.payload_type;
        let mut sender =
            Sender { packetizer: &mut self.packetizer, tx: &mut self.tx, outputs: &mut self.outputs };
        if let Some(packing) = self.packing.as_mut() {
            packing.take_rest(|p| sender.send(pt, p, p.len() as u32));
        }
    }

    /// The packet time this leg sends at, in ms.
    pub fn packet_ms(&self) -> u32 {
        self.packing.as_ref().map_or(20, Packing::packet_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets_over(ms: u32, ticks: usize) -> Vec<Vec<usize>> {
        let mut packing = Packing::new(Codec::Pcmu, ms).unwrap();
        (0..ticks)
            .map(|_| {
                packing.push(&[0; 160]);
                let mut sent = Vec::new();
                while packing.take_packet(|p| sent.push(p.len())) {}
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
    fn twenty_ms_and_opus_need_no_packing_and_the_rest_goes_as_one_packet() {
        assert!(Packing::new(Codec::Pcmu, 20).is_none());
        assert!(Packing::new(Codec::Opus, 40).is_none());
        assert!(Packing::new(Codec::G722, 25).is_none());
        let mut packing = Packing::new(Codec::G722, 30).unwrap();
        packing.push(&[1; 160]);
        let mut rest = Vec::new();
        packing.take_rest(|p| rest.extend_from_slice(p));
        assert_eq!(rest.len(), 160);
        packing.take_rest(|_| panic!("nothing is left"));
    }
}
