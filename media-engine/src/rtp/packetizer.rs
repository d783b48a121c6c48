//! Outgoing RTP: sequence numbers, timestamps and the marker bit for one stream.

use rtp::header::Header;

use super::{write_packet, RtpError};
use crate::ids::{PayloadType, Ssrc};

/// Stamps successive payloads of one RTP stream.
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: Ssrc,
    next_seq: u16,
    next_timestamp: u32,
    first: bool,
    sent_packets: u64,
    sent_bytes: u64,
}

impl Packetizer {
    /// `initial_seq` and `initial_timestamp` should be random (RFC 3550 5.1); Bond
    /// takes them from a seeded generator so runs are reproducible.
    pub fn new(ssrc: Ssrc, initial_seq: u16, initial_timestamp: u32) -> Self {
        Self {
            ssrc,
            next_seq: initial_seq,
            next_timestamp: initial_timestamp,
            first: true,
            sent_packets: 0,
            sent_bytes: 0,
        }
    }

    /// Write the next packet into `out`; `duration` is the payload's length in RTP clock units.
    pub fn write(
        &mut self,
        payload_type: PayloadType,
        payload: &[u8],
        duration: u32,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let n = self.stamp(payload_type, payload, self.next_seq, self.next_timestamp, self.first, out)?;
        self.first = false;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_timestamp = self.next_timestamp.wrapping_add(duration);
        Ok(n)
    }

    /// Write a packet stamped `timestamp` (an RFC 4733 event's start) without
    /// moving the stream's clock: call [`Packetizer::skip`] for the tick it took.
    pub fn write_at(
        &mut self,
        payload_type: PayloadType,
        payload: &[u8],
        timestamp: u32,
        marker: bool,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let n = self.stamp(payload_type, payload, self.next_seq, timestamp, marker, out)?;
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok(n)
    }

    /// Write a packet relayed from another stream, already rebased onto this one
    /// (`seq`, `timestamp`). The stream's own counters move past it, so what this
    /// packetizer writes afterwards follows on; `duration` is the payload's length
    /// in RTP clock units (0 for an RFC 4733 event, whose timestamp is its start).
    #[allow(clippy::too_many_arguments)] // one RTP header's worth of fields
    pub fn write_relayed(
        &mut self,
        payload_type: PayloadType,
        payload: &[u8],
        seq: u16,
        timestamp: u32,
        duration: u32,
        marker: bool,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let n = self.stamp(payload_type, payload, seq, timestamp, marker, out)?;
        self.follow(seq, timestamp, duration);
        Ok(n)
    }

    /// Move the stream's counters past a packet stamped `seq` and `timestamp`
    /// that someone else wrote onto it, unless they are already beyond it.
    fn follow(&mut self, seq: u16, timestamp: u32, duration: u32) {
        self.first = false;
        if seq.wrapping_sub(self.next_seq) as i16 >= 0 {
            self.next_seq = seq.wrapping_add(1);
        }
        let end = timestamp.wrapping_add(duration);
        if end.wrapping_sub(self.next_timestamp) as i32 > 0 {
            self.next_timestamp = end;
        }
    }

    /// Count packets sent on this stream by someone else (the kernel, on a
    /// passthrough route), the newest of them stamped `last` (sequence number,
    /// timestamp) and `duration` long, so what is written next follows on.
    pub fn credit(&mut self, packets: u64, bytes: u64, last: Option<(u16, u32)>, duration: u32) {
        self.sent_packets += packets;
        self.sent_bytes += bytes;
        if let Some((seq, timestamp)) = last {
            self.follow(seq, timestamp, duration);
        }
    }

    /// Write one packet of this stream's SSRC and count it.
    fn stamp(
        &mut self,
        payload_type: PayloadType,
        payload: &[u8],
        seq: u16,
        timestamp: u32,
        marker: bool,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let header = Header {
            version: 2,
            marker,
            payload_type: payload_type.get(),
            sequence_number: seq,
            timestamp,
            ssrc: self.ssrc.0,
            ..Header::default()
        };
        let n = write_packet(&header, payload, out)?;
        self.sent_packets += 1;
        self.sent_bytes += payload.len() as u64;
        Ok(n)
    }

    /// The sequence number the next packet will carry.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// The timestamp the next payload will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Account for time that passed without sending (silence suppression, hold),
    /// so the receiver sees the gap in timestamps.
    pub fn skip(&mut self, duration: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(duration);
    }

    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    pub fn sent_packets(&self) -> u64 {
        self.sent_packets
    }

    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpPacket;

    #[test]
    fn sequence_and_timestamp_advance_and_wrap() {
        let mut p = Packetizer::new(Ssrc(5), 65534, u32::MAX - 159);
        let pt = PayloadType::new(0).unwrap();
        let mut buf = [0u8; 200];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let n = p.write(pt, &[0; 160], 160, &mut buf).unwrap();
            let pkt = RtpPacket::parse(&buf[..n]).unwrap();
            seen.push((pkt.header.sequence_number, pkt.header.timestamp, pkt.header.marker));
        }
        assert_eq!(seen, vec![(65534, u32::MAX - 159, true), (65535, 0, false), (0, 160, false)]);
        assert_eq!(p.sent_packets(), 3);
    }
}
