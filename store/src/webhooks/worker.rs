//! Delivers the outbox. Each call's events go out in order (a failed event
//! holds back the later events of the same call, and only those), and calls
//! are delivered side by side in lanes that do not wait for each other: a
//! receiver that takes 30 s to answer holds up its own calls' events, never
//! another organization's.
//!
//! The dispatcher reads due events (skipping calls already in a lane and
//! receivers already at their share), starts a lane per call, and goes on
//! reading as soon as anything new is queued or a lane ends. At most
//! [`LANES`] lanes run at once, and at most [`LANES_PER_URL`] for one
//! receiver URL. Deliveries are recorded in batches by one writer; a lane ends
//! only once its deliveries are recorded, so no event is read again as undelivered.
//!
//! Each POST carries Telnyx's envelope with `meta.attempt` and
//! `meta.delivered_to` and an Ed25519 signature with the organization's key
//! (`org_keys.rs`). Failed attempts back off (by
//! default 1 s doubling to 60 s): attempts 1-3 go to the primary URL, then the
//! failover URL when there is one, alternating after that. Nothing is dropped:
//! an event stays until delivered.
//!
//! Several nodes may share the outbox: each delivers only the partitions it
//! holds (`partitions.rs`), re-balanced every [`REBALANCE_EVERY`], and on
//! Postgres every enqueue wakes every node's worker through `LISTEN`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinSet;

use super::partitions::Partitions;
use super::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::OrgSigners;
use crate::clock::{unix_millis, unix_seconds};
use crate::db::{Backend, DbError};
use crate::{Delivery, PendingEvent, Store, OUTBOX_CHANNEL};

/// Due events read at a time.
const BATCH: i64 = 500;
/// Calls whose events are delivered side by side.
const LANES: usize = 64;
/// Of those, for one receiver URL.
const LANES_PER_URL: usize = 16;
const IDLE_POLL: Duration = Duration::from_secs(5);
const PRIMARY_ATTEMPTS: i64 = 3;
/// How long the writer gathers deliveries before recording them.
const RECORD_EVERY: Duration = Duration::from_millis(20);
/// How often the partitions this node delivers are re-balanced.
const REBALANCE_EVERY: Duration = Duration::from_secs(1);

/// Wakes the worker when new events are queued.
#[derive(Debug, Clone, Default)]
pub struct WebhookNotifier(Arc<Notify>);

impl WebhookNotifier {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// How failed attempts back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

impl Backoff {
    /// Delay after `attempts` failures: `initial`, doubling, capped at `max`.
    pub fn after(&self, attempts: i64) -> Duration {
        let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
        self.initial.saturating_mul(1u32 << exponent).min(self.max)
    }
}

struct Worker {
    store: Store,
    signers: OrgSigners,
    client: reqwest::Client,
    backoff: Backoff,
    /// Deliveries to record, each batch acknowledged.
    record: mpsc::Sender<(Vec<Delivery>, oneshot::Sender<()>)>,
}

/// A lane: one call's events (an account event is a lane of its own).
type LaneKey = String;

/// The lanes running: each task's call, receiver URL and partition.
#[derive(Default)]
struct Lanes {
    tasks: JoinSet<Result<Option<i64>, DbError>>,
    by_task: HashMap<tokio::task::Id, (LaneKey, String, i64)>,
    calls: HashSet<LaneKey>,
    per_url: HashMap<String, usize>,
}

impl Lanes {
    fn start(
        &mut self,
        key: LaneKey,
        url: String,
        partition: i64,
        lane: impl Future<Output = Result<Option<i64>, DbError>> + Send + 'static,
    ) {
        *self.per_url.entry(url.clone()).or_default() += 1;
        self.calls.insert(key.clone());
        let task = self.tasks.spawn(lane);
        self.by_task.insert(task.id(), (key, url, partition));
    }

    /// The partitions lanes are delivering.
    fn partitions(&self) -> HashSet<i64> {
        self.by_task.values().map(|(_, _, p)| *p).collect()
    }

    /// Forget a lane that ended; when its call's next event is due (a lane
    /// that failed or panicked is read again at once).
    fn ended(
        &mut self,
        id: tokio::task::Id,
        result: Result<Result<Option<i64>, DbError>, tokio::task::JoinError>,
    ) -> Option<i64> {
        if let Some((key, url, _)) = self.by_task.remove(&id) {
            self.calls.remove(&key);
            if let Some(n) = self.per_url.get_mut(&url) {
                *n -= 1;
                if *n == 0 {
                    self.per_url.remove(&url);
                }
            }
        }
        match result {
            Ok(Ok(retry_at)) => retry_at,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "a webhook lane failed; retrying");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "a webhook lane panicked; its events are read again");
                None
            }
        }
    }
}

/// The delivery loop; returns when `shutdown` turns true.
pub async fn run(
    store: Store,
    signers: OrgSigners,
    notifier: WebhookNotifier,
    backoff: Backoff,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = crate::egress::client(reqwest::Client::builder().user_agent("bond-webhooks"))
        .build()
        .unwrap_or_default();
    let (record, to_record) = mpsc::channel(LANES);
    let writer = tokio::spawn(record_deliveries(store.clone(), to_record));
    if store.db().backend() == Backend::Postgres {
        tokio::spawn(wake_on_notify(store.db().url().to_owned(), notifier.clone(), shutdown.clone()));
    }
    let mut partitions = Partitions::new(store.clone());
    let mut rebalance = tokio::time::interval(REBALANCE_EVERY);
    rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let worker = Arc::new(Worker { store, signers, client, backoff, record });
    let mut lanes = Lanes::default();
    let mut next_due: Option<i64> = None;
    loop {
        let wait = match worker.dispatch(&mut lanes, partitions.delivered().as_deref()).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "webhook outbox unreadable; retrying");
                Some(IDLE_POLL)
            }
        };
        let until_due =
            next_due.map(|at| Duration::from_millis((at - unix_millis()).clamp(10, 5_000) as u64));
        let wait = [wait, until_due].into_iter().flatten().min().unwrap_or(IDLE_POLL);
        next_due = None;
        tokio::select! {
            () = notifier.0.notified() => {}
            Some(end) = lanes.tasks.join_next_with_id(), if !lanes.tasks.is_empty() => {
                let mut ends = vec![end];
                while let Some(more) = lanes.tasks.try_join_next_with_id() {
                    ends.push(more);
                }
                for end in ends {
                    let (id, result) = match end {
                        Ok((id, result)) => (id, Ok(result)),
                        Err(e) => (e.id(), Err(e)),
                    };
                    let retry_at = lanes.ended(id, result);
                    next_due = next_due.into_iter().chain(retry_at).min();
                }
            }
            () = tokio::time::sleep(wait) => {}
            _ = rebalance.tick() => partitions.rebalance(&lanes.partitions()).await,
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    // Lanes still waiting on a receiver are stopped; what they delivered and
    // did not record goes out again on the next start (with the same ids).
    lanes.tasks.abort_all();
    while lanes.tasks.join_next().await.is_some() {}
    drop(worker);
    let _ = writer.await;
}

impl Worker {
    /// Start a lane for each call with due events that has none and whose
    /// receiver has room; returns how long until an event not read now is due
    /// (`None`: only what the lanes report).
    /// Only events of `partitions` (`None`: all) are read.
    async fn dispatch(
        self: &Arc<Self>,
        lanes: &mut Lanes,
        partitions: Option<&[i64]>,
    ) -> Result<Option<Duration>, DbError> {
        if lanes.calls.len() >= LANES {
            return Ok(None);
        }
        let busy_calls: Vec<&str> = lanes.calls.iter().map(String::as_str).collect();
        let full_urls: Vec<&str> =
            lanes.per_url.iter().filter(|(_, n)| **n >= LANES_PER_URL).map(|(u, _)| u.as_str()).collect();
        let pending =
            self.store.due_events(BATCH, unix_millis(), &busy_calls, &full_urls, partitions).await?;
        let full = pending.len() as i64 == BATCH;
        // Each call's events in order, oldest call first.
        let mut order: Vec<LaneKey> = Vec::new();
        let mut by_lane: HashMap<LaneKey, Vec<PendingEvent>> = HashMap::new();
        for event in pending {
            let key = event
                .call_control_id
                .clone()
                .map(String::from)
                .unwrap_or_else(|| format!("event:{}", event.id));
            let events = by_lane.entry(key.clone()).or_default();
            if events.is_empty() {
                order.push(key);
            }
            events.push(event);
        }
        for key in order {
            let Some(events) = by_lane.remove(&key) else { continue };
            let (url, partition) = (events[0].url.clone(), events[0].lane);
            let on_url = lanes.per_url.get(&url).copied().unwrap_or(0);
            if lanes.calls.len() >= LANES || on_url >= LANES_PER_URL || lanes.calls.contains(&key) {
                continue;
            }
            let worker = self.clone();
            lanes.start(key, url, partition, async move { worker.deliver_in_order(events).await });
        }
        if full {
            // More may be due than one read holds: read again soon.
            return Ok(Some(Duration::from_millis(10)));
        }
        // Events that were not due yet were not read: the earliest of those.
        let waiting = self.store.next_retry_at(unix_millis(), partitions).await?;
        Ok(waiting.map(|at| Duration::from_millis((at - unix_millis()).clamp(10, 5_000) as u64)))
    }

    /// One call's events in order, up to the first that is not delivered now
    /// (it holds the rest back); returns when that one is due again. Returns
    /// once the deliveries are recorded.
    async fn deliver_in_order(&self, events: Vec<PendingEvent>) -> Result<Option<i64>, DbError> {
        let mut delivered = Vec::with_capacity(events.len());
        let mut outcome = Ok(None);
        for event in events {
            if event.next_attempt_at > unix_millis() {
                outcome = Ok(Some(event.next_attempt_at));
                break;
            }
            match self.attempt(&event).await {
                Ok(Ok(delivery)) => delivered.push(delivery),
                Ok(Err(retry_at)) => {
                    outcome = Ok(Some(retry_at));
                    break;
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        if !delivered.is_empty() {
            let (done, recorded) = oneshot::channel();
            if self.record.send((delivered, done)).await.is_ok() {
                let _ = recorded.await;
            }
        }
        outcome
    }
}

/// Wake the worker whenever any node enqueues (Postgres `LISTEN` on
/// [`OUTBOX_CHANNEL`]; the listener connects again after a failure, and the
/// worker's own polling covers the gap).
async fn wake_on_notify(url: String, notifier: WebhookNotifier, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            Err(e) = relay_notifications(&url, &notifier) => {
                tracing::warn!(error = %e, "webhook wake-ups lost; listening again");
            }
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn relay_notifications(url: &str, notifier: &WebhookNotifier) -> Result<Infallible, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(OUTBOX_CHANNEL).await?;
    // Whatever was queued while no one listened.
    notifier.notify();
    loop {
        listener.recv().await?;
        notifier.notify();
    }
}

/// Record deliveries as lanes hand them over, gathered for [`RECORD_EVERY`]
/// (at least once: a crash before a batch is recorded sends its events again,
/// with the same ids).
async fn record_deliveries(store: Store, mut incoming: mpsc::Receiver<(Vec<Delivery>, oneshot::Sender<()>)>) {
    while let Some(first) = incoming.recv().await {
        let mut batch = vec![first];
        let gather = tokio::time::sleep(RECORD_EVERY);
        tokio::pin!(gather);
        loop {
            tokio::select! {
                more = incoming.recv() => match more {
                    Some(more) => batch.push(more),
                    None => break,
                },
                () = &mut gather => break,
            }
        }
        let deliveries: Vec<Delivery> = batch.iter().flat_map(|(d, _)| d.iter().cloned()).collect();
        if let Err(e) = store.mark_delivered(&deliveries).await {
            tracing::warn!(error = %e, "could not record webhook deliveries; they will be sent again");
        }
        for (_, done) in batch {
            let _ = done.send(());
        }
    }
}

impl Worker {
    /// One delivery attempt: delivered, or when to try again (unix ms).
    async fn attempt(&self, event: &PendingEvent) -> Result<Result<Delivery, i64>, DbError> {
        let (store, client) = (&self.store, &self.client);
        let signer = self.signers.for_org(&event.organization_id).await?;
        let attempt = event.attempts + 1;
        let url = target_url(event, attempt).to_owned();
        let body = envelope(event, attempt, &url);
        let timestamp = unix_seconds();
        let signature = signer.sign(timestamp, body.as_bytes());
        // Refused before any request: an address written in the URL skips the guarded resolver.
        let refused =
            reqwest::Url::parse(&url).map_err(|e| e.to_string()).and_then(|u| crate::egress::check_url(&u));
        let error = match refused {
            Err(refused) => refused,
            Ok(()) => {
                let result = client
                    .post(&url)
                    .timeout(Duration::from_secs(event.timeout_secs.clamp(1, 30) as u64))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(SIGNATURE_HEADER, signature)
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .body(body)
                    .send()
                    .await;
                match result {
                    Ok(response) if response.status().is_success() => {
                        metrics::counter!("bond_webhooks_delivered_total").increment(1);
                        return Ok(Ok(Delivery {
                            id: event.id.clone(),
                            attempts: attempt,
                            delivered_to: url,
                        }));
                    }
                    Ok(response) => format!("HTTP {}", response.status().as_u16()),
                    Err(e) => e.to_string(),
                }
            }
        };
        metrics::counter!("bond_webhook_attempts_failed_total").increment(1);
        tracing::debug!(event = %event.id, %url, attempt, %error, "webhook attempt failed");
        let retry_at = unix_millis() + self.backoff.after(attempt).as_millis() as i64;
        store.mark_attempt_failed(&event.id, attempt, retry_at, &error).await?;
        Ok(Err(retry_at))
    }
}

/// Which URL attempt number `attempt` (1-based) goes to.
pub fn target_url(event: &PendingEvent, attempt: i64) -> &str {
    match &event.failover_url {
        Some(failover) if attempt > PRIMARY_ATTEMPTS && (attempt - PRIMARY_ATTEMPTS) % 2 == 1 => failover,
        _ => &event.url,
    }
}

/// The envelope as sent: `data` exactly as stored, plus this attempt's `meta`.
pub fn envelope(event: &PendingEvent, attempt: i64, url: &str) -> String {
    let url_json = serde_json::to_string(url).unwrap_or_else(|_| "\"\"".to_owned());
    format!(r#"{{"data":{},"meta":{{"attempt":{attempt},"delivered_to":{url_json}}}}}"#, event.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(failover: Option<&str>) -> PendingEvent {
        PendingEvent {
            id: "e".into(),
            organization_id: "o".into(),
            seq: 1,
            call_control_id: None,
            data: r#"{"event_type":"call.answered"}"#.into(),
            url: "http://primary".into(),
            failover_url: failover.map(str::to_owned),
            timeout_secs: 2,
            attempts: 0,
            next_attempt_at: 0,
            lane: 0,
        }
    }

    #[test]
    fn three_primary_attempts_then_alternate_with_the_failover() {
        let e = event(Some("http://failover"));
        let targets: Vec<&str> = (1..=7).map(|a| target_url(&e, a)).collect();
        assert_eq!(
            targets,
            [
                "http://primary",
                "http://primary",
                "http://primary",
                "http://failover",
                "http://primary",
                "http://failover",
                "http://primary"
            ]
        );
        let no_failover = event(None);
        assert!((1..=7).all(|a| target_url(&no_failover, a) == "http://primary"));
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|a| Backoff::default().after(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn envelope_keeps_data_verbatim_and_adds_meta() {
        let body = envelope(&event(None), 2, "http://primary");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["event_type"], "call.answered");
        assert_eq!(v["meta"]["attempt"], 2);
        assert_eq!(v["meta"]["delivered_to"], "http://primary");
    }
}
