//! Opus frames joined into one packet for a peer whose `a=ptime` asks for it:
//! two or three of the encoder's 20 ms frames (40 or 60 ms), or three 10 ms
//! frames (30 ms; the leg encodes each tick as two 10 ms frames then). RFC 6716
//! section 3.2.5, a code 3 packet (TOC byte, frame count byte with the VBR
//! flag, the lengths of all frames but the last, then the frames). Only
//! frames of one TOC configuration (mode, bandwidth, frame size, stereo) share
//! a packet: when the encoder changes it, the frames waiting leave first as a
//! shorter packet. A packet of one frame (10 ms) leaves as the encoder wrote it.

/// Timestamp units (48 kHz) in one 20 ms frame.
pub(super) const FRAME_UNITS: u32 = 960;
/// The longest frame RFC 6716 allows.
const MAX_FRAME: usize = 1275;

#[derive(Debug)]
pub(super) struct OpusJoin {
    /// Frames in a whole packet.
    frames: usize,
    /// Timestamp units in one frame (960 for 20 ms, 480 for 10 ms).
    frame_units: u32,
    /// The waiting frames' TOC byte (its code bits cleared).
    toc: u8,
    /// Each waiting frame's length.
    lens: Vec<usize>,
    /// The waiting frames, one after another.
    data: Vec<u8>,
    /// The packet being written.
    packet: Vec<u8>,
}

/// What can join others: a packet of one frame (code 0), as the encoder
/// writes 10 or 20 ms. Its TOC byte and its frame.
fn single_frame(packet: &[u8]) -> Option<(u8, &[u8])> {
    let (&toc, frame) = packet.split_first()?;
    (toc & 0b11 == 0 && frame.len() <= MAX_FRAME).then_some((toc, frame))
}

impl OpusJoin {
    /// Packets of `frames` frames of `frame_units` each.
    pub fn new(frames: usize, frame_units: u32) -> Self {
        Self {
            frames,
            frame_units,
            toc: 0,
            lens: Vec::with_capacity(frames),
            data: Vec::with_capacity(frames * 160),
            packet: Vec::with_capacity(2 + frames * 2 + frames * 160),
        }
    }

    pub fn packet_ms(&self) -> u32 {
        self.frames as u32 * self.frame_units / 48
    }

    /// How many frames the encoder makes of a 20 ms tick.
    pub fn frames_a_tick(&self) -> usize {
        (FRAME_UNITS / self.frame_units) as usize
    }

    /// What is waiting, in timestamp units.
    pub fn waiting(&self) -> u32 {
        self.lens.len() as u32 * self.frame_units
    }

    /// Add the encoder's packet of one frame; every packet that is ready goes to
    /// `send` with its length in timestamp units. A packet that cannot join
    /// (not one frame) leaves on its own, after what was waiting.
    pub fn push(&mut self, encoded: &[u8], mut send: impl FnMut(&[u8], u32)) {
        let Some((toc, frame)) = single_frame(encoded) else {
            self.take_rest(&mut send);
            send(encoded, self.frame_units);
            return;
        };
        if !self.lens.is_empty() && toc != self.toc {
            self.take_rest(&mut send);
        }
        self.toc = toc;
        self.lens.push(frame.len());
        self.data.extend_from_slice(frame);
        if self.lens.len() == self.frames {
            self.take_rest(send);
        }
    }

    /// Whatever is waiting, as one packet (shorter than a whole one unless full).
    pub fn take_rest(&mut self, mut send: impl FnMut(&[u8], u32)) {
        let count = self.lens.len();
        if count == 0 {
            return;
        }
        self.packet.clear();
        if count == 1 {
            self.packet.push(self.toc);
        } else {
            self.packet.extend_from_slice(&[self.toc | 0b11, 0x80 | count as u8]);
            for &len in &self.lens[..count - 1] {
                write_length(&mut self.packet, len);
            }
        }
        self.packet.extend_from_slice(&self.data);
        send(&self.packet, count as u32 * self.frame_units);
        self.discard();
    }

    /// Drop what is waiting; returns its length in timestamp units.
    pub fn discard(&mut self) -> u32 {
        let units = self.waiting();
        self.lens.clear();
        self.data.clear();
        units
    }
}

/// A frame length as RFC 6716 section 3.2.1 writes it: one byte below 252,
/// else two.
fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 252 {
        out.push(len as u8);
    } else {
        let first = 252 + (len & 0b11);
        out.extend_from_slice(&[first as u8, ((len - first) >> 2) as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(frames: usize, packets: &[&[u8]]) -> Vec<(Vec<u8>, u32)> {
        joined_of(frames, FRAME_UNITS, packets)
    }

    fn joined_of(frames: usize, frame_units: u32, packets: &[&[u8]]) -> Vec<(Vec<u8>, u32)> {
        let mut join = OpusJoin::new(frames, frame_units);
        let mut sent = Vec::new();
        for packet in packets {
            join.push(packet, |p, units| sent.push((p.to_vec(), units)));
        }
        join.take_rest(|p, units| sent.push((p.to_vec(), units)));
        sent
    }

    #[test]
    fn frames_of_one_configuration_share_a_code_3_packet_with_their_lengths() {
        let sent = joined(2, &[&[0x78, 1, 2, 3], &[0x78, 4, 5], &[0x78, 6]]);
        assert_eq!(sent, [(vec![0x7b, 0x82, 3, 1, 2, 3, 4, 5], 1920), (vec![0x78, 6], 960)]);
        let sent = joined(3, &[&[0x78, 1], &[0x78, 2], &[0x78, 3]]);
        assert_eq!(sent, [(vec![0x7b, 0x83, 1, 1, 1, 2, 3], 2880)]);
    }

    #[test]
    fn ten_ms_frames_leave_one_a_packet_or_three_joined() {
        // TOC 0x70: CELT fullband 10 ms, one frame.
        let sent = joined_of(1, 480, &[&[0x70, 1, 2], &[0x70, 3]]);
        assert_eq!(sent, [(vec![0x70, 1, 2], 480), (vec![0x70, 3], 480)]);
        let sent = joined_of(3, 480, &[&[0x70, 1], &[0x70, 2, 2], &[0x70, 3], &[0x70, 4]]);
        assert_eq!(sent, [(vec![0x73, 0x83, 1, 2, 1, 2, 2, 3], 1440), (vec![0x70, 4], 480)]);
        assert_eq!((OpusJoin::new(3, 480).packet_ms(), OpusJoin::new(3, 480).frames_a_tick()), (30, 2));
        assert_eq!((OpusJoin::new(1, 480).packet_ms(), OpusJoin::new(2, 960).frames_a_tick()), (10, 1));
    }

    #[test]
    fn a_change_of_configuration_sends_what_waits_first() {
        let sent = joined(3, &[&[0x78, 1], &[0x08, 2], &[0x08, 3]]);
        assert_eq!(sent, [(vec![0x78, 1], 960), (vec![0x0b, 0x82, 1, 2, 3], 1920)]);
    }

    #[test]
    fn a_packet_of_several_frames_leaves_on_its_own_in_order() {
        let sent = joined(2, &[&[0x78, 1], &[0x79, 9, 9], &[0x78, 2]]);
        assert_eq!(sent, [(vec![0x78, 1], 960), (vec![0x79, 9, 9], 960), (vec![0x78, 2], 960)]);
    }

    #[test]
    fn long_frames_take_two_length_bytes() {
        for len in [251, 252, 255, 256, 1000, 1275] {
            let mut out = Vec::new();
            write_length(&mut out, len);
            let read = match out[..] {
                [b] => usize::from(b),
                [a, b] => usize::from(b) * 4 + usize::from(a),
                _ => unreachable!(),
            };
            assert_eq!((read, out.len()), (len, if len < 252 { 1 } else { 2 }), "{len}");
        }
    }
}
