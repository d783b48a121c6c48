use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Page, Store};
use crate::db::DbError;

/// One mutating API call: who, what, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    #[schema(value_type = String)]
    pub record_type: &'static str,
    pub api_key_id: String,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub created_at: String,
    #[serde(skip)]
    pub organization_id: String,
}

impl Store {
    pub async fn record_audit(&self, e: &AuditEntry) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO audit_log (id, organization_id, api_key_id, method, path, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(&e.organization_id)
        .bind(&e.api_key_id)
        .bind(&e.method)
        .bind(&e.path)
        .bind(e.status)
        .bind(&e.created_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Newest first.
    pub async fn list_audit(
        &self,
        organization_id: &str,
        page: Page,
    ) -> Result<(Vec<AuditEntry>, i64), DbError> {
        self.page_of("audit_log", COLUMNS, "created_at DESC, id", organization_id, page, from_row).await
    }
}

const COLUMNS: &str = "id, organization_id, api_key_id, method, path, status, created_at";

fn from_row(r: &AnyRow) -> Result<AuditEntry, DbError> {
    Ok(AuditEntry {
        id: r.try_get(0)?,
        record_type: "audit_event",
        organization_id: r.try_get(1)?,
        api_key_id: r.try_get(2)?,
        method: r.try_get(3)?,
        path: r.try_get(4)?,
        status: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}
