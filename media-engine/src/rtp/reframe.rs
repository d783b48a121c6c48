//! Packets of other lengths than 20 ms (a peer's `ptime` of 10, 30, 40, 60 ...)
//! for the sample-based codecs whose payload bytes are RTP timestamp units
//! (G.711 and G.722: 160 bytes per 20 ms), cut into the 20 ms frames the
//! playout buffer and the tick work with.
//!
//! Frames lie on a grid of 160 timestamp units from the stream's first packet;
//! each is numbered by its place on that grid, which stands in for its
//! sequence number (so the playout buffer reorders, drops late ones and
//! conceals gaps by timestamp). A packet covering whole frames yields them at
//! once; a frame split across two packets (30 ms packets split every other
//! frame) waits for the rest, which must be the next audio to arrive: if
//! anything else comes first the partial frame is dropped and concealed.
//!
//! Opus packets of 40 to 120 ms cannot be cut as bytes: [`Reframer::push_packet`]
//! puts the whole packet in its first frame's place on a grid of 960 and leaves
//! the places of the frames after it empty. The leg decodes the packet at its
//! first frame and plays the rest of it in those empty places. Opus packets of
//! 2.5, 5 or 10 ms are gathered until they fill a place and joined into one
//! 20 ms packet there ([`Reframer::push_short_packet`]); like a split G.711
//! frame, the rest must be the next audio to arrive, or the place is concealed.
//! A packet of short frames that is not whole 20 ms (30 ms of 10 ms frames) is
//! split into its frames first (`opus_codec::split_short_frames`), each then
//! gathered as a short packet.

use bond_codecs::opus_codec;

/// Bytes (and timestamp units) of one 20 ms frame.
pub const FRAME: usize = 160;

/// One 20 ms frame cut from a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's place on the grid, as a 16-bit sequence number.
    pub seq: u16,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Reframer {
    ssrc: Option<u32>,
    /// The timestamp the grid starts at.
    base: u32,
    /// A frame begun at the end of the last packet: its grid index and bytes so far.
    partial: Option<(u32, Vec<u8>)>,
    /// Short Opus packets gathered for one place: its grid index, the timestamp
    /// units they cover, the packets.
    gathered: Option<(u32, u32, Vec<Vec<u8>>)>,
    /// Timestamp units per frame: [`FRAME`], or 960 for Opus.
    unit: u32,
}

impl Default for Reframer {
    fn default() -> Self {
        Self { ssrc: None, base: 0, partial: None, gathered: None, unit: FRAME as u32 }
    }
}

impl Reframer {
    /// For Opus packets (48 kHz RTP clock), each of whole 20 ms frames.
    pub fn opus() -> Self {
        Self { unit: 960, ..Self::default() }
    }

    /// The places of an Opus packet of `frames` 20 ms frames starting at
    /// `timestamp`: the packet in the first, the others empty.
    pub fn push_packet(&mut self, ssrc: u32, timestamp: u32, packet: &[u8], frames: usize) -> Vec<Frame> {
        self.follow(ssrc, timestamp);
        let index = timestamp.wrapping_sub(self.base) / self.unit;
        (0..frames as u32)
            .map(|n| self.frame(index.wrapping_add(n), if n == 0 { packet.to_vec() } else { Vec::new() }))
            .collect()
    }

    /// An Opus packet of `samples` timestamp units, fewer than a place holds
    /// (`opus_codec::is_short_packet`): the place it completes, its packets
    /// joined into one, or nothing yet.
    pub fn push_short_packet(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        packet: &[u8],
        samples: u32,
    ) -> Vec<Frame> {
        self.follow(ssrc, timestamp);
        let offset = timestamp.wrapping_sub(self.base);
        let (index, within) = (offset / self.unit, offset % self.unit);
        let mut packets = match self.gathered.take() {
            Some((i, covered, packets)) if i == index && covered == within => packets,
            _ if within == 0 => Vec::with_capacity((self.unit / samples) as usize),
            // A packet of the place was lost or came out of order: it is concealed.
            _ => return Vec::new(),
        };
        packets.push(packet.to_vec());
        let covered = within + samples;
        if covered < self.unit {
            self.gathered = Some((index, covered, packets));
            return Vec::new();
        }
        let parts: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        match opus_codec::join_packets(&parts) {
            Some(joined) if covered == self.unit => vec![self.frame(index, joined)],
            _ => Vec::new(),
        }
    }

    /// A new SSRC starts a new grid.
    fn follow(&mut self, ssrc: u32, timestamp: u32) {
        if self.ssrc != Some(ssrc) {
            *self = Self { ssrc: Some(ssrc), unit: self.unit, base: timestamp, ..Self::default() };
        }
    }

    /// The whole frames `payload` (starting at `timestamp`) completes, in order.
    pub fn push(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Vec<Frame> {
        self.follow(ssrc, timestamp);
        let offset = timestamp.wrapping_sub(self.base) as usize;
        let (mut index, skip) = ((offset / FRAME) as u32, offset % FRAME);
        let mut frames = Vec::new();
        let mut rest = payload;
        if skip > 0 {
            // The packet starts inside a frame: the one begun before, if it ends where this starts.
            let take = (FRAME - skip).min(rest.len());
            match self.partial.take() {
                Some((i, mut bytes)) if i == index && bytes.len() == skip => {
                    bytes.extend_from_slice(&rest[..take]);
                    if bytes.len() == FRAME {
                        frames.push(self.frame(index, bytes));
                    } else {
                        self.partial = Some((index, bytes));
                    }
                }
                _ => {}
            }
            rest = &rest[take..];
            index = index.wrapping_add(1);
        } else {
            self.partial = None;
        }
        for chunk in rest.chunks(FRAME) {
            if chunk.len() == FRAME {
                frames.push(self.frame(index, chunk.to_vec()));
                index = index.wrapping_add(1);
            } else {
                self.partial = Some((index, chunk.to_vec()));
            }
        }
        frames
    }

    fn frame(&self, index: u32, payload: Vec<u8>) -> Frame {
        let timestamp = self.base.wrapping_add(index.wrapping_mul(self.unit));
        Frame { seq: index as u16, timestamp, payload }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of a ramp starting at timestamp `ts`: byte n is (ts + n) mod 251.
    fn packet(ts: u32, ms: usize) -> Vec<u8> {
        (0..ms * 8).map(|n| ((ts as usize + n) % 251) as u8).collect()
    }

    fn check(frames: &[Frame]) {
        for f in frames {
            assert_eq!(f.payload.len(), FRAME);
            assert_eq!(f.payload, packet(f.timestamp, 20), "frame {} holds its own samples", f.seq);
        }
    }

    #[test]
    fn thirty_ms_packets_become_twenty_ms_frames_with_every_sample_in_place() {
        let mut r = Reframer::default();
        let mut frames = Vec::new();
        for p in 0..10u32 {
            let ts = 1000 + p * 240;
            frames.extend(r.push(7, ts, &packet(ts, 30)));
        }
        check(&frames);
        let seqs: Vec<u16> = frames.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, (0..15).collect::<Vec<u16>>(), "300 ms: fifteen frames, numbered by place");
    }

    #[test]
    fn forty_and_ten_ms_packets_and_a_lost_one() {
        let mut r = Reframer::default();
        let mut frames = r.push(1, 0, &packet(0, 40));
        frames.extend(r.push(1, 320, &packet(320, 10)));
        frames.extend(r.push(1, 400, &packet(400, 10)));
        // 480..720 lost; 720 starts a new frame (720 = 4.5 frames: the first 80 bytes finish nothing).
        frames.extend(r.push(1, 720, &packet(720, 30)));
        check(&frames);
        let seqs: Vec<u16> = frames.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2, 5], "frames 3 and 4 are missing: concealed by the playout buffer");
    }

    #[test]
    fn a_new_ssrc_starts_a_new_grid_and_timestamps_wrap() {
        let mut r = Reframer::default();
        let near_wrap = u32::MAX - 100;
        let mut frames = r.push(1, near_wrap, &packet(0, 30));
        frames.extend(r.push(1, near_wrap.wrapping_add(240), &packet(0, 30)));
        assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(frames[2].timestamp, near_wrap.wrapping_add(320));
        let fresh = r.push(2, 5, &packet(5, 20));
        assert_eq!((fresh[0].seq, fresh[0].timestamp), (0, 5));
    }

    #[test]
    fn an_opus_packet_takes_its_first_place_whole_and_leaves_the_next_ones_empty() {
        let mut r = Reframer::opus();
        let mut frames = r.push_packet(7, 1000, b"sixty", 3);
        frames.extend(r.push_packet(7, 1000 + 2880, b"forty", 2));
        let places: Vec<(u16, u32, &[u8])> =
            frames.iter().map(|f| (f.seq, f.timestamp, &f.payload[..])).collect();
        assert_eq!(
            places,
            vec![
                (0, 1000, &b"sixty"[..]),
                (1, 1960, &[][..]),
                (2, 2920, &[][..]),
                (3, 3880, &b"forty"[..]),
                (4, 4840, &[][..])
            ]
        );
    }

    #[test]
    fn ten_ms_opus_packets_are_joined_per_place_and_a_place_missing_its_start_is_dropped() {
        // Code-0 packets of one 10 ms CELT frame (TOC config 30), a byte of frame data each.
        let ten = |data: u8| vec![30 << 3, data];
        let mut r = Reframer::opus();
        let ts = u32::MAX - 479; // the grid crosses the timestamp wrap
        let mut frames = r.push_short_packet(7, ts, &ten(1), 480);
        assert!(frames.is_empty(), "half a place waits");
        frames.extend(r.push_short_packet(7, ts.wrapping_add(480), &ten(2), 480));
        // The next place's first half is lost: its second half alone is dropped.
        frames.extend(r.push_short_packet(7, ts.wrapping_add(1440), &ten(4), 480));
        frames.extend(r.push_short_packet(7, ts.wrapping_add(1920), &ten(5), 480));
        frames.extend(r.push_short_packet(7, ts.wrapping_add(2400), &ten(6), 480));
        let places: Vec<(u16, u32, usize)> = frames
            .iter()
            .map(|f| (f.seq, f.timestamp, opus_codec::packet_samples(&f.payload).unwrap_or(0)))
            .collect();
        assert_eq!(places, vec![(0, ts, 960), (2, ts.wrapping_add(1920), 960)]);
        assert_eq!(frames[0].payload, [30 << 3 | 1, 1, 2], "code 1: two frames of equal size");
    }
}
