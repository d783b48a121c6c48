//! The control plane's view of the runtime: commands in, events out.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::{Codec, SampleRate};
use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::amd::AmdConfig;
use crate::engine::{DtmfPassing, StreamOutput};
use crate::event::EngineEvent;
use crate::ids::LegId;
use crate::leg::{Clip, DtmfTiming, MediaSource, RtpMedia};
use crate::rtp::RtpStats;
use crate::runtime::fork::Fork;
use crate::runtime::recorder::{RecordingSpec, RecordingSummary};
use crate::webrtc::{IceCreds, WebRtcAnswer};

pub use super::metrics::{RuntimeMetrics, TIMER_LATENESS_BUCKETS_US};

/// What a carrier-stream leg receives from its carrier (parsed off the WebSocket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamInput {
    /// Chunk number `chunk`: 20 ms of codec payload.
    Media {
        chunk: u64,
        payload: Bytes,
    },
    Mark(String),
    Clear,
    Dtmf(DtmfDigit),
}

/// A created stream leg: its id, and what it sends its carrier (paced, 20 ms at a
/// time). The receiver ends when the leg does.
#[derive(Debug)]
pub struct StreamLeg {
    pub id: LegId,
    pub output: mpsc::Receiver<StreamOutput>,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct LegSpec {
    /// Codec, payload types and direction from the start (a SIP leg is created
    /// quiet, before its call is answered).
    pub media: RtpMedia,
    pub source: MediaSource,
    /// The peer's RTP address. Either way the leg latches onto the source of the
    /// first packet it accepts (symmetric RTP, for peers behind NAT).
    pub remote: Option<SocketAddr>,
    pub media_timeout: Option<Duration>,
}

/// A created leg and where it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegInfo {
    pub id: LegId,
    pub local_addr: SocketAddr,
}

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("the RTP port range is exhausted")]
    NoPorts,
    #[error("could not open an RTP socket: {0}")]
    Socket(String),
    #[error("engine: {0}")]
    Engine(String),
    #[error("the media engine has stopped")]
    Stopped,
    #[error("recording: {0}")]
    Recording(String),
    #[error("fork: {0}")]
    Fork(String),
    #[error("WebRTC is not configured (no shared WebRTC port)")]
    NoWebRtc,
    /// A clip was not at its leg's rate, which is this.
    #[error("a clip must be at its leg's rate, {} Hz", .0.hz())]
    ClipRate(SampleRate),
}

#[derive(Debug)]
pub(crate) enum Command {
    CreateLeg {
        spec: LegSpec,
        reply: oneshot::Sender<Result<LegInfo, RuntimeError>>,
    },
    CreateLocalLeg {
        rate: SampleRate,
        source: MediaSource,
        amd: Option<AmdConfig>,
        reply: oneshot::Sender<LegId>,
    },
    Hangup {
        leg: LegId,
        reply: oneshot::Sender<Result<RtpStats, RuntimeError>>,
    },
    Bridge {
        a: LegId,
        b: LegId,
        dtmf: DtmfPassing,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    /// One direction of a bridge whose peer is on another shard.
    BridgeRemote {
        leg: LegId,
        peer: LegId,
        peer_rate: SampleRate,
        carry_dtmf: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    Unbridge {
        leg: LegId,
        reply: oneshot::Sender<Result<LegId, RuntimeError>>,
    },
    Supervise {
        supervisor: LegId,
        call: LegId,
        role: Option<crate::SupervisorRole>,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    SendDtmf {
        leg: LegId,
        digits: Vec<DtmfDigit>,
        timing: DtmfTiming,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    StartRecording {
        leg: LegId,
        spec: RecordingSpec,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    PauseRecording {
        leg: LegId,
        paused: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    StopRecording {
        leg: LegId,
        reply: oneshot::Sender<Option<super::recorder::Finished>>,
    },
    StartFork {
        leg: LegId,
        name: &'static str,
        reply: oneshot::Sender<Result<Fork, RuntimeError>>,
    },
    StopFork {
        leg: LegId,
        name: &'static str,
        reply: oneshot::Sender<bool>,
    },
    SetMute {
        leg: LegId,
        inbound: Option<bool>,
        outbound: Option<bool>,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    Play {
        leg: LegId,
        clip: Clip,
        overlay: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    StopPlayback {
        leg: LegId,
        overlay: bool,
        all: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    Hold {
        leg: LegId,
        /// `None` takes the leg off hold.
        source: Option<MediaSource>,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    UpdateRtp {
        leg: LegId,
        media: RtpMedia,
        remote: Option<SocketAddr>,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    CreateWebRtcLeg {
        offer: String,
        credentials: IceCreds,
        reply: oneshot::Sender<Result<(LegId, WebRtcAnswer), RuntimeError>>,
    },
    AddIceCandidate {
        leg: LegId,
        candidate: String,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    CreateStreamLeg {
        codec: Codec,
        reply: oneshot::Sender<Result<StreamLeg, RuntimeError>>,
    },
    StartAmd {
        leg: LegId,
        config: AmdConfig,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    StopAmd {
        leg: LegId,
        reply: oneshot::Sender<bool>,
    },
    AmdHeardWords {
        leg: LegId,
        text: String,
        reply: oneshot::Sender<bool>,
    },
    LegRate {
        leg: LegId,
        reply: oneshot::Sender<Option<SampleRate>>,
    },
    /// An Opus leg about to join a bridge across shards codes at its peer's rate where it may.
    FitRate {
        leg: LegId,
        rate: SampleRate,
        reply: oneshot::Sender<Result<SampleRate, RuntimeError>>,
    },
    LegCodec {
        leg: LegId,
        reply: oneshot::Sender<Option<Codec>>,
    },
    Stats {
        leg: LegId,
        reply: oneshot::Sender<Option<RtpStats>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    Conference(super::conference::ConferenceCommand),
}

/// One shard's queues.
#[derive(Debug)]
pub(crate) struct ShardHandle {
    pub commands: mpsc::Sender<Command>,
    pub streams: mpsc::Sender<(LegId, StreamInput)>,
    /// Legs its engine holds now (its driver counts them), for placing new legs.
    pub legs: Arc<AtomicU64>,
    /// The runtime of its driver's own thread, when it has one.
    pub runtime: Option<tokio::runtime::Handle>,
}

/// Cloneable handle to the running engine: one or more shards, each an engine
/// on its own task. A leg's commands go to the shard its id names; a new leg
/// goes to the shard holding the fewest, or to the shard this handle was
/// settled on ([`near`](Self::near), [`settled`](Self::settled)).
#[derive(Debug, Clone)]
pub struct EngineHandle {
    shards: Arc<[ShardHandle]>,
    events: broadcast::Sender<EngineEvent>,
    metrics: Arc<RuntimeMetrics>,
    home: Option<usize>,
    /// Turns for shards holding equally few legs.
    turn: Arc<AtomicUsize>,
}

impl EngineHandle {
    pub(crate) fn new(
        shards: Vec<ShardHandle>,
        events: broadcast::Sender<EngineEvent>,
        metrics: Arc<RuntimeMetrics>,
    ) -> Self {
        Self { shards: shards.into(), events, metrics, home: None, turn: Arc::default() }
    }

    /// A handle that creates legs on the shard of `leg` (one it will be bridged
    /// with), so their bridge needs no relay between shards.
    pub fn near(&self, leg: LegId) -> Self {
        Self { home: Some(self.shard_index(leg)), ..self.clone() }
    }

    /// A handle that creates legs on the shard holding the fewest now, and
    /// whose [`spawn_home`](Self::spawn_home) runs tasks beside them: a carrier
    /// stream's socket is served on its leg's thread from its first frame,
    /// before the leg exists.
    pub fn settled(&self) -> Self {
        Self { home: Some(self.fewest()), ..self.clone() }
    }

    /// How many engines share the work.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    pub async fn create_leg(&self, spec: LegSpec) -> Result<LegInfo, RuntimeError> {
        self.create(|reply| Command::CreateLeg { spec, reply }).await?
    }

    /// Apply a new offer/answer to an RTP leg: codec (same rate), payload types,
    /// direction and, when given, a new peer address (latched again from its first packet).
    pub async fn update_rtp(
        &self,
        leg: LegId,
        media: RtpMedia,
        remote: Option<SocketAddr>,
    ) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::UpdateRtp { leg, media, remote, reply }).await?
    }

    /// A leg whose party is built in (the `loop:` legs): no socket, audio at `rate`.
    pub async fn create_local_leg(
        &self,
        rate: SampleRate,
        source: MediaSource,
    ) -> Result<LegId, RuntimeError> {
        self.create(|reply| Command::CreateLocalLeg { rate, source, amd: None, reply }).await
    }

    /// A local leg with answering-machine detection from its first frame (its answer).
    pub async fn create_local_leg_with_amd(
        &self,
        rate: SampleRate,
        source: MediaSource,
        amd: AmdConfig,
    ) -> Result<LegId, RuntimeError> {
        self.create(|reply| Command::CreateLocalLeg { rate, source, amd: Some(amd), reply }).await
    }

    /// Let `supervisor` supervise `call` and its bridge in `role` (`None` ends it);
    /// both legs must be in one engine (dial the supervisor near the call).
    pub async fn supervise(
        &self,
        supervisor: LegId,
        call: LegId,
        role: Option<crate::SupervisorRole>,
    ) -> Result<(), RuntimeError> {
        self.request(call, |reply| Command::Supervise { supervisor, call, role, reply }).await?
    }

    /// Play DTMF digits to a leg's party.
    pub async fn send_dtmf(
        &self,
        leg: LegId,
        digits: Vec<DtmfDigit>,
        timing: DtmfTiming,
    ) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::SendDtmf { leg, digits, timing, reply }).await?
    }

    /// End a leg; returns its final statistics.
    pub async fn hangup(&self, leg: LegId) -> Result<RtpStats, RuntimeError> {
        self.request(leg, |reply| Command::Hangup { leg, reply }).await?
    }

    /// Record a leg (both directions) into a WAV file written off the media path.
    pub async fn start_recording(&self, leg: LegId, spec: RecordingSpec) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::StartRecording { leg, spec, reply }).await?
    }

    /// Pause (`true`) or resume a recording; paused time is not in the file.
    pub async fn pause_recording(&self, leg: LegId, paused: bool) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::PauseRecording { leg, paused, reply }).await?
    }

    /// Stop a leg's recording and wait for its file to be final. `None` if it had none.
    pub async fn stop_recording(&self, leg: LegId) -> Result<Option<RecordingSummary>, RuntimeError> {
        let Some(finished) = self.request(leg, |reply| Command::StopRecording { leg, reply }).await? else {
            return Ok(None);
        };
        match finished.await {
            Ok(Ok(summary)) => Ok(Some(summary)),
            Ok(Err(e)) => Err(RuntimeError::Recording(e)),
            Err(_) => Err(RuntimeError::Recording("the recording's writer stopped".into())),
        }
    }

    /// Fork a leg's audio (both directions, each tick) to a consumer off the
    /// media path. `name` says whose fork it is (`"stream"`, `"transcription"`):
    /// a leg has one fork per name, each with its own queue.
    pub async fn start_fork(&self, leg: LegId, name: &'static str) -> Result<Fork, RuntimeError> {
        self.request(leg, |reply| Command::StartFork { leg, name, reply }).await?
    }

    /// Stop a leg's fork of that name; its consumer's stream ends. False if it had none.
    pub async fn stop_fork(&self, leg: LegId, name: &'static str) -> Result<bool, RuntimeError> {
        self.request(leg, |reply| Command::StopFork { leg, name, reply }).await
    }

    /// Mute (`Some(true)`) or unmute each direction of a leg; `None` leaves it as it is.
    pub async fn set_mute(
        &self,
        leg: LegId,
        inbound: Option<bool>,
        outbound: Option<bool>,
    ) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::SetMute { leg, inbound, outbound, reply }).await?
    }

    /// Stop a leg's current clip on one track and, with `all`, its queue.
    pub async fn stop_playback(&self, leg: LegId, overlay: bool, all: bool) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::StopPlayback { leg, overlay, all, reply }).await?
    }

    /// A WebRTC leg answering a browser's SDP offer on the shared WebRTC port.
    /// `credentials` are Bond's ICE ufrag/password for it: random, unique per leg.
    pub async fn create_webrtc_leg(
        &self,
        offer: String,
        credentials: IceCreds,
    ) -> Result<(LegId, WebRtcAnswer), RuntimeError> {
        self.create(|reply| Command::CreateWebRtcLeg { offer, credentials, reply }).await?
    }

    /// A candidate the browser trickled after its offer to WebRTC leg `leg`
    /// (see [`Engine::add_ice_candidate`](crate::Engine::add_ice_candidate)).
    pub async fn add_ice_candidate(&self, leg: LegId, candidate: String) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::AddIceCandidate { leg, candidate, reply }).await?
    }

    /// A carrier media-stream leg for `codec`.
    pub async fn create_stream_leg(&self, codec: Codec) -> Result<StreamLeg, RuntimeError> {
        self.create(|reply| Command::CreateStreamLeg { codec, reply }).await?
    }

    /// Run `task` where the legs this handle creates run ([`settled`](Self::settled),
    /// [`near`](Self::near)): on their driver's own thread when it has one, so
    /// what the task hands a leg, and the leg hands it, never crosses threads
    /// (a carrier stream's socket task); else on the caller's runtime.
    pub fn spawn_home<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shard = self.home.unwrap_or_else(|| self.fewest());
        match &self.shards[shard].runtime {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        }
    }

    /// Hand what a carrier sent to its stream leg, without waiting; false (and
    /// counted) when the engine's queue is full.
    pub fn stream_input(&self, leg: LegId, input: StreamInput) -> bool {
        let sent = self.shard(leg).streams.try_send((leg, input)).is_ok();
        if !sent {
            RuntimeMetrics::add(&self.metrics.stream_frames_dropped, 1);
        }
        sent
    }

    /// Start answering-machine detection on a leg (restarting it if running).
    pub async fn start_amd(&self, leg: LegId, config: AmdConfig) -> Result<(), RuntimeError> {
        self.request(leg, |reply| Command::StartAmd { leg, config, reply }).await?
    }

    /// What the greeting of a `MachineDetectionWordsWanted` said; false if
    /// detection is no longer running.
    pub async fn amd_heard_words(&self, leg: LegId, text: String) -> Result<bool, RuntimeError> {
        self.request(leg, |reply| Command::AmdHeardWords { leg, text, reply }).await
    }

    /// Stop answering-machine detection; false if none was running.
    pub async fn stop_amd(&self, leg: LegId) -> Result<bool, RuntimeError> {
        self.request(leg, |reply| Command::StopAmd { leg, reply }).await
    }

    /// The PCM rate of a live leg.
    pub async fn leg_rate(&self, leg: LegId) -> Result<Option<SampleRate>, RuntimeError> {
        self.request(leg, |reply| Command::LegRate { leg, reply }).await
    }

    /// The codec an RTP leg sends and receives (`None`: not an RTP leg, or gone).
    pub async fn leg_codec(&self, leg: LegId) -> Result<Option<Codec>, RuntimeError> {
        self.request(leg, |reply| Command::LegCodec { leg, reply }).await
    }

    /// Current statistics of a live leg.
    pub async fn stats(&self, leg: LegId) -> Result<Option<RtpStats>, RuntimeError> {
        self.request(leg, |reply| Command::Stats { leg, reply }).await
    }

    /// Hang up every leg and stop the drivers.
    pub async fn shutdown(&self) -> Result<(), RuntimeError> {
        for shard in self.shards.iter() {
            Self::send(shard, |reply| Command::Shutdown { reply }).await?;
        }
        Ok(())
    }

    /// Every event from now on. A receiver that falls behind loses the oldest (and is told).
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// A command about `leg`, to its shard.
    pub(super) async fn request<T>(
        &self,
        leg: LegId,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RuntimeError> {
        Self::send(self.shard(leg), make).await
    }

    /// A command creating a leg, to the shard the leg belongs on.
    pub(super) async fn create<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RuntimeError> {
        let index = self.home.unwrap_or_else(|| self.fewest());
        Self::send(&self.shards[index], make).await
    }

    /// The shard holding the fewest legs now; shards holding equally few take
    /// turns (sockets settled in a burst, before their legs exist, are spread).
    fn fewest(&self) -> usize {
        let shards = self.shards.len();
        let first = self.turn.fetch_add(1, Ordering::Relaxed);
        (0..shards)
            .map(|k| first.wrapping_add(k) % shards)
            .min_by_key(|&i| RuntimeMetrics::get(&self.shards[i].legs))
            .unwrap_or(0)
    }

    async fn send<T>(
        shard: &ShardHandle,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RuntimeError> {
        let (reply, response) = oneshot::channel();
        shard.commands.send(make(reply)).await.map_err(|_| RuntimeError::Stopped)?;
        response.await.map_err(|_| RuntimeError::Stopped)
    }

    pub(super) fn shard_index(&self, leg: LegId) -> usize {
        super::shard_of(leg, self.shards.len())
    }

    fn shard(&self, leg: LegId) -> &ShardHandle {
        &self.shards[self.shard_index(leg)]
    }
}
