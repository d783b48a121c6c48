//! Revoking credentials: API keys (marked `revoked_at`, refused from then on)
//! and agent tokens (listed in `revoked_agent_tokens` until they would expire).

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::clock::rfc3339_now;
use crate::db::DbError;

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyListing {
    pub id: String,
    #[schema(value_type = String)]
    pub record_type: &'static str,
    pub role: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl Store {
    /// The organization's API keys, oldest first.
    pub async fn list_api_keys(&self, organization_id: &str) -> Result<Vec<ApiKeyListing>, DbError> {
        let rows = sqlx::query(
            "SELECT id, role, prefix, name, created_at, revoked_at FROM api_keys \
             WHERE organization_id = $1 ORDER BY created_at, id",
        )
        .bind(organization_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKeyListing {
                    id: r.try_get(0)?,
                    record_type: "api_key",
                    role: r.try_get(1)?,
                    prefix: r.try_get(2)?,
                    name: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    revoked_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Revoke key `id` of `organization_id` (any organization's when `None`:
    /// `bond admin`); false when there is no such key not yet revoked.
    pub async fn revoke_api_key(&self, organization_id: Option<&str>, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND ($3 IS NULL OR organization_id = $3)",
        )
        .bind(rfc3339_now())
        .bind(id)
        .bind(organization_id)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revoke agent token `id` of `organization_id`, which would expire at `expires_at`.
    pub async fn revoke_agent_token(
        &self,
        organization_id: &str,
        id: &str,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO revoked_agent_tokens (id, organization_id, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(organization_id)
        .bind(expires_at)
        .bind(rfc3339_now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Whether agent token `id` of `organization_id` has been revoked.
    pub async fn agent_token_revoked(&self, organization_id: &str, id: &str) -> Result<bool, DbError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM revoked_agent_tokens WHERE id = $1 AND organization_id = $2")
                .bind(id)
                .bind(organization_id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(found.is_some())
    }
}
