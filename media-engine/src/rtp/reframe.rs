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

#[derive(Debug, Clone, Default)]
pub struct Reframer {
    ssrc: Option<u32>,
    /// The timestamp the grid starts at.
    base: u32,
    /// A frame begun at the end of the last packet: its grid index and bytes so far.
    partial: Option<(u32, Vec<u8>)>,
}

impl Reframer {
    /// The whole frames `payload` (starting at `timestamp`) completes, in order.
    pub fn push(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Vec<Frame> {
        if self.ssrc != Some(ssrc) {
            *self = Self { ssrc: Some(ssrc), base: timestamp, partial: None };
        }
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
        let timestamp = self.base.wrapping_add(index.wrapping_mul(FRAME as u32));
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
}
