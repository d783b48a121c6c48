//! A call's stored translation segments over HTTP (the live streams are
//! `supervisor.rs`; the `transcription_start` and `translation_start` bodies
//! are read in `calls::action::fields`).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;

#[utoipa::path(get, path = "/v2/calls/{id}/translations", tag = "calls",
    params(("id" = String, Path, description = "call_control_id")),
    responses((status = 200, description = "The call's translated segments in order", body = Object),
    (status = 404, description = "Missing or another organization's", body = ErrorEnvelope),
    (status = 403, description = "Supervisors and admins only", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<bond_store::CallId>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let call = super::calls::find_call(&state, &principal, &id).await?;
    let segments = state.store.call_segments(&call.organization_id, &call.call_control_id).await;
    let segments = segments.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "data": segments })))
}
