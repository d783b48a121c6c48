//! `/v2/call_control_applications`: the connections every call belongs to.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{page_json, Body};
use super::{found, ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;
use bond_sip::SipSettings;
use bond_store::{Connection, ConnectionFields, Page};

const MISSING: &str = "No call control application with that id.";

/// Create/update body. Unknown Telnyx fields are accepted and ignored; `inbound`,
/// `outbound` and Bond's own `bond` object are kept as given.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ConnectionBody {
    application_name: Option<String>,
    webhook_event_url: Option<String>,
    webhook_event_failover_url: Option<String>,
    webhook_timeout_secs: Option<i64>,
    active: Option<bool>,
    #[schema(value_type = Option<Object>)]
    inbound: Option<Value>,
    #[schema(value_type = Option<Object>)]
    outbound: Option<Value>,
    /// Bond's own settings: `sip` (allowed_ips, inbound_auth, trunk, codecs,
    /// max_concurrent_calls), `telnyx`, `media_streams` (docs/api.md).
    #[schema(value_type = Option<Object>)]
    bond: Option<Value>,
}

/// An http(s) URL Bond may send to (see `egress.rs`), or 422 at `pointer`.
pub(super) fn validate_url(url: &str, pointer: &str) -> Result<(), ApiError> {
    match bond_store::egress::http_url(url) {
        Ok(_) => Ok(()),
        Err(refused) => Err(ApiError::unprocessable("10002", refused, pointer)),
    }
}

/// Merge `body` over `base` (all of it for create) and validate the result.
fn fields(body: ConnectionBody, base: Option<ConnectionFields>) -> Result<ConnectionFields, ApiError> {
    let creating = base.is_none();
    let mut f = base.unwrap_or(ConnectionFields { active: true, ..ConnectionFields::default() });
    if let Some(name) = body.application_name {
        f.application_name = name;
    }
    if let Some(url) = body.webhook_event_url {
        f.webhook_event_url = url;
    }
    if body.webhook_event_failover_url.is_some() {
        f.webhook_event_failover_url = body.webhook_event_failover_url.filter(|u| !u.is_empty());
    }
    if body.webhook_timeout_secs.is_some() {
        f.webhook_timeout_secs = body.webhook_timeout_secs;
    }
    if let Some(active) = body.active {
        f.active = active;
    }
    for (key, value) in [("inbound", body.inbound), ("outbound", body.outbound), ("bond", body.bond)] {
        match value {
            Some(Value::Object(o)) => {
                f.settings.insert(key.to_owned(), Value::Object(o));
            }
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(ApiError::unprocessable(
                    "10002",
                    format!("{key} must be an object"),
                    &format!("/{key}"),
                ))
            }
        }
    }
    if f.application_name.trim().is_empty() {
        let detail =
            if creating { "application_name is required" } else { "application_name cannot be empty" };
        return Err(ApiError::unprocessable("10005", detail, "/application_name"));
    }
    if f.webhook_event_url.is_empty() {
        return Err(ApiError::unprocessable("10005", "webhook_event_url is required", "/webhook_event_url"));
    }
    validate_url(&f.webhook_event_url, "/webhook_event_url")?;
    if let Some(url) = &f.webhook_event_failover_url {
        validate_url(url, "/webhook_event_failover_url")?;
    }
    if let Some(t) = f.webhook_timeout_secs {
        if !(1..=30).contains(&t) {
            return Err(ApiError::unprocessable(
                "10002",
                "webhook_timeout_secs must be 1-30",
                "/webhook_timeout_secs",
            ));
        }
    }
    if let Some(sip) = f.settings.get("bond").and_then(|b| b.get("sip")) {
        SipSettings::from_value(sip).map_err(|e| ApiError::unprocessable("10002", e, "/bond/sip"))?;
    }
    Ok(f)
}

/// An address in `bond.sip.allowed_ips` is one organization's: INVITEs from it
/// land on that organization's connection, so another may not claim it too.
async fn check_sip_addresses(
    state: &AppState,
    organization_id: &str,
    f: &ConnectionFields,
) -> Result<(), ApiError> {
    let Some(mine) =
        f.settings.get("bond").and_then(|b| b.get("sip")).and_then(|s| SipSettings::from_value(s).ok())
    else {
        return Ok(());
    };
    if mine.allowed_ips.is_empty() {
        return Ok(());
    }
    let others = state.store.sip_connections().await.map_err(|e| ApiError::internal(&e))?;
    for other in others.iter().filter(|c| c.organization_id != organization_id) {
        let Some(theirs) = SipSettings::of(other) else { continue };
        if let Some(ip) = mine.allowed_ips.iter().find(|ip| theirs.allowed_ips.contains(ip)) {
            return Err(ApiError::unprocessable(
                "10015",
                format!("{ip} is already another organization's SIP trunk address; an address belongs to one organization."),
                "/bond/sip/allowed_ips",
            ));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/v2/call_control_applications", tag = "call_control_applications",
    request_body(content = ConnectionBody),
    responses((status = 201, description = "The new connection", body = super::schemas::Data<Connection>), (status = 422, description = "Invalid field", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<ConnectionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require(Role::Admin)?;
    let f = fields(body, None)?;
    check_sip_addresses(&state, &principal.organization_id, &f).await?;
    let connection = state
        .store
        .create_connection(&principal.organization_id, f)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok((StatusCode::CREATED, Json(json!({ "data": connection }))))
}

#[utoipa::path(get, path = "/v2/call_control_applications", tag = "call_control_applications",
    params(("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "A page of connections", body = super::schemas::Paged<Connection>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let (items, total) = state
        .store
        .list_connections(&principal.organization_id, page)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let items: Vec<Connection> = items.into_iter().map(|c| shown_to(&principal, c)).collect();
    Ok(page_json(items, page, total))
}

#[utoipa::path(get, path = "/v2/call_control_applications/{id}", tag = "call_control_applications",
    params(("id" = String, Path)), responses((status = 200, description = "The connection", body = super::schemas::Data<Connection>),
    (status = 404, description = "Missing or another organization's", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let connection = found(state.store.get_connection(&principal.organization_id, &id).await, MISSING)?;
    Ok(Json(json!({ "data": shown_to(&principal, connection) })))
}

/// Credentials are for admins (who write them and may read back what they
/// wrote); a supervisor reads the rest.
fn shown_to(principal: &Principal, connection: Connection) -> Connection {
    if principal.role >= Role::Admin {
        connection
    } else {
        connection.redacted()
    }
}

#[utoipa::path(patch, path = "/v2/call_control_applications/{id}", tag = "call_control_applications",
    params(("id" = String, Path)), request_body = ConnectionBody, responses((status = 200, description = "The updated connection", body = super::schemas::Data<Connection>),
    (status = 404, description = "Missing", body = ErrorEnvelope), (status = 422, description = "Invalid field", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Body(body): Body<ConnectionBody>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    let existing = found(state.store.get_connection(&principal.organization_id, &id).await, MISSING)?;
    let base = ConnectionFields {
        application_name: existing.application_name,
        webhook_event_url: existing.webhook_event_url,
        webhook_event_failover_url: existing.webhook_event_failover_url,
        webhook_timeout_secs: existing.webhook_timeout_secs,
        active: existing.active,
        settings: existing.settings,
    };
    let f = fields(body, Some(base))?;
    check_sip_addresses(&state, &principal.organization_id, &f).await?;
    let updated = found(state.store.update_connection(&principal.organization_id, &id, f).await, MISSING)?;
    Ok(Json(json!({ "data": updated })))
}

#[utoipa::path(delete, path = "/v2/call_control_applications/{id}", tag = "call_control_applications",
    params(("id" = String, Path)), responses((status = 200, description = "The deleted connection", body = super::schemas::Data<Connection>),
    (status = 404, description = "Missing", body = ErrorEnvelope), (status = 422, description = "Has calls on record", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    match state
        .store
        .delete_connection(&principal.organization_id, &id)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        Ok(Some(deleted)) => Ok(Json(json!({ "data": deleted }))),
        Ok(None) => Err(ApiError::not_found(MISSING)),
        Err(calls) => Err(ApiError::unprocessable(
            "10015",
            format!("The connection has {calls} calls on record; deactivate it instead (active: false)."),
            "/id",
        )),
    }
}
