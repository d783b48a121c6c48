//! `/v2/agents` (Bond's own; Telnyx has no agents): the signed-in browser
//! agents and where each stands for queues that route by themselves, and a
//! supervisor making one ready or not (as the agent's own `availability`
//! frame does; its page is told) or setting its skills and wrap-up time.

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
    /// `available` (ready, on no call), `busy` (a call rings or is up), `wrap_up`
    /// (its last call ended less than `wrap_up_secs` ago), `unavailable`, or
    /// `offline` (not signed in).
    state: &'static str,
    /// Seconds since it was last free: made ready, or its last call ended.
    idle_secs: u64,
    /// What it is skilled in (queues may ask for some).
    skills: Vec<String>,
    /// How long it wraps up after each call it takes, and what is left of this wrap-up.
    wrap_up_secs: u64,
    wrap_up_remaining_secs: Option<u64>,
}

impl AgentView {
    fn of(status: AgentStatus) -> Self {
        Self {
            record_type: "agent",
            idle_secs: monotonic().saturating_duration_since(status.free_since).as_secs(),
            name: status.agent,
            state: status.state.as_str(),
            skills: status.skills,
            wrap_up_secs: status.wrap_up.as_secs(),
            // Rounded up: a wrap-up with 0.4 s left is not over.
            wrap_up_remaining_secs: status.wrap_up_left.map(|left| left.as_millis().div_ceil(1000) as u64),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AgentBody {
    /// Whether queues may offer the agent callers.
    available: Option<bool>,
    /// Its skills (replacing those it had): at most 32, each 1 to 64 characters.
    skills: Option<Vec<String>>,
    /// 0 to 600: how long it wraps up after each call it takes (0: none).
    wrap_up_secs: Option<i64>,
}

#[utoipa::path(get, path = "/v2/agents", tag = "agents",
    responses((status = 200, description = "The organization's signed-in agents, by name", body = super::schemas::Data<Vec<AgentView>>),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let agents = state.calls.agents().statuses(Some(&principal.organization_id), monotonic());
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
    if let Some(secs) = body.wrap_up_secs {
        if !(0..=600).contains(&secs) {
            return Err(ApiError::unprocessable("10002", "wrap_up_secs must be 0 to 600", "/wrap_up_secs"));
        }
        agents.set_wrap_up(org, &name, std::time::Duration::from_secs(secs as u64));
    }
    if let Some(skills) = &body.skills {
        agents.set_skills(org, &name, super::queues::checked_skills(skills, "/skills")?);
    }
    if let Some(available) = body.available {
        agents.set_available(org, &name, available, monotonic());
    }
    state.calls.availability_changed(org).await;
    let status = state.calls.agents().statuses(Some(org), monotonic()).into_iter().find(|s| s.agent == name);
    let status = status.ok_or_else(|| ApiError::not_found("No agent of that name is signed in."))?;
    Ok(Json(json!({ "data": AgentView::of(status) })))
}
