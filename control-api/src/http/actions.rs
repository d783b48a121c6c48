//! `POST /v2/calls/{id}/actions/{action}`: who may act is checked here; then
//! the action is carried out, on this node when it carries the call, else on
//! the node that does (`forward.rs`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bond_calls::{Action, Command, Endpoint};
use bond_store::{CallId, CallRecord};
use serde_json::{json, Value};

use super::calls::{check_outbound, find_call, forbidden, replay};
use super::extract::Body;
use super::forward::Forwarded;
use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;

#[utoipa::path(post, path = "/v2/calls/{id}/actions/{action}", tag = "calls",
    params(("id" = String, Path, description = "call_control_id"), ("action" = String, Path, description = "answer, reject, hangup, bridge, send_dtmf, record_start, record_stop, record_pause, record_resume, hold, unhold, mute, unmute, streaming_start, streaming_stop, playback_start, playback_stop, speak, transcription_start, transcription_stop, translation_start, translation_stop, switch_supervisor_role, client_state_update, gather, gather_using_audio, gather_using_speak, gather_stop, transfer, enqueue, leave_queue, refer, ai_assistant_start, ai_assistant_stop, ai_assistant_join, ai_assistant_add_messages")),
    request_body(content = Object, description = "The action's fields; command_id makes it idempotent"),
    responses((status = 200, description = "Done", body = super::schemas::Data<super::schemas::ActionResult>),
    (status = 404, description = "Unknown call or action", body = ErrorEnvelope),
    (status = 422, description = "Call has ended (90018) or invalid field", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn action(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, name)): Path<(CallId, String)>,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    principal.require(Role::Agent)?;
    let call = find_call(&state, &principal, &id).await?;
    principal.require_call(&call)?;
    let command = Command::parse_for(&name, &body, &call, bond_store::clock::utc_now())?;
    let action = &command.action;
    if action.needs_supervisor() {
        principal.require(Role::Supervisor)?;
    }
    if let Action::Bridge { with, .. } = action {
        // The other call too must be one this caller may act on.
        let other = find_call(&state, &principal, with).await.map_err(|_| {
            ApiError::unprocessable(
                "10005",
                "No call with that call_control_id_to_bridge_with.",
                "/call_control_id_to_bridge_with",
            )
        })?;
        principal.require_call(&other)?;
    }
    if let Action::Transfer(transfer) = action {
        // The new party's webhooks may go elsewhere, as a dial's may: the same checks and role.
        let urls = [
            (&transfer.webhook_url, "/webhook_url"),
            (&transfer.webhook_failover_url, "/webhook_failover_url"),
        ];
        for (url, pointer) in urls {
            if let Some(url) = url {
                if principal.role < Role::Supervisor {
                    return Err(forbidden(&format!("{} needs the supervisor role.", &pointer[1..])));
                }
                super::connections::validate_url(url, pointer)?;
            }
        }
        // The new party is dialed as a dial would be: the same outbound policy.
        if matches!(transfer.endpoint, Endpoint::E164(_) | Endpoint::Sip(_)) {
            let config = state
                .store
                .voice_config(&principal.organization_id)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            check_outbound(&transfer.endpoint, &config, principal.role)?;
        }
    }
    match (&state.forwarder, call.node_id.as_deref()) {
        (Some(forwarder), Some(node)) if node != state.store.node_id() && call.is_alive() => {
            let request = Forwarded::Action {
                organization_id: call.organization_id.clone(),
                call_control_id: call.call_control_id.clone(),
                action: name,
                body,
            };
            Ok(forwarder.forward(node, &request).await?.into_response())
        }
        // Without a bus, a call another node carries is refused naming that node (421).
        _ => carry_out(&state, &call, &name, command).await,
    }
}

/// Carry out `command` on `call`, a call this node carries: replayed when its
/// `command_id` was seen before, its answer kept when it has one.
pub(super) async fn carry_out(
    state: &AppState,
    call: &CallRecord,
    name: &str,
    command: Command,
) -> Result<Response, ApiError> {
    let command_id = command.command_id.clone();
    if let Some(command_id) = &command_id {
        if let Some((status, stored)) = state
            .store
            .command_result(&call.call_control_id, command_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
        {
            return Ok(replay(status, &stored));
        }
    }
    let acted = state.calls.act(call, command).await?;
    let response = match acted.conversation_id {
        Some(conversation_id) => json!({ "data": { "result": "ok", "conversation_id": conversation_id } }),
        None => json!({ "data": { "result": "ok" } }),
    };
    if let Some(command_id) = &command_id {
        state
            .store
            .save_command_result(&call.call_control_id, command_id, name, 200, &response.to_string())
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    Ok(Json(response).into_response())
}
