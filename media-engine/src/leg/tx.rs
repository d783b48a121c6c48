//! Where a leg writes the packets it sends: one small allocation (a slab) cut
//! into packets until its room runs out, each handed out as `Bytes` without a copy.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::LegOutput;
use crate::rtp::{RtpError, PLAIN_HEADER};

/// A slab's size: about six G.711 packets (a leg holds one slab, so it is
/// small); a packet larger than a slab gets one of its own size.
const TX_SLAB: usize = 1024;

/// `tx` emptied and sized for a plain RTP packet with `payload` bytes (only
/// those bytes are zeroed), in a new slab once the old one has too little room.
pub(super) fn packet_room(tx: &mut BytesMut, payload: usize) -> &mut [u8] {
    tx.clear();
    let len = PLAIN_HEADER + payload;
    if tx.capacity() < len {
        tx.reserve(len.max(TX_SLAB));
    }
    tx.resize(len, 0);
    tx
}

/// The packet just written into `tx` out as `Transmit`; false (and nothing out)
/// when it could not be written.
pub(super) fn transmit_written(
    tx: &mut BytesMut,
    outputs: &mut VecDeque<LegOutput>,
    written: Result<usize, RtpError>,
) -> bool {
    match written {
        Ok(n) => {
            tx.truncate(n);
            outputs.push_back(LegOutput::Transmit(tx.split().freeze()));
            true
        }
        Err(_) => {
            tx.clear();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(tx: &mut BytesMut, outputs: &mut VecDeque<LegOutput>, payload: usize) -> *const u8 {
        let room = packet_room(tx, payload);
        room.fill(7);
        let len = room.len();
        transmit_written(tx, outputs, Ok(len));
        match outputs.back() {
            Some(LegOutput::Transmit(packet)) => {
                assert_eq!(packet.len(), PLAIN_HEADER + payload);
                packet.as_ptr()
            }
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    #[test]
    fn g711_packets_share_a_slab_and_a_large_packet_gets_its_own() {
        let mut tx = BytesMut::new();
        let mut outputs = VecDeque::new();
        let first = send(&mut tx, &mut outputs, 160);
        for n in 1..5 {
            // Cut from the same allocation, one after the other.
            assert_eq!(send(&mut tx, &mut outputs, 160), first.wrapping_add(n * (PLAIN_HEADER + 160)));
        }
        let large = send(&mut tx, &mut outputs, 1400);
        assert_ne!(large, first.wrapping_add(5 * (PLAIN_HEADER + 160)), "a slab of its own");
        assert_eq!(outputs.len(), 6);
    }
}
