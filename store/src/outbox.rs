//! The webhook outbox. An event row is written in the transaction that changes
//! the state it reports; the delivery worker reads rows in `seq` order. The
//! database hands out `seq` (any node may write), and each row carries its
//! delivery partition (`lane`: its call's, so a call's events stay in one).

use crate::CallId;
use std::collections::BTreeMap;

use serde_json::{json, Value};
use sqlx::{Any, Row, Transaction};

use super::Store;
use crate::clock::{rfc3339_now, unix_millis};
use crate::db::{Backend, DbError};

/// The Postgres channel an enqueue notifies at commit.
pub const OUTBOX_CHANNEL: &str = "bond_outbox";

/// An event to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent<'a> {
    pub organization_id: &'a str,
    pub call_control_id: Option<&'a CallId>,
    pub event_type: &'a str,
    pub payload: Value,
    pub url: &'a str,
    pub failover_url: Option<&'a str>,
    pub timeout_secs: i64,
}

/// An event delivered: on which attempt, to which URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub attempts: i64,
    pub delivered_to: String,
}

/// An event waiting for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub id: String,
    pub organization_id: String,
    pub seq: i64,
    pub call_control_id: Option<CallId>,
    /// The envelope's `data` object, exactly as it will be sent.
    pub data: String,
    pub url: String,
    pub failover_url: Option<String>,
    pub timeout_secs: i64,
    pub attempts: i64,
    /// Unix ms before which it is not retried.
    pub next_attempt_at: i64,
    /// Its delivery partition ([`partition_of`]).
    pub lane: i64,
}

/// Delivery partitions: each is delivered by one node at a time.
pub const PARTITIONS: i64 = 64;

/// The partition of a call's events (or of an account event, by its id):
/// FNV-1a of the key, so every node and release computes the same.
pub fn partition_of(key: &str) -> i64 {
    let hash =
        key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % PARTITIONS as u64) as i64
}

/// Undelivered events meeting `condition` (which may use `$2`, `now`), oldest first, `$1` of them.
fn events_sql(condition: &str) -> String {
    format!(
        "SELECT o.id, o.seq, o.call_control_id, o.body, o.url, o.failover_url, o.timeout_secs, o.attempts, \
         o.next_attempt_at, o.organization_id, o.lane FROM webhook_outbox o WHERE o.delivered_at IS NULL AND ({condition}) \
         ORDER BY o.seq LIMIT $1"
    )
}

/// ` AND <column> IN (...)` for `lanes` (numbers, so written inline); nothing for `None`.
fn in_lanes(column: &str, lanes: Option<&[i64]>) -> String {
    lanes.map_or_else(String::new, |lanes| {
        let list: Vec<String> = lanes.iter().map(i64::to_string).collect();
        format!(" AND {column} IN ({})", list.join(", "))
    })
}

fn pending_from_row(r: &sqlx::any::AnyRow) -> Result<PendingEvent, DbError> {
    Ok(PendingEvent {
        id: r.try_get(0)?,
        seq: r.try_get(1)?,
        call_control_id: r.try_get::<Option<String>, _>(2)?.map(CallId::from),
        data: r.try_get(3)?,
        url: r.try_get(4)?,
        failover_url: r.try_get(5)?,
        timeout_secs: r.try_get(6)?,
        attempts: r.try_get(7)?,
        next_attempt_at: r.try_get(8)?,
        organization_id: r.try_get(9)?,
        lane: r.try_get(10)?,
    })
}

impl Store {
    /// Queue an event inside `tx`; returns its id (the envelope's `data.id`).
    pub async fn enqueue_event(
        &self,
        tx: &mut Transaction<'static, Any>,
        e: NewEvent<'_>,
    ) -> Result<String, DbError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = rfc3339_now();
        let data = json!({
            "event_type": e.event_type,
            "id": id,
            "occurred_at": now,
            "record_type": "event",
            "payload": e.payload,
        });
        let lane = partition_of(e.call_control_id.map_or(id.as_str(), CallId::as_str));
        sqlx::query(&format!(
            "INSERT INTO webhook_outbox (id, seq, organization_id, call_control_id, event_type, body, url, \
             failover_url, timeout_secs, attempts, next_attempt_at, created_at, lane) \
             VALUES ($1, {}, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)",
            self.db.next_outbox_seq_sql()
        ))
        .bind(&id)
        .bind(e.organization_id)
        .bind(e.call_control_id.map(CallId::as_str))
        .bind(e.event_type)
        .bind(data.to_string())
        .bind(e.url)
        .bind(e.failover_url)
        .bind(e.timeout_secs)
        .bind(unix_millis())
        .bind(&now)
        .bind(lane)
        .execute(&mut **tx)
        .await?;
        if self.db.backend() == Backend::Postgres {
            // Wakes every node's worker at commit (the owner of `lane` may be another node).
            sqlx::query("SELECT pg_notify($1, '')").bind(OUTBOX_CHANNEL).execute(&mut **tx).await?;
        }
        Ok(id)
    }

    /// Undelivered events, oldest first (including those waiting for a retry).
    pub async fn pending_events(&self, limit: i64) -> Result<Vec<PendingEvent>, DbError> {
        // Every undelivered event (each is attempted at or after i64::MIN).
        self.events_where("o.next_attempt_at >= $2", limit, i64::MIN).await
    }

    /// The undelivered events that may be sent at `now` (unix ms), oldest first:
    /// due, and not behind an earlier event of their call that waits for a retry
    /// (so a connection whose receiver is down holds back its own calls only);
    /// leaving out the calls in `calls` and the events whose primary URL is one
    /// of `urls` (those the worker is busy with); only in `lanes` (`None`: all).
    pub async fn due_events(
        &self,
        limit: i64,
        now: i64,
        calls: &[&str],
        urls: &[&str],
        lanes: Option<&[i64]>,
    ) -> Result<Vec<PendingEvent>, DbError> {
        if lanes.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        // Parameters $1 and $2 are the limit and `now`; the lists follow.
        let list =
            |from: usize, n: usize| (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let mut due = "o.next_attempt_at <= $2 AND (o.call_control_id IS NULL OR NOT EXISTS ( \
                       SELECT 1 FROM webhook_outbox e WHERE e.call_control_id = o.call_control_id \
                       AND e.seq < o.seq AND e.delivered_at IS NULL AND e.next_attempt_at > $2))"
            .to_owned();
        if !calls.is_empty() {
            due.push_str(&format!(
                " AND (o.call_control_id IS NULL OR o.call_control_id NOT IN ({}))",
                list(3, calls.len())
            ));
        }
        if !urls.is_empty() {
            due.push_str(&format!(" AND o.url NOT IN ({})", list(3 + calls.len(), urls.len())));
        }
        due.push_str(&in_lanes("o.lane", lanes));
        let sql = events_sql(&due);
        let query = sqlx::query(&sql).bind(limit).bind(now);
        let query = calls.iter().chain(urls).fold(query, |q, v| q.bind(*v));
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter().map(pending_from_row).collect()
    }

    /// When the next retry in `lanes` (`None`: any) falls due (unix ms), if one waits.
    pub async fn next_retry_at(&self, now: i64, lanes: Option<&[i64]>) -> Result<Option<i64>, DbError> {
        if lanes.is_some_and(<[i64]>::is_empty) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT MIN(next_attempt_at) FROM webhook_outbox WHERE delivered_at IS NULL AND next_attempt_at > $1{}",
            in_lanes("lane", lanes)
        ))
        .bind(now)
        .fetch_one(self.db.pool())
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    async fn events_where(
        &self,
        condition: &str,
        limit: i64,
        now: i64,
    ) -> Result<Vec<PendingEvent>, DbError> {
        let rows =
            sqlx::query(&events_sql(condition)).bind(limit).bind(now).fetch_all(self.db.pool()).await?;
        rows.iter().map(pending_from_row).collect()
    }

    /// Record deliveries: one statement for all those of the same attempt
    /// number and URL (in the steady state, the whole batch).
    pub async fn mark_delivered(&self, deliveries: &[Delivery]) -> Result<(), DbError> {
        let mut groups: BTreeMap<(i64, &str), Vec<&str>> = BTreeMap::new();
        for d in deliveries {
            groups.entry((d.attempts, &d.delivered_to)).or_default().push(&d.id);
        }
        let at = rfc3339_now();
        for ((attempts, delivered_to), ids) in groups {
            let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 4)).collect();
            let sql = format!(
                "UPDATE webhook_outbox SET delivered_at = $1, delivered_to = $2, attempts = $3 WHERE id IN ({})",
                placeholders.join(", ")
            );
            let query = sqlx::query(&sql).bind(&at).bind(delivered_to).bind(attempts);
            ids.iter().fold(query, |q, id| q.bind(*id)).execute(self.db.pool()).await?;
        }
        Ok(())
    }

    pub async fn mark_attempt_failed(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE webhook_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4",
        )
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Rows not yet delivered (for metrics and tests).
    pub async fn undelivered_count(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL")
            .fetch_one(self.db.pool())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;

    #[tokio::test]
    async fn one_batch_of_deliveries_keeps_each_events_own_attempt_and_url() {
        let dir = tempfile::tempdir().unwrap();
        for url in crate::db::tests::test_urls(dir.path()) {
            let store = Store::new(Database::connect(&url).await.unwrap()).await.unwrap();
            let mut tx = store.begin().await.unwrap();
            let mut ids = Vec::new();
            for _ in 0..3 {
                let event = NewEvent {
                    organization_id: "org",
                    call_control_id: None,
                    event_type: "call.initiated",
                    payload: json!({}),
                    url: "http://primary",
                    failover_url: Some("http://failover"),
                    timeout_secs: 5,
                };
                ids.push(store.enqueue_event(&mut tx, event).await.unwrap());
            }
            tx.commit().await.unwrap();
            let delivery = |i: usize, attempts, to: &str| Delivery {
                id: ids[i].clone(),
                attempts,
                delivered_to: to.to_owned(),
            };
            let batch = [
                delivery(0, 1, "http://primary"),
                delivery(1, 4, "http://failover"),
                delivery(2, 1, "http://primary"),
            ];
            store.mark_delivered(&batch).await.unwrap();
            store.mark_delivered(&[]).await.unwrap();

            for d in &batch {
                let row = sqlx::query(
                    "SELECT attempts, delivered_to, delivered_at FROM webhook_outbox WHERE id = $1",
                )
                .bind(&d.id)
                .fetch_one(store.db().pool())
                .await
                .unwrap();
                let delivered_at: Option<String> = row.try_get(2).unwrap();
                let stored: (i64, String, bool) =
                    (row.try_get(0).unwrap(), row.try_get(1).unwrap(), delivered_at.is_some());
                assert_eq!(stored, (d.attempts, d.delivered_to.clone(), true), "{url}");
                sqlx::query("DELETE FROM webhook_outbox WHERE id = $1")
                    .bind(&d.id)
                    .execute(store.db().pool())
                    .await
                    .unwrap();
            }
        }
    }
}
