//! Idempotency: `command_id` per call action, `Idempotency-Key` per organization on dial.
//! Both keep the first answer (status and body) and replay it.

use sqlx::Row;

use super::Store;
use crate::clock::rfc3339_now;
use crate::db::DbError;

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

    /// The stored (status, body) of an earlier dial with this `Idempotency-Key`.
    pub async fn idempotent_result(
        &self,
        organization_id: &str,
        key: &str,
    ) -> Result<Option<(u16, String)>, DbError> {
        self.stored_answer(
            "SELECT status, response FROM idempotency_keys WHERE organization_id = $1 AND idempotency_key = $2",
            organization_id,
            key,
        )
        .await
    }

    pub async fn save_idempotent_result(
        &self,
        organization_id: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO idempotency_keys (organization_id, idempotency_key, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (organization_id, idempotency_key) DO NOTHING",
        )
        .bind(organization_id)
        .bind(key)
        .bind(i64::from(status))
        .bind(body)
        .bind(rfc3339_now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn stored_answer(&self, sql: &str, a: &str, b: &str) -> Result<Option<(u16, String)>, DbError> {
        let row = sqlx::query(sql).bind(a).bind(b).fetch_optional(self.db.pool()).await?;
        row.map(|r| Ok((u16::try_from(r.try_get::<i64, _>(0)?).unwrap_or(200), r.try_get(1)?))).transpose()
    }
}
