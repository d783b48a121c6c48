//! Call control: bridge, hang up, hold, mute, send DTMF, and end calls
//! (dialing is `dial.rs`).
//! Every state change and the event reporting it are written in one
//! transaction (`events.rs` follows the engine and queues the webhooks).

use bond_store::CallId;
use std::path::PathBuf;
use std::sync::Arc;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::SampleRate;
use bond_media_engine::leg::{DtmfTiming, MediaSource};
use bond_media_engine::rtp::RtpStats;
use bond_media_engine::runtime::EngineHandle;
use bond_media_engine::{DtmfPassing, LegId};
use dashmap::DashMap;
use serde_json::{Map, Value};

use super::amd::AmdRequest;
use super::error::CallError;
use super::linked::PendingBridges;
use super::live::LiveCalls;
use super::payload;
use super::recording_links::RecordingLinks;
use super::registry::{CallRegistry, Ending};
use super::telnyx::{self, TelnyxCalls};
use crate::queue::LeftBecause;
use bond_agents::Agents;
use bond_sip::SipCalls;
use bond_speech::audio::wav;
use bond_speech::SpeechEngines;
use bond_store::clock::{monotonic, rfc3339_now};
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
    pub(super) pending_bridges: PendingBridges,
    /// Clips handed to the engine and not ended yet, by clip id.
    pub(super) playbacks: Arc<DashMap<u64, super::playback::Playing>>,
    /// Ids handed out for clips, forks and gathers, unique in the process.
    ids: Arc<std::sync::atomic::AtomicU64>,
    /// Speech-to-text and translation engines, or why there are none.
    pub(super) speech: Result<SpeechEngines, String>,
    /// Every translated segment as it is stored, for the supervisor streams.
    pub(super) segments: tokio::sync::broadcast::Sender<Segment>,
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
            pending_bridges: PendingBridges::default(),
            playbacks: Arc::default(),
            ids: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            speech: Err("no speech engines are configured".into()),
            segments: tokio::sync::broadcast::channel(SEGMENT_BACKLOG).0,
        }
    }

    /// Run with these speech engines (transcription and translation), or say why there are none.
    pub fn with_speech(mut self, engines: Result<SpeechEngines, String>) -> Self {
        self.speech = engines;
        self
    }

    /// A fresh id for a clip, a fork or a gather.
    pub(super) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Translated segments as they are stored, from now on.
    pub fn subscribe_segments(&self) -> tokio::sync::broadcast::Receiver<Segment> {
        self.segments.subscribe()
    }

    /// Store a translated segment and hand it to the supervisor streams.
    pub(super) async fn publish_segment(&self, segment: NewSegment) {
        match self.store.insert_segment(segment).await {
            // No supervisor listening is not an error.
            Ok(stored) => drop(self.segments.send(stored)),
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
        self.bridge_if_answered(call_control_id).await;
        self.start_pending_stream(&call).await;
        self.start_pending_supervision(&call).await;
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
        let mut tx = self.store.begin().await?;
        let call = self.insert_initiated(&mut tx, new, extra).await?;
        self.store.commit(tx).await?;
        self.notifier.notify();
        Ok(call)
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
        match self.insert_answered(new, codec, rate, extra).await {
            Ok(call) => {
                self.notifier.notify();
                Ok(call)
            }
            Err(e) => {
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
        if a.call_control_id == b.call_control_id {
            return Err(CallError::invalid(
                "10002",
                "A call cannot be bridged with itself.",
                "/call_control_id_to_bridge_with",
            ));
        }
        let leg_a = self.live_leg(a)?;
        let leg_b = self.live_leg(b)?;
        for call in [a, b] {
            // An application picking a queued caller for an agent: it leaves its queue.
            self.left_queue(&call.call_control_id, LeftBecause::Bridged).await?;
        }
        for call in [a, b] {
            if let Some(partner) = &call.bridged_with {
                if options.prevent_double_bridge {
                    return Err(CallError::invalid(
                        "90034",
                        format!("Call {} is already bridged.", call.call_control_id),
                        "/call_control_id",
                    ));
                }
                self.unbridge(&call.call_control_id, partner).await?;
            }
        }
        self.engine.bridge(leg_a, leg_b, options.dtmf).await?;
        if options.park_after_unbridge {
            self.live.update(&a.call_control_id, |c| c.parked_after_unbridge = true);
        }
        let result: Result<(), DbError> = async {
            let mut tx = self.store.begin().await?;
            // A call that ended meanwhile gets no `call.bridged`: its hangup is on its way.
            for (call, with) in [(a, b), (b, a)] {
                let bridged =
                    self.store.set_bridged(&mut tx, &call.call_control_id, Some(&with.call_control_id));
                if let Some(fresh) = bridged.await? {
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

    async fn unbridge(&self, call: &CallId, partner: &CallId) -> Result<(), CallError> {
        if let Some(leg) = self.registry.leg(call) {
            let _ = self.engine.unbridge(leg).await;
        }
        let result: Result<(), DbError> = async {
            let mut tx = self.store.begin().await?;
            self.store.set_bridged(&mut tx, call, None).await?;
            self.store.set_bridged(&mut tx, partner, None).await?;
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
        self.end(&call.call_control_id, Ending { cause: "normal_clearing", source: "caller" }).await;
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
                let leg_rate = self.engine.leg_rate(leg).await.ok().flatten();
                if leg_rate != Some(rate) {
                    return Err(CallError::invalid(
                        "10002",
                        format!(
                            "the hold file must be at the call's rate ({} Hz)",
                            leg_rate.map_or(0, SampleRate::hz)
                        ),
                        "/audio_file",
                    ));
                }
                Some(MediaSource::Play { samples: samples.into(), repeat: true })
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

    /// Hang up a call's leg and record the end; then the calls that end with it
    /// (see `finish`).
    pub(super) async fn end(&self, call_control_id: &CallId, ending: Ending) {
        self.end_all_of(vec![(call_control_id.to_owned(), ending)]).await;
    }

    pub(super) async fn end_all_of(&self, mut endings: Vec<(CallId, Ending)>) {
        while let Some((call, ending)) = endings.pop() {
            let stats = match self.registry.leg(&call) {
                Some(leg) => {
                    // Claim the leg first: the engine's LegEnded for it is then ours to
                    // handle (with the cascade below), not the event task's.
                    self.registry.remove(leg);
                    self.finish_recording(&call, leg).await;
                    self.engine.hangup(leg).await.unwrap_or_default()
                }
                None => RtpStats::default(),
            };
            match self.finish(&call, ending, &stats).await {
                Ok(more) => endings.extend(more),
                Err(e) => tracing::error!(%call, error = %e, "could not record the end of a call"),
            }
        }
    }

    /// Record that a call ended (once) with its `call.hangup`; returns the calls
    /// that should now end too: the bridged partner (unless it asked to stay
    /// parked) and the calls tied to it by `link_to` (`linked.rs`).
    pub(super) async fn finish(
        &self,
        call_control_id: &CallId,
        ending: Ending,
        stats: &RtpStats,
    ) -> Result<Vec<(CallId, Ending)>, DbError> {
        let mut tx = self.store.begin().await?;
        let ended_at = rfc3339_now();
        let before = self.call_in(&mut tx, call_control_id).await?;
        let ended =
            self.store.mark_ended(&mut tx, call_control_id, ending.cause, ending.source, &ended_at).await?;
        let Some(call) = ended else {
            return Ok(Vec::new());
        };
        self.end_playbacks(&mut tx, &call).await?;
        self.end_gather(&mut tx, &call).await?;
        self.end_queue(&mut tx, &call).await?;
        self.offer_ended(&call, ending);
        let body = payload::hangup(&call, ending.cause, ending.source, &ended_at, stats);
        payload::record_quality(stats);
        self.enqueue(&mut tx, &call, "call.hangup", body).await?;
        let mut cascade = self.linked_endings(call_control_id, ending);
        cascade.extend(self.supervisor_endings(call_control_id));
        if let Some(partner) = &before.bridged_with {
            self.store.set_bridged(&mut tx, partner, None).await?;
            if !self.live.update(partner, |c| std::mem::take(&mut c.parked_after_unbridge)) {
                cascade.push((partner.clone(), Ending { cause: "normal_clearing", source: "unknown" }));
            }
        }
        // Its stream and speech tasks forget theirs as they wind down.
        self.live.update(call_control_id, |c| {
            c.parked_after_unbridge = false;
            c.amd_mode = None;
            c.pending_amd = None;
            c.pending_stream = None;
        });
        self.telnyx.release(call_control_id, true);
        self.release_sip(call_control_id);
        self.agents.released(call_control_id, ending.cause, monotonic());
        self.store.commit(tx).await?;
        self.notifier.notify();
        Ok(cascade)
    }

    pub(super) fn enforce_time_limit(&self, call: CallId, limit_secs: i64) {
        let service = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(limit_secs.max(1) as u64)).await;
            if service.registry.leg(&call).is_some() {
                service.end(&call, Ending { cause: "time_limit", source: "unknown" }).await;
            }
        });
    }

    /// End every live call (Bond is stopping); each gets its `call.hangup`.
    pub async fn end_all(&self) {
        for call in self.registry.calls_snapshot() {
            self.end(&call, Ending { cause: "unspecified", source: "unknown" }).await;
        }
    }

    /// Calls the database thinks are alive have no leg after a restart: end them.
    pub async fn end_orphaned_calls(&self) -> Result<usize, DbError> {
        let ids = self.store.live_call_ids().await?;
        for id in &ids {
            self.finish(id, Ending { cause: "unspecified", source: "unknown" }, &RtpStats::default()).await?;
        }
        Ok(ids.len())
    }
}
