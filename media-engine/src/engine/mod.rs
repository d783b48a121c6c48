//! The engine: many legs in one I/O-free state machine, and the bridges between them.
//!
//! The driver feeds it datagrams and the passage of time, and drains
//! [`Engine::poll_output`] until it returns `None`; then it sleeps until
//! [`Engine::poll_timeout`]. Deadlines live in a min-heap so a timeout costs
//! O(log n) in the number of legs, not a scan.
//!
//! A bridge joins two legs: each tick, what one leg's party says (its `Heard`
//! frame) is handed to the other leg to send to its party, resampled when the
//! two rates differ. Legs never reference each other; the engine moves frames.
//!
//! A bridge may also join a leg of this engine with a leg of another (the
//! runtime runs one engine per core): this engine then holds one direction and
//! hands frames for the far leg out as [`Relay`]s (see `relay.rs`).
//!
//! Taps ride on the same `Heard` frames: an answering-machine detector on a leg
//! is fed what its party says (and what it was sent) every tick. Carrier-stream
//! legs are RTP legs whose packets the engine builds from numbered chunks and
//! whose output loses its RTP header (see `stream.rs`).

mod bridge;
mod conference;
mod controls;
mod deadlines;
mod member;
mod offload;
mod pacer;
mod passthrough;
mod relay;
mod stream;
mod supervise;
mod webrtc_legs;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::opus_codec::OpusConfig;
use bond_codecs::signals::SplitMix64;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bytes::Bytes;
use rustc_hash::FxHashMap;

pub use bridge::DtmfPassing;
use bridge::Route;
pub use conference::{PartyRole, CLIP_RATE as CONFERENCE_CLIP_RATE};
pub use controls::AudioControls;
use member::Member;
pub use offload::{Offload, Relayed};
pub use relay::{PassOffer, Relay, RelayedPacket};
pub use stream::StreamOutput;
use stream::StreamState;
pub use supervise::SupervisorRole;

use crate::amd::{AmdConfig, AmdDetector};
use crate::event::{DtmfSource, EngineEvent, HangupCause};
use crate::ids::LegId;
use crate::leg::{
    Clip, DtmfTiming, FrameTaken, Leg, LegConfig, LegOutput, LocalLeg, MediaSource, PacketBatch, RecordTap,
    RtpMedia,
};
use crate::rtp::RtpStats;
use crate::webrtc::WebRtcOptions;
use crate::EngineError;

/// What the engine asks its driver to do.
#[derive(Debug)]
pub enum EngineOutput {
    /// Send `data` to the leg's peer.
    Transmit {
        leg: LegId,
        data: Bytes,
    },
    /// Send an RTCP packet to the leg's peer's RTCP address.
    TransmitRtcp {
        leg: LegId,
        data: Bytes,
    },
    /// A frame a leg's party said, when the leg is not bridged and asked for them.
    Heard {
        leg: LegId,
        frame: AudioFrame,
    },
    /// Send `data` to `to` from the shared WebRTC port, from local address
    /// `from` when the leg knows it (see `webrtc/leg.rs`).
    Datagram {
        leg: LegId,
        transport: crate::webrtc::Transport,
        from: Option<std::net::IpAddr>,
        to: SocketAddr,
        data: Bytes,
    },
    /// What a carrier-stream leg sends its carrier.
    Stream {
        leg: LegId,
        output: StreamOutput,
    },
    /// A recorded leg's tick: what its party said and what the party was sent,
    /// from `at` (8 kHz samples since the leg started).
    Recorded {
        leg: LegId,
        at: u64,
        inbound: AudioFrame,
        outbound: AudioFrame,
    },
    /// A recorded leg's packets while its bridge passes through (with [`RecordTap::FramesOrPackets`]).
    RecordedPackets {
        leg: LegId,
        batch: Box<PacketBatch>,
    },
    /// Carry a passthrough direction in the kernel from now on, or with these
    /// offsets from now on (see `offload.rs`).
    Offload(Offload),
    /// Stop carrying `from`'s direction in the kernel, and report what it forwarded.
    OffloadEnded {
        from: LegId,
    },
    /// For the engine that owns a remote bridge peer (see [`Engine::handle_relay`]).
    Relay(Relay),
    Event(EngineEvent),
}

/// Many legs, their timers, their bridges and their outputs.
#[derive(Debug)]
pub struct Engine {
    legs: FxHashMap<LegId, Member>,
    routes: FxHashMap<LegId, Route>,
    controls: FxHashMap<LegId, AudioControls>,
    /// What each held leg's party hears, kept across its bridges coming and going.
    hold_sources: FxHashMap<LegId, MediaSource>,
    /// Carrier-stream legs: how their chunks become RTP, and their marks.
    streams: FxHashMap<LegId, StreamState>,
    /// WebRTC legs by Bond's ICE username fragment, and by the peer addresses
    /// their connectivity checks came from (every WebRTC leg shares one port).
    webrtc_ufrags: HashMap<String, LegId>,
    webrtc_peers: HashMap<SocketAddr, LegId>,
    /// Answering-machine detectors, tapping what their leg's party says.
    detectors: FxHashMap<LegId, AmdDetector>,
    /// Where a heard frame is copied on its way across a bridge (no allocation per frame).
    scratch: AudioFrame,
    /// Supervisors' paths: audio heard on a leg mixed into others' (`supervise.rs`).
    taps: FxHashMap<LegId, Vec<supervise::Tap>>,
    tap_scratch: AudioFrame,
    /// A barging supervisor's audio waiting to go across a leg's bridge with its next frame.
    bridge_mix: FxHashMap<LegId, AudioFrame>,
    /// Conferences by id (from the legs' sequence): see `conference.rs`.
    conferences: FxHashMap<LegId, conference::Conference>,
    next_leg: u64,
    /// Leg ids go up by this much, so engines that share a runtime never reuse each other's.
    leg_step: u64,
    deadlines: BinaryHeap<Reverse<(Instant, LegId)>>,
    /// Each leg's deadline as last pushed, so an unchanged one is not pushed again.
    armed: FxHashMap<LegId, Instant>,
    outputs: VecDeque<EngineOutput>,
    /// Packets sent on undecoded since [`Engine::take_passed_through`] last ran.
    passed_through: u64,
    /// Frames a leg dropped from its queue, its peer running ahead of its
    /// clock, since [`Engine::take_frames_dropped`] last ran.
    frames_dropped: u64,
    /// Passthrough directions may be carried in the kernel (`offload.rs`).
    offloading: bool,
    /// The directions handed to the kernel, by receiving leg.
    offloads: FxHashMap<LegId, Offload>,
    rng: SplitMix64,
    /// How new legs encode Opus.
    opus: OpusConfig,
    /// How new WebRTC legs are set up.
    webrtc: WebRtcOptions,
}

impl Engine {
    /// `seed` drives SSRCs, sequence numbers and timestamps, so runs can be replayed.
    pub fn new(seed: u64) -> Self {
        Self::with_leg_ids(seed, 1, 1)
    }

    /// An engine whose leg ids are `first`, `first + step`, ... (`first` >= 1: id 0
    /// is never a leg). One engine of `n` sharing a runtime takes `first` = its
    /// index + 1 and `step` = `n`.
    pub fn with_leg_ids(seed: u64, first: u64, step: u64) -> Self {
        Self {
            legs: FxHashMap::default(),
            routes: FxHashMap::default(),
            controls: FxHashMap::default(),
            hold_sources: FxHashMap::default(),
            detectors: FxHashMap::default(),
            streams: FxHashMap::default(),
            webrtc_ufrags: HashMap::new(),
            webrtc_peers: HashMap::new(),
            scratch: AudioFrame::silent(SampleRate::Hz48000, 0),
            taps: FxHashMap::default(),
            tap_scratch: AudioFrame::silent(SampleRate::Hz48000, 0),
            bridge_mix: FxHashMap::default(),
            conferences: FxHashMap::default(),
            next_leg: first.max(1),
            leg_step: step.max(1),
            deadlines: BinaryHeap::new(),
            armed: FxHashMap::default(),
            outputs: VecDeque::new(),
            passed_through: 0,
            frames_dropped: 0,
            offloading: false,
            offloads: FxHashMap::default(),
            rng: SplitMix64::new(seed),
            opus: OpusConfig::default(),
            webrtc: WebRtcOptions::default(),
        }
    }

    /// How legs added from now on encode Opus (complexity, bitrate, FEC, DTX).
    pub fn set_opus_config(&mut self, opus: OpusConfig) {
        self.opus = opus;
    }

    /// How WebRTC legs added from now on choose their codec, and whether they may pass through.
    pub fn set_webrtc_options(&mut self, options: WebRtcOptions) {
        self.webrtc = options;
    }

    /// A leg configuration for `codec` with fresh seeded identifiers.
    pub fn leg_config(&mut self, codec: Codec) -> LegConfig {
        LegConfig { opus: self.opus, ..LegConfig::new(codec, self.rng.next_u64()) }
    }

    /// Add an RTP leg.
    pub fn add_leg(
        &mut self,
        now: Instant,
        config: LegConfig,
        source: MediaSource,
    ) -> Result<LegId, EngineError> {
        let id = self.next_id();
        let leg = Leg::new(id, config, source, now)?;
        self.insert(id, Member::Rtp(Box::new(leg)));
        Ok(id)
    }

    /// Add a local leg (a built-in party such as `loop:echo`) at `rate`.
    pub fn add_local_leg(&mut self, now: Instant, rate: SampleRate, source: MediaSource) -> LegId {
        let id = self.next_id();
        self.insert(id, Member::Local(Box::new(LocalLeg::new(id, rate, &source, now))));
        id
    }

    /// Apply a new offer/answer outcome to an RTP leg (see [`Leg::set_media`]).
    pub fn set_rtp_media(&mut self, now: Instant, leg: LegId, media: RtpMedia) -> Result<(), EngineError> {
        let result = match self.legs.get_mut(&leg) {
            Some(Member::Rtp(l)) => l.set_media(now, media),
            Some(_) => Err(EngineError::Config("not an RTP leg")),
            None => Err(EngineError::UnknownLeg(leg)),
        };
        self.after_leg_changed(leg);
        result
    }

    /// A digit the carrier signalled beside the audio (a stream's `dtmf` frame).
    pub fn handle_signalled_dtmf(&mut self, leg: LegId, digit: DtmfDigit) -> Result<(), EngineError> {
        self.leg_mut(leg)?;
        self.relay_dtmf(leg, digit, DtmfSource::Signal);
        let event = EngineEvent::DtmfReceived { leg, digit, source: DtmfSource::Signal };
        self.outputs.push_back(EngineOutput::Event(event));
        Ok(())
    }

    /// A datagram arrived for `leg`.
    pub fn handle_receive(&mut self, now: Instant, leg: LegId, datagram: &[u8]) -> Result<(), EngineError> {
        let result = match self.leg_mut(leg)? {
            Member::Rtp(l) if crate::rtp::rtcp::is_rtcp(datagram) => l.handle_rtcp(now, datagram),
            Member::Rtp(l) if l.is_passthrough() => {
                l.relay_rtp(now, datagram).map(|packet| self.forward_to_peer(now, leg, &packet))
            }
            Member::Rtp(l) => l.handle_rtp(now, datagram),
            Member::Local(_) => Err(EngineError::Config("a local leg has no network side")),
            Member::WebRtc(_) => Err(EngineError::Config("WebRTC datagrams go to handle_webrtc_datagram")),
        };
        self.after_leg_changed(leg);
        result
    }

    /// Audio for a leg's party (an external source, outside any bridge).
    pub fn push_frame(&mut self, leg: LegId, frame: &AudioFrame) -> Result<bool, EngineError> {
        let taken = self.leg_mut(leg)?.handle_frame(frame);
        self.frames_dropped += taken.dropped();
        Ok(taken != FrameTaken::No)
    }

    /// How many queued frames legs dropped to take newer ones since the last call.
    pub fn take_frames_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.frames_dropped)
    }

    /// Play DTMF digits to a leg's party.
    pub fn send_dtmf(
        &mut self,
        leg: LegId,
        digits: &[DtmfDigit],
        timing: DtmfTiming,
    ) -> Result<(), EngineError> {
        self.leg_mut(leg)?.send_dtmf(digits, timing);
        self.refresh_passthrough(leg);
        Ok(())
    }

    /// Play a clip (at the leg's rate) to a leg's party: queued on the main track,
    /// which replaces what the party would hear while it plays, or mixed on top as
    /// an `overlay`. [`EngineEvent::PlaybackStarted`] and `PlaybackEnded` follow.
    pub fn play(&mut self, leg: LegId, clip: Clip, overlay: bool) -> Result<(), EngineError> {
        let member = self.leg_mut(leg)?;
        if clip.rate != member.rate() {
            return Err(EngineError::ClipRate { leg, rate: member.rate() });
        }
        member.play(clip, overlay);
        self.refresh_passthrough(leg);
        Ok(())
    }

    /// Stop the clip playing on a leg's main or overlay track and, with `all`, the
    /// ones queued after it (each gets `PlaybackEnded` with `Stopped`).
    pub fn stop_playback(&mut self, leg: LegId, overlay: bool, all: bool) -> Result<(), EngineError> {
        self.leg_mut(leg)?.stop_playback(overlay, all);
        self.after_leg_changed(leg);
        Ok(())
    }

    /// Start or stop `Recorded` (and `RecordedPackets`) outputs for a leg (the
    /// runtime feeds recordings and forks from them). Packets a passthrough leg
    /// kept for the recording are output at once, ahead of whatever the runtime
    /// does next (a pause marker must not overtake them).
    pub fn set_recording(&mut self, leg: LegId, tap: RecordTap) -> Result<(), EngineError> {
        self.leg_mut(leg)?.set_recording(tap);
        self.after_leg_changed(leg);
        Ok(())
    }

    /// Run answering-machine detection on what `leg`'s party says, from the
    /// next tick on; its reports arrive as [`EngineEvent::MachineDetection`].
    /// Starting it again restarts it.
    pub fn start_amd(&mut self, leg: LegId, config: AmdConfig) -> Result<(), EngineError> {
        let member = self.leg_mut(leg)?;
        let rate = member.rate();
        member.set_emit_heard(true);
        self.detectors.insert(leg, AmdDetector::new(config, rate.hz()));
        self.refresh_passthrough(leg);
        Ok(())
    }

    /// What the callee's greeting said, as asked by
    /// [`EngineEvent::MachineDetectionWordsWanted`] (empty when it could not be
    /// transcribed); false if no detection is running on `leg`.
    pub fn amd_heard_words(&mut self, leg: LegId, text: &str) -> bool {
        let Some(detector) = self.detectors.get_mut(&leg) else { return false };
        detector.heard_words(text);
        self.report_amd(leg);
        true
    }

    /// Pass on what `leg`'s detector has to say (its reports, a greeting it
    /// wants transcribed), and stop it once it is done.
    fn report_amd(&mut self, leg: LegId) {
        let Some(detector) = self.detectors.get_mut(&leg) else { return };
        while let Some(event) = detector.poll_event() {
            self.outputs.push_back(EngineOutput::Event(EngineEvent::MachineDetection { leg, event }));
        }
        let rate = self.legs.get(&leg).map(Member::rate);
        if let (Some((greeting, language)), Some(rate)) = (detector.poll_words_wanted(), rate) {
            let greeting = greeting.into();
            let wanted = EngineEvent::MachineDetectionWordsWanted { leg, greeting, rate, language };
            self.outputs.push_back(EngineOutput::Event(wanted));
        }
        if detector.is_done() {
            self.stop_amd(leg);
        }
    }

    /// Stop answering-machine detection on `leg`; false if none was running.
    pub fn stop_amd(&mut self, leg: LegId) -> bool {
        let stopped = self.detectors.remove(&leg).is_some();
        if stopped && !self.routes.contains_key(&leg) {
            if let Some(member) = self.legs.get_mut(&leg) {
                member.set_emit_heard(false);
            }
        }
        self.refresh_passthrough(leg);
        stopped
    }

    /// End a leg; returns its final statistics (also carried by its `LegEnded` event).
    pub fn hangup(&mut self, leg: LegId, cause: HangupCause) -> Result<RtpStats, EngineError> {
        let member = self.leg_mut(leg)?;
        let stats = member.stats();
        member.hangup(cause);
        self.after_leg_changed(leg);
        Ok(stats)
    }

    /// End every leg (shutdown).
    pub fn hangup_all(&mut self, cause: HangupCause) {
        let ids: Vec<LegId> = self.legs.keys().copied().collect();
        for id in ids {
            let _ = self.hangup(id, cause);
        }
    }

    pub fn poll_output(&mut self) -> Option<EngineOutput> {
        self.outputs.pop_front()
    }

    /// The PCM rate of a leg.
    pub fn rate(&self, leg: LegId) -> Option<SampleRate> {
        self.legs.get(&leg).map(Member::rate)
    }

    /// The codec of an RTP leg (`None` for other legs).
    pub fn rtp_codec(&self, leg: LegId) -> Option<Codec> {
        self.legs.get(&leg).and_then(Member::rtp).map(|l| l.config().codec)
    }

    pub fn stats(&self, leg: LegId) -> Option<RtpStats> {
        self.legs.get(&leg).map(Member::stats)
    }

    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    fn next_id(&mut self) -> LegId {
        let id = LegId(self.next_leg);
        self.next_leg += self.leg_step;
        id
    }

    fn insert(&mut self, id: LegId, member: Member) {
        self.legs.insert(id, member);
        self.after_leg_changed(id);
    }

    fn leg_mut(&mut self, leg: LegId) -> Result<&mut Member, EngineError> {
        self.legs.get_mut(&leg).ok_or(EngineError::UnknownLeg(leg))
    }

    /// Move the leg's outputs out (bridged audio straight to the peer), switch
    /// its bridge into or out of passthrough as it now allows, re-arm its
    /// deadline, and drop it once ended.
    fn after_leg_changed(&mut self, id: LegId) {
        if self.drain_leg(id) {
            self.refresh_passthrough(id);
            self.arm(id);
        }
    }

    /// As [`after_leg_changed`](Self::after_leg_changed) for a leg that sent a
    /// packet its bridge peer passed through, which changes nothing passthrough
    /// depends on (the hot path: one refresh a packet, for the receiving leg).
    pub(super) fn after_forwarded(&mut self, id: LegId) {
        if self.drain_leg(id) {
            self.arm(id);
        }
    }

    /// Move the leg's outputs out; false once it ended (and is gone).
    fn drain_leg(&mut self, id: LegId) -> bool {
        // An RTP leg only outputs `Heard` when asked to; a local leg always does, and
        // outside a bridge nobody listens to it. A detector's leg outputs it for the detector.
        let keep_unbridged_audio =
            self.legs.get(&id).and_then(Member::rtp).is_some() && !self.detectors.contains_key(&id);
        while let Some(output) = self.legs.get_mut(&id).and_then(Member::poll_output) {
            match output {
                LegOutput::Transmit(data) if self.streams.contains_key(&id) => {
                    // What a SIP peer passed on may be out of order; a stream's pacer ordered it.
                    let reorder = self.is_passthrough(id) && !self.peer_is_stream(id);
                    if let Some(state) = self.streams.get_mut(&id) {
                        state.send(&data, reorder, |output| {
                            self.outputs.push_back(EngineOutput::Stream { leg: id, output })
                        });
                    }
                }
                LegOutput::Transmit(data) => self.outputs.push_back(EngineOutput::Transmit { leg: id, data }),
                LegOutput::TransmitRtcp(data) => {
                    self.outputs.push_back(EngineOutput::TransmitRtcp { leg: id, data })
                }
                LegOutput::Datagram { transport, from, to, data } => {
                    self.outputs.push_back(EngineOutput::Datagram { leg: id, transport, from, to, data })
                }
                LegOutput::Heard => {
                    let Some(member) = self.legs.get(&id) else { continue };
                    if let Some(detector) = self.detectors.get_mut(&id) {
                        detector.push(member.heard_frame(), Some(member.sent_frame()));
                        self.report_amd(id);
                    }
                    self.feed_taps(id);
                    let Some(member) = self.legs.get(&id) else { continue };
                    self.scratch.clone_from(member.heard_frame());
                    let digit_sounding = member.hears_dtmf();
                    match self.routes.get_mut(&id) {
                        Some(route) => {
                            let (peer, remote) = (route.peer, route.remote);
                            let control = |leg| self.controls.get(&leg).copied().unwrap_or_default();
                            // A remote peer's engine applies the peer's own controls.
                            let peer_hears = remote || control(peer).passes_outbound();
                            if !(control(id).passes_inbound() && peer_hears) {
                                self.scratch.fill_silence();
                            }
                            if let Some(barged) = self.bridge_mix.remove(&id) {
                                supervise::add_frame(&mut self.scratch, &barged);
                            }
                            let Some(frame) = route.forward(&self.scratch, digit_sounding) else { continue };
                            if remote {
                                let frame = frame.clone();
                                self.outputs.push_back(EngineOutput::Relay(Relay::Frame {
                                    from: id,
                                    to: peer,
                                    frame,
                                }));
                            } else if let Some(peer_leg) = self.legs.get_mut(&peer) {
                                self.frames_dropped += peer_leg.handle_frame(frame).dropped();
                            } else if let Some(conference) = self.conferences.get_mut(&peer) {
                                conference.hear(id, frame);
                            }
                        }
                        None if keep_unbridged_audio => self
                            .outputs
                            .push_back(EngineOutput::Heard { leg: id, frame: self.scratch.clone() }),
                        None => {}
                    }
                }
                LegOutput::Recorded { at, inbound, outbound } => {
                    self.outputs.push_back(EngineOutput::Recorded { leg: id, at, inbound, outbound });
                }
                LegOutput::RecordedPackets(batch) => {
                    self.outputs.push_back(EngineOutput::RecordedPackets { leg: id, batch });
                }
                LegOutput::Event(event) => {
                    if let EngineEvent::DtmfReceived {
                        digit,
                        source: source @ (DtmfSource::Rfc4733 | DtmfSource::Signal),
                        ..
                    } = &event
                    {
                        self.relay_dtmf(id, *digit, *source);
                    }
                    self.outputs.push_back(EngineOutput::Event(event));
                }
            }
        }
        let Some(leg) = self.legs.get(&id) else { return false };
        if leg.is_ended() {
            let removed = self.legs.remove(&id);
            self.controls.remove(&id);
            self.hold_sources.remove(&id);
            self.detectors.remove(&id);
            self.streams.remove(&id);
            self.armed.remove(&id);
            self.drop_taps_of(id);
            if let Some(Member::WebRtc(w)) = &removed {
                self.webrtc_ufrags.remove(w.ufrag());
                for peer in w.peers() {
                    self.webrtc_peers.remove(peer);
                }
            }
            if self.routes.contains_key(&id) {
                let _ = self.unbridge(id);
            }
            return false;
        }
        if let (Some(state), Member::Rtp(l)) = (self.streams.get_mut(&id), leg) {
            for name in state.due_marks(l.played_frames()) {
                self.outputs.push_back(EngineOutput::Stream { leg: id, output: StreamOutput::Mark(name) });
            }
        }
        true
    }
}
