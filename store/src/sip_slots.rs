//! The SIP calls each connection carries, counted in the database so that a
//! connection's `max_concurrent_calls` holds across every node sharing it.
//! A slot is taken in the transaction that records the call and given back
//! in the one that records its end (the call's own, or its node's reaping).
//! On Postgres a transaction-scoped advisory lock per connection makes the
//! count and the taking one step; SQLite has one writer.

use sqlx::{Any, Transaction};

use super::Store;
use crate::db::{Backend, DbError};
use crate::CallId;

impl Store {
    /// Take a slot of `connection_id` for `call`; false, taking none, when
    /// `limit` of them are taken already.
    pub async fn take_sip_slot(
        &self,
        tx: &mut Transaction<'static, Any>,
        connection_id: &str,
        call: &CallId,
        limit: Option<usize>,
    ) -> Result<bool, DbError> {
        if let Some(limit) = limit {
            if self.db.backend() == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('bond.sip_slots'), hashtext($1))")
                    .bind(connection_id)
                    .execute(&mut **tx)
                    .await?;
            }
            let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sip_slots WHERE connection_id = $1")
                .bind(connection_id)
                .fetch_one(&mut **tx)
                .await?;
            if taken >= limit as i64 {
                return Ok(false);
            }
        }
        sqlx::query("INSERT INTO sip_slots (call_control_id, connection_id) VALUES ($1, $2)")
            .bind(call.as_str())
            .bind(connection_id)
            .execute(&mut **tx)
            .await?;
        Ok(true)
    }

    /// Give back `call`'s slot, if it holds one.
    pub async fn release_sip_slot(
        &self,
        tx: &mut Transaction<'static, Any>,
        call: &CallId,
    ) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sip_slots WHERE call_control_id = $1")
            .bind(call.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
