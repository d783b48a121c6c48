//! Call recordings: start, pause, resume and stop on a call's leg; the
//! `call.recording.saved` event; and at start-up, repairing and announcing
//! recordings that a crash cut short.

use bond_codecs::SampleRate;
use bond_media_engine::runtime::{repair_partials, RecordChannels, RecordingSpec};
use bond_media_engine::LegId;
use bond_store::CallId;
use serde_json::{json, Value};

use super::error::CallError;
use super::payload;
use super::service::CallService;
use bond_store::clock::{rfc3339_now, unix_seconds};
use bond_store::db::DbError;
use bond_store::{CallRecord, RecordingRecord};

/// What `record_start` (or `record` on dial/bridge) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOptions {
    pub channels: RecordChannels,
    /// `None` records at the leg's own rate.
    pub rate: Option<SampleRate>,
}

impl CallService {
    /// Start recording a live call: its party on the left, what it hears on the right.
    pub async fn start_recording(
        &self,
        call: &CallRecord,
        options: RecordOptions,
    ) -> Result<RecordingRecord, CallError> {
        let leg = self.live_leg(call)?;
        if self.active_recording(call).await?.is_some() {
            return Err(CallError::invalid(
                "90017",
                "The call is already being recorded.",
                "/call_control_id",
            ));
        }
        let rate = match options.rate {
            Some(rate) => rate,
            None => self.leg_rate(leg).await,
        };
        let record = new_recording(call, options.channels, rate, None);
        self.record_leg(leg, &record, options.channels).await?;
        Ok(record)
    }

    /// Record `leg` into the file of `record`, inserted first; a failure to start marks it failed.
    pub(super) async fn record_leg(
        &self,
        leg: LegId,
        record: &RecordingRecord,
        channels: RecordChannels,
    ) -> Result<(), CallError> {
        self.store.insert_recording(record).await?;
        let spec = RecordingSpec {
            path: self.files.recordings_dir.join(&record.file_name),
            channels,
            rate: SampleRate::from_hz(record.sample_rate as u32).unwrap_or(SampleRate::Hz8000),
        };
        if let Err(e) = self.engine.start_recording(leg, spec).await {
            let _ = self.store.set_recording_status(&record.id, "failed").await;
            return Err(CallError::from(e));
        }
        Ok(())
    }

    pub async fn pause_recording(&self, call: &CallRecord, paused: bool) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        let recording = self.active_recording(call).await?.ok_or_else(not_recording)?;
        self.engine.pause_recording(leg, paused).await?;
        let status = if paused { "paused" } else { "recording" };
        self.store.set_recording_status(&recording.id, status).await.map_err(CallError::from)
    }

    /// `record_stop`: finish the file and send `call.recording.saved`.
    pub async fn stop_recording(&self, call: &CallRecord) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        self.active_recording(call).await?.ok_or_else(not_recording)?;
        self.finish_recording(&call.call_control_id, leg).await;
        Ok(())
    }

    /// Finish a call's recording, if it has one (also when the call ends).
    pub(super) async fn finish_recording(&self, call_control_id: &CallId, leg: LegId) {
        match self.store.active_recording(call_control_id).await {
            Ok(Some(recording)) => self.finish_recording_of(&recording, leg).await,
            Ok(None) => {}
            Err(e) => tracing::error!(call = %call_control_id, error = %e, "cannot read recordings"),
        }
    }

    /// Stop the engine recording `leg` into `recording` and announce the file.
    pub(super) async fn finish_recording_of(&self, recording: &RecordingRecord, leg: LegId) {
        let (status, duration) = match self.engine.stop_recording(leg).await {
            Ok(Some(summary)) => ("completed", summary.duration_ms as i64),
            Ok(None) => ("failed", 0),
            Err(e) => {
                tracing::error!(recording = %recording.id, error = %e, "recording failed");
                ("failed", 0)
            }
        };
        if let Err(e) = self.saved(recording, status, duration).await {
            tracing::error!(recording = %recording.id, error = %e, "could not record the end of a recording");
        }
    }

    /// Mark the recording finished and queue `call.recording.saved` in one transaction.
    async fn saved(
        &self,
        recording: &RecordingRecord,
        status: &str,
        duration_millis: i64,
    ) -> Result<(), DbError> {
        let ended_at = rfc3339_now();
        let mut tx = self.store.begin().await?;
        self.store.finish_recording(&mut tx, &recording.id, status, duration_millis, &ended_at).await?;
        if status != "failed" {
            let call = self.call_in(&mut tx, &recording.call_control_id).await?;
            let mut body = payload::base(&call);
            body.insert("recording_id".into(), json!(recording.id));
            body.insert("channels".into(), json!(recording.channels));
            body.insert("format".into(), json!("wav"));
            body.insert("duration_millis".into(), json!(duration_millis));
            body.insert("recording_started_at".into(), json!(recording.recording_started_at));
            body.insert("recording_ended_at".into(), json!(ended_at));
            body.insert(
                "recording_urls".into(),
                json!({ "wav": self.files.links.url(&recording.id, unix_seconds()) }),
            );
            if status == "repaired" {
                body.insert("repaired_after_crash".into(), json!(true));
            }
            let event = match &recording.conference_id {
                Some(conference) => {
                    body.insert("conference_id".into(), json!(conference));
                    "conference.recording.saved"
                }
                None => "call.recording.saved",
            };
            self.enqueue(&mut tx, &call, event, Value::Object(body)).await?;
        }
        self.store.commit(tx).await?;
        self.notifier.notify();
        if let Some(storage) = &self.files.storage {
            storage.wake();
        }
        Ok(())
    }

    /// `call`'s node died while recording it: the recording is marked
    /// `interrupted`, with Telnyx's `call.recording.error`. Its file is on the
    /// dead node's disk; that node repairs it if it starts again on it, and
    /// then announces it with `call.recording.saved` (`repaired_after_crash`).
    pub(super) async fn recording_interrupted(&self, call: &CallId) -> Result<(), DbError> {
        let Some(recording) = self.store.active_recording(call).await? else { return Ok(()) };
        let mut tx = self.store.begin().await?;
        if self.store.interrupt_recording(&mut tx, &recording.id).await? {
            let record = self.call_in(&mut tx, call).await?;
            let mut body = payload::base(&record);
            body.insert("recording_id".into(), json!(recording.id));
            body.insert("reason".into(), json!("The node carrying the call stopped while recording it."));
            self.enqueue(&mut tx, &record, "call.recording.error", Value::Object(body)).await?;
        }
        self.store.commit(tx).await
    }

    /// Fix recordings a crash cut short and announce them with `call.recording.saved`.
    pub async fn repair_recordings(&self) -> Result<usize, DbError> {
        let dir = self.files.recordings_dir.clone();
        let repaired = tokio::task::spawn_blocking(move || repair_partials(&dir)).await.unwrap_or_default();
        let mut count = 0;
        for result in repaired {
            let summary = match result {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "a recording could not be repaired");
                    continue;
                }
            };
            let file_name = summary
                .path
                .strip_prefix(&self.files.recordings_dir)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(recording) = self.store.recording_by_file(&file_name).await? else {
                tracing::warn!(file = %summary.path.display(), "repaired a recording Bond has no record of");
                continue;
            };
            tracing::warn!(recording = %recording.id, duration_ms = summary.duration_ms, "repaired a recording cut short");
            self.saved(&recording, "repaired", summary.duration_ms as i64).await?;
            count += 1;
        }
        Ok(count)
    }

    /// The call's unfinished recording, if any.
    async fn active_recording(&self, call: &CallRecord) -> Result<Option<RecordingRecord>, CallError> {
        self.store.active_recording(&call.call_control_id).await.map_err(CallError::from)
    }

    async fn leg_rate(&self, leg: LegId) -> SampleRate {
        self.engine.leg_rate(leg).await.ok().flatten().unwrap_or(SampleRate::Hz8000)
    }
}

/// A new recording of `call`'s leg (or, with `conference_id`, of the
/// conference `call` created), at `rate`, not started yet.
pub(super) fn new_recording(
    call: &CallRecord,
    channels: RecordChannels,
    rate: SampleRate,
    conference_id: Option<String>,
) -> RecordingRecord {
    let id = uuid::Uuid::new_v4().to_string();
    RecordingRecord {
        file_name: format!("{}/{id}.wav", call.organization_id),
        id,
        organization_id: call.organization_id.clone(),
        call_control_id: call.call_control_id.clone(),
        call_leg_id: call.call_leg_id.clone(),
        call_session_id: call.call_session_id.clone(),
        connection_id: call.connection_id.clone(),
        channels: match channels {
            RecordChannels::Single => "single",
            RecordChannels::Dual => "dual",
        }
        .to_owned(),
        sample_rate: i64::from(rate.hz()),
        status: "recording".to_owned(),
        duration_millis: None,
        recording_started_at: rfc3339_now(),
        recording_ended_at: None,
        conference_id,
    }
}

fn not_recording() -> CallError {
    CallError::invalid("90016", "The call is not being recorded.", "/call_control_id")
}
