//! What Bond keeps. This crate owns the database ([`db`]: sqlx on SQLite or
//! Postgres, the migrations), one file per resource on [`Store`], the webhook
//! outbox and its delivery ([`webhooks`]), the egress guard outgoing requests
//! pass ([`egress`]) and whom their TLS trusts ([`trust`]), API keys and roles
//! ([`keys`]) and the wall clock records are stamped with ([`clock`]). No SQL
//! lives outside it. Its call ids and endings are `bond-call-core`'s; it must
//! never import call control (`bond-calls`), the leg adapters, HTTP or the
//! media engine.

pub mod clock;
pub mod db;
pub mod egress;
pub mod keys;
pub mod trust;
pub mod webhooks;

mod audit;
mod calls;
mod commands;
mod connections;
mod nodes;
mod organizations;
mod outbox;
mod recordings;
mod revocations;
mod sip_slots;
mod translations;
mod voice_config;

pub use audit::AuditEntry;
pub use bond_call_core::{CallId, Ending};
pub use calls::{CallRecord, NewCall};
pub use commands::{Claim, IdempotencyScope};
pub use connections::{Connection, ConnectionFields};
pub use organizations::{ApiKeyRecord, Organization};
pub use outbox::{partition_of, Delivery, NewEvent, PendingEvent, OUTBOX_CHANNEL, PARTITIONS};
pub use recordings::RecordingRecord;
pub use revocations::ApiKeyListing;
pub use translations::{NewSegment, Segment};
pub use voice_config::VoiceConfig;

/// A database transaction: what several changes that must land together are written in.
pub type Tx = Transaction<'static, Any>;

use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::db::{Database, DbError};

/// The database, and the node (`cluster.node_id`) this process is: calls it
/// places are stamped with it.
#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    node_id: Arc<str>,
}

/// A page request (Telnyx `page[number]`, `page[size]`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: i64,
    pub size: i64,
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.number - 1) * self.size
    }
}

impl Store {
    /// Wrap a migrated database, as node `local` (one node on its own database).
    pub async fn new(db: Database) -> Result<Self, DbError> {
        Ok(Self { db, node_id: Arc::from("local") })
    }

    /// The same database, as node `node_id`.
    pub fn for_node(self, node_id: &str) -> Self {
        Self { node_id: Arc::from(node_id), ..self }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// A new transaction. `BEGIN` runs in a task of its own, so a caller that
    /// is dropped half-way (an HTTP client that disconnects) cannot leave a
    /// connection inside a transaction nothing will end: sqlx's `BEGIN` is not
    /// cancel-safe on Postgres (transact-rs/sqlx#4393), and every later
    /// statement on that connection would sit uncommitted in it.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        let pool = self.db.pool().clone();
        let begun = tokio::spawn(async move { pool.begin().await }).await;
        Ok(begun.map_err(|e| DbError::Task(format!("BEGIN: {e}")))??)
    }

    /// Commit `tx` in a task of its own: once started, a commit finishes even
    /// if its caller is dropped, and the caller answers only after it has.
    pub async fn commit(&self, tx: Transaction<'static, Any>) -> Result<(), DbError> {
        let committed = tokio::spawn(tx.commit()).await;
        Ok(committed.map_err(|e| DbError::Task(format!("COMMIT: {e}")))??)
    }

    /// One page of an organization's rows of `table` in `order_by` order, and the total count.
    async fn page_of<T>(
        &self,
        table: &str,
        columns: &str,
        order_by: &str,
        organization_id: &str,
        page: Page,
        from_row: fn(&AnyRow) -> Result<T, DbError>,
    ) -> Result<(Vec<T>, i64), DbError> {
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE organization_id = $1"))
                .bind(organization_id)
                .fetch_one(self.db.pool())
                .await?;
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM {table} WHERE organization_id = $1 ORDER BY {order_by} LIMIT $2 OFFSET $3"
        ))
        .bind(organization_id)
        .bind(page.size)
        .bind(page.offset())
        .fetch_all(self.db.pool())
        .await?;
        Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
    }
}

fn bool_to_db(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tests::test_urls;

    /// A setting written outside any transaction, read back on a fresh pool:
    /// visible there only if it was really committed.
    async fn durable(url: &str, key: &str) -> bool {
        let other = Database::connect(url).await.unwrap();
        let found: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(other.pool())
            .await
            .unwrap();
        other.close().await;
        found.is_some()
    }

    #[tokio::test]
    async fn a_begin_or_commit_whose_caller_is_dropped_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        for url in test_urls(dir.path()) {
            let store = Store::new(Database::connect(&url).await.unwrap()).await.unwrap();
            let key = format!("probe-{}", uuid::Uuid::new_v4().simple());
            // Callers dropped at every point of BEGIN and COMMIT (a client that went away).
            for polls in 0..200u32 {
                let begin = store.begin();
                let _ = tokio::time::timeout(std::time::Duration::from_micros(u64::from(polls)), begin).await;
                if let Ok(Ok(tx)) =
                    tokio::time::timeout(std::time::Duration::from_millis(50), store.begin()).await
                {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_micros(u64::from(polls)),
                        store.commit(tx),
                    )
                    .await;
                }
            }
            // Plain writes on whichever connections the pool lends (Postgres has ten).
            let writes =
                (0..30).map(|n| {
                    let (store, key) = (store.clone(), format!("{key}-{n}"));
                    async move {
                        store.db().setting_or_insert(&key, "v", "2026-11-25T00:00:00Z").await.map(|_| key)
                    }
                });
            for key in futures_util::future::join_all(writes).await {
                let key = key.unwrap();
                assert!(
                    durable(&url, &key).await,
                    "{url}: a write after dropped transactions was not committed"
                );
            }
        }
    }
}
