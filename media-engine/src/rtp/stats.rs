//! Receive statistics after RFC 3550 appendix A.3 (loss) and A.8 (jitter).

/// A snapshot of one leg's RTP counters, as reported in events and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RtpStats {
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Expected minus received (RFC 3550 A.3); duplicates can make it negative.
    pub packets_lost: i64,
    /// Interarrival jitter in milliseconds (RFC 3550 A.8).
    pub jitter_ms: f64,
    /// Packets that arrived after their playout time, or duplicates.
    pub packets_late: u64,
    /// Packets refused by the parser.
    pub packets_malformed: u64,
    /// 20 ms frames filled by concealment.
    pub frames_concealed: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// What the peer's RTCP reports said about the leg's own stream (SIP legs).
    pub remote: super::rtcp::RemoteView,
}

/// Running receive statistics for one RTP stream.
#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    packets: u64,
    bytes: u64,
    base_seq: Option<u64>,
    highest_seq: u64,
    /// Jitter estimate in RTP clock units, scaled by 16 as in RFC 3550 A.8.
    jitter_q4: i64,
    last_transit: Option<i64>,
    clock_rate: u32,
}

impl ReceiveStats {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate, ..Self::default() }
    }

    /// Record a packet with extended sequence number `ext_seq` and RTP timestamp
    /// `timestamp`, arriving at `arrival` (in RTP clock units on the receiver's clock).
    pub fn record(&mut self, ext_seq: u64, timestamp: u32, arrival: i64, payload_len: usize) {
        self.packets += 1;
        self.bytes += payload_len as u64;
        let base = *self.base_seq.get_or_insert(ext_seq);
        if ext_seq < base {
            self.base_seq = Some(ext_seq);
        }
        self.highest_seq = self.highest_seq.max(ext_seq);
        let transit = arrival - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            // Timestamps wrap at 2^32: take the difference modulo 2^32 as signed.
            let d = ((transit - last) as i32).unsigned_abs() as i64;
            self.jitter_q4 += d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Count packets that were received but not seen here (the kernel passed
    /// them on), the newest of them `highest` (extended), if known, and the
    /// jitter the kernel measured over them (scaled by 16), if it did: it
    /// replaces this estimate, and the next packet seen here starts a new
    /// chain of transit times.
    pub fn credit(&mut self, packets: u64, bytes: u64, highest: Option<u64>, jitter_q4: Option<u32>) {
        self.packets += packets;
        self.bytes += bytes;
        if let Some(jitter) = jitter_q4 {
            self.jitter_q4 = i64::from(jitter);
            self.last_transit = None;
        }
        if let Some(seq) = highest {
            self.base_seq.get_or_insert(seq);
            self.highest_seq = self.highest_seq.max(seq);
        }
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets expected from the first sequence number to the highest (RFC 3550 A.3).
    pub fn expected(&self) -> u64 {
        self.base_seq.map_or(0, |base| self.highest_seq - base + 1)
    }

    /// The highest extended sequence number received.
    pub fn highest_seq(&self) -> u64 {
        self.highest_seq
    }

    /// Interarrival jitter in RTP clock units, as RTCP reports it.
    pub fn jitter_units(&self) -> u32 {
        (self.jitter_q4 >> 4).clamp(0, i64::from(u32::MAX)) as u32
    }

    pub fn lost(&self) -> i64 {
        match self.base_seq {
            Some(base) => (self.highest_seq - base + 1) as i64 - self.packets as i64,
            None => 0,
        }
    }

    pub fn jitter_ms(&self) -> f64 {
        if self.clock_rate == 0 {
            return 0.0;
        }
        (self.jitter_q4 as f64 / 16.0) * 1000.0 / f64::from(self.clock_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_from_sequence_gaps() {
        let mut s = ReceiveStats::new(8000);
        for seq in [10u64, 11, 13, 14, 17] {
            s.record(seq, (seq * 160) as u32, (seq * 160) as i64, 160);
        }
        assert_eq!(s.packets(), 5);
        assert_eq!(s.lost(), 3);
    }

    #[test]
    fn steady_arrivals_have_no_jitter_and_uneven_ones_do() {
        let mut steady = ReceiveStats::new(8000);
        let mut uneven = ReceiveStats::new(8000);
        for seq in 0..200u64 {
            steady.record(seq, (seq * 160) as u32, (seq * 160 + 1000) as i64, 160);
            let wobble = if seq % 2 == 0 { 0 } else { 80 }; // +-10 ms
            uneven.record(seq, (seq * 160) as u32, (seq * 160 + wobble) as i64, 160);
        }
        assert_eq!(steady.jitter_ms(), 0.0);
        assert!((uneven.jitter_ms() - 10.0).abs() < 1.0, "{}", uneven.jitter_ms());
    }
}
