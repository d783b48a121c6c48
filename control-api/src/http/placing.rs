//! Where a dial is carried out (docs/cluster.md): on this node, or, with
//! other nodes on the bus, on the node it belongs on, which answers for it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::calls::{dial_answer, dial_checked, live_call, DialBody};
use super::extract::typed;
use super::forward::{Answer, Forwarded};
use super::ApiError;
use crate::auth::Principal;
use crate::state::AppState;

/// Place a dial: on this node, or, with other nodes on the bus, on the node
/// it belongs on ([`node_for`]), which answers for it.
pub(super) async fn place(
    state: &AppState,
    principal: &Principal,
    raw: &Value,
    body: DialBody,
) -> Result<Answer, ApiError> {
    if let (Some(forwarder), Some(agent)) = (&state.forwarder, agent_of(&body)) {
        // Placed on the node holding the agent's signaling socket, if another does.
        if !bond_agents::AgentControl::agents(&state.calls).is_registered(&principal.organization_id, agent) {
            let request = Forwarded::Dial { principal: principal.clone(), body: raw.clone() };
            if let Some(answer) = forwarder.dial_agent(&principal.organization_id, agent, &request).await {
                return answer;
            }
        }
    } else if let Some(forwarder) = &state.forwarder {
        let node = node_for(state, principal, &body).await?;
        if let Some(node) = node.filter(|n| n != state.store.node_id()) {
            let request = Forwarded::Dial { principal: principal.clone(), body: raw.clone() };
            return forwarder.forward(&node, &request).await;
        }
    }
    if !state.role.carries_calls() {
        return Err(no_call_here(&body));
    }
    let call = dial_checked(state, principal, body).await?;
    Ok(Answer { status: 200, body: dial_answer(&call) })
}

/// A dial another node placed on this one (`forward.rs`).
pub(super) async fn dial_here(
    state: &AppState,
    principal: &Principal,
    raw: Value,
) -> Result<Response, ApiError> {
    let call = dial_checked(state, principal, typed(raw)?).await?;
    Ok(Json(dial_answer(&call)).into_response())
}

/// The agent a dial rings (`to` is `agent:<name>`).
fn agent_of(body: &DialBody) -> Option<&str> {
    match &body.to {
        Some(Value::String(to)) => to.strip_prefix("agent:"),
        _ => None,
    }
}

/// The node a dial (not to an agent) belongs on: the node of the call it is
/// linked to or supervises (so their legs can meet), else the least loaded
/// of two ([`Placement`]). `None`: this one.
///
/// [`Placement`]: bond_calls::placement::Placement
async fn node_for(
    state: &AppState,
    principal: &Principal,
    body: &DialBody,
) -> Result<Option<String>, ApiError> {
    let partners =
        [(&body.link_to, "link_to"), (&body.supervise_call_control_id, "supervise_call_control_id")];
    for (id, field) in partners {
        if let Some(id) = id {
            return Ok(live_call(state, principal, id, field).await?.node_id);
        }
    }
    state.placement.choose(&state.store).await.map_err(|e| ApiError::internal(&e))
}

/// Why a control node (`cluster.role`), which carries no calls, cannot place `body`.
fn no_call_here(body: &DialBody) -> ApiError {
    if let Some(agent) = agent_of(body) {
        let detail = format!(
            "Agent {agent} is not connected to any node (this one, cluster.role control, carries no calls)."
        );
        return ApiError::unprocessable("10015", detail, "/to");
    }
    let detail = "No node that carries calls is up to place this call on; retry shortly.";
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "10007", "Service unavailable", detail).with_retry_after(1)
}
