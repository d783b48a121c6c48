//! Extending 16-bit RTP sequence numbers to 64 bits (RFC 3550 A.1), for a
//! receive path that does not go through the playout buffer.

/// `seq` extended to 64 bits, nearest to `highest` (an extended number already seen).
pub(crate) fn extend_seq(highest: u64, seq: u16) -> u64 {
    let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
    (highest as i64 + delta) as u64
}

/// The extended sequence numbers of one incoming stream; a new SSRC starts over.
#[derive(Debug, Clone, Default)]
pub struct SequenceExtender {
    ssrc: Option<u32>,
    highest: u64,
}

impl SequenceExtender {
    /// `seq` of `ssrc` extended to 64 bits, nearest to the highest seen so far.
    pub fn extend(&mut self, ssrc: u32, seq: u16) -> u64 {
        if self.ssrc != Some(ssrc) {
            self.ssrc = Some(ssrc);
            // High enough that reordered earlier packets stay positive.
            self.highest = (1 << 32) + u64::from(seq);
            return self.highest;
        }
        let extended = extend_seq(self.highest, seq);
        self.highest = self.highest.max(extended);
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_forward_and_keeps_reordered_packets_behind() {
        let mut e = SequenceExtender::default();
        let first = e.extend(7, 65534);
        assert_eq!(e.extend(7, 65535), first + 1);
        assert_eq!(e.extend(7, 1), first + 3, "past the wrap");
        assert_eq!(e.extend(7, 0), first + 2, "late, behind the highest");
        assert_eq!(e.extend(7, 2), first + 4);
    }

    #[test]
    fn a_new_ssrc_starts_a_new_count() {
        let mut e = SequenceExtender::default();
        e.extend(1, 100);
        e.extend(1, 101);
        assert_eq!(e.extend(2, 5), (1 << 32) + 5);
    }
}
