//! Delivers the outbox. One worker, oldest event first; a call's events go out
//! in order (a failed event holds back the later events of the same call, and
//! only those: other calls' events are read past it), and up to [`CONCURRENCY`]
//! calls' events at once. A full batch is followed by the next at once. Each
//! POST carries Telnyx's envelope with `meta.attempt` and `meta.delivered_to`
//! and an Ed25519 signature. Failed attempts back off (by default 1 s doubling to 60 s):
//! attempts 1-3 go to the primary URL, then the failover URL when there is one,
//! alternating after that. Nothing is dropped: an event stays until delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::signing::{WebhookSigner, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::clock::{unix_millis, unix_seconds};
use crate::db::DbError;
use crate::store::{Delivery, PendingEvent, Store};

const BATCH: i64 = 200;
/// Calls whose events are delivered side by side.
const CONCURRENCY: usize = 16;
const IDLE_POLL: Duration = Duration::from_secs(5);
const PRIMARY_ATTEMPTS: i64 = 3;

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
    signer: WebhookSigner,
    client: reqwest::Client,
    backoff: Backoff,
}

/// The delivery loop; returns when `shutdown` turns true.
pub async fn run(
    store: Store,
    signer: WebhookSigner,
    notifier: WebhookNotifier,
    backoff: Backoff,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = crate::egress::client(reqwest::Client::builder().user_agent("bond-webhooks"))
        .build()
        .unwrap_or_default();
    let worker = Worker { store, signer, client, backoff };
    loop {
        let wait = match worker.deliver_due().await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "webhook outbox unreadable; retrying");
                IDLE_POLL
            }
        };
        tokio::select! {
            () = notifier.0.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

impl Worker {
    /// Try every due event once; returns how long until the next one is due.
    async fn deliver_due(&self) -> Result<Duration, DbError> {
        use futures_util::StreamExt;
        let pending = self.store.due_events(BATCH, unix_millis()).await?;
        let full = pending.len() as i64 == BATCH;
        // Each call's events in order (account events together), calls side by side.
        let mut calls: Vec<Vec<PendingEvent>> = Vec::new();
        let mut index: HashMap<Option<String>, usize> = HashMap::new();
        for event in pending {
            let i = *index.entry(event.call_control_id.clone()).or_insert_with(|| {
                calls.push(Vec::new());
                calls.len() - 1
            });
            calls[i].push(event);
        }
        let mut results =
            futures_util::stream::iter(calls.into_iter().map(|events| self.deliver_in_order(events)))
                .buffer_unordered(CONCURRENCY);
        let mut next_due: Option<i64> = None;
        let mut delivered: Vec<Delivery> = Vec::new();
        let mut failed: Option<DbError> = None;
        while let Some((done, result)) = results.next().await {
            delivered.extend(done);
            match result {
                Ok(retry_at) => next_due = next_due.into_iter().chain(retry_at).min(),
                Err(e) => failed = Some(e),
            }
        }
        // Marked together once the batch is done (at least once: a crash before
        // this line sends the batch's events again, with the same ids).
        self.store.mark_delivered(&delivered).await?;
        if let Some(e) = failed {
            return Err(e);
        }
        if full {
            // More may be due; those that failed just now are not, and are read past.
            return Ok(Duration::ZERO);
        }
        // Events that were not due yet were not read: the earliest of those too.
        let waiting = self.store.next_retry_at(unix_millis()).await?;
        Ok(match next_due.into_iter().chain(waiting).min() {
            Some(at) => Duration::from_millis((at - unix_millis()).clamp(10, 5_000) as u64),
            None => IDLE_POLL,
        })
    }

    /// One call's events in order, up to the first that is not delivered now
    /// (it holds the rest back): those delivered, and when that one is due again.
    async fn deliver_in_order(
        &self,
        events: Vec<PendingEvent>,
    ) -> (Vec<Delivery>, Result<Option<i64>, DbError>) {
        let mut delivered = Vec::with_capacity(events.len());
        for event in events {
            if event.next_attempt_at > unix_millis() {
                return (delivered, Ok(Some(event.next_attempt_at)));
            }
            match self.attempt(&event).await {
                Ok(Ok(delivery)) => delivered.push(delivery),
                Ok(Err(retry_at)) => return (delivered, Ok(Some(retry_at))),
                Err(e) => return (delivered, Err(e)),
            }
        }
        (delivered, Ok(None))
    }
}

impl Worker {
    /// One delivery attempt: delivered, or when to try again (unix ms).
    async fn attempt(&self, event: &PendingEvent) -> Result<Result<Delivery, i64>, DbError> {
        let (store, signer, client) = (&self.store, &self.signer, &self.client);
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
            seq: 1,
            call_control_id: None,
            data: r#"{"event_type":"call.answered"}"#.into(),
            url: "http://primary".into(),
            failover_url: failover.map(str::to_owned),
            timeout_secs: 2,
            attempts: 0,
            next_attempt_at: 0,
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
