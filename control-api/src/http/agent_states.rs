//! `/v2/agents` (Bond's own; Telnyx has no agents): the signed-in browser
//! agents and where each stands for queues that route by themselves, and a
//! supervisor making one ready or not (as the agent's own `availability`
//! frame does; its page is told) or setting its skills.

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
    /// What it is skilled in (queues may ask for some).
    skills: Vec<String>,
}

impl AgentView {
    fn of(status: AgentStatus) -> Self {
        Self {
            record_type: "agent",
            idle_secs: monotonic().saturating_duration_since(status.free_since).as_secs(),
            name: status.agent,
            state: status.state.as_str(),
            skills: status.skills,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AgentBody {
    /// Whether queues may offer the agent callers.
    available: Option<bool>,
    /// Its skills (replacing those it had): at most 32, each 1 to 64 characters.
    skills: Option<Vec<String>>,
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
    request_body = AgentBody,
    responses((status = 200, description = "The agent, ready or not, with its skills", body = super::schemas::Data<AgentView>),
    (status = 422, description = "Invalid skills", body = ErrorEnvelope),
    (status = 404, description = "No such agent signed in", body = ErrorEnvelope),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Body(body): Body<AgentBody>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let org = &principal.organization_id;
    let agents = state.calls.agents();
    if !agents.is_registered(org, &name) {
        return Err(ApiError::not_found("No agent of that name is signed in."));
    }
    if let Some(skills) = &body.skills {
        agents.set_skills(org, &name, super::queues::checked_skills(skills, "/skills")?);
    }
    if let Some(available) = body.available {
        agents.set_available(org, &name, available, monotonic());
    }
    state.calls.availability_changed(org).await;
    let status = state.calls.agents().statuses(Some(org)).into_iter().find(|s| s.agent == name);
    let status = status.ok_or_else(|| ApiError::not_found("No agent of that name is signed in."))?;
    Ok(Json(json!({ "data": AgentView::of(status) })))
}
