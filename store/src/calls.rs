use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Page, Store};
use crate::db::DbError;
use crate::CallId;

/// A call as stored and as `GET /v2/calls/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CallRecord {
    pub call_control_id: CallId,
    #[serde(skip)]
    pub organization_id: String,
    pub connection_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    pub direction: String,
    pub state: String,
    pub from: String,
    pub to: String,
    #[serde(skip)]
    pub from_display_name: Option<String>,
    pub client_state: Option<String>,
    #[serde(skip)]
    pub webhook_url: Option<String>,
    #[serde(skip)]
    pub webhook_failover_url: Option<String>,
    #[serde(skip)]
    pub webhook_timeout_secs: i64,
    pub bridged_with: Option<CallId>,
    pub hangup_cause: Option<String>,
    pub hangup_source: Option<String>,
    #[serde(skip)]
    pub time_limit_secs: Option<i64>,
    pub created_at: String,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    #[serde(skip)]
    pub placed_by: Option<String>,
    /// The node that carries its legs; `None` for calls stored before nodes were named.
    #[serde(skip)]
    pub node_id: Option<String>,
    /// What its voice agents used, added up (JSON; `None`: no agent talked on it).
    #[serde(skip)]
    pub assistant_usage: Option<serde_json::Value>,
}

impl CallRecord {
    pub fn is_alive(&self) -> bool {
        self.ended_at.is_none()
    }
}

/// What dialing stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    pub call_control_id: CallId,
    pub organization_id: String,
    pub connection_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    pub direction: &'static str,
    pub from: String,
    pub to: String,
    pub from_display_name: Option<String>,
    pub client_state: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_failover_url: Option<String>,
    pub webhook_timeout_secs: i64,
    pub time_limit_secs: Option<i64>,
    pub created_at: String,
    /// The principal that placed it (`Principal::api_key_id`); `None` for calls that came in.
    pub placed_by: Option<String>,
}

const COLUMNS: &str = "call_control_id, organization_id, connection_id, call_leg_id, call_session_id, direction, \
                       state, from_number, to_number, from_display_name, client_state, webhook_url, \
                       webhook_failover_url, webhook_timeout_secs, bridged_with, hangup_cause, hangup_source, time_limit_secs, \
                       created_at, answered_at, ended_at, placed_by, node_id, assistant_usage";

fn from_row(r: &AnyRow) -> Result<CallRecord, DbError> {
    Ok(CallRecord {
        call_control_id: CallId::from(r.try_get::<String, _>(0)?),
        organization_id: r.try_get(1)?,
        connection_id: r.try_get(2)?,
        call_leg_id: r.try_get(3)?,
        call_session_id: r.try_get(4)?,
        direction: r.try_get(5)?,
        state: r.try_get(6)?,
        from: r.try_get(7)?,
        to: r.try_get(8)?,
        from_display_name: r.try_get(9)?,
        client_state: r.try_get(10)?,
        webhook_url: r.try_get(11)?,
        webhook_failover_url: r.try_get(12)?,
        webhook_timeout_secs: r.try_get(13)?,
        bridged_with: r.try_get::<Option<String>, _>(14)?.map(CallId::from),
        hangup_cause: r.try_get(15)?,
        hangup_source: r.try_get(16)?,
        time_limit_secs: r.try_get(17)?,
        created_at: r.try_get(18)?,
        answered_at: r.try_get(19)?,
        ended_at: r.try_get(20)?,
        placed_by: r.try_get(21)?,
        node_id: r.try_get(22)?,
        // Written by Bond alone; text that is no JSON would be a bug, shown as none.
        assistant_usage: r
            .try_get::<Option<String>, _>(23)?
            .and_then(|text| serde_json::from_str(&text).ok()),
    })
}

impl Store {
    /// Store a new call, carried by this node; returns it as stored (one round trip: `RETURNING`).
    pub async fn insert_call(
        &self,
        tx: &mut Transaction<'static, Any>,
        call: &NewCall,
    ) -> Result<CallRecord, DbError> {
        let row = sqlx::query(&format!(
            "INSERT INTO calls (call_control_id, organization_id, connection_id, call_leg_id, call_session_id, \
             direction, state, from_number, to_number, from_display_name, client_state, webhook_url, \
             webhook_failover_url, webhook_timeout_secs, time_limit_secs, created_at, placed_by, node_id) \
             VALUES ($1, $2, $3, $4, $5, $6, 'initiated', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING {COLUMNS}"
        ))
        .bind(call.call_control_id.as_str())
        .bind(&call.organization_id)
        .bind(&call.connection_id)
        .bind(&call.call_leg_id)
        .bind(&call.call_session_id)
        .bind(call.direction)
        .bind(&call.from)
        .bind(&call.to)
        .bind(&call.from_display_name)
        .bind(&call.client_state)
        .bind(&call.webhook_url)
        .bind(&call.webhook_failover_url)
        .bind(call.webhook_timeout_secs)
        .bind(call.time_limit_secs)
        .bind(&call.created_at)
        .bind(&call.placed_by)
        .bind(self.node_id())
        .fetch_one(&mut **tx)
        .await?;
        from_row(&row)
    }

    /// A call of `organization_id`; another organization's is `None`, like a missing one.
    pub async fn get_call(&self, organization_id: &str, id: &CallId) -> Result<Option<CallRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM calls WHERE call_control_id = $1 AND organization_id = $2"
        ))
        .bind(id.as_str())
        .bind(organization_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A call by id inside a transaction, whatever its organization.
    pub async fn get_call_tx(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &CallId,
    ) -> Result<Option<CallRecord>, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM calls WHERE call_control_id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Read `id` inside `tx` and hold its row until `tx` ends: a writer that
    /// must not interleave with the call's end ([`mark_ended`](Self::mark_ended)
    /// takes the same row) reads it this way, and sees the end if it came first.
    pub async fn lock_call(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &CallId,
    ) -> Result<Option<CallRecord>, DbError> {
        let row = sqlx::query(&format!(
            "UPDATE calls SET state = state WHERE call_control_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Live calls first, then the most recent.
    pub async fn list_calls(
        &self,
        organization_id: &str,
        page: Page,
    ) -> Result<(Vec<CallRecord>, i64), DbError> {
        let order = "CASE WHEN ended_at IS NULL THEN 0 ELSE 1 END, created_at DESC, call_control_id";
        self.page_of("calls", COLUMNS, order, organization_id, page, from_row).await
    }

    /// Mark a call answered; returns it as it now is (`None`: no such call).
    pub async fn mark_answered(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &CallId,
        at: &str,
    ) -> Result<Option<CallRecord>, DbError> {
        let row = sqlx::query(&format!(
            "UPDATE calls SET state = 'answered', answered_at = $1 WHERE call_control_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(at)
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Bridge a live call with `with` (or unbridge it: `None`); returns it as it
    /// now is (`None`: it has ended or does not exist).
    pub async fn set_bridged(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &CallId,
        with: Option<&CallId>,
    ) -> Result<Option<CallRecord>, DbError> {
        let state = if with.is_some() { "bridged" } else { "answered" };
        let row = sqlx::query(&format!(
            "UPDATE calls SET bridged_with = $1, state = $2 WHERE call_control_id = $3 AND ended_at IS NULL \
             RETURNING {COLUMNS}"
        ))
        .bind(with.map(CallId::as_str))
        .bind(state)
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Set the `client_state` later webhooks of a live call carry; `None` when
    /// the call is missing, another organization's, or ended.
    pub async fn set_client_state(
        &self,
        organization_id: &str,
        id: &CallId,
        client_state: &str,
    ) -> Result<Option<CallRecord>, DbError> {
        let row = sqlx::query(&format!(
            "UPDATE calls SET client_state = $1 WHERE call_control_id = $2 AND organization_id = $3 \
             AND ended_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(client_state)
        .bind(id.as_str())
        .bind(organization_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Record the end of a call once; returns it as it now is, or `None` if it
    /// had already ended.
    pub async fn mark_ended(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &CallId,
        cause: &str,
        source: &str,
        at: &str,
    ) -> Result<Option<CallRecord>, DbError> {
        let row = sqlx::query(&format!(
            "UPDATE calls SET state = 'hangup', hangup_cause = $1, hangup_source = $2, ended_at = $3, \
             bridged_with = NULL WHERE call_control_id = $4 AND ended_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(cause)
        .bind(source)
        .bind(at)
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Set what `id`'s voice agents used, added up (in the transaction that
    /// reports a conversation's end).
    pub async fn set_assistant_usage(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &CallId,
        usage: &serde_json::Value,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE calls SET assistant_usage = $1 WHERE call_control_id = $2")
            .bind(usage.to_string())
            .bind(id.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Calls node `node_id` carried that are still alive in the database
    /// (after it restarts or dies, their legs are gone). With `unnamed`, also
    /// those stored before nodes were named.
    pub async fn live_call_ids_of(&self, node_id: &str, unnamed: bool) -> Result<Vec<CallId>, DbError> {
        let unnamed = if unnamed { " OR node_id IS NULL" } else { "" };
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT call_control_id FROM calls WHERE ended_at IS NULL AND (node_id = $1{unnamed})"
        ))
        .bind(node_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(ids.into_iter().map(CallId::from).collect())
    }
}
