//! What the engine tells the calls, and the webhooks calls send: the task that
//! follows engine events (legs ending on their own, DTMF, machine detection,
//! clips starting and ending) and the one way a call's event reaches the
//! outbox, inside the transaction of the state change it reports.

use bond_media_engine::{EngineEvent, HangupCause};
use bond_store::CallId;
use serde_json::Value;

use super::amd;
use super::payload;
use super::registry::Ending;
use super::service::CallService;
use bond_store::db::DbError;
use bond_store::{CallRecord, NewEvent};

/// One INFO line per step of a call, as its webhook is queued: the call's
/// story in the log with its id (`call.initiated` from/to, `call.answered`,
/// `call.bridged` with whom, `call.hangup` with cause and source, ...).
fn log_step(call: &CallRecord, event_type: &str, body: &Value) {
    let id = &call.call_control_id;
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("-");
    match event_type {
        "call.initiated" => {
            tracing::info!(call = %id, direction = %call.direction, from = %call.from, to = %call.to, "call created")
        }
        "call.answered" => tracing::info!(call = %id, "call answered"),
        "call.bridged" => {
            tracing::info!(call = %id, with = %call.bridged_with.as_deref().unwrap_or("-"), "call bridged")
        }
        "call.hangup" => tracing::info!(
            call = %id,
            cause = %text("hangup_cause"),
            source = %text("hangup_source"),
            "call ended"
        ),
        other => tracing::info!(call = %id, event = %other, "call event"),
    }
}

/// How a call whose leg ended on its own ends: Telnyx's causes where they
/// fit, and Bond's own `connection_failed` / `connection_lost` for a browser
/// leg whose ICE or DTLS never came up or whose consent lapsed (Telnyx has no
/// cause for those; `unspecified` told an agent nothing).
fn media_ending(cause: HangupCause) -> Ending {
    let cause = match cause {
        HangupCause::NormalClearing => "normal_clearing",
        HangupCause::MediaTimeout => "timeout",
        HangupCause::ConnectionFailed => "connection_failed",
        HangupCause::ConnectionLost => "connection_lost",
        _ => "unspecified",
    };
    Ending { cause, source: "unknown" }
}

impl CallService {
    /// Follow the engine: legs that end on their own, DTMF heard on a leg.
    pub async fn run_engine_events(self) {
        let mut events = self.engine.subscribe();
        loop {
            match events.recv().await {
                Ok(EngineEvent::LegEnded { leg, cause, stats }) => {
                    // A leg Bond hung up was claimed by `end`; this one ended on its own.
                    let Some(call) = self.registry.remove(leg) else { continue };
                    self.finish_recording(&call, leg).await;
                    let ending = media_ending(cause);
                    match cause {
                        HangupCause::ConnectionFailed => {
                            tracing::info!(%call, "browser media never connected (ICE/DTLS failed): call ended")
                        }
                        HangupCause::ConnectionLost => {
                            tracing::info!(%call, "browser media lost (ICE consent lapsed): call ended")
                        }
                        _ => tracing::info!(%call, cause = ending.cause, "the call's media ended it"),
                    }
                    self.media_ended(&call, ending, stats).await;
                }
                Ok(EngineEvent::DtmfReceived { leg, digit, .. }) => {
                    let Some(call) = self.registry.call(leg) else { continue };
                    self.digit_heard(&call, digit.as_char()).await;
                }
                Ok(EngineEvent::PlaybackStarted { id, .. }) => self.playback_event(id, None).await,
                Ok(EngineEvent::PlaybackEnded { id, end, .. }) => self.playback_event(id, Some(end)).await,
                Ok(EngineEvent::MachineDetection { leg, event }) => {
                    let Some(call) = self.registry.call(leg) else { continue };
                    let Some(mode) = self.live.read(&call, |c| c.amd_mode).flatten() else { continue };
                    if let Some((event_type, fields)) = amd::webhook(mode, event) {
                        if let Err(e) = self.event_while_up(&call, event_type, fields).await {
                            tracing::error!(%call, error = %e, "could not record a machine detection result");
                        }
                    }
                    self.invite_screened(&call, &event).await;
                }
                Ok(EngineEvent::MachineDetectionWordsWanted { leg, greeting, rate, language }) => {
                    self.amd_words_wanted(leg, greeting, rate, language);
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "engine events lagged; some call events were missed");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Send the application `event_type` for a call: its base payload plus `fields`
    /// (machine-detection results, and Telnyx events passed on as they are).
    pub async fn call_event(
        &self,
        call_control_id: &CallId,
        event_type: &str,
        fields: serde_json::Map<String, Value>,
    ) -> Result<(), DbError> {
        let mut tx = self.store.begin().await?;
        let call = self.call_in(&mut tx, call_control_id).await?;
        let mut body = payload::base(&call);
        body.extend(fields);
        self.enqueue(&mut tx, &call, event_type, Value::Object(body)).await?;
        self.store.commit(tx).await?;
        self.notifier.notify();
        Ok(())
    }

    /// Write the event `report` makes of what it takes from the call's live
    /// state (given the call as it is now), holding the call's row while it
    /// does. The call's end holds the same row while it ends what is left
    /// (`finish_at`: clips, a gather) and writes `call.hangup`, so what both
    /// could report is reported once, and before `call.hangup`: by `report` if
    /// it came first, else by the end (and `report`, finding nothing left,
    /// writes nothing).
    pub(super) async fn event_holding_call(
        &self,
        call_control_id: &CallId,
        report: impl FnOnce(&CallRecord) -> Option<(&'static str, serde_json::Map<String, Value>)>,
    ) -> Result<(), DbError> {
        let mut tx = self.store.begin().await?;
        let call = self.store.lock_call(&mut tx, call_control_id).await?;
        let call = call.ok_or_else(|| DbError::Corrupt(format!("call {call_control_id} vanished")))?;
        let Some((event_type, fields)) = report(&call) else {
            tx.rollback().await?;
            return Ok(());
        };
        let mut body = payload::base(&call);
        body.extend(fields);
        self.enqueue(&mut tx, &call, event_type, Value::Object(body)).await?;
        self.store.commit(tx).await?;
        self.notifier.notify();
        Ok(())
    }

    /// A digit heard on a call's leg: `call.dtmf.received`, and its gather if one
    /// runs. The engine reported it while the call was up; the call may have ended
    /// since, and then its `call.hangup` is the last word.
    pub async fn digit_heard(&self, call: &CallId, digit: char) {
        let field = serde_json::Map::from_iter([("digit".to_owned(), Value::from(digit.to_string()))]);
        if let Err(e) = self.event_while_up(call, "call.dtmf.received", field).await {
            tracing::error!(%call, error = %e, "could not record DTMF");
        }
        self.gather_digit(call, digit).await;
    }

    /// Write `event_type` for a call that is still up, holding its row: a digit
    /// or a detection result the engine reported as the call was being hung up
    /// lands before `call.hangup` or not at all.
    async fn event_while_up(
        &self,
        call_control_id: &CallId,
        event_type: &'static str,
        fields: serde_json::Map<String, Value>,
    ) -> Result<(), DbError> {
        self.event_holding_call(call_control_id, |call| {
            call.ended_at.is_none().then_some((event_type, fields))
        })
        .await
    }

    pub(super) async fn call_in(&self, tx: &mut bond_store::Tx, id: &CallId) -> Result<CallRecord, DbError> {
        self.store.get_call_tx(tx, id).await?.ok_or_else(|| DbError::Corrupt(format!("call {id} vanished")))
    }

    /// Mark `id` answered inside `tx`; returns it as it now is.
    pub(super) async fn answered_in(
        &self,
        tx: &mut bond_store::Tx,
        id: &CallId,
        at: &str,
    ) -> Result<CallRecord, DbError> {
        self.store
            .mark_answered(tx, id, at)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("call {id} vanished")))
    }

    pub(super) async fn enqueue(
        &self,
        tx: &mut bond_store::Tx,
        call: &CallRecord,
        event_type: &str,
        body: Value,
    ) -> Result<(), DbError> {
        log_step(call, event_type, &body);
        let url = call.webhook_url.as_deref().unwrap_or_default();
        if url.is_empty() {
            return Ok(());
        }
        self.store
            .enqueue_event(
                tx,
                NewEvent {
                    organization_id: &call.organization_id,
                    call_control_id: Some(&call.call_control_id),
                    event_type,
                    payload: body,
                    url,
                    failover_url: call.webhook_failover_url.as_deref(),
                    timeout_secs: call.webhook_timeout_secs,
                },
            )
            .await?;
        Ok(())
    }
}
