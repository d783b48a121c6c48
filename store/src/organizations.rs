use base64::Engine as _;
use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::clock::rfc3339_now;
use crate::db::DbError;
use crate::keys::{generate_key, hash_key, key_prefix, KeyOwner, Role};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// An API key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub organization_id: String,
    pub role: String,
    pub prefix: String,
    pub name: String,
    pub created_at: String,
}

impl Store {
    pub async fn create_organization(&self, name: &str) -> Result<Organization, DbError> {
        let org = Organization {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            created_at: rfc3339_now(),
        };
        // The organization and its own webhook signing key (webhooks/org_keys.rs), together.
        let secret: [u8; 32] = rand::random();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(&org.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO organization_signing_keys (organization_id, secret, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&org.id)
        .bind(base64::engine::general_purpose::STANDARD.encode(secret))
        .bind(&org.created_at)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(org)
    }

    pub async fn list_organizations(&self) -> Result<Vec<Organization>, DbError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM organizations ORDER BY created_at")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| Ok(Organization { id: r.try_get(0)?, name: r.try_get(1)?, created_at: r.try_get(2)? }))
            .collect()
    }

    pub async fn organization_exists(&self, id: &str) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        Ok(n > 0)
    }

    pub async fn has_organizations(&self) -> Result<bool, DbError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(self.db.pool()).await?;
        Ok(n > 0)
    }

    /// Make a new key; the plaintext is returned once and never stored.
    pub async fn create_api_key(
        &self,
        organization_id: &str,
        role: Role,
        name: &str,
    ) -> Result<(ApiKeyRecord, String), DbError> {
        let key = generate_key();
        let record = self.insert_api_key(organization_id, role, name, &key).await?;
        Ok((record, key))
    }

    /// Store a key chosen elsewhere (the bootstrap key).
    pub async fn insert_api_key(
        &self,
        organization_id: &str,
        role: Role,
        name: &str,
        key: &str,
    ) -> Result<ApiKeyRecord, DbError> {
        let record = ApiKeyRecord {
            id: uuid::Uuid::new_v4().to_string(),
            organization_id: organization_id.to_owned(),
            role: role.as_str().to_owned(),
            prefix: key_prefix(key),
            name: name.to_owned(),
            created_at: rfc3339_now(),
        };
        sqlx::query(
            "INSERT INTO api_keys (id, organization_id, role, key_hash, prefix, name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.organization_id)
        .bind(&record.role)
        .bind(hash_key(key))
        .bind(&record.prefix)
        .bind(&record.name)
        .bind(&record.created_at)
        .execute(self.db.pool())
        .await?;
        Ok(record)
    }

    /// Whom a live (not revoked) key belongs to, by its hash.
    pub async fn key_owner(&self, key_hash: &str) -> Result<Option<KeyOwner>, DbError> {
        let row = sqlx::query(
            "SELECT organization_id, id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get(2)?;
        Ok(Role::parse(&role).map(|role| KeyOwner {
            organization_id: row.try_get(0).unwrap_or_default(),
            api_key_id: row.try_get(1).unwrap_or_default(),
            role,
        }))
    }

    /// On an empty database, make the first organization with `key` as its admin key.
    /// Returns the organization when it did.
    pub async fn bootstrap(&self, key: &str) -> Result<Option<Organization>, DbError> {
        if self.has_organizations().await? {
            return Ok(None);
        }
        let org = self.create_organization("default").await?;
        self.insert_api_key(&org.id, Role::Admin, "bootstrap", key).await?;
        Ok(Some(org))
    }
}
