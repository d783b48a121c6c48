//! Everything Bond keeps in the database, one file per resource. Handlers call
//! these methods; no SQL lives outside this module.

mod audit;
mod calls;
mod commands;
mod connections;
mod organizations;
mod outbox;
mod recordings;
mod translations;
mod voice_config;

pub use audit::AuditEntry;
pub use calls::{CallRecord, NewCall};
pub use commands::{Claim, IdempotencyScope};
pub use connections::{Connection, ConnectionFields};
pub use organizations::{ApiKeyRecord, Organization};
pub use outbox::{Delivery, NewEvent, PendingEvent};
pub use recordings::RecordingRecord;
pub use translations::{NewSegment, Segment};
pub use voice_config::VoiceConfig;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::db::{Database, DbError};

/// The database, with the outbox sequence this process hands out.
#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    next_seq: Arc<AtomicI64>,
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
    /// Wrap a migrated database. Bond assumes one instance writes the outbox of a database.
    pub async fn new(db: Database) -> Result<Self, DbError> {
        let max: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM webhook_outbox").fetch_one(db.pool()).await?;
        Ok(Self { db, next_seq: Arc::new(AtomicI64::new(max.unwrap_or(0) + 1)) })
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        Ok(self.db.pool().begin().await?)
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

    fn next_seq(&self) -> i64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }
}

fn bool_to_db(b: bool) -> i64 {
    i64::from(b)
}
