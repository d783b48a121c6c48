//! The media half of `bridge-load`: the generator's sockets, the packets it
//! sends (each PCMU payload marked with its sender and send time) and what it
//! measures of those that come back.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bond_codecs::opus_codec::OpusConfig;
use bond_codecs::signals::sine;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::rtp::srtp::SrtpSession;
use bond_tests::load::LateWindows;
use bond_tests::stamped::{self, recv_stamped, wall_us};

use super::pacing::Pacing;
use super::Targets;

/// Generator sockets per side (each pair's side uses one, round robin).
pub(super) const SOCKETS: usize = 8;
/// Each 20 ms is cut in this many slices of 1 ms (tokio's timer resolution),
/// each sending for every twentieth pair, so the packets of a tick are spread
/// over it as a population of calls is.
const SLICES: usize = 20;
/// Base-126 digits of a packet's mark: sender (2), send time in µs (5).
const MARK_DIGITS: usize = 7;

fn mark(sender: u64, sent_us: u64, payload: &mut [u8]) {
    let mut v = sender * 126u64.pow(5) + sent_us;
    for b in payload.iter_mut().take(MARK_DIGITS) {
        *b = (v % 126) as u8;
        v /= 126;
    }
}

fn read_mark(payload: &[u8]) -> Option<(u64, u64)> {
    let digits = payload.get(..MARK_DIGITS)?;
    if digits.iter().any(|&b| b >= 126) {
        return None;
    }
    let v = digits.iter().rev().fold(0u64, |acc, &b| acc * 126 + u64::from(b));
    Some((v / 126u64.pow(5), v % 126u64.pow(5)))
}

/// The RTP payload of a datagram (after CSRCs and any header extension);
/// `None` for RTCP (RFC 5761's payload-type split), which Bond sends to a
/// peer's RTP port + 1: that can be another generator socket.
fn rtp_payload(datagram: &[u8]) -> Option<&[u8]> {
    let first = *datagram.first()?;
    let payload_type = datagram.get(1)? & 0x7f;
    if first >> 6 != 2 || (64..96).contains(&payload_type) {
        return None;
    }
    let mut at = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = u16::from_be_bytes([*datagram.get(at + 2)?, *datagram.get(at + 3)?]);
        at += 4 + 4 * usize::from(words);
    }
    datagram.get(at..)
}

/// A generator socket: a plain non-blocking one, not registered with tokio, so
/// that arrivals wake no reactor (it is drained on a timer, see [`receive`]).
pub(super) fn bind_media() -> Result<Arc<UdpSocket>, String> {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).map_err(|e| e.to_string())?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).map_err(|e| e.to_string())?;
    Ok(Arc::new(socket.into()))
}

/// One 20 ms Opus packet of a tone, encoded once.
pub(super) fn opus_packet() -> Result<Vec<u8>, String> {
    let mut encoder = Codec::Opus.encoder_with(OpusConfig::default()).map_err(|e| e.to_string())?;
    let samples = sine(440.0, 48_000, 960, 8000.0);
    let frame = AudioFrame::from_samples(SampleRate::Hz48000, 0, &samples).map_err(|e| e.to_string())?;
    let mut out = vec![0u8; 1500];
    let n = encoder.encode(&frame, &mut out).map_err(|e| e.to_string())?;
    out.truncate(n);
    Ok(out)
}

#[derive(Debug)]
pub(super) struct Received {
    pub(super) marked: u64,
    pub(super) unmarked: u64,
    pub(super) latencies_us: Vec<u64>,
    pub(super) late: LateWindows,
    /// When the unmarked frames (those Bond made itself) arrived, by stream.
    pub(super) pacing: Pacing,
}

/// A packet later than this counts against its 100 ms window (issues 4 and 7's p99 target).
const LATE_US: u64 = 1_000;
/// How often each generator socket is read.
const DRAIN_EVERY: Duration = Duration::from_millis(1);

impl Received {
    /// Count a datagram that arrived on a socket of `side` at `arrived_us`
    /// (µs after the origin), whose window opened at `start_us`.
    fn count(&mut self, datagram: &[u8], arrived_us: u64, side: Side, start_us: u64) {
        let Some(payload) = rtp_payload(datagram) else { return };
        match if side.marks { read_mark(payload) } else { None } {
            // A mark from the other side of a pair (senders are 2 * pair + side), or its own echo.
            Some((_, sent_us)) if sent_us < start_us => {}
            Some((sender, sent_us)) if side.echo || sender % 2 != side.index => {
                self.marked += 1;
                let latency_us = arrived_us.saturating_sub(sent_us);
                self.latencies_us.push(latency_us);
                self.late.add(sent_us.saturating_sub(start_us), latency_us);
            }
            _ if start_us == u64::MAX => {}
            _ => {
                self.unmarked += 1;
                self.pacing.add(datagram, arrived_us, side.clock_hz);
            }
        }
    }
}

impl Default for Received {
    fn default() -> Self {
        Self {
            marked: 0,
            unmarked: 0,
            latencies_us: Vec::new(),
            late: LateWindows::new(LATE_US),
            pacing: Pacing::default(),
        }
    }
}

/// What a generator socket receives: its side of the pairs (0 or 1), that
/// side's RTP clock, and whether Bond echoes the side's own packets back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Side {
    pub(super) index: u64,
    pub(super) clock_hz: u32,
    pub(super) echo: bool,
    /// Whether payloads reach this side unchanged, marks and all (a transcoded
    /// Opus payload only looks like a mark by chance).
    pub(super) marks: bool,
}

/// Count what arrives on one generator socket of `side` until told to stop.
pub(super) async fn receive(
    socket: Arc<UdpSocket>,
    side: Side,
    origin: SystemTime,
    window: Arc<Window>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Received {
    let mut got = Received::default();
    let mut buf = [0u8; 1500];
    let origin_ns = origin.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let _ = stamped::enable(&*socket);
    // Arrival is the kernel's stamp, so reading late costs the measure nothing:
    // the socket is drained each millisecond rather than woken for each packet.
    let mut drain = tokio::time::interval(DRAIN_EVERY);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = drain.tick() => false,
            _ = stop.changed() => true,
        };
        loop {
            let (n, stamp) = match recv_stamped(&*socket, &mut buf) {
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return got,
            };
            let arrived_us = stamp.map_or_else(|| wall_us(origin), |ns| ns.saturating_sub(origin_ns) / 1000);
            got.count(&buf[..n], arrived_us, side, window.start_us.load(Ordering::Relaxed));
        }
        if stopping {
            return got;
        }
    }
}

/// The measured stretch: marks sent from `start_us` (µs after the origin) until `stop`.
#[derive(Debug)]
pub(super) struct Window {
    pub(super) start_us: AtomicU64,
    pub(super) stop: AtomicBool,
}

/// Every side whose relay address is known sends a packet each 20 ms, the pairs
/// spread over the 20 ms in [`SLICES`] (and no leg
/// sits silent into its media timeout while the others are set up) until the
/// window closes; returns the packets sent and the 20 ms ticks run inside it.
pub(super) async fn send_media(
    sockets: Vec<Vec<Arc<UdpSocket>>>,
    targets: Arc<Mutex<Targets>>,
    mut srtp: Option<[SrtpSession; 2]>,
    opus_b: bool,
    opus: Vec<u8>,
    origin: SystemTime,
    window: Arc<Window>,
) -> (u64, u64) {
    let (mut sent, mut ticks) = (0u64, 0u64);
    let mut packet = [0u8; 1500];
    let mut tick = tokio::time::interval(Duration::from_millis(20) / SLICES as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut k: u32 = 0;
    while !window.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        k = k.wrapping_add(1);
        let (n, slice) = (k / SLICES as u32, k as usize % SLICES);
        let (a_to, b_to, opus_pt) = {
            let t = targets.lock().expect("lock");
            (t.a.clone(), t.b.clone(), t.opus_pt)
        };
        let measuring = wall_us(origin) >= window.start_us.load(Ordering::Relaxed);
        ticks += u64::from(measuring && slice == 0);
        for (i, pair) in a_to.iter().zip(&b_to).enumerate().skip(slice).step_by(SLICES) {
            for (side, to) in [pair.0, pair.1].into_iter().enumerate() {
                let Some(to) = *to else { continue };
                let opus_side = side == 1 && opus_b;
                let (pt, step, payload_len) = match opus_pt.filter(|_| opus_side) {
                    Some(pt) => (pt, 960, opus.len()),
                    None => (0, 160, 160),
                };
                let sender = (2 * i + side) as u64;
                packet[..12].copy_from_slice(&[0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
                packet[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                packet[4..8].copy_from_slice(&n.wrapping_mul(step).to_be_bytes());
                packet[8..12].copy_from_slice(&(0x10_0000 + sender as u32).to_be_bytes());
                let sent_at = wall_us(origin);
                let body = &mut packet[12..12 + payload_len];
                if opus_side {
                    body.copy_from_slice(&opus);
                } else {
                    body.fill(0x55);
                    mark(sender, sent_at, body);
                }
                let socket = &sockets[side][i % SOCKETS];
                let protected = srtp.as_mut().map(|sides| sides[side].protect(&packet[..12 + payload_len]));
                let datagram = match &protected {
                    Some(Ok(protected)) => &protected[..],
                    Some(Err(_)) => continue,
                    None => &packet[..12 + payload_len],
                };
                // A full send buffer (4 MiB) waits a moment, once.
                if socket.send_to(datagram, to).is_err() {
                    tokio::task::yield_now().await;
                    let _ = socket.send_to(datagram, to);
                }
                sent += u64::from(sent_at >= window.start_us.load(Ordering::Relaxed));
            }
        }
    }
    (sent, ticks)
}

#[cfg(test)]
mod tests {
    use super::{Received, Side};

    #[test]
    fn an_rtcp_report_on_a_media_socket_is_neither_a_mark_nor_a_frame() {
        let side = Side { index: 1, clock_hz: 48_000, echo: false, marks: false };
        let mut got = Received::default();
        // A sender report: V=2, PT 200; its "timestamp" would be an SSRC and its "SSRC" an NTP second.
        let report = [0x80, 200, 0, 6, 0x12, 0x34, 0x56, 0x78, 0xe9, 0, 0, 0, 0, 0, 0, 0];
        got.count(&report, 1_000, side, 0);
        // An RTP frame of Opus (PT 111) whose payload's first bytes read as a mark.
        let frame = [0x80, 111, 0, 1, 0, 0, 3, 192, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        got.count(&frame, 2_000, side, 0);
        assert_eq!((got.marked, got.unmarked), (0, 1));
        assert_eq!(got.pacing.lateness_us(0).1, 1, "one stream, the RTP one");
    }
}
