//! Organization-level endpoints: the webhook public key and the audit log.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::extract::page_json;
use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;
use crate::store::Page;

/// `GET /v2/webhook_public_key`: the key that verifies Bond's webhook signatures.
#[utoipa::path(get, path = "/v2/webhook_public_key", tag = "webhooks",
    responses((status = 200, description = "{\"data\":{\"public_key\":\"<base64 of 32 bytes>\"}}", body = Object), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn webhook_public_key(State(state): State<AppState>, principal: Principal) -> Json<Value> {
    let _ = principal;
    Json(json!({ "data": { "public_key": state.signer.public_key_base64() } }))
}

/// `GET /v2/audit_log`: every mutating API call of the organization, newest first (admins).
#[utoipa::path(get, path = "/v2/audit_log", tag = "audit",
    params(("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "Mutating API calls, newest first", body = Object), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn audit_log(
    State(state): State<AppState>,
    principal: Principal,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    let (entries, total) =
        state.store.list_audit(&principal.organization_id, page).await.map_err(|e| ApiError::internal(&e))?;
    Ok(page_json(entries, page, total))
}
