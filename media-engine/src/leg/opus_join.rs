//! 20 ms Opus packets joined into one packet of two or three frames (40 or
//! 60 ms) for a peer whose `a=ptime` asks for it: RFC 6716 section 3.2.5, a
//! code 3 packet (TOC byte, frame count byte with the VBR flag, the lengths of
//! all frames but the last, then the frames). Only frames of one TOC
//! configuration (mode, bandwidth, frame size, stereo) share a packet: when the
//! encoder changes it, the frames waiting leave first as a shorter packet.

/// Timestamp units (48 kHz) in one 20 ms frame.
pub(super) const FRAME_UNITS: u32 = 960;
/// The longest frame RFC 6716 allows.
const MAX_FRAME: usize = 1275;

#[derive(Debug)]
pub(super) struct OpusJoin {
    /// Frames in a whole packet.
    frames: usize,
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
/// writes 20 ms. Its TOC byte and its frame.
fn single_frame(packet: &[u8]) -> Option<(u8, &[u8])> {
    let (&toc, frame) = packet.split_first()?;
    (toc & 0b11 == 0 && frame.len() <= MAX_FRAME).then_some((toc, frame))
}

impl OpusJoin {
    pub fn new(frames: usize) -> Self {
        Self {
            frames,
            toc: 0,
            lens: Vec::with_capacity(frames),
            data: Vec::with_capacity(frames * 160),
            packet: Vec::with_capacity(2 + frames * 2 + frames * 160),
        }
    }

    pub fn packet_ms(&self) -> u32 {
        self.frames as u32 * 20
    }

    /// What is waiting, in timestamp units.
    pub fn waiting(&self) -> u32 {
        self.lens.len() as u32 * FRAME_UNITS
    }

    /// Add the encoder's 20 ms packet; every packet that is ready goes to
    /// `send` with its length in timestamp units. A packet that cannot join
    /// (not one frame) leaves on its own, after what was waiting.
    pub fn push(&mut self, encoded: &[u8], mut send: impl FnMut(&[u8], u32)) {
        let Some((toc, frame)) = single_frame(encoded) else {
            self.take_rest(&mut send);
            send(encoded, FRAME_UNITS);
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
        send(&self.packet, count as u32 * FRAME_UNITS);
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
        let mut join = OpusJoin::new(frames);
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
