//! `enqueue` and `leave_queue` (Telnyx Call Control) and the queues behind
//! `/v2/queues`. Who waits where, in which order and for how long is an
//! I/O-free book ([`Queues`], `line.rs`) kept in memory. This side carries out
//! what a stay in line means for the call:
//!
//! - joining: the caller hears Bond's hold tune (`music.rs`, the leg's hold
//!   source) and `call.enqueued` is written with its place and the average wait;
//! - waiting: every [`ANNOUNCE_EVERY`] its place in line (and, once agents have
//!   taken calls from the queue, the expected wait) is spoken over the music,
//!   which ducks under it; `max_wait_time_secs` takes it out (`timeout`);
//! - leaving, `call.dequeued` with the reason: bridged (the application picked
//!   it for an agent: `bridge` takes it out first), `leave_queue` or
//!   removal through the API (`leave`), its hangup (`hangup`, in the
//!   transaction that writes `call.hangup`, just before it). The music stops.
//!
//! A queue may also hand its callers to agents by itself (`routing.rs` decides,
//! `route.rs` rings the agent's browser and bridges on its answer).

mod line;
pub(crate) mod music;
mod route;
mod routing;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bond_media_engine::leg::MediaSource;
use bond_speech::audio::espeak::Speech;
use bond_store::clock::{monotonic, rfc3339_now};
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord};
use serde_json::{Map, Value};

use super::error::CallError;
use super::payload;
use super::playback::AudioSource;
use super::service::CallService;
pub use line::{
    At, Enqueue, Joined, Left, LeftBecause, Queue, QueueError, Queues, Waiting, DEFAULT_MAX_SIZE,
};
pub use routing::{Offer, Routing, Strategy};

/// Why `keep_after_hangup: true` is refused.
pub const NO_KEEP_AFTER_HANGUP: &str =
    "keep_after_hangup is not available in Bond yet: a call leaves its queue when it hangs up";

/// How often a waiting caller hears its place in line.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(30);
/// The first announcement, once the caller has heard the music start.
const FIRST_ANNOUNCEMENT: Duration = Duration::from_secs(2);

/// The queues of every organization, shared by the service's clones, and
/// the calls ringing agents on their behalf (`route.rs`).
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueBook {
    book: Arc<Mutex<Queues>>,
    offers: route::Offers,
}

impl QueueBook {
    /// The book, to read or change at once (never held across an await).
    pub fn lock(&self) -> MutexGuard<'_, Queues> {
        // A panic elsewhere while holding it leaves the book as consistent as
        // each of its single-step changes.
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl CallService {
    /// The queues, to read or change at once (the `/v2/queues` resources).
    pub fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock()
    }

    /// `enqueue`: put the answered call at the back of queue `name` (made if new).
    pub async fn enqueue_call(&self, call: &CallRecord, name: &str, ask: Enqueue) -> Result<(), CallError> {
        let leg = self.answered_leg(call, "a queue").await?;
        let rate = self.engine.leg_rate(leg).await?.ok_or(CallError::Ended)?;
        let id = &call.call_control_id;
        let joined = self
            .queues
            .lock()
            .enqueue(
                &call.organization_id,
                name,
                id,
                ask,
                At { now: monotonic(), shown: &rfc3339_now() },
                new_queue_id,
            )
            .map_err(|e| refused(e, "/queue_name"))?;
        let file = self
            .queues
            .lock()
            .get(&call.organization_id, name)
            .ok()
            .and_then(|q| q.routing.hold_audio_file.clone());
        let samples = match file {
            Some(file) => music::hold_file(&self.files.data_dir, &file, rate).await.unwrap_or_else(|e| {
                // It was readable when the queue was set up: the tune rather than silence.
                tracing::warn!(queue = name, error = %e, "the queue's hold file cannot be played");
                music::hold_tune(rate)
            }),
            None => music::hold_tune(rate),
        };
        let music = MediaSource::Play { samples: samples.into(), rate, repeat: true };
        if let Err(e) = self.engine.hold(leg, Some(music)).await {
            self.queues.lock().dequeue(id, monotonic(), LeftBecause::Hangup);
            return Err(e.into());
        }
        let mut fields = Map::new();
        fields.insert("queue".into(), name.into());
        fields.insert("current_position".into(), joined.position.into());
        fields.insert("queue_avg_wait_time_secs".into(), joined.average_wait.as_secs().into());
        self.call_event(id, "call.enqueued", fields).await?;
        self.wait_in_line(id.clone(), joined.ticket);
        self.route(&call.organization_id).await;
        Ok(())
    }

    /// Whether `file` can be a queue's hold music (`bond_hold_audio_file`).
    pub async fn check_hold_audio_file(&self, file: &str) -> Result<(), CallError> {
        match music::hold_file(&self.files.data_dir, file, bond_codecs::SampleRate::Hz8000).await {
            Ok(_) => Ok(()),
            Err(detail) => Err(CallError::invalid("10002", detail, "/bond_hold_audio_file")),
        }
    }

    /// `leave_queue`, or removal through `/v2/queues/{name}/calls/{id}`.
    pub async fn leave_queue(&self, call: &CallRecord) -> Result<(), CallError> {
        self.live_leg(call)?;
        match self.left_queue(&call.call_control_id, LeftBecause::Leave).await? {
            true => Ok(()),
            false => Err(refused(QueueError::NotQueued, "/call_control_id")),
        }
    }

    /// Take `call` out of its queue, if it waits in one: `call.dequeued` is
    /// written and the music stops. Whether it was queued. Taken out holding
    /// the call's row, so a call leaving (at its wait limit, say) as it hangs
    /// up leaves once, before `call.hangup` (`end_queue`).
    pub(super) async fn left_queue(&self, call: &CallId, because: LeftBecause) -> Result<bool, DbError> {
        if self.queues.lock().queue_of(call).is_none() {
            return Ok(false);
        }
        let mut left = false;
        let report = |_: &CallRecord| {
            let leaving = self.queues.lock().dequeue(call, monotonic(), because)?;
            left = true;
            Some(("call.dequeued", left_fields(&leaving)))
        };
        self.event_holding_call(call, report).await?;
        if let Some(leg) = self.registry.leg(call).filter(|_| left) {
            let _ = self.engine.stop_playback(leg, true, true).await;
            let _ = self.engine.hold(leg, None).await;
        }
        Ok(left)
    }

    /// The call is ending: out of its queue (`hangup`), written in `tx`.
    pub(super) async fn end_queue(&self, tx: &mut bond_store::Tx, call: &CallRecord) -> Result<(), DbError> {
        let left = self.queues.lock().dequeue(&call.call_control_id, monotonic(), LeftBecause::Hangup);
        let Some(left) = left else { return Ok(()) };
        let mut body = payload::base(call);
        body.extend(left_fields(&left));
        self.enqueue(tx, call, "call.dequeued", Value::Object(body)).await
    }

    /// While stay `ticket` of `call` lasts: announce its place every
    /// [`ANNOUNCE_EVERY`], and take it out at its wait limit.
    fn wait_in_line(&self, call: CallId, ticket: u64) {
        let service = self.clone();
        tokio::spawn(async move {
            let mut announce_at = monotonic() + FIRST_ANNOUNCEMENT;
            loop {
                let deadline = match service.queues.lock().stay(&call, ticket) {
                    Some((_, waiting)) => waiting.deadline,
                    None => return,
                };
                let wake = deadline.map_or(announce_at, |d| d.min(announce_at));
                tokio::time::sleep_until(wake.into()).await;
                let now = monotonic();
                let place = {
                    let queues = service.queues.lock();
                    queues.stay(&call, ticket).map(|(position, waiting)| {
                        let expected = queues.queue_of(&call).and_then(|q| q.estimated_wait(position));
                        (position, waiting.deadline, expected)
                    })
                };
                let Some((position, deadline, expected)) = place else { return };
                if deadline.is_some_and(|d| d <= now) {
                    if let Err(e) = service.left_queue(&call, LeftBecause::Timeout).await {
                        tracing::error!(%call, error = %e, "could not record a queue timeout");
                    }
                    return;
                }
                if announce_at <= now {
                    service.announce(&call, ticket, position, expected).await;
                    announce_at = now + ANNOUNCE_EVERY;
                }
            }
        });
    }

    /// Speak the caller's place in line over the music (which ducks under it),
    /// unless stay `ticket` is over by the time the speech is ready: an
    /// announcement must not play over the agent the caller was handed to.
    async fn announce(&self, call: &CallId, ticket: u64, position: usize, expected: Option<Duration>) {
        let Some(leg) = self.registry.leg(call) else { return };
        let speech = Speech {
            text: announcement(position, expected),
            ssml: false,
            language: "en-US".into(),
            voice: "female".into(),
        };
        let waiting = || self.queues.lock().stay(call, ticket).is_some();
        let played = async {
            let clip = self.load_clip(leg, AudioSource::Speech(speech), Some(1)).await?;
            if !waiting() {
                return Ok(());
            }
            let clip = bond_media_engine::leg::Clip { duck: true, ..clip };
            self.engine.play(leg, clip, true).await?;
            if !waiting() {
                // It left the queue (and its music was stopped) while the clip was on its way.
                self.engine.stop_playback(leg, true, true).await?;
            }
            Ok::<(), CallError>(())
        };
        if let Err(e) = played.await {
            tracing::info!(%call, error = %e, "a queue announcement could not be played");
        }
    }
}

/// What a waiting caller is told.
fn announcement(position: usize, expected: Option<Duration>) -> String {
    let place = match position {
        1 => "You are next in line.".to_owned(),
        n => format!("You are number {n} in line."),
    };
    match expected.map(|wait| wait.as_secs().div_ceil(60)) {
        Some(0) | None => format!("{place} Thank you for holding."),
        Some(1) => format!("{place} The expected wait is about one minute."),
        Some(minutes) => format!("{place} The expected wait is about {minutes} minutes."),
    }
}

fn left_fields(left: &Left) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("queue".into(), left.queue.clone().into());
    fields.insert("queue_position".into(), left.position.into());
    fields.insert("reason".into(), left.because.as_str().into());
    fields.insert("wait_time_secs".into(), left.waited.as_secs().into());
    fields
}

/// A queue's id, as `/v2/queues` shows it.
pub fn new_queue_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A refused queue request as call control's error (422, the field at `pointer`).
fn refused(error: QueueError, pointer: &str) -> CallError {
    CallError::invalid("10002", error.to_string(), pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_hear_their_place_and_a_rounded_up_wait_once_one_is_known() {
        assert_eq!(announcement(1, None), "You are next in line. Thank you for holding.");
        let three = announcement(3, Some(Duration::from_secs(61)));
        assert_eq!(three, "You are number 3 in line. The expected wait is about 2 minutes.");
        let soon = announcement(2, Some(Duration::from_secs(40)));
        assert_eq!(soon, "You are number 2 in line. The expected wait is about one minute.");
    }
}
