//! Idempotency: `command_id` per call action, `Idempotency-Key` per API key on dial.
//! Both keep the first answer (status and body) and replay it.

use sqlx::Row;

use super::Store;
use crate::clock::rfc3339_now;
use crate::db::DbError;

/// A claim on an `Idempotency-Key` unfinished this long is taken over.
pub const ABANDONED_AFTER_SECS: i64 = 300;

/// Whose `Idempotency-Key` it is: keys are scoped per API key (an agent's key
/// never replays an admin's answer).
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyScope<'a> {
    pub organization_id: &'a str,
    pub api_key_id: &'a str,
    pub key: &'a str,
}

/// What [`Store::claim_idempotency_key`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request is the first with the key: place the call.
    Mine,
    /// The first request's answer.
    Replay(u16, String),
    /// The first request is still being answered.
    InProgress,
    /// The key was first used with another request body.
    Mismatch,
}

impl Store {
    /// The stored (status, body) of an earlier command with this id on this call.
    pub async fn command_result(
        &self,
        call: &str,
        command_id: &str,
    ) -> Result<Option<(u16, String)>, DbError> {
        self.stored_answer(
            "SELECT status, response FROM call_commands WHERE call_control_id = $1 AND command_id = $2",
            call,
            command_id,
        )
        .await
    }

    pub async fn save_command_result(
        &self,
        call: &str,
        command_id: &str,
        action: &str,
        status: u16,
        body: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO call_commands (call_control_id, command_id, action, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (call_control_id, command_id) DO NOTHING",
        )
        .bind(call)
        .bind(command_id)
        .bind(action)
        .bind(i64::from(status))
        .bind(body)
        .bind(rfc3339_now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Claim `key` for a dial by `api_key_id` of the request hashed `request_hash`,
    /// before the call is placed: the first request owns it ([`Claim::Mine`],
    /// finished with [`Store::finish_idempotent`] or given back with
    /// [`Store::release_idempotency_key`]); the others replay its answer, or
    /// hear that it is still being answered or that their body differs. A claim
    /// left unfinished for [`ABANDONED_AFTER_SECS`] (its Bond died) is taken over.
    pub async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope<'_>,
        request_hash: &str,
    ) -> Result<Claim, DbError> {
        let now = rfc3339_now();
        let inserted = sqlx::query(
            "INSERT INTO idempotent_requests \
             (organization_id, api_key_id, idempotency_key, request_hash, status, response, created_at) \
             VALUES ($1, $2, $3, $4, 0, '', $5) ON CONFLICT (organization_id, api_key_id, idempotency_key) DO NOTHING",
        )
        .bind(scope.organization_id)
        .bind(scope.api_key_id)
        .bind(scope.key)
        .bind(request_hash)
        .bind(&now)
        .execute(self.db.pool())
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Mine);
        }
        let abandoned = crate::clock::rfc3339_secs_ago(ABANDONED_AFTER_SECS);
        let taken_over = sqlx::query(
            "UPDATE idempotent_requests SET request_hash = $4, created_at = $5 \
             WHERE organization_id = $1 AND api_key_id = $2 AND idempotency_key = $3 AND status = 0 AND created_at < $6",
        )
        .bind(scope.organization_id)
        .bind(scope.api_key_id)
        .bind(scope.key)
        .bind(request_hash)
        .bind(&now)
        .bind(&abandoned)
        .execute(self.db.pool())
        .await?;
        if taken_over.rows_affected() == 1 {
            return Ok(Claim::Mine);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotent_requests \
             WHERE organization_id = $1 AND api_key_id = $2 AND idempotency_key = $3",
        )
        .bind(scope.organization_id)
        .bind(scope.api_key_id)
        .bind(scope.key)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            // Given back between the insert and the read: the caller may try again.
            return Ok(Claim::InProgress);
        };
        let (hash, status, response): (String, i64, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        Ok(if hash != request_hash {
            Claim::Mismatch
        } else if status == 0 {
            Claim::InProgress
        } else {
            Claim::Replay(u16::try_from(status).unwrap_or(200), response)
        })
    }

    /// Keep the answer of the request that owns the claim.
    pub async fn finish_idempotent(
        &self,
        scope: &IdempotencyScope<'_>,
        status: u16,
        body: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE idempotent_requests SET status = $4, response = $5 \
             WHERE organization_id = $1 AND api_key_id = $2 AND idempotency_key = $3",
        )
        .bind(scope.organization_id)
        .bind(scope.api_key_id)
        .bind(scope.key)
        .bind(i64::from(status))
        .bind(body)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Give a claim back (its request failed): the key may be used again.
    pub async fn release_idempotency_key(&self, scope: &IdempotencyScope<'_>) -> Result<(), DbError> {
        sqlx::query(
            "DELETE FROM idempotent_requests \
             WHERE organization_id = $1 AND api_key_id = $2 AND idempotency_key = $3 AND status = 0",
        )
        .bind(scope.organization_id)
        .bind(scope.api_key_id)
        .bind(scope.key)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn stored_answer(&self, sql: &str, a: &str, b: &str) -> Result<Option<(u16, String)>, DbError> {
        let row = sqlx::query(sql).bind(a).bind(b).fetch_optional(self.db.pool()).await?;
        row.map(|r| Ok((u16::try_from(r.try_get::<i64, _>(0)?).unwrap_or(200), r.try_get(1)?))).transpose()
    }
}
