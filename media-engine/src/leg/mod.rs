//! A leg: one RTP media endpoint, as an I/O-free state machine.
//!
//! Every 20 ms tick (a timer, so the driver decides what "now" is) the leg
//! 1. takes the frame due from its playout buffer, decodes or conceals it and
//!    passes it to its taps (in-band DTMF) and, if asked, out as `Heard`;
//! 2. fills the next outgoing frame from its source, encodes and packetizes it,
//!    and outputs it as `Transmit`.
//!
//! Received datagrams go in with [`Leg::handle_rtp`]; the driver polls
//! [`Leg::poll_output`] until empty and sleeps until [`Leg::poll_timeout`].

mod config;
mod dtmf_sender;
mod event_sender;
mod frames;
mod local;
mod opus_join;
mod packet_record;
mod packing;
mod passthrough;
pub(crate) mod player;
mod receive;
mod source;
mod tick;
mod tx;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bond_codecs::dtmf::{DtmfDetector, DtmfDigit, TelephoneEvent};
use bond_codecs::opus_codec::OpusConfig;
use bond_codecs::opus_peer::OpusPeer;
use bond_codecs::{AudioDecoder, AudioEncoder, AudioFrame, Codec, SampleRate};
use bytes::{Bytes, BytesMut};

pub use crate::rtp::srtp::{Srtp, SrtpKeys};
pub use config::{LegConfig, RtcpSetup, RtpMedia};
use dtmf_sender::DtmfSender;
pub use dtmf_sender::DtmfTiming;
use event_sender::EventSender;
use frames::TickFrames;
pub use local::LocalLeg;
pub use packet_record::PacketBatch;
use packet_record::PacketRecord;
use packing::Packing;
use passthrough::Rebase;
pub use passthrough::{ForwardQueue, Forwarded};
use player::Player;
pub use player::{Clip, PlaybackEnd};
use source::SourceState;
pub use source::{FrameTaken, MediaSource};
use tx::{packet_room, transmit_written};

use crate::event::{DtmfSource, EngineEvent, HangupCause};
use crate::ids::{LegId, PayloadType};
use crate::rtp::reframe::Reframer;
use crate::rtp::rtcp::{self, Rtcp, Sending};
use crate::rtp::{Packetizer, Playout, PlayoutBuffer, ReceiveStats, RtpError, RtpStats, SequenceExtender};
use crate::timer::{TimerKind, TimerTable};
use crate::EngineError;

/// Packet time of every leg.
pub const PTIME: Duration = Duration::from_millis(20);
/// What a leg produces.
#[derive(Debug)]
pub enum LegOutput {
    /// An RTP datagram to send to the peer.
    Transmit(Bytes),
    /// An RTCP compound packet to send to the peer's RTCP address.
    TransmitRtcp(Bytes),
    /// A datagram for an address of the leg's choosing (a WebRTC leg on the
    /// shared port), sent from local address `from` when the leg knows it.
    Datagram {
        transport: crate::webrtc::Transport,
        from: Option<std::net::IpAddr>,
        to: std::net::SocketAddr,
        data: Bytes,
    },
    /// The leg heard a new frame this tick (only with `emit_heard`); read it with
    /// [`Leg::heard_frame`] before the next tick. No frame is copied to say so.
    Heard,
    /// While recording: what the party said and what it was sent, this tick,
    /// which began `at` (in 8 kHz samples since the leg started).
    Recorded {
        at: u64,
        inbound: AudioFrame,
        outbound: AudioFrame,
    },
    /// While recording a passthrough bridge: the packets that crossed the leg.
    RecordedPackets(Box<PacketBatch>),
    Event(EngineEvent),
}

/// What a recorded leg outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordTap {
    #[default]
    Off,
    /// Both directions, decoded, every tick ([`LegOutput::Recorded`]); forks
    /// need this, and it keeps a bridge off passthrough.
    Frames,
    /// As `Frames`, but while the bridge passes G.711, G.722 or Opus through, the
    /// packets themselves ([`LegOutput::RecordedPackets`]), so recording leaves
    /// the bridge on passthrough (the writer decodes them, and resamples them
    /// for a file at another rate).
    FramesOrPackets,
}

/// 8 kHz samples in `elapsed` (the unit recordings place audio in).
pub(crate) fn samples_8k(elapsed: Duration) -> u64 {
    (elapsed.as_nanos() / 125_000) as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegTimer {
    Tick,
    MediaTimeout,
    Rtcp,
}

impl TimerKind for LegTimer {
    const ALL: &'static [Self] = &[Self::Tick, Self::MediaTimeout, Self::Rtcp];
    fn index(self) -> usize {
        self as usize
    }
}

/// One RTP media endpoint. See the module docs for the tick.
#[derive(Debug)]
pub struct Leg {
    id: LegId,
    config: LegConfig,
    ended: Option<HangupCause>,
    timers: TimerTable<LegTimer, 3>,
    epoch: Instant,
    encoder: AudioEncoder,
    decoder: AudioDecoder,
    packetizer: Packetizer,
    /// Packets of another length than 20 ms, when the peer asked (`packing.rs`).
    packing: Option<Box<Packing>>,
    playout: PlayoutBuffer,
    receive: ReceiveStats,
    late: u64,
    malformed: u64,
    concealed: u64,
    source: SourceState,
    /// What the leg heard and sent on its latest tick.
    frames: TickFrames,
    payload: Vec<u8>,
    tx: BytesMut,
    /// The in-band DTMF detector, made on the first decoded tick (a leg
    /// passing packets through hears no samples and holds none).
    dtmf: Option<Box<DtmfDetector>>,
    dtmf_out: DtmfSender,
    events_out: EventSender,
    /// Clips and mixed-in audio, made with the first (most legs never play one).
    player: Option<Box<Player>>,
    recording: RecordTap,
    /// While recording a passthrough bridge (see `packet_record.rs`).
    packet_record: Option<Box<PacketRecord>>,
    last_event_timestamp: Option<u32>,
    /// Ticks that played a frame (received or concealed).
    played: u64,
    /// Transmit RTP (a held peer gets none; timestamps still advance).
    sending: bool,
    /// The peer is meant to be sending, so the media timeout runs.
    expect_media: bool,
    /// When media last arrived (the media timeout is re-armed from it lazily).
    last_media: Instant,
    /// The latest time the leg was given.
    last_now: Instant,
    /// The tick armed is a restart (decoding again after passthrough): it
    /// starts on the grid at whatever time it runs, with nothing to catch up.
    tick_restarts: bool,
    /// Packets go straight to the bridge peer (see `passthrough.rs`).
    passthrough: bool,
    rebase: Option<Rebase>,
    sequence: SequenceExtender,
    rtcp: Option<Rtcp>,
    /// The SSRC of the peer's stream, once a packet arrived.
    remote_ssrc: Option<u32>,
    /// Once the peer sent a G.711/G.722 packet of another length than 20 ms, its
    /// packets are cut into 20 ms frames (`rtp/reframe.rs`); their own sequence
    /// numbers then only count for the statistics. Opus packets longer than 20 ms
    /// take their first frame's place whole, and the places after it empty.
    reframer: Option<Box<(Reframer, SequenceExtender)>>,
    /// The timestamp of the empty place where the rest of the last Opus packet
    /// decoded plays next.
    rest_timestamp: u32,
    /// The rate of the bridged peer's audio: while the leg sends only that, its
    /// encoder codes only that band (an Opus leg bridged to G.711: narrowband).
    peer_band: Option<SampleRate>,
    /// What the peer asked of the Opus it is sent (`a=fmtp`), when it said.
    opus_peer: Option<OpusPeer>,
    outputs: VecDeque<LegOutput>,
}

impl Leg {
    pub fn new(id: LegId, config: LegConfig, source: MediaSource, now: Instant) -> Result<Self, EngineError> {
        let codec = config.codec;
        let rate = codec.pcm_rate(config.opus.rate);
        let mut timers = TimerTable::default();
        timers.set(LegTimer::Tick, now);
        if let Some(timeout) = config.media_timeout {
            timers.set(LegTimer::MediaTimeout, now + timeout);
        }
        let rtcp = config.rtcp.as_ref().map(|setup| {
            let seed = u64::from(config.ssrc.0) ^ id.0;
            Rtcp::new(&setup.cname, codec.rtp_clock_rate(), seed, now)
        });
        if let Some(rtcp) = &rtcp {
            timers.set(LegTimer::Rtcp, rtcp.next_report());
        }
        Ok(Self {
            id,
            encoder: codec.encoder_with(config.opus)?,
            decoder: codec.decoder_at(rate)?,
            packetizer: Packetizer::new(config.ssrc, config.initial_seq, config.initial_timestamp),
            packing: None,
            playout: PlayoutBuffer::new(config.playout_delay, codec.max_payload_len()),
            receive: ReceiveStats::new(codec.rtp_clock_rate()),
            late: 0,
            malformed: 0,
            concealed: 0,
            source: SourceState::new(&source, rate.hz()),
            frames: TickFrames::new(rate),
            payload: vec![0; codec.max_payload_len()],
            tx: BytesMut::new(),
            dtmf: None,
            dtmf_out: DtmfSender::default(),
            events_out: EventSender::default(),
            player: None,
            recording: RecordTap::Off,
            packet_record: None,
            last_event_timestamp: None,
            played: 0,
            sending: true,
            expect_media: true,
            last_media: now,
            last_now: now,
            tick_restarts: false,
            passthrough: false,
            rebase: None,
            sequence: SequenceExtender::default(),
            rtcp,
            remote_ssrc: None,
            reframer: None,
            rest_timestamp: 0,
            peer_band: None,
            opus_peer: None,
            outputs: VecDeque::with_capacity(4),
            ended: None,
            timers,
            epoch: now,
            config,
        })
    }

    pub fn id(&self) -> LegId {
        self.id
    }

    pub fn config(&self) -> &LegConfig {
        &self.config
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Apply a new offer/answer outcome. A codec at another rate is taken only
    /// while nothing uses the leg's audio (Bond's offer answered with a codec other
    /// than its first: no bridge, tap, recording or clip yet; the leg then sends
    /// silence); once the audio is in use a codec change must keep the rate.
    pub fn set_media(&mut self, now: Instant, media: RtpMedia) -> Result<(), EngineError> {
        // Audio packed for the old packet time or codec goes first, as it was.
        let repack = media.packet_ms != self.packet_ms() || media.codec != self.config.codec;
        if repack {
            self.send_packed_rest();
        }
        if media.codec.pcm_rate(self.config.opus.rate) != self.rate() {
            if self.audio_in_use() {
                return Err(EngineError::Config("a codec change must keep the sample rate of a leg in use"));
            }
            self.change_rate(media.codec)?;
        }
        let peer_changed = media.opus_peer != self.opus_peer;
        self.opus_peer = media.opus_peer;
        if media.codec != self.config.codec || peer_changed {
            self.encoder = media.codec.encoder_with(self.opus_config())?;
        }
        if media.codec != self.config.codec {
            self.decoder = media.codec.decoder_at(self.rate())?;
            self.playout.flush();
            self.config.codec = media.codec;
        }
        if repack {
            self.packing = Packing::new(media.codec, media.packet_ms).map(Box::new);
        }
        self.config.payload_type = media.payload_type;
        self.config.telephone_event_pt = media.telephone_event_pt;
        self.sending = media.send;
        self.expect_media = media.expect_media;
        match self.config.media_timeout {
            Some(timeout) if media.expect_media => {
                self.last_media = now;
                self.timers.set(LegTimer::MediaTimeout, now + timeout);
            }
            _ => self.timers.stop(LegTimer::MediaTimeout),
        }
        Ok(())
    }

    /// Bond's Opus settings as coding for this leg's peer.
    fn opus_config(&self) -> OpusConfig {
        self.opus_peer.map_or(self.config.opus, |peer| self.config.opus.for_peer(&peer))
    }

    /// Whether anything besides the leg's party and a bridge being set up
    /// takes its audio at its rate: then the rate must stay.
    fn audio_in_use(&self) -> bool {
        self.config.emit_heard || self.recording != RecordTap::Off || !self.player_is_idle()
    }

    /// Code the leg's Opus at `rate` (at most the codec's own): the rate of the
    /// audio it is bridged to, so that no resampler stands between them and
    /// libopus codes no samples the peer cannot carry. Only while nothing else
    /// uses the leg's audio ([`Self::audio_in_use`]); [`Self::rate`] tells
    /// the outcome. Received packets waiting to play are kept.
    pub fn code_opus_at(&mut self, rate: SampleRate) -> Result<(), EngineError> {
        let codec = self.config.codec;
        let rate = rate.min(codec.sample_rate());
        if codec.pcm_rate(rate) != rate || rate == self.rate() || self.audio_in_use() {
            return Ok(());
        }
        self.config.opus.rate = rate;
        self.encoder = codec.encoder_with(self.opus_config())?;
        self.decoder = codec.decoder_at(rate)?;
        self.rest_timestamp = 0;
        self.clocked_by(rate);
        Ok(())
    }

    /// Everything sized or clocked by the leg's rate, made again for `codec`'s.
    fn change_rate(&mut self, codec: Codec) -> Result<(), EngineError> {
        let rate = codec.pcm_rate(self.config.opus.rate);
        self.encoder = codec.encoder_with(self.opus_config())?;
        self.decoder = codec.decoder_at(rate)?;
        self.playout = PlayoutBuffer::new(self.config.playout_delay, codec.max_payload_len());
        self.receive = ReceiveStats::new(codec.rtp_clock_rate());
        self.payload = vec![0; codec.max_payload_len()];
        self.clocked_by(rate);
        self.config.codec = codec;
        Ok(())
    }

    /// The per-tick state that runs at the leg's rate, made for `rate`; the
    /// leg sends silence until its source is set again.
    fn clocked_by(&mut self, rate: SampleRate) {
        self.frames = TickFrames::new(rate);
        self.dtmf = None;
        self.source = SourceState::new(&MediaSource::Silence, rate.hz());
    }

    /// Frames played out so far (received or concealed).
    pub fn played_frames(&self) -> u64 {
        self.played
    }

    /// Drop the received audio not yet played.
    pub fn flush_playout(&mut self) {
        self.playout.flush();
    }

    /// Queue a frame for an [`MediaSource::External`] leg.
    pub fn handle_frame(&mut self, frame: &AudioFrame) -> FrameTaken {
        self.source.push(frame)
    }

    /// What the leg sent its party on the latest tick.
    pub fn sent_frame(&self) -> &AudioFrame {
        self.frames.sent()
    }

    /// The frame the leg heard on its latest tick.
    pub fn heard_frame(&self) -> &AudioFrame {
        self.frames.heard()
    }

    /// The rate of the leg's audio: its codec's, or for Opus the rate it codes at.
    pub fn rate(&self) -> SampleRate {
        self.config.codec.pcm_rate(self.config.opus.rate)
    }

    /// Change what the leg sends (a bridge switches it to `External`).
    pub fn set_source(&mut self, source: &MediaSource) {
        self.source = SourceState::new(source, self.rate().hz());
    }

    /// The rate of what a bridge gives the leg to send (`None`: not bridged).
    pub fn set_peer_band(&mut self, rate: Option<SampleRate>) {
        self.peer_band = rate;
    }

    /// Output decoded frames as `Heard` (bridges and recorders turn this on).
    pub fn set_emit_heard(&mut self, on: bool) {
        self.config.emit_heard = on;
    }

    /// Output both directions of audio every tick as `Recorded` (or, with
    /// [`RecordTap::FramesOrPackets`] while passing through, as `RecordedPackets`).
    pub fn set_recording(&mut self, tap: RecordTap) {
        self.recording = tap;
        if tap != RecordTap::FramesOrPackets {
            self.hand_over_packet_record();
        }
    }

    /// An in-band DTMF digit is sounding in what the leg hears right now.
    pub fn hears_dtmf(&self) -> bool {
        self.dtmf.as_ref().is_some_and(|d| d.is_active())
    }

    /// Send digits to the peer: as RFC 4733 telephone-events when the leg sends
    /// them (`send_events`) and they were negotiated, else in-band, replacing the
    /// outgoing audio while they last.
    pub fn send_dtmf(&mut self, digits: &[DtmfDigit], timing: DtmfTiming) {
        if self.events_pt().is_some() {
            self.events_out.queue(digits, timing);
        } else {
            self.dtmf_out.queue(digits, timing);
        }
    }

    /// Play a clip to the peer: queued on the main track (in place of the leg's
    /// audio) or mixed on top as an overlay.
    pub fn play(&mut self, clip: Clip, overlay: bool) {
        self.player.get_or_insert_default().play(clip, overlay);
    }

    /// Audio mixed into what the party hears on the next tick.
    pub fn mix_in(&mut self, frame: &AudioFrame) {
        self.player.get_or_insert_default().mix_in(frame);
    }

    /// What was mixed into the latest frame the party heard.
    pub fn mixed(&self) -> Option<&AudioFrame> {
        self.player.as_ref().and_then(|p| p.mixed())
    }

    /// Stop the clip playing on a track and, with `all`, the ones queued after it.
    pub fn stop_playback(&mut self, overlay: bool, all: bool) {
        if let Some(player) = &mut self.player {
            player.stop(overlay, all);
            player.drain_events(self.id, &mut self.outputs);
        }
    }

    /// Nothing to play or mix in.
    fn player_is_idle(&self) -> bool {
        self.player.as_ref().is_none_or(|p| p.is_idle())
    }

    fn events_pt(&self) -> Option<PayloadType> {
        self.config.telephone_event_pt.filter(|_| self.config.send_events)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        while let Some((timer, due)) = self.timers.pop_expired(now) {
            match timer {
                LegTimer::Tick => {
                    self.tick(now, due);
                    // One tick a call: a late one's catch-up ticks wait until the
                    // engine has taken this one's audio (and the leg is due again).
                    return;
                }
                LegTimer::MediaTimeout => match self.config.media_timeout {
                    // Media came since the timer was set: wait from the latest packet.
                    Some(timeout) if self.last_media + timeout > now => {
                        self.timers.set(LegTimer::MediaTimeout, self.last_media + timeout)
                    }
                    _ => self.hangup(HangupCause::MediaTimeout),
                },
                LegTimer::Rtcp => self.send_report(now),
            }
            if self.is_ended() {
                return;
            }
        }
    }

    /// End the leg; its last output is `LegEnded` with the final statistics.
    pub fn hangup(&mut self, cause: HangupCause) {
        if self.is_ended() {
            return;
        }
        self.ended = Some(cause);
        self.timers.stop_all();
        self.hand_over_packet_record();
        let stats = self.stats();
        self.outputs.push_back(LegOutput::Event(EngineEvent::LegEnded { leg: self.id, cause, stats }));
    }

    pub fn poll_output(&mut self) -> Option<LegOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub fn stats(&self) -> RtpStats {
        RtpStats {
            packets_received: self.receive.packets(),
            bytes_received: self.receive.bytes(),
            packets_lost: self.receive.lost(),
            jitter_ms: self.receive.jitter_ms(),
            packets_late: self.late,
            packets_malformed: self.malformed,
            frames_concealed: self.concealed,
            packets_sent: self.packetizer.sent_packets(),
            bytes_sent: self.packetizer.sent_bytes(),
            remote: self.rtcp.as_ref().map(Rtcp::remote).unwrap_or_default(),
        }
    }

    /// An RTCP packet from the peer (on the RTCP port, or multiplexed on the RTP one).
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), EngineError> {
        if self.is_ended() {
            return Err(EngineError::LegEnded(self.id));
        }
        let ntp = self.ntp_time(now);
        let Some(rtcp) = &mut self.rtcp else {
            return Err(RtpError::Rtcp("this leg does not take RTCP".into()).into());
        };
        let result = rtcp.receive(now, ntp, datagram, self.config.ssrc.0);
        if result.is_err() {
            self.malformed += 1;
        }
        Ok(result?)
    }

    /// The report due now: SR while sending, else RR; a block on the peer's stream once it sent.
    fn send_report(&mut self, now: Instant) {
        let ntp = self.ntp_time(now);
        let sent = self.packetizer.sent_packets();
        let sending = Sending {
            ssrc: self.config.ssrc.0,
            sent: (self.sending && sent > 0).then(|| (sent, self.packetizer.sent_bytes())),
            // Audio packed but not sent yet is already past.
            rtp_time: self
                .packetizer
                .next_timestamp()
                .wrapping_add(self.packing.as_ref().map_or(0, |p| p.waiting())),
        };
        let received =
            self.remote_ssrc.filter(|_| self.receive.packets() > 0).map(|ssrc| (ssrc, &self.receive));
        let Some(rtcp) = &mut self.rtcp else { return };
        let report = rtcp.report(now, ntp, sending, received);
        self.timers.set(LegTimer::Rtcp, rtcp.next_report());
        if let Ok(data) = report {
            self.outputs.push_back(LegOutput::TransmitRtcp(data));
        }
    }

    /// The NTP time of `now` for RTCP (from the wall-clock time the leg was created at).
    fn ntp_time(&self, now: Instant) -> u64 {
        let at_start = self.config.rtcp.as_ref().map_or(Duration::ZERO, |r| r.unix_time_at_start);
        rtcp::ntp_time(at_start + now.saturating_duration_since(self.epoch))
    }

    fn handle_telephone_event(&mut self, timestamp: u32, payload: &[u8]) {
        let Ok(event) = TelephoneEvent::decode(payload) else {
            self.malformed += 1;
            return;
        };
        // One event spans many packets with the same timestamp; report it once.
        if self.last_event_timestamp == Some(timestamp) {
            return;
        }
        self.last_event_timestamp = Some(timestamp);
        self.outputs.push_back(LegOutput::Event(EngineEvent::DtmfReceived {
            leg: self.id,
            digit: event.digit,
            source: DtmfSource::Rfc4733,
        }));
    }

    /// `now` in RTP clock units since the leg started (for jitter).
    fn rtp_clock(&self, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.epoch);
        (elapsed.as_micros() as i64 * i64::from(self.config.codec.rtp_clock_rate())) / 1_000_000
    }
}
