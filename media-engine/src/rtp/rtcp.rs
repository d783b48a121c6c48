//! RTCP sender and receiver reports (RFC 3550 section 6.4) for SIP legs: every
//! few seconds a compound packet (SR while the leg sends, else RR, with one
//! reception report on the peer's stream, then SDES CNAME); from the peer's
//! reports the loss and jitter it sees on Bond's stream, and the round trip
//! (from the LSR/DLSR it echoes). Reports are built with webrtc-rs's `rtcp`
//! crate; what the peer sends is read by Bond itself (`read_reports`), each
//! packet's length checked against the datagram: the crate's reader panics on
//! a transport-layer NACK shorter than its header claims (found by the `rtcp`
//! fuzz target), and Bond needs only SR and RR. Pure: times come in as `now`,
//! wall-clock time as an NTP timestamp the caller derives from it.

use std::time::{Duration, Instant};

use bond_codecs::signals::SplitMix64;
use bytes::Bytes;
use rtcp::packet::Packet;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};

use super::{ReceiveStats, RtpError};

/// Mean time between reports (RFC 3550's minimum; randomized 0.5x-1.5x).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The coarsest clock tick a peer may count its DLSR in (Windows' timer: 15.6 ms),
/// in 1/65536 s.
const DELAY_TICK_UNITS: i32 = 65536 * 16 / 1000;

/// A sender or receiver report read from the peer.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    /// A sender report's NTP timestamp.
    sender_ntp: Option<u64>,
    blocks: Vec<ReceptionReport>,
}

const SR: u8 = 200;
const RR: u8 = 201;
/// A reception report block (RFC 3550 6.4.1): SSRC, fraction and cumulative
/// lost, highest sequence number, jitter, LSR, DLSR.
const BLOCK_LEN: usize = 24;

/// The SR and RR packets of a compound RTCP datagram; other packets are
/// skipped by their length. Every length is checked against the datagram, so
/// nothing a peer sends can read past it.
fn read_reports(datagram: &[u8]) -> Result<Vec<Report>, RtpError> {
    let bad = |why: &str| RtpError::Rtcp(why.to_owned());
    let mut reports = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let [first, packet_type, l1, l0, ..] = *rest else {
            return Err(bad("a packet shorter than its header"));
        };
        if first >> 6 != 2 {
            return Err(bad("not RTCP version 2"));
        }
        let len = (usize::from(u16::from_be_bytes([l1, l0])) + 1) * 4;
        let packet = rest.get(..len).ok_or_else(|| bad("a packet longer than the datagram"))?;
        rest = &rest[len..];
        let count = usize::from(first & 0x1f);
        let (sender_ntp, blocks_at) = match packet_type {
            SR if packet.len() >= 28 => (Some(be_u64(&packet[8..16])), 28),
            RR if packet.len() >= 8 => (None, 8),
            SR | RR => return Err(bad("a report shorter than its fixed part")),
            _ => continue,
        };
        let blocks = packet
            .get(blocks_at..blocks_at + count * BLOCK_LEN)
            .ok_or_else(|| bad("more report blocks than the packet holds"))?;
        let blocks = blocks.chunks_exact(BLOCK_LEN).map(reception_block).collect();
        reports.push(Report { sender_ntp, blocks });
    }
    Ok(reports)
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn be_u64(bytes: &[u8]) -> u64 {
    (u64::from(be_u32(&bytes[..4])) << 32) | u64::from(be_u32(&bytes[4..8]))
}

/// One 24-byte reception report block.
fn reception_block(b: &[u8]) -> ReceptionReport {
    ReceptionReport {
        ssrc: be_u32(&b[0..4]),
        fraction_lost: b[4],
        total_lost: u32::from_be_bytes([0, b[5], b[6], b[7]]),
        last_sequence_number: be_u32(&b[8..12]),
        jitter: be_u32(&b[12..16]),
        last_sender_report: be_u32(&b[16..20]),
        delay: be_u32(&b[20..24]),
    }
}

/// Whether a datagram on an RTP port is RTCP (RFC 5761 section 4: packet types 192-223).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

/// What the peer's reports say about Bond's stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteView {
    /// Reports received from the peer (SR or RR, whatever they were about).
    pub reports: u64,
    /// Packets of Bond's stream the peer lost, as of its last report.
    pub packets_lost: Option<i64>,
    /// The peer's interarrival jitter on Bond's stream, in ms.
    pub jitter_ms: Option<f64>,
    /// The last round-trip time measured from the peer's LSR/DLSR, in ms.
    pub rtt_ms: Option<f64>,
}

/// What the leg knows when a report is due.
#[derive(Debug, Clone, Copy)]
pub struct Sending {
    pub ssrc: u32,
    /// Packets and payload octets sent so far; `None` while the leg sends nothing.
    pub sent: Option<(u64, u64)>,
    /// The RTP timestamp that corresponds to `now`.
    pub rtp_time: u32,
}

/// One leg's RTCP state.
#[derive(Debug, Clone)]
pub struct Rtcp {
    cname: Bytes,
    clock_rate: u32,
    next_report: Instant,
    /// Draws the report intervals.
    rng: SplitMix64,
    /// The middle 32 bits of the peer's last SR's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
    /// Expected and received packets at the previous report (RFC 3550 A.3).
    prior: (u64, u64),
    remote: RemoteView,
}

impl Rtcp {
    pub fn new(cname: &str, clock_rate: u32, seed: u64, now: Instant) -> Self {
        let mut rtcp = Self {
            cname: Bytes::copy_from_slice(cname.as_bytes()),
            clock_rate,
            next_report: now,
            rng: SplitMix64::new(seed),
            last_sr: None,
            prior: (0, 0),
            remote: RemoteView::default(),
        };
        // The first report goes out after half an interval (RFC 3550 6.2: tmin / 2).
        rtcp.next_report = now + REPORT_INTERVAL / 2;
        rtcp
    }

    pub fn next_report(&self) -> Instant {
        self.next_report
    }

    pub fn remote(&self) -> RemoteView {
        self.remote
    }

    /// The compound report due at `now` (`ntp`: the NTP time of `now`), and the next one scheduled.
    pub fn report(
        &mut self,
        now: Instant,
        ntp: u64,
        sending: Sending,
        received: Option<(u32, &ReceiveStats)>,
    ) -> Result<Bytes, RtpError> {
        self.next_report = now + self.interval();
        let reports: Vec<ReceptionReport> =
            received.map(|(ssrc, stats)| self.reception_report(now, ssrc, stats)).into_iter().collect();
        let first: Box<dyn Packet + Send + Sync> = match sending.sent {
            Some((packets, octets)) => Box::new(SenderReport {
                ssrc: sending.ssrc,
                ntp_time: ntp,
                rtp_time: sending.rtp_time,
                packet_count: packets as u32,
                octet_count: octets as u32,
                reports,
                profile_extensions: Bytes::new(),
            }),
            None => {
                Box::new(ReceiverReport { ssrc: sending.ssrc, reports, profile_extensions: Bytes::new() })
            }
        };
        let sdes = SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: sending.ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: self.cname.clone(),
                }],
            }],
        };
        rtcp::packet::marshal(&[first, Box::new(sdes)]).map_err(|e| RtpError::Rtcp(e.to_string()))
    }

    /// Read a compound packet from the peer arriving at `now` (`ntp` its NTP time).
    pub fn receive(
        &mut self,
        now: Instant,
        ntp: u64,
        datagram: &[u8],
        own_ssrc: u32,
    ) -> Result<(), RtpError> {
        for report in read_reports(datagram)? {
            if let Some(sender_ntp) = report.sender_ntp {
                self.last_sr = Some(((sender_ntp >> 16) as u32, now));
            }
            self.remote.reports += 1;
            for block in report.blocks.iter().filter(|b| b.ssrc == own_ssrc) {
                self.read_block(ntp, block);
            }
        }
        Ok(())
    }

    fn read_block(&mut self, ntp: u64, block: &ReceptionReport) {
        // A 24-bit signed count.
        let lost = ((block.total_lost << 8) as i32) >> 8;
        self.remote.packets_lost = Some(i64::from(lost));
        if self.clock_rate > 0 {
            self.remote.jitter_ms = Some(f64::from(block.jitter) * 1000.0 / f64::from(self.clock_rate));
        }
        if block.last_sender_report != 0 {
            // All three in 1/65536 s, modulo 2^32 (RFC 3550 6.4.1).
            let arrived = (ntp >> 16) as u32;
            let rtt = arrived.wrapping_sub(block.last_sender_report).wrapping_sub(block.delay) as i32;
            // A peer that counts its delay in clock ticks (libre: whole ms) can overstate
            // it by a tick, so a short round trip can come out a little negative: that is
            // a round trip of about nothing. Further off, or over a minute, the report is wrong.
            if (-DELAY_TICK_UNITS..65536 * 60).contains(&rtt) {
                self.remote.rtt_ms = Some(f64::from(rtt.max(0)) * 1000.0 / 65536.0);
            }
        }
    }

    fn reception_report(&mut self, now: Instant, ssrc: u32, stats: &ReceiveStats) -> ReceptionReport {
        let expected = stats.expected();
        let received = stats.packets();
        let (prior_expected, prior_received) = std::mem::replace(&mut self.prior, (expected, received));
        let expected_interval = expected.saturating_sub(prior_expected);
        let lost_interval = expected_interval as i64 - received.saturating_sub(prior_received) as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let total_lost = (stats.lost().clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0xFF_FFFF;
        let (last_sender_report, delay) = match self.last_sr {
            Some((lsr, arrived)) => {
                let waited = now.saturating_duration_since(arrived);
                (lsr, (waited.as_secs_f64() * 65536.0) as u32)
            }
            None => (0, 0),
        };
        ReceptionReport {
            ssrc,
            fraction_lost,
            total_lost,
            last_sequence_number: stats.highest_seq() as u32,
            jitter: stats.jitter_units(),
            last_sender_report,
            delay,
        }
    }

    /// 0.5 to 1.5 times the mean interval (RFC 3550 6.3.1).
    fn interval(&mut self) -> Duration {
        REPORT_INTERVAL.mul_f64(0.5 + self.rng.next_f64())
    }
}

/// NTP time (RFC 5905: seconds since 1900 in the high 32 bits, fraction in the low) of
/// `since_unix` after the Unix epoch.
pub fn ntp_time(since_unix: Duration) -> u64 {
    const UNIX_TO_NTP_SECS: u64 = 2_208_988_800;
    let seconds = since_unix.as_secs() + UNIX_TO_NTP_SECS;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(seqs: impl IntoIterator<Item = u64>) -> ReceiveStats {
        let mut s = ReceiveStats::new(8000);
        for seq in seqs {
            s.record(seq, (seq * 160) as u32, (seq * 160) as i64, 160);
        }
        s
    }

    #[test]
    fn a_sending_leg_reports_an_sr_with_a_block_on_the_peer_and_its_cname() {
        let t0 = crate::sim::epoch();
        let mut rtcp = Rtcp::new("bond@example", 8000, 7, t0);
        assert_eq!(rtcp.next_report(), t0 + Duration::from_millis(2500));
        let received = stats((0..100).filter(|s| s % 10 != 3)); // 10 of 100 lost
        let sending = Sending { ssrc: 0xB0D, sent: Some((250, 40_000)), rtp_time: 1234 };
        let data =
            rtcp.report(t0, ntp_time(Duration::from_secs(1_700_000_000)), sending, Some((0x5EE, &received)));
        let packets = rtcp::packet::unmarshal(&mut data.unwrap()).unwrap();
        let sr = packets[0].as_any().downcast_ref::<SenderReport>().unwrap();
        assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count, sr.rtp_time), (0xB0D, 250, 40_000, 1234));
        let block = &sr.reports[0];
        assert_eq!((block.ssrc, block.total_lost, block.last_sequence_number), (0x5EE, 10, 99));
        assert_eq!(block.fraction_lost, 25, "10 of 100 expected, in 1/256");
        let sdes = packets[1].as_any().downcast_ref::<SourceDescription>().unwrap();
        assert_eq!(&sdes.chunks[0].items[0].text[..], b"bond@example");
        let next = rtcp.next_report() - t0;
        assert!(next >= REPORT_INTERVAL / 2 && next <= REPORT_INTERVAL * 3 / 2, "{next:?}");
    }

    #[test]
    fn the_round_trip_comes_from_the_peers_echo_of_our_sr() {
        // Two reporters 40 ms apart each way: A's SR reaches B, B reports 300 ms later, A hears it.
        let t0 = crate::sim::epoch();
        let unix = Duration::from_secs(1_700_000_000);
        let (mut a, mut b) = (Rtcp::new("a", 8000, 1, t0), Rtcp::new("b", 8000, 2, t0));
        let sent = Sending { ssrc: 0xA, sent: Some((50, 8000)), rtp_time: 0 };
        let sr = a.report(t0, ntp_time(unix), sent, None).unwrap();
        let at_b = t0 + Duration::from_millis(40);
        b.receive(at_b, ntp_time(unix + Duration::from_millis(40)), &sr, 0xB).unwrap();
        let b_sends = Sending { ssrc: 0xB, sent: None, rtp_time: 0 };
        let later = at_b + Duration::from_millis(300);
        let rr =
            b.report(later, ntp_time(unix + Duration::from_millis(340)), b_sends, Some((0xA, &stats(0..50))));
        a.receive(later, ntp_time(unix + Duration::from_millis(380)), &rr.unwrap(), 0xA).unwrap();
        let seen = a.remote();
        assert_eq!((seen.reports, seen.packets_lost), (1, Some(0)));
        let rtt = seen.rtt_ms.unwrap();
        assert!((rtt - 80.0).abs() < 0.1, "{rtt}");
    }

    /// A receiver report on SSRC 0xA echoing `lsr`, with the peer's delay `dlsr` (1/65536 s).
    fn echo_of(lsr: u32, dlsr: u32) -> Bytes {
        let block = ReceptionReport { ssrc: 0xA, last_sender_report: lsr, delay: dlsr, ..Default::default() };
        let rr = ReceiverReport { ssrc: 0xB, reports: vec![block], profile_extensions: Bytes::new() };
        rtcp::packet::marshal(&[Box::new(rr)]).unwrap()
    }

    #[test]
    fn a_peer_overstating_its_delay_by_a_clock_tick_gives_a_round_trip_of_zero_not_none() {
        // libre counts the delay in whole ms: over loopback it can exceed the real interval.
        let t0 = crate::sim::epoch();
        let arrived = ntp_time(Duration::from_secs(1_700_000_000));
        let lsr = ((arrived >> 16) as u32).wrapping_sub(65536 / 2); // SR sent 500 ms ago
        let mut rtcp = Rtcp::new("a", 8000, 1, t0);
        rtcp.receive(t0, arrived, &echo_of(lsr, 65536 / 2 + 60), 0xA).unwrap(); // ~0.9 ms over
        assert_eq!(rtcp.remote().rtt_ms, Some(0.0));
        rtcp.receive(t0, arrived, &echo_of(lsr, 65536 / 2 - 655), 0xA).unwrap(); // 10 ms short
        let rtt = rtcp.remote().rtt_ms.unwrap();
        assert!((rtt - 10.0).abs() < 0.1, "{rtt}");
        // A whole second over is a wrong report: the last good round trip stands.
        rtcp.receive(t0, arrived, &echo_of(lsr, 65536 + 65536 / 2), 0xA).unwrap();
        assert_eq!(rtcp.remote().rtt_ms, Some(rtt));
        assert_eq!(rtcp.remote().reports, 3);
    }

    #[test]
    fn garbage_is_refused_without_a_panic_and_rtcp_is_told_from_rtp() {
        let t0 = crate::sim::epoch();
        let mut rtcp = Rtcp::new("a", 8000, 1, t0);
        let mut seed = 0x1234_5678_u64;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            let _ = rtcp.receive(t0, 0, &data, 1);
            let mut framed = data.clone();
            if framed.len() >= 8 {
                framed[0] = 0x81;
                framed[1] = 201;
                let _ = rtcp.receive(t0, 0, &framed, 1);
            }
        }
        assert!(is_rtcp(&[0x81, 200, 0, 6, 0, 0, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0, 0, 1, 0, 0, 0, 1]), "PCMU");
        assert!(!is_rtcp(&[0x80, 0x80 | 101, 0, 1, 0, 0, 0, 1]), "a marked telephone-event");
    }

    #[test]
    fn a_nack_shorter_than_its_header_claims_is_refused_not_a_panic() {
        // What the fuzz target found: RTPFB/NACK (205, FMT 1) with one word of body.
        let crash =
            [0x81, 0xcd, 0x00, 0x01, 0x00, 0x00, 0x05, 0x01, 0x00, 0x00, 0x05, 0xee, 0x32, 0x01, 0x00, 0x00];
        let t0 = crate::sim::epoch();
        let mut rtcp = Rtcp::new("bond@test", 8000, 1, t0);
        assert!(rtcp.receive(t0, 1 << 40, &crash, 0x5EE).is_err());
        for cut in 0..crash.len() {
            let _ = rtcp.receive(t0, 1 << 40, &crash[..cut], 0x5EE);
        }
    }

    #[test]
    fn reports_are_read_past_other_packets_and_counted_blocks_must_fit() {
        let t0 = crate::sim::epoch();
        let mut peer = Rtcp::new("peer@test", 8000, 2, t0);
        let mut stats = ReceiveStats::new(8000);
        for seq in 0..10u64 {
            stats.record(seq, seq as u32 * 160, seq as i64 * 160, 160);
        }
        let report = peer.report(
            t0,
            1 << 40,
            Sending { ssrc: 0x1234, sent: Some((5, 800)), rtp_time: 0 },
            Some((0x5EE, &stats)),
        );
        let mut compound = report.unwrap().to_vec();
        // An APP packet (204) in between is skipped.
        compound.extend_from_slice(&[0x80, 204, 0x00, 0x02, 0, 0, 0, 1, b'n', b'a', b'm', b'e']);
        let reports = read_reports(&compound).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].sender_ntp, Some(1 << 40));
        assert_eq!(reports[0].blocks.len(), 1);
        assert_eq!(reports[0].blocks[0].ssrc, 0x5EE);
        // A receiver report claiming two blocks with room for one.
        let mut lying = compound[..8].to_vec();
        lying[0] = 0x82;
        lying[1] = RR;
        lying[3] = 7;
        lying.extend_from_slice(&[0; 24]);
        assert!(read_reports(&lying).is_err());
    }
}
