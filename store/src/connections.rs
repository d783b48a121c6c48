use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{bool_to_db, Page, Store};
use crate::clock::rfc3339_now;
use crate::db::DbError;

/// A call control application (a Telnyx "connection").
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Connection {
    pub id: String,
    #[schema(value_type = String)]
    pub record_type: &'static str,
    #[serde(skip)]
    pub organization_id: String,
    pub application_name: String,
    pub webhook_event_url: String,
    pub webhook_event_failover_url: Option<String>,
    pub webhook_timeout_secs: Option<i64>,
    #[schema(value_type = String)]
    pub webhook_api_version: &'static str,
    pub active: bool,
    /// Telnyx's `inbound` / `outbound` objects and Bond's own `bond` settings, as given.
    #[serde(flatten)]
    #[schema(ignore)]
    pub settings: serde_json::Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// Settings that are credentials (a carrier API key, trunk and digest
/// passwords, media-stream tokens), wherever they sit in `inbound`,
/// `outbound` or `bond`.
const SECRET_KEYS: &[&str] = &["api_key", "password", "telnyx_stream_token", "twilio_auth_token"];

/// What a credential reads as to those who may not see it.
pub const REDACTED: &str = "[redacted]";

impl Connection {
    /// The connection with every credential in its settings replaced by [`REDACTED`].
    pub fn redacted(mut self) -> Self {
        fn redact(value: &mut Value) {
            match value {
                Value::Object(map) => {
                    for (key, value) in map.iter_mut() {
                        if SECRET_KEYS.contains(&key.as_str()) && !value.is_null() {
                            *value = Value::String(REDACTED.to_owned());
                        } else {
                            redact(value);
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(redact),
                _ => {}
            }
        }
        self.settings.values_mut().for_each(redact);
        self
    }
}

/// The writable fields (already validated by the HTTP layer).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionFields {
    pub application_name: String,
    pub webhook_event_url: String,
    pub webhook_event_failover_url: Option<String>,
    pub webhook_timeout_secs: Option<i64>,
    pub active: bool,
    pub settings: serde_json::Map<String, Value>,
}

const COLUMNS: &str =
    "id, organization_id, application_name, webhook_event_url, webhook_event_failover_url, \
                       webhook_timeout_secs, active, settings, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<Connection, DbError> {
    let settings: String = row.try_get(7)?;
    let active: i64 = row.try_get(6)?;
    Ok(Connection {
        id: row.try_get(0)?,
        record_type: "call_control_application",
        organization_id: row.try_get(1)?,
        application_name: row.try_get(2)?,
        webhook_event_url: row.try_get(3)?,
        webhook_event_failover_url: row.try_get(4)?,
        webhook_timeout_secs: row.try_get(5)?,
        webhook_api_version: "2",
        active: active != 0,
        settings: serde_json::from_str(&settings).unwrap_or_default(),
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    })
}

impl Store {
    pub async fn create_connection(
        &self,
        organization_id: &str,
        f: ConnectionFields,
    ) -> Result<Connection, DbError> {
        // Telnyx connection ids are decimal strings.
        let id = (u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default())
            >> 2)
            .to_string();
        let now = rfc3339_now();
        sqlx::query(&format!(
            "INSERT INTO connections ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&id)
        .bind(organization_id)
        .bind(&f.application_name)
        .bind(&f.webhook_event_url)
        .bind(&f.webhook_event_failover_url)
        .bind(f.webhook_timeout_secs)
        .bind(bool_to_db(f.active))
        .bind(Value::Object(f.settings.clone()).to_string())
        .bind(&now)
        .bind(&now)
        .execute(self.db.pool())
        .await?;
        Ok(Connection {
            id,
            record_type: "call_control_application",
            organization_id: organization_id.to_owned(),
            application_name: f.application_name,
            webhook_event_url: f.webhook_event_url,
            webhook_event_failover_url: f.webhook_event_failover_url,
            webhook_timeout_secs: f.webhook_timeout_secs,
            webhook_api_version: "2",
            active: f.active,
            settings: f.settings,
            created_at: now.clone(),
            updated_at: now,
        })
    }

    /// A connection by id alone (a carrier's media stream names it in its URL).
    pub async fn connection_by_id(&self, id: &str) -> Result<Option<Connection>, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM connections WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Active connections, of every organization, whose settings mention SIP
    /// (the trunks an INVITE may belong to).
    pub async fn sip_connections(&self) -> Result<Vec<Connection>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connections WHERE active = 1 AND settings LIKE '%\"sip\"%' ORDER BY created_at, id"
        ))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// A connection of `organization_id`; another organization's is `None`, like a missing one.
    pub async fn get_connection(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Connection>, DbError> {
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM connections WHERE id = $1 AND organization_id = $2"))
                .bind(id)
                .bind(organization_id)
                .fetch_optional(self.db.pool())
                .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_connections(
        &self,
        organization_id: &str,
        page: Page,
    ) -> Result<(Vec<Connection>, i64), DbError> {
        self.page_of("connections", COLUMNS, "created_at, id", organization_id, page, from_row).await
    }

    pub async fn update_connection(
        &self,
        organization_id: &str,
        id: &str,
        f: ConnectionFields,
    ) -> Result<Option<Connection>, DbError> {
        let done = sqlx::query(
            "UPDATE connections SET application_name = $1, webhook_event_url = $2, webhook_event_failover_url = $3, \
             webhook_timeout_secs = $4, active = $5, settings = $6, updated_at = $7 \
             WHERE id = $8 AND organization_id = $9",
        )
        .bind(&f.application_name)
        .bind(&f.webhook_event_url)
        .bind(&f.webhook_event_failover_url)
        .bind(f.webhook_timeout_secs)
        .bind(bool_to_db(f.active))
        .bind(Value::Object(f.settings).to_string())
        .bind(rfc3339_now())
        .bind(id)
        .bind(organization_id)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_connection(organization_id, id).await
    }

    /// Delete a connection with no calls; `Err` carries how many calls still refer to it.
    pub async fn delete_connection(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Result<Option<Connection>, i64>, DbError> {
        let Some(existing) = self.get_connection(organization_id, id).await? else { return Ok(Ok(None)) };
        let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE connection_id = $1")
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        if calls > 0 {
            return Ok(Err(calls));
        }
        sqlx::query("DELETE FROM connections WHERE id = $1 AND organization_id = $2")
            .bind(id)
            .bind(organization_id)
            .execute(self.db.pool())
            .await?;
        Ok(Ok(Some(existing)))
    }
}
