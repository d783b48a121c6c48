//! A WebRTC leg: str0m's `Rtc` (ICE, DTLS-SRTP, RTCP) wrapped around an ordinary
//! RTP [`Leg`] (playout, codecs, DTMF, taps).
//!
//! str0m runs in RTP mode: every decrypted RTP packet it emits is handed to the
//! inner leg as a plain RTP datagram, and every datagram the inner leg transmits
//! is parsed and written back through str0m, which encrypts it. Both are
//! I/O-free, so this is too: datagrams and time go in, `Datagram` outputs (with
//! their destination, since every WebRTC leg shares one UDP port) come out.
//!
//! Addresses: the leg announces one host candidate per address browsers are
//! told to reach (the shared port on each local address, or the public address
//! of a server behind 1:1 NAT). str0m answers only checks addressed to one of
//! its candidates, so a datagram that arrived at an address the leg did not
//! announce (the private side of the NAT) is handed to str0m as addressed to
//! the one announced address, when there is one; what the leg sends in reply
//! leaves from the local address those datagrams arrived at
//! ([`LegOutput::Datagram`]'s `from`), so the browser sees its answers come
//! back from where it sent its checks.
//!
//! str0m's contract is "mutate, then drain `poll_output` to a timeout"; every
//! method that touches the `Rtc` ends in [`WebRtcLeg::drain`].
//!
//! Bridged with passthrough (`leg/passthrough.rs`), a packet str0m decrypts is
//! checked by the inner leg and kept for the engine to forward
//! ([`WebRtcLeg::take_forwarded`]); a packet forwarded to this leg is written
//! onto the leg's stream and encrypted at once ([`WebRtcLeg::forward`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bond_codecs::Codec;
use bytes::Bytes;
use str0m::change::SdpOffer;
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

use crate::event::HangupCause;
use crate::ids::{LegId, PayloadType};
use crate::leg::{ForwardQueue, Forwarded, Leg, LegConfig, LegOutput, MediaSource, RecordTap};
use crate::rtp::{plain_packet, RtpPacket};
use crate::EngineError;

use super::reach::{HostCandidates, Transport};

/// How long ICE and DTLS may take before the leg gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Peer addresses one leg routes by (a browser checks from a few candidates).
const MAX_PEER_ADDRESSES: usize = 8;

/// Candidates a browser may trickle to one leg (Chromium gathers a handful:
/// host, TCP, server-reflexive, relayed); more are refused, so a page cannot
/// make Bond check an unbounded list of addresses.
const MAX_TRICKLED: usize = 32;

/// Bond's payload types for telephone-events (the browser's numbers win in the answer).
const EVENTS_48K: u8 = 110;
const EVENTS_8K: u8 = 126;

/// The codecs Bond answers browsers with unless told otherwise, best first.
pub const DEFAULT_CODECS: [Codec; 4] = [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma];

/// How WebRTC legs are set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcOptions {
    /// Codecs to answer with, best first (Opus, G.722, PCMU, PCMA; others are
    /// ignored). The answer lists only these, in this order, so the browser
    /// sends the first of them it offered. G.711 first lets an agent bridged to
    /// a G.711 caller pass packets through instead of transcoding Opus.
    pub codecs: Vec<Codec>,
    /// Bridged legs may pass packets through undecoded (see `leg/passthrough.rs`).
    pub passthrough: bool,
}

impl Default for WebRtcOptions {
    fn default() -> Self {
        Self { codecs: DEFAULT_CODECS.to_vec(), passthrough: false }
    }
}

/// str0m's name for a codec Bond takes from browsers.
fn rtc_codec(codec: Codec) -> Option<RtcCodec> {
    match codec {
        Codec::Opus => Some(RtcCodec::Opus),
        Codec::G722 => Some(RtcCodec::G722),
        Codec::Pcmu => Some(RtcCodec::PCMU),
        Codec::Pcma => Some(RtcCodec::PCMA),
        _ => None,
    }
}

/// What an accepted offer settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcAnswer {
    pub sdp: String,
    pub codec: Codec,
    /// Bond's ICE username fragment: STUN requests naming it belong to this leg.
    pub ufrag: String,
}

/// See the module docs.
#[derive(Debug)]
pub struct WebRtcLeg {
    rtc: Rtc,
    leg: Leg,
    mid: Mid,
    ufrag: String,
    /// Every telephone-event payload type negotiated: a browser may send DTMF at
    /// another clock rate than its codec's (Chromium does), so all of them are
    /// handed to the inner leg as its one.
    event_pts: Vec<u8>,
    /// The addresses announced to the browser (see the module docs).
    candidates: Vec<SocketAddr>,
    /// The local address datagrams for the one announced address arrive at:
    /// the address itself, or the private side of a 1:1 NAT.
    arrival: Option<std::net::IpAddr>,
    peers: Vec<SocketAddr>,
    /// Candidates trickled so far (at most [`MAX_TRICKLED`]).
    trickled: usize,
    /// Set once ICE and DTLS are up; until then nothing is sent.
    connected: bool,
    connect_deadline: Instant,
    rtc_timeout: Option<Instant>,
    /// The RTP sequence number extended past its wrap, as str0m wants it.
    roc: u64,
    last_seq: Option<u16>,
    packet: Vec<u8>,
    /// Packets received while passing through, for the engine to forward.
    forwarded: ForwardQueue,
    /// The time of the latest call that brought one: what the inner leg's
    /// outputs go out at when a control (not the clock) made them.
    last_now: Instant,
    outputs: VecDeque<LegOutput>,
}

impl WebRtcLeg {
    /// Answer a browser's `offer` with a host candidate for each of
    /// `candidates` (the shared WebRTC port as browsers reach it), choosing the
    /// first of `codecs` it offered. `config` gives
    /// SSRC/seq/timestamp seeds and playout settings; its codec and payload
    /// types are replaced by what was negotiated.
    pub fn accept(
        id: LegId,
        offer: &str,
        candidates: &HostCandidates,
        credentials: IceCreds,
        mut config: LegConfig,
        codecs: &[Codec],
        now: Instant,
    ) -> Result<(Self, WebRtcAnswer), EngineError> {
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| EngineError::WebRtc(format!("offer: {e}")))?;
        let ufrag = credentials.ufrag.clone();
        let mut builder =
            Rtc::builder().set_rtp_mode(true).clear_codecs().set_local_ice_credentials(credentials);
        // In preference order: str0m's answer lists them as they were added.
        let formats = builder.codec_config();
        for &codec in codecs {
            match codec {
                Codec::Opus => formats.enable_opus(true, false),
                Codec::G722 => formats.enable_g722(true, false),
                Codec::Pcmu => formats.enable_pcmu(true, false),
                Codec::Pcma => formats.enable_pcma(true, false),
                _ => {}
            }
        }
        let events = FormatParams::parse_line("0-16");
        formats.add_config(EVENTS_48K.into(), None, RtcCodec::Tele, Frequency::FORTY_EIGHT_KHZ, None, events);
        formats.add_config(EVENTS_8K.into(), None, RtcCodec::Tele, Frequency::EIGHT_KHZ, None, events);
        let mut rtc = builder.build(now);
        if candidates.addrs.is_empty() {
            return Err(EngineError::WebRtc("no address to announce".into()));
        }
        for host in candidates.candidates().map_err(|e| EngineError::WebRtc(format!("candidate {e}")))? {
            rtc.add_local_candidate(host);
        }
        let mids: Vec<Mid> = offer.media_lines.iter().map(|m| m.mid()).collect();
        let answer =
            rtc.sdp_api().accept_offer(offer).map_err(|e| EngineError::WebRtc(format!("offer: {e}")))?;
        let mid = mids.into_iter().find(|&mid| rtc.media(mid).is_some_and(|m| m.kind() == MediaKind::Audio));
        let mid = mid.ok_or(EngineError::WebRtc("the offer has no audio".into()))?;
        let (codec, payload_type, events, event_pts) = negotiated(&rtc, mid, codecs).ok_or_else(|| {
            let names: Vec<_> = codecs.iter().map(|c| c.encoding_name()).collect();
            EngineError::WebRtc(format!("no codec in common (Bond takes {})", names.join(", ")))
        })?;
        config.codec = codec;
        config.payload_type = payload_type;
        config.telephone_event_pt = events;
        config.initial_seq = 0;
        let leg = Leg::new(id, config, MediaSource::Silence, now)?;
        let webrtc = Self {
            rtc,
            leg,
            mid,
            ufrag: ufrag.clone(),
            event_pts,
            candidates: candidates.addrs.clone(),
            arrival: None,
            peers: Vec::new(),
            trickled: 0,
            connected: false,
            connect_deadline: now + CONNECT_TIMEOUT,
            rtc_timeout: Some(now),
            roc: 0,
            last_seq: None,
            packet: Vec::with_capacity(1500),
            forwarded: ForwardQueue::default(),
            last_now: now,
            outputs: VecDeque::new(),
        };
        Ok((webrtc, WebRtcAnswer { sdp: answer.to_sdp_string(), codec, ufrag }))
    }

    /// A candidate the browser gathered after its offer (trickle ICE, RFC
    /// 8838): an SDP `candidate:` attribute, `a=` optional. str0m pairs it
    /// with Bond's candidates and checks it; one it knows already changes
    /// nothing. A leg takes at most 32. A line that is no candidate (an mDNS `.local` name among
    /// them: Bond resolves none) is an error and the leg goes on.
    ///
    /// As with candidates in the offer, the engine routes datagrams from an
    /// address to this leg once the browser's own checks came from it: the
    /// answer to a check Bond sends to a trickled address the browser never
    /// checked from is refused as a datagram for no leg. Browsers check from
    /// every candidate they announce, so in practice the browser's checks
    /// carry the connection.
    pub fn add_remote_candidate(&mut self, now: Instant, line: &str) -> Result<(), EngineError> {
        if self.leg.is_ended() {
            return Err(EngineError::LegEnded(self.leg.id()));
        }
        if self.trickled >= MAX_TRICKLED {
            return Err(EngineError::WebRtc(format!(
                "a leg takes at most {MAX_TRICKLED} trickled candidates"
            )));
        }
        let line = line.trim();
        let candidate = Candidate::from_sdp_string(line.strip_prefix("a=").unwrap_or(line))
            .map_err(|e| EngineError::WebRtc(format!("candidate: {e}")))?;
        self.trickled += 1;
        self.last_now = now;
        self.rtc.add_remote_candidate(candidate);
        self.drain(now);
        Ok(())
    }

    pub fn leg(&self) -> &Leg {
        &self.leg
    }

    pub fn leg_mut(&mut self) -> &mut Leg {
        &mut self.leg
    }

    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// A packet from `source` on the shared port (STUN, DTLS, SRTP, SRTCP),
    /// over `transport`, that arrived at local address `destination`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), EngineError> {
        if self.leg.is_ended() {
            return Err(EngineError::LegEnded(self.leg.id()));
        }
        self.last_now = now;
        let destination = self.announced(destination);
        let receive = str0m::net::Receive::new(transport.protocol(), source, destination, datagram)
            .map_err(|e| EngineError::WebRtc(format!("datagram: {e}")))?;
        let result = self.rtc.handle_input(Input::Receive(now, receive));
        self.drain(now);
        // What the inner leg made of the packets (a DTMF event, say).
        self.pump_leg(now);
        result.map_err(|e| EngineError::WebRtc(e.to_string()))
    }

    /// The announced address a datagram that arrived at `destination` was sent
    /// to: with one announced, that one (remembering where its datagrams
    /// arrive); with several, `destination` itself, each being a local address
    /// (str0m refuses one that is not).
    fn announced(&mut self, destination: SocketAddr) -> SocketAddr {
        match self.candidates[..] {
            [only] => {
                if !destination.ip().is_unspecified() {
                    self.arrival = Some(destination.ip());
                }
                only
            }
            _ => destination,
        }
    }

    /// The local address to send from when str0m sends from `source`: with one
    /// announced address, where its datagrams arrive (`None` until one has: the
    /// system picks); with several, each is a local address of its own.
    fn sent_from(&self, source: SocketAddr) -> Option<std::net::IpAddr> {
        match self.candidates.len() {
            1 => self.arrival,
            _ => Some(source.ip()),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if !self.connected && now >= self.connect_deadline {
            self.hangup(HangupCause::ConnectionFailed);
            return;
        }
        if self.rtc_timeout.is_some_and(|at| at <= now) {
            self.run_rtc(now);
        }
        if self.leg.poll_timeout().is_some_and(|at| at <= now) {
            self.leg.handle_timeout(now);
            self.pump_leg(now);
        }
    }

    pub fn poll_output(&mut self) -> Option<LegOutput> {
        self.outputs.pop_front()
    }

    /// Send a packet the bridge peer passed through (see the module docs).
    pub fn forward(&mut self, now: Instant, packet: &Forwarded<'_>) {
        self.last_now = now;
        self.leg.forward(now, packet);
        self.pump_leg(now);
    }

    /// Change the inner leg's recording tap; what it hands over as the tap
    /// changes (packets kept for a recording) comes out at once.
    pub fn set_recording(&mut self, tap: RecordTap) {
        self.leg.set_recording(tap);
        self.pump_leg(self.last_now);
    }

    /// The packets received while passing through since the last call, if any;
    /// hand the queue back with [`restore_forwarded`](Self::restore_forwarded)
    /// so its buffers are reused.
    pub fn take_forwarded(&mut self) -> Option<ForwardQueue> {
        (!self.forwarded.is_empty()).then(|| std::mem::take(&mut self.forwarded))
    }

    pub fn restore_forwarded(&mut self, mut queue: ForwardQueue) {
        queue.clear();
        self.forwarded = queue;
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.leg.is_ended() {
            return None;
        }
        let leg = self.leg.poll_timeout();
        let connect = (!self.connected).then_some(self.connect_deadline);
        [leg, self.rtc_timeout, connect].into_iter().flatten().min()
    }

    /// Remember an address the peer's connectivity checks came from; false when
    /// it was known already or the leg has learned as many as it keeps.
    pub fn learn_peer(&mut self, source: SocketAddr) -> bool {
        if self.peers.contains(&source) || self.peers.len() >= MAX_PEER_ADDRESSES {
            return false;
        }
        self.peers.push(source);
        true
    }

    /// Addresses learned with [`WebRtcLeg::learn_peer`].
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    pub fn hangup(&mut self, cause: HangupCause) {
        if self.leg.is_ended() {
            return;
        }
        self.rtc.disconnect();
        self.end_leg(cause);
    }

    /// The inner leg ends (str0m has already given up, or is told by `hangup`).
    fn end_leg(&mut self, cause: HangupCause) {
        self.leg.hangup(cause);
        self.pump_leg_outputs_only();
    }

    /// Why the connection ended: it never came up, or it went down.
    fn connection_cause(&self) -> HangupCause {
        if self.connected {
            HangupCause::ConnectionLost
        } else {
            HangupCause::ConnectionFailed
        }
    }

    /// Move the inner leg's outputs out; its RTP goes through str0m.
    fn pump_leg(&mut self, now: Instant) {
        while let Some(output) = self.leg.poll_output() {
            match output {
                LegOutput::Transmit(data) => self.send_rtp(now, &data),
                other => self.outputs.push_back(other),
            }
        }
    }

    fn pump_leg_outputs_only(&mut self) {
        while let Some(output) = self.leg.poll_output() {
            if !matches!(output, LegOutput::Transmit(_)) {
                self.outputs.push_back(output);
            }
        }
    }

    fn send_rtp(&mut self, now: Instant, datagram: &[u8]) {
        if !self.connected {
            return;
        }
        let Ok(packet) = RtpPacket::parse(datagram) else { return };
        let header = packet.header;
        let seq = self.extend_seq(header.sequence_number);
        let write =
            RtpWrite::new(header.payload_type.into(), seq.into(), header.timestamp, now, packet.payload)
                .marker(header.marker);
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(self.mid, None) else { return };
        stream.write_rtp(write);
        // str0m's pacer lets a written packet out when its time next runs: now.
        self.run_rtc(now);
    }

    /// Run str0m's timers at `now`, then drain it.
    fn run_rtc(&mut self, now: Instant) {
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(leg = %self.leg.id(), error = %e, "webrtc timeout");
        }
        self.drain(now);
    }

    fn extend_seq(&mut self, seq: u16) -> u64 {
        if self.last_seq.is_some_and(|last| seq < last && last - seq > u16::MAX / 2) {
            self.roc += 1;
        }
        self.last_seq = Some(seq);
        (self.roc << 16) | u64::from(seq)
    }

    /// Drain str0m to its next timeout (its contract after every mutation).
    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.rtc_timeout = Some(at);
                    return;
                }
                Ok(Output::Transmit(t)) => self.outputs.push_back(LegOutput::Datagram {
                    transport: Transport::of(t.proto),
                    from: self.sent_from(t.source),
                    to: t.destination,
                    data: Bytes::copy_from_slice(&t.contents),
                }),
                Ok(Output::Event(event)) => self.handle_event(now, event),
                Err(e) => {
                    tracing::debug!(leg = %self.leg.id(), error = %e, "webrtc failed");
                    self.rtc_timeout = None;
                    self.end_leg(self.connection_cause());
                    return;
                }
            }
            if !self.rtc.is_alive() {
                self.rtc_timeout = None;
                return;
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.end_leg(self.connection_cause());
            }
            Event::RtpPacket(packet) => {
                let events = self
                    .leg
                    .config()
                    .telephone_event_pt
                    .filter(|_| self.event_pts.contains(&packet.header.payload_type));
                let h = &packet.header;
                let pt = events.map_or(*h.payload_type, PayloadType::get);
                let datagram = plain_packet(
                    &mut self.packet,
                    h.marker,
                    pt,
                    h.sequence_number,
                    h.timestamp,
                    *h.ssrc,
                    &packet.payload,
                );
                // A refused packet is counted in the leg's statistics.
                if self.leg.is_passthrough() {
                    if let Ok(packet) = self.leg.relay_rtp(now, datagram) {
                        self.forwarded.push(&packet);
                    }
                } else {
                    let _ = self.leg.handle_rtp(now, datagram);
                }
            }
            Event::Closed => self.end_leg(HangupCause::NormalClearing),
            _ => {}
        }
    }
}

/// The codec (the first of `codecs` that the browser offered), its payload
/// type, telephone-events (at its RTP clock rate when offered), and every
/// telephone-event payload type negotiated.
fn negotiated(
    rtc: &Rtc,
    mid: Mid,
    codecs: &[Codec],
) -> Option<(Codec, PayloadType, Option<PayloadType>, Vec<u8>)> {
    let remote = rtc.media(mid)?.remote_pts();
    let params = rtc.codec_config().params();
    let offered =
        |codec: RtcCodec| params.iter().find(|p| p.spec().codec == codec && remote.contains(&p.pt()));
    let (codec, p) = codecs.iter().find_map(|&ours| offered(rtc_codec(ours)?).map(|p| (ours, p)))?;
    let events: Vec<_> =
        params.iter().filter(|e| e.spec().codec == RtcCodec::Tele && remote.contains(&e.pt())).collect();
    let preferred = events
        .iter()
        .find(|e| e.spec().clock_rate.get() == codec.rtp_clock_rate())
        .or(events.first())
        .and_then(|e| PayloadType::new(*e.pt()));
    let event_pts = events.iter().map(|e| *e.pt()).collect();
    Some((codec, PayloadType::new(*p.pt())?, preferred, event_pts))
}
