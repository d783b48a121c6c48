//! Recording a leg whose bridge passes through: the G.711, G.722 or Opus
//! packets themselves (Opus's 48 kHz RTP time is counted in 8 kHz units here).
//!
//! A passthrough leg has no playout buffer and decodes nothing, so its recording
//! is taken from the packets as they cross it: what its peer sent (inbound) and
//! what it forwarded to its peer (outbound). Each packet is given a place on the
//! leg's timeline, in 8 kHz samples since the leg started: the first packet of a
//! stream is placed where it arrived, the rest by their RTP timestamps from
//! there, so jitter and reordering do not move audio about; a stream whose
//! timestamps stray more than [`REANCHOR`] from the arrival times (a new SSRC, a
//! jump, a drifting clock) is placed afresh from where it arrives. Decoding and
//! placing is the recording writer's work, off the media path; the leg only
//! copies payloads into a batch and hands over [`BATCH`] packets at a time.

use bond_codecs::Codec;

/// Packets handed over together (about 400 ms of a two-way call): the writer's
/// cost is mostly per batch, and what a crash can take grows with it.
const BATCH: usize = 40;
/// How far (in 8 kHz samples, 100 ms) a packet's timestamp may place it from its arrival.
const REANCHOR: i64 = 800;

/// Recorded packets, for the recording writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketBatch {
    codec: Codec,
    entries: Vec<(bool, u64, usize)>,
    payloads: Vec<u8>,
}

impl PacketBatch {
    fn new(codec: Codec) -> Self {
        Self { codec, entries: Vec::with_capacity(BATCH), payloads: Vec::with_capacity(BATCH * 160) }
    }

    /// The codec the payloads are in (G.711, G.722 or Opus).
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Each packet: outbound (sent to the leg's peer) or not, its place in 8 kHz
    /// samples since the leg started, and its payload.
    pub fn packets(&self) -> impl Iterator<Item = (bool, u64, &[u8])> + '_ {
        let mut start = 0;
        self.entries.iter().map(move |&(outbound, at, len)| {
            let payload = &self.payloads[start..start + len];
            start += len;
            (outbound, at, payload)
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where one direction's stream sits on the leg's timeline.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    at: u64,
}

/// A passthrough leg's recording in progress.
#[derive(Debug)]
pub(super) struct PacketRecord {
    batch: PacketBatch,
    /// RTP timestamp units in one 8 kHz sample.
    units: i64,
    /// Inbound, outbound.
    anchors: [Option<Anchor>; 2],
}

impl PacketRecord {
    pub fn new(codec: Codec) -> Self {
        let units = i64::from(codec.rtp_clock_rate() / 8000).max(1);
        Self { batch: PacketBatch::new(codec), units, anchors: [None; 2] }
    }

    /// Record a packet that arrived (or left) `arrival` 8 kHz samples after the
    /// leg started; a full batch comes back to be handed over.
    pub fn add(
        &mut self,
        outbound: bool,
        arrival: u64,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> Option<PacketBatch> {
        let anchor = &mut self.anchors[usize::from(outbound)];
        let placed = anchor.filter(|a| a.ssrc == ssrc).and_then(|a| {
            let at = a.at as i64 + i64::from(timestamp.wrapping_sub(a.timestamp) as i32) / self.units;
            (at >= 0 && (at - arrival as i64).abs() <= REANCHOR).then_some(at as u64)
        });
        let at = placed.unwrap_or_else(|| {
            *anchor = Some(Anchor { ssrc, timestamp, at: arrival });
            arrival
        });
        self.batch.entries.push((outbound, at, payload.len()));
        self.batch.payloads.extend_from_slice(payload);
        (self.batch.len() >= BATCH).then(|| self.take()).flatten()
    }

    /// What has not been handed over yet.
    pub fn take(&mut self) -> Option<PacketBatch> {
        if self.batch.is_empty() {
            return None;
        }
        let fresh = PacketBatch::new(self.batch.codec);
        Some(std::mem::replace(&mut self.batch, fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(batch: &PacketBatch) -> Vec<(bool, u64)> {
        batch.packets().map(|(outbound, at, _)| (outbound, at)).collect()
    }

    #[test]
    fn packets_are_placed_by_timestamp_from_where_their_stream_first_arrived() {
        let mut record = PacketRecord::new(Codec::Pcmu);
        assert!(record.add(false, 1000, 7, 50_000, &[1; 160]).is_none());
        // Late by 15 ms, then early, then out of order: placed by timestamp all the same.
        record.add(false, 1280, 7, 50_160, &[2; 160]);
        record.add(false, 1400, 7, 50_480, &[4; 160]);
        record.add(false, 1420, 7, 50_320, &[3; 160]);
        // The other direction has its own anchor.
        record.add(true, 1010, 99, 7, &[5; 160]);
        let batch = record.take().unwrap();
        assert_eq!(
            placed(&batch),
            [(false, 1000), (false, 1160), (false, 1480), (false, 1320), (true, 1010)]
        );
        let payloads: Vec<u8> = batch.packets().map(|(_, _, p)| p[0]).collect();
        assert_eq!(payloads, [1, 2, 4, 3, 5]);
        assert!(record.take().is_none());
    }

    #[test]
    fn a_new_ssrc_or_a_timestamp_jump_is_placed_where_it_arrives() {
        let mut record = PacketRecord::new(Codec::Pcma);
        record.add(false, 0, 1, 0, &[0; 160]);
        record.add(false, 160, 2, 90_000, &[0; 160]);
        record.add(false, 320, 2, 90_160, &[0; 160]);
        // Timestamps from an hour away, and back: each placed where it arrives.
        record.add(false, 480, 2, 4_000_000_000, &[0; 160]);
        record.add(false, 640, 2, 90_480, &[0; 160]);
        let batch = record.take().unwrap();
        assert_eq!(placed(&batch), [(false, 0), (false, 160), (false, 320), (false, 480), (false, 640)]);
        assert_eq!(batch.codec(), Codec::Pcma);
    }

    #[test]
    fn opus_timestamps_are_counted_in_8_khz_samples() {
        let mut record = PacketRecord::new(Codec::Opus);
        record.add(false, 400, 3, 96_000, &[0; 40]);
        record.add(false, 570, 3, 96_960, &[0; 40]);
        record.add(false, 700, 3, 95_040, &[0; 40]);
        assert_eq!(placed(&record.take().unwrap()), [(false, 400), (false, 560), (false, 240)]);
    }

    #[test]
    fn a_full_batch_is_handed_over_on_its_own() {
        let mut record = PacketRecord::new(Codec::Pcmu);
        let full =
            (0..BATCH as u32).find_map(|n| record.add(n % 2 == 1, u64::from(n) * 80, 5, n * 80, &[0; 160]));
        assert_eq!(full.map(|b| b.len()), Some(BATCH));
        assert!(record.take().is_none());
    }
}
