//! Organization-level endpoints: the webhook public key, the audit log, and API keys.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::extract::page_json;
use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;
use bond_store::Page;

/// `GET /v2/webhook_public_key`: the key that verifies the organization's webhook signatures.
#[utoipa::path(get, path = "/v2/webhook_public_key", tag = "webhooks",
    responses((status = 200, description = "The organization's key", body = super::schemas::Data<super::schemas::PublicKey>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn webhook_public_key(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let signer =
        state.signers.for_org(&principal.organization_id).await.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "data": { "public_key": signer.public_key_base64() } })))
}

/// `GET /v2/audit_log`: every mutating API call of the organization, newest first (admins).
#[utoipa::path(get, path = "/v2/audit_log", tag = "audit",
    params(("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "Mutating API calls, newest first", body = super::schemas::Paged<bond_store::AuditEntry>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
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

/// `GET /v2/api_keys`: the organization's API keys (never the keys themselves; admins).
#[utoipa::path(get, path = "/v2/api_keys", tag = "api_keys",
    responses((status = 200, description = "Each key (never the key itself)", body = super::schemas::Data<Vec<bond_store::ApiKeyListing>>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn api_keys(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    let keys =
        state.store.list_api_keys(&principal.organization_id).await.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "data": keys })))
}

/// `DELETE /v2/api_keys/{id}`: the key stops working at once, and sockets
/// signed in with it are closed (admins).
#[utoipa::path(delete, path = "/v2/api_keys/{id}", tag = "api_keys", params(("id" = String, Path)),
    responses((status = 200, description = "Revoked", body = super::schemas::Data<super::schemas::Revoked>), (status = 404, description = "No such key, or revoked already", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    let revoked = state
        .store
        .revoke_api_key(Some(&principal.organization_id), &id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !revoked {
        return Err(ApiError::not_found("No API key with that id that is not revoked already."));
    }
    state.revocations.announce(&principal.organization_id, &id);
    Ok(Json(json!({ "data": { "record_type": "api_key", "id": id, "revoked": true } })))
}
