//! Call control: bridge, hang up, hold, mute, send DTMF, and end calls
//! (dialing is `dial.rs`).
//! Every state change and the event reporting it are written in one
//! transaction (`events.rs` follows the engine and queues the webhooks).

use bond_store::CallId;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bond_call_core::CallBook;
use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::SampleRate;
use bond_media_engine::leg::{DtmfTiming, MediaSource};
use bond_media_engine::runtime::EngineHandle;
use bond_media_engine::{DtmfPassing, LegId};
use dashmap::DashMap;
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::amd::AmdRequest;
use super::error::CallError;
use super::live::LiveCalls;
use super::payload;
use super::recording_links::RecordingLinks;
use super::registry::{CallRegistry, Ending};
use super::telnyx::{self, TelnyxCalls};
use super::trunk::{Peers, Trunk};
use crate::queue::LeftBecause;
use bond_agents::Agents;
use bond_sip::{IncomingRefused, SipCalls};
use bond_speech::audio::wav;
use bond_speech::SpeechEngines;
use bond_store::clock::rfc3339_now;
use bond_store::db::DbError;
use bond_store::webhooks::WebhookNotifier;
use bond_store::{CallRecord, NewCall, NewSegment, Segment, Store};

/// Segments a slow supervisor stream may fall behind by before it skips ahead.
const SEGMENT_BACKLOG: usize = 256;

/// What a held call's party hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold<'a> {
    Off,
    Silence,
    /// A WAV file from the data directory, at the call's rate, played in a loop.
    Music(&'a str),
}

/// Options of the `bridge` action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BridgeOptions {
    pub prevent_double_bridge: bool,
    /// Keep this call (parked) when the other one hangs up.
    pub park_after_unbridge: bool,
    /// Telnyx `mute_dtmf`, as which way digits pass from (this call, the other).
    pub dtmf: DtmfPassing,
}

impl BridgeOptions {
    /// A call and the party it was transferred to (a dial's `bridge_on_answer`,
    /// a screened transfer): each ends with the other, digits pass both ways.
    pub const TRANSFERRED: Self =
        Self { prevent_double_bridge: false, park_after_unbridge: false, dtmf: DtmfPassing::Both };
}

/// Where call-related files live and how recordings are linked.
#[derive(Debug, Clone)]
pub struct CallFiles {
    /// `loop:play` looks for its WAV files here.
    pub data_dir: PathBuf,
    pub recordings_dir: PathBuf,
    pub links: RecordingLinks,
    /// Where carriers reach Bond (`http.public_url`): media streams and webhooks.
    pub public_url: String,
    /// Object storage finished recordings are copied to (`storage.s3_*`).
    pub storage: Option<super::recording_storage::RecordingStorage>,
}

#[derive(Debug, Clone)]
pub struct CallService {
    pub(super) store: Store,
    pub(super) engine: EngineHandle,
    pub(super) registry: CallRegistry,
    pub(super) notifier: WebhookNotifier,
    pub(super) files: CallFiles,
    /// What is kept in memory for each live call (`live.rs`).
    pub(super) live: LiveCalls,
    pub(super) telnyx: TelnyxCalls,
    pub(super) sip: SipCalls,
    pub(super) agents: Agents,
    pub(super) queues: crate::queue::QueueBook,
    pub(super) conferences: crate::conference::ConferenceBook,
    /// The live calls' lifecycle (`lifecycle.rs`): answered, bridged, linked,
    /// supervising, time-limited. Never held across an await.
    pub(super) book: Arc<Mutex<CallBook>>,
    /// Woken when a time limit is set, so the time-limit task sleeps to the earliest.
    pub(super) book_woken: Arc<Notify>,
    /// Clips handed to the engine and not ended yet, by clip id.
    pub(super) playbacks: Arc<DashMap<u64, super::playback::Playing>>,
    /// Ids handed out for clips, forks and gathers, unique in the process.
    ids: Arc<std::sync::atomic::AtomicU64>,
    /// REFERs in flight, by the call they concern (`refer.rs`).
    pub(super) referrals: Arc<DashMap<CallId, super::refer::Referral>>,
    /// Speech-to-text and translation engines, or why there are none.
    pub(super) speech: Result<SpeechEngines, String>,
    /// Every translated segment as it is stored, here or on another node, for
    /// the supervisor streams.
    pub(super) segments: tokio::sync::broadcast::Sender<Segment>,
    /// The segments stored by this node, for the other nodes' supervisor streams.
    pub(super) local_segments: tokio::sync::broadcast::Sender<Segment>,
    /// What voice agents' usage costs (`assistant/`).
    pub(super) assistant_prices: Arc<crate::assistant::Prices>,
    /// Transcribe every transcribed side early, this many 20 ms frames into a
    /// pause (`speech/early.rs`); `None`: not early.
    pub(super) early_look: Option<u32>,
    /// Ask the model ahead when an early transcript reads finished (`assistant/conversation.rs`).
    pub(super) assistant_early_answers: bool,
    /// The other nodes of a cluster, for bridges across nodes (`trunk.rs`).
    pub(super) peers: Option<Arc<dyn Peers>>,
    /// The address other nodes send this node's trunk legs RTP to.
    pub(super) trunk_ip: IpAddr,
    /// Calls bridged with a call of another node, by this node's call.
    pub(super) trunks: Arc<DashMap<CallId, Trunk>>,
    /// Call ends waiting for the database (`unrecorded.rs`).
    pub(super) unrecorded_ends: Arc<Mutex<Vec<super::unrecorded::UnrecordedEnd>>>,
    /// A greeting is being transcribed for machine detection (`amd_words.rs`).
    pub(super) amd_words_busy: Arc<std::sync::atomic::AtomicBool>,
}

impl CallService {
    pub fn new(store: Store, engine: EngineHandle, notifier: WebhookNotifier, files: CallFiles) -> Self {
        Self {
            store,
            engine,
            registry: CallRegistry::default(),
            notifier,
            files,
            live: LiveCalls::default(),
            telnyx: TelnyxCalls::default(),
            sip: SipCalls::default(),
            agents: Agents::default(),
            queues: Default::default(),
            conferences: Default::default(),
            book: Arc::default(),
            book_woken: Arc::default(),
            playbacks: Arc::default(),
            referrals: Arc::default(),
            ids: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            speech: Err("no speech engines are configured".into()),
            segments: tokio::sync::broadcast::channel(SEGMENT_BACKLOG).0,
            local_segments: tokio::sync::broadcast::channel(SEGMENT_BACKLOG).0,
            assistant_prices: Arc::default(),
            early_look: Some(look_frames(crate::speech::DEFAULT_EARLY_LOOK)),
            assistant_early_answers: false,
            peers: None,
            trunk_ip: IpAddr::from([127, 0, 0, 1]),
            trunks: Arc::default(),
            unrecorded_ends: Arc::default(),
            amd_words_busy: Arc::default(),
        }
    }

    /// Bridge calls with calls of other nodes, reached through `peers`, which
    /// send this node's trunk legs RTP at `trunk_ip`.
    pub fn with_peers(mut self, peers: Arc<dyn Peers>, trunk_ip: IpAddr) -> Self {
        self.peers = Some(peers);
        self.trunk_ip = trunk_ip;
        self
    }

    /// Run with these speech engines (transcription and translation), or say why there are none.
    pub fn with_speech(mut self, engines: Result<SpeechEngines, String>) -> Self {
        self.speech = engines;
        self
    }

    /// Price voice agents' usage in `call.conversation.ended` (`bond_cost`).
    pub fn with_assistant_prices(mut self, prices: crate::assistant::Prices) -> Self {
        self.assistant_prices = Arc::new(prices);
        self
    }

    /// Transcribe every call early (named for the voice agents, which had it
    /// first), `pause` into a pause (rounded down to 20 ms frames; on by
    /// default, `speech::DEFAULT_EARLY_LOOK`); `None`: not early.
    pub fn with_assistant_early_transcripts(mut self, pause: Option<std::time::Duration>) -> Self {
        self.early_look = pause.map(look_frames);
        self
    }

    /// Ask voice agents' models ahead of the turn's end when an early
    /// transcript reads finished (off by default; needs early transcripts).
    pub fn with_assistant_early_answers(mut self, early: bool) -> Self {
        self.assistant_early_answers = early;
        self
    }

    /// A fresh id for a clip, a fork or a gather.
    pub(super) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Translated segments as they are stored, by any node, from now on.
    pub fn subscribe_segments(&self) -> tokio::sync::broadcast::Receiver<Segment> {
        self.segments.subscribe()
    }

    /// Translated segments as this node stores them, from now on: what it
    /// tells the other nodes of a cluster.
    pub fn subscribe_local_segments(&self) -> tokio::sync::broadcast::Receiver<Segment> {
        self.local_segments.subscribe()
    }

    /// A segment another node stored: to this node's supervisor streams.
    pub fn relay_segment(&self, segment: Segment) {
        // No supervisor listening is not an error.
        drop(self.segments.send(segment));
    }

    /// Store a translated segment and hand it to the supervisor streams.
    pub(super) async fn publish_segment(&self, segment: NewSegment) {
        match self.store.insert_segment(segment).await {
            // No supervisor (or other node) listening is not an error.
            Ok(stored) => {
                drop(self.local_segments.send(stored.clone()));
                drop(self.segments.send(stored));
            }
            Err(e) => tracing::error!(error = %e, "could not store a translated segment"),
        }
    }

    pub fn links(&self) -> &RecordingLinks {
        &self.files.links
    }

    pub fn recordings_dir(&self) -> &std::path::Path {
        &self.files.recordings_dir
    }

    pub fn recording_storage(&self) -> Option<&super::recording_storage::RecordingStorage> {
        self.files.storage.as_ref()
    }

    /// Copy finished recordings to object storage from now on (when configured),
    /// waiting `retry` and more after a failure.
    pub fn with_recording_storage(
        mut self,
        storage: Option<super::recording_storage::RecordingStorage>,
        retry: std::time::Duration,
    ) -> Self {
        if let Some(storage) = &storage {
            let dir = self.files.recordings_dir.clone();
            tokio::spawn(storage.clone().run(self.store.clone(), dir, retry));
        }
        self.files.storage = storage;
        self
    }

    pub fn live_calls(&self) -> usize {
        self.registry.len()
    }

    /// Telnyx says its call was answered.
    pub async fn carrier_answered(&self, call_control_id: &CallId) -> Result<(), DbError> {
        let (codec, rate) = self.telnyx.codec(call_control_id);
        self.mark_call_answered(call_control_id, &codec, rate).await.map(|_| ())
    }

    /// A call placed earlier was answered: `call.answered` once, unless it ended
    /// first. Returns the answered call (`None` when there was nothing to do).
    pub(super) async fn mark_call_answered(
        &self,
        call_control_id: &CallId,
        codec: &str,
        sampling_rate: u32,
    ) -> Result<Option<CallRecord>, DbError> {
        let mut tx = self.store.begin().await?;
        let call = self.call_in(&mut tx, call_control_id).await?;
        if call.answered_at.is_some() || !call.is_alive() {
            return Ok(None);
        }
        let call = self.answered_in(&mut tx, call_control_id, &rfc3339_now()).await?;
        self.enqueue(&mut tx, &call, "call.answered", payload::answered(&call, codec, sampling_rate)).await?;
        self.store.commit(tx).await?;
        self.notifier.notify();
        self.in_book(|book| book.answered(call_control_id)).await;
        self.start_pending_stream(&call).await;
        self.start_pending_supervision(&call).await;
        self.start_pending_join(&call).await;
        Ok(Some(call))
    }

    /// Detection asked for on a dial answered later (through Telnyx or SIP): it
    /// starts when the answer comes.
    pub(super) fn defer_amd(&self, call_control_id: &CallId, amd: Option<AmdRequest>) {
        if let Some(amd) = amd {
            self.live.update(call_control_id, |c| {
                c.amd_mode = Some(amd.mode);
                c.pending_amd = Some(amd.config);
            });
        }
    }

    /// Telnyx says its call ended: end Bond's with the same cause.
    pub async fn carrier_hangup(&self, call_control_id: &CallId, cause: &str, source: &str) {
        self.telnyx.release(call_control_id, false);
        let source = match source {
            "caller" => "caller",
            "callee" => "callee",
            _ => "unknown",
        };
        self.end(call_control_id, Ending { cause: telnyx::hangup_cause(cause), source }).await;
    }

    /// The Bond call a Telnyx call_control_id or client_state belongs to.
    pub fn telnyx_call(&self, telnyx_call: &str, client_state: Option<&str>) -> Option<CallId> {
        self.telnyx.bond_call(telnyx_call).or_else(|| client_state.and_then(telnyx::bond_call_of))
    }

    /// Store a new call and its `call.initiated` (with `extra` fields), in a
    /// transaction of its own.
    pub(super) async fn record_initiated(
        &self,
        new: &NewCall,
        extra: Map<String, Value>,
    ) -> Result<CallRecord, DbError> {
        self.booked(new, async {
            let mut tx = self.store.begin().await?;
            let call = self.insert_initiated(&mut tx, new, extra).await?;
            self.store.commit(tx).await?;
            Ok(call)
        })
        .await
    }

    /// [`record_initiated`](Self::record_initiated) a SIP call, which takes
    /// one of its connection's SIP slots in the same transaction: refused when
    /// `limit` are taken already, counted over every node (`sip_slots.rs`).
    pub(super) async fn record_sip_initiated(
        &self,
        new: &NewCall,
        extra: Map<String, Value>,
        limit: Option<usize>,
    ) -> Result<CallRecord, IncomingRefused> {
        self.booked(new, async {
            let mut tx = self.store.begin().await?;
            let id = &new.call_control_id;
            if !self.store.take_sip_slot(&mut tx, &new.connection_id, id, limit).await? {
                return Err(IncomingRefused::AtCapacity);
            }
            let call = self.insert_initiated(&mut tx, new, extra).await?;
            self.store.commit(tx).await?;
            Ok(call)
        })
        .await
    }

    /// `new` is in the book while `recording` writes it, and forgotten again if that fails.
    async fn booked<E>(
        &self,
        new: &NewCall,
        recording: impl std::future::Future<Output = Result<CallRecord, E>>,
    ) -> Result<CallRecord, E> {
        self.enter_book(&new.call_control_id, false);
        let result = recording.await;
        match &result {
            Ok(_) => self.notifier.notify(),
            Err(_) => self.book().forget(&new.call_control_id),
        }
        result
    }

    async fn insert_initiated(
        &self,
        tx: &mut bond_store::Tx,
        new: &NewCall,
        extra: Map<String, Value>,
    ) -> Result<CallRecord, DbError> {
        let call = self.store.insert_call(tx, new).await?;
        let mut initiated = payload::initiated(&call);
        if let Value::Object(fields) = &mut initiated {
            fields.extend(extra);
        }
        self.enqueue(tx, &call, "call.initiated", initiated).await?;
        Ok(call)
    }

    /// Store a call whose leg is already up: `call.initiated` (with `extra` fields)
    /// and `call.answered`, in one transaction. The leg is the call's before the
    /// store, so no early engine event is lost; if the store fails, it is hung up.
    pub(super) async fn record_answered(
        &self,
        new: &NewCall,
        leg: LegId,
        codec: &str,
        rate: SampleRate,
        extra: serde_json::Map<String, Value>,
    ) -> Result<CallRecord, DbError> {
        self.registry.insert(&new.call_control_id, leg);
        self.enter_book(&new.call_control_id, true);
        match self.insert_answered(new, codec, rate, extra).await {
            Ok(call) => {
                self.notifier.notify();
                Ok(call)
            }
            Err(e) => {
                self.book().forget(&new.call_control_id);
                self.registry.remove(leg);
                let _ = self.engine.hangup(leg).await;
                Err(e)
            }
        }
    }

    async fn insert_answered(
        &self,
        new: &NewCall,
        codec: &str,
        rate: SampleRate,
        extra: serde_json::Map<String, Value>,
    ) -> Result<CallRecord, DbError> {
        let mut tx = self.store.begin().await?;
        let call = self.insert_initiated(&mut tx, new, extra).await?;
        let call = self.answered_in(&mut tx, &call.call_control_id, &rfc3339_now()).await?;
        self.enqueue(&mut tx, &call, "call.answered", payload::answered(&call, codec, rate.hz())).await?;
        self.store.commit(tx).await?;
        Ok(call)
    }

    /// Join two live calls.
    pub async fn bridge(
        &self,
        a: &CallRecord,
        b: &CallRecord,
        options: BridgeOptions,
    ) -> Result<(), CallError> {
        let (a_id, b_id) = (&a.call_control_id, &b.call_control_id);
        if b.node_id.as_deref().is_some_and(|node| node != self.store.node_id()) && a_id != b_id {
            return self.bridge_across(a, b, options).await;
        }
        let unbridge = self.book().plan_bridge(a_id, b_id, options.prevent_double_bridge)?;
        if let Some(call) = [a_id, b_id].into_iter().find(|c| self.conferences().of_call(c).is_some()) {
            let detail = format!("Call {call} is in a conference: it must leave it first.");
            return Err(CallError::invalid("90034", detail, "/call_control_id"));
        }
        let leg_a = self.live_leg(a)?;
        let leg_b = self.live_leg(b)?;
        for call in [a_id, b_id] {
            // An application picking a queued caller for an agent: it leaves its queue.
            self.left_queue(call, LeftBecause::Bridged).await?;
        }
        for call in &unbridge {
            self.unbridge(call).await?;
        }
        for call in [a_id, b_id] {
            self.stop_ringback(call).await;
            self.end_early_media(call).await;
        }
        self.engine.bridge(leg_a, leg_b, options.dtmf).await?;
        self.book().bridged(a_id, b_id, options.park_after_unbridge);
        let result: Result<(), DbError> = async {
            let mut tx = self.store.begin().await?;
            // A call that ended meanwhile gets no `call.bridged`: its hangup is on its way.
            for (call, with) in [(a_id, b_id), (b_id, a_id)] {
                if let Some(fresh) = self.store.set_bridged(&mut tx, call, Some(with)).await? {
                    self.enqueue(&mut tx, &fresh, "call.bridged", payload::bridged(&fresh)).await?;
                }
            }
            self.store.commit(tx).await?;
            Ok(())
        }
        .await;
        result?;
        self.notifier.notify();
        self.speech_on_bridge(a, b).await;
        Ok(())
    }

    /// Take `call` out of its bridge, leaving both calls up.
    pub(super) async fn unbridge(&self, call: &CallId) -> Result<(), CallError> {
        let Some(partner) = self.book().unbridged(call) else { return Ok(()) };
        if let Some(leg) = self.registry.leg(call) {
            let _ = self.engine.unbridge(leg).await;
        }
        self.drop_trunk(call, false).await;
        let result: Result<(), DbError> = async {
            let mut tx = self.store.begin().await?;
            self.store.set_bridged(&mut tx, call, None).await?;
            self.store.set_bridged(&mut tx, &partner, None).await?;
            self.store.commit(tx).await?;
            Ok(())
        }
        .await;
        result.map_err(CallError::from)
    }

    /// End a call at the application's request.
    pub async fn hangup(&self, call: &CallRecord) -> Result<(), CallError> {
        // A call dialed through Telnyx, or ringing an agent, has no leg until it is answered.
        let id = &call.call_control_id;
        if !(call.is_alive() && (self.telnyx.is_telnyx(id) || self.agents.is_ringing(id))) {
            self.live_leg(call)?;
        }
        self.end(&call.call_control_id, Ending::HUNG_UP).await;
        Ok(())
    }

    /// Mute or unmute what the call's party says (`inbound`) and hears (`outbound`).
    pub async fn set_mute(
        &self,
        call: &CallRecord,
        inbound: Option<bool>,
        outbound: Option<bool>,
    ) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        self.engine.set_mute(leg, inbound, outbound).await.map_err(CallError::from)
    }

    /// Put a call on hold, or take it off.
    pub async fn hold(&self, call: &CallRecord, hold: Hold<'_>) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        let source = match hold {
            Hold::Off => None,
            Hold::Silence => Some(MediaSource::Silence),
            Hold::Music(file) => {
                let (rate, samples) = wav::read_file(&self.files.data_dir.join(file))
                    .map_err(|e| CallError::invalid("10002", e, "/audio_file"))?;
                // At the file's rate: the engine's handle makes it again at the call's.
                Some(MediaSource::Play { samples: samples.into(), rate, repeat: true })
            }
        };
        self.engine.hold(leg, source).await.map_err(CallError::from)
    }

    pub async fn send_dtmf(
        &self,
        call: &CallRecord,
        digits: Vec<DtmfDigit>,
        timing: DtmfTiming,
    ) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        self.engine.send_dtmf(leg, digits, timing).await.map_err(CallError::from)
    }

    /// Whether `call` has been answered, read again from the store: something
    /// left pending for the answer just before this read would otherwise miss it.
    pub(super) async fn answered_already(&self, call: &CallRecord) -> Result<bool, CallError> {
        let now = self.store.get_call(&call.organization_id, &call.call_control_id).await;
        Ok(now?.is_some_and(|c| c.answered_at.is_some()))
    }

    /// The call's leg, if it is alive and answered: what `doing` (a gather, a
    /// transfer) needs; else 422 90015.
    pub(super) async fn answered_leg(&self, call: &CallRecord, doing: &str) -> Result<LegId, CallError> {
        let leg = self.live_leg(call)?;
        if !self.answered_already(call).await? {
            let detail = format!("Only an answered call can take {doing}; answer it first.");
            return Err(CallError::invalid("90015", detail, "/call_control_id"));
        }
        Ok(leg)
    }

    pub(super) fn live_leg(&self, call: &CallRecord) -> Result<LegId, CallError> {
        match self.registry.leg(&call.call_control_id) {
            Some(leg) if call.is_alive() => Ok(leg),
            _ => Err(CallError::Ended),
        }
    }
}

/// A pause as the 20 ms frames of quiet the speech fork counts.
fn look_frames(pause: std::time::Duration) -> u32 {
    u32::try_from(pause.as_millis() / u128::from(bond_codecs::FRAME_MS)).unwrap_or(u32::MAX)
}
