//! `/v2/agents` (Bond's own; Telnyx has no agents): the signed-in browser
//! agents and where each stands for queues that route by themselves, and a
//! supervisor making one ready or not (as the agent's own `availability`
//! frame does; its page is told).

use axum::extract::{Path, State};
use axum::Json;
use bond_agents::{AgentControl, AgentStatus};
use bond_store::clock::monotonic;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::Body;
use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;

/// A signed-in agent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    /// `agent`.
    record_type: &'static str,
    name: String,
    /// `available` (ready, on no call), `busy` (a call rings or is up) or `unavailable`.
    state: &'static str,
    /// Seconds since it was last free: made ready, or its last call ended.
    idle_secs: u64,
}

impl AgentView {
    fn of(status: AgentStatus) -> Self {
        Self {
            record_type: "agent",
            idle_secs: monotonic().saturating_duration_since(status.free_since).as_secs(),
            name: status.agent,
            state: status.state.as_str(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AvailabilityBody {
    /// Whether queues may offer the agent callers.
    available: bool,
}

#[utoipa::path(get, path = "/v2/agents", tag = "agents",
    responses((status = 200, description = "The organization's signed-in agents, by name", body = super::schemas::Data<Vec<AgentView>>),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let agents = state.calls.agents().statuses(Some(&principal.organization_id));
    let data: Vec<AgentView> = agents.into_iter().map(AgentView::of).collect();
    Ok(Json(json!({ "data": data })))
}

#[utoipa::path(patch, path = "/v2/agents/{name}", tag = "agents", params(("name" = String, Path)),
    request_body = AvailabilityBody,
    responses((status = 200, description = "The agent, ready or not", body = super::schemas::Data<AgentView>),
    (status = 404, description = "No such agent signed in", body = ErrorEnvelope),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn set_availability(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Body(body): Body<AvailabilityBody>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let org = &principal.organization_id;
    if !state.calls.agents().set_available(org, &name, body.available, monotonic()) {
        return Err(ApiError::not_found("No agent of that name is signed in."));
    }
    state.calls.availability_changed(org).await;
    let status = state.calls.agents().statuses(Some(org)).into_iter().find(|s| s.agent == name);
    let status = status.ok_or_else(|| ApiError::not_found("No agent of that name is signed in."))?;
    Ok(Json(json!({ "data": AgentView::of(status) })))
}
