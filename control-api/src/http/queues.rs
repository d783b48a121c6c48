//! `/v2/queues` (Telnyx Call Control): the organization's call queues and the
//! calls waiting in them. Calls join with the `enqueue` action and leave with
//! `leave_queue`, a `bridge`, their hangup, their wait limit, or `DELETE` here.
//! Queues are kept in memory (`bond_calls::queue`): a restart forgets them,
//! as it ends their calls.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::Json;
use std::time::Duration;

use bond_calls::queue::{
    new_queue_id, Queue, QueueError, Routing, Strategy, Waiting, DEFAULT_MAX_SIZE, NO_KEEP_AFTER_HANGUP,
};
use bond_store::clock::{monotonic, rfc3339_now};
use bond_store::{CallId, Page};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::{page_json, Body};
use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;

/// A queue as Telnyx shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    /// `queue`.
    record_type: &'static str,
    id: String,
    name: String,
    current_size: usize,
    max_size: u32,
    /// How long the calls waiting now have waited, on average.
    average_wait_time_secs: u64,
    created_at: String,
    updated_at: String,
    /// Bond's own: who picks the agent for each caller (`application`, `longest_idle`, `round_robin`).
    bond_routing: &'static str,
    /// Bond's own: how long an offered agent rings, and rests after a call.
    bond_ring_secs: u64,
    bond_wrap_up_secs: u64,
    /// Bond's own: the skills an agent needs to be offered its callers.
    bond_skills: Vec<String>,
    /// Bond's own: the WAV its callers hear (null: Bond's hold tune).
    bond_hold_audio_file: Option<String>,
}

impl QueueView {
    fn of(queue: &Queue, now: Instant) -> Self {
        Self {
            record_type: "queue",
            id: queue.id.clone(),
            name: queue.name.clone(),
            current_size: queue.len(),
            max_size: queue.max_size,
            average_wait_time_secs: queue.average_wait(now).as_secs(),
            created_at: queue.created_at.clone(),
            updated_at: queue.updated_at.clone(),
            bond_routing: queue.routing.strategy.as_str(),
            bond_ring_secs: queue.routing.ring.as_secs(),
            bond_wrap_up_secs: queue.routing.wrap_up.as_secs(),
            bond_skills: queue.routing.skills.clone(),
            bond_hold_audio_file: queue.routing.hold_audio_file.clone(),
        }
    }
}

/// A call waiting in a queue, as Telnyx shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueCallView {
    /// `queue_call`.
    record_type: &'static str,
    call_control_id: CallId,
    call_leg_id: String,
    call_session_id: String,
    connection_id: String,
    from: String,
    to: String,
    enqueued_at: String,
    queue_id: String,
    /// 1 is next.
    queue_position: usize,
    wait_time_secs: u64,
    is_alive: bool,
}

/// A call in line, read from the book before the store is asked for its record.
struct InLine {
    call: CallId,
    position: usize,
    enqueued_at: String,
    waited_secs: u64,
    queue_id: String,
}

impl InLine {
    fn of(queue: &Queue, position: usize, waiting: &Waiting, now: Instant) -> Self {
        Self {
            call: waiting.call.clone(),
            position,
            enqueued_at: waiting.enqueued_at.clone(),
            waited_secs: now.saturating_duration_since(waiting.since).as_secs(),
            queue_id: queue.id.clone(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateQueue {
    /// 1 to 255 characters.
    queue_name: String,
    /// The most calls that may wait (default 100).
    max_size: Option<i64>,
    #[serde(flatten)]
    routing: RoutingFields,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateQueue {
    max_size: Option<i64>,
    #[serde(flatten)]
    routing: RoutingFields,
}

/// Bond's own fields: how the queue hands its callers to agents.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RoutingFields {
    /// `application` (default: the application bridges a queued call with an
    /// agent's), `longest_idle` or `round_robin` (Bond rings an available agent).
    bond_routing: Option<String>,
    /// 5-120, default 20: how long an offered agent rings.
    bond_ring_secs: Option<i64>,
    /// 0-600, default 0: how long an agent rests after a call before the next offer.
    bond_wrap_up_secs: Option<i64>,
    /// Skills an agent must have (all of them) to be offered this queue's callers.
    bond_skills: Option<Vec<String>>,
    /// A WAV file in Bond's data directory (any PCM rate and channels) that
    /// waiting callers hear, looped, instead of Bond's hold tune; "" goes back to the tune.
    bond_hold_audio_file: Option<String>,
}

impl RoutingFields {
    fn is_empty(&self) -> bool {
        self.bond_routing.is_none()
            && self.bond_ring_secs.is_none()
            && self.bond_wrap_up_secs.is_none()
            && self.bond_skills.is_none()
            && self.bond_hold_audio_file.is_none()
    }

    /// The hold file asked for can be played (a WAV in the data directory).
    async fn check_hold_audio(&self, state: &AppState) -> Result<(), ApiError> {
        match self.bond_hold_audio_file.as_deref() {
            None | Some("") => Ok(()),
            Some(file) => state.calls.check_hold_audio_file(file).await.map_err(ApiError::from),
        }
    }

    /// The routing these fields make of `base`.
    fn applied_to(&self, base: Routing) -> Result<Routing, ApiError> {
        let strategy = match &self.bond_routing {
            None => base.strategy,
            Some(name) => Strategy::parse(name).ok_or_else(|| {
                let detail = "bond_routing must be application, longest_idle or round_robin";
                ApiError::unprocessable("10002", detail, "/bond_routing")
            })?,
        };
        let secs = |value: Option<i64>, range: std::ops::RangeInclusive<i64>, base: Duration, field: &str| {
            match value {
                None => Ok(base),
                Some(v) if range.contains(&v) => Ok(Duration::from_secs(v as u64)),
                Some(_) => Err(ApiError::unprocessable(
                    "10002",
                    format!("{field} must be {} to {}", range.start(), range.end()),
                    &format!("/{field}"),
                )),
            }
        };
        Ok(Routing {
            strategy,
            ring: secs(self.bond_ring_secs, 5..=120, base.ring, "bond_ring_secs")?,
            wrap_up: secs(self.bond_wrap_up_secs, 0..=600, base.wrap_up, "bond_wrap_up_secs")?,
            skills: match &self.bond_skills {
                None => base.skills,
                Some(skills) => checked_skills(skills, "/bond_skills")?,
            },
            hold_audio_file: match self.bond_hold_audio_file.as_deref() {
                None => base.hold_audio_file,
                Some("") => None,
                Some(file) => Some(file.to_owned()),
            },
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateQueueCall {
    keep_after_hangup: Option<bool>,
}

#[utoipa::path(post, path = "/v2/queues", tag = "queues", request_body = CreateQueue,
    responses((status = 200, description = "The new, empty queue", body = super::schemas::Data<QueueView>),
    (status = 422, description = "Invalid field, or the name is taken", body = ErrorEnvelope),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<CreateQueue>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    let name = checked_name(&body.queue_name)?;
    let max_size = checked_size(body.max_size.unwrap_or(DEFAULT_MAX_SIZE.into()))?;
    body.routing.check_hold_audio(&state).await?;
    let routing = body.routing.applied_to(Routing::default())?;
    let mut queues = state.calls.queues();
    let queue = queues
        .create(&principal.organization_id, name, max_size, routing, new_queue_id(), &rfc3339_now())
        .map_err(|e| refused(e, "/queue_name"))?;
    Ok(Json(json!({ "data": QueueView::of(queue, monotonic()) })))
}

#[utoipa::path(get, path = "/v2/queues", tag = "queues",
    params(("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "The organization's queues, by name", body = super::schemas::Paged<QueueView>),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let now = monotonic();
    let queues = state.calls.queues();
    let all: Vec<QueueView> =
        queues.list(&principal.organization_id).into_iter().map(|q| QueueView::of(q, now)).collect();
    let total = all.len() as i64;
    let shown: Vec<QueueView> =
        all.into_iter().skip(page.offset() as usize).take(page.size as usize).collect();
    Ok(page_json(shown, page, total))
}

#[utoipa::path(get, path = "/v2/queues/{queue_name}", tag = "queues", params(("queue_name" = String, Path)),
    responses((status = 200, description = "The queue", body = super::schemas::Data<QueueView>),
    (status = 404, description = "No such queue", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let queues = state.calls.queues();
    let queue = queues.get(&principal.organization_id, &name).map_err(|e| refused(e, "/queue_name"))?;
    Ok(Json(json!({ "data": QueueView::of(queue, monotonic()) })))
}

#[utoipa::path(post, path = "/v2/queues/{queue_name}", tag = "queues", params(("queue_name" = String, Path)),
    request_body = UpdateQueue,
    responses((status = 200, description = "The queue with its new size limit or routing", body = super::schemas::Data<QueueView>),
    (status = 404, description = "No such queue", body = ErrorEnvelope), (status = 422, description = "Invalid field", body = ErrorEnvelope),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Body(body): Body<UpdateQueue>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    let max_size = body.max_size.map(checked_size).transpose()?;
    body.routing.check_hold_audio(&state).await?;
    let mut queues = state.calls.queues();
    let routing = match body.routing.is_empty() {
        true => None,
        false => {
            let current =
                queues.get(&principal.organization_id, &name).map_err(|e| refused(e, "/queue_name"))?;
            Some(body.routing.applied_to(current.routing.clone())?)
        }
    };
    let queue = queues
        .update(&principal.organization_id, &name, max_size, routing, &rfc3339_now())
        .map_err(|e| refused(e, "/queue_name"))?;
    Ok(Json(json!({ "data": QueueView::of(queue, monotonic()) })))
}

#[utoipa::path(delete, path = "/v2/queues/{queue_name}", tag = "queues", params(("queue_name" = String, Path)),
    responses((status = 204, description = "Deleted"),
    (status = 404, description = "No such queue", body = ErrorEnvelope), (status = 422, description = "Calls still wait in it", body = ErrorEnvelope),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    principal.require(Role::Admin)?;
    state.calls.queues().delete(&principal.organization_id, &name).map_err(|e| refused(e, "/queue_name"))?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v2/queues/{queue_name}/calls", tag = "queues",
    params(("queue_name" = String, Path), ("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "The calls waiting, next first", body = super::schemas::Paged<QueueCallView>),
    (status = 404, description = "No such queue", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn calls(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let (in_line, total) = {
        let queues = state.calls.queues();
        let queue = queues.get(&principal.organization_id, &name).map_err(|e| refused(e, "/queue_name"))?;
        let now = monotonic();
        let in_line: Vec<InLine> = queue
            .waiting()
            .enumerate()
            .skip(page.offset() as usize)
            .take(page.size as usize)
            .map(|(i, w)| InLine::of(queue, i + 1, w, now))
            .collect();
        (in_line, queue.len() as i64)
    };
    let mut shown = Vec::with_capacity(in_line.len());
    for waiting in in_line {
        if let Some(view) = call_view(&state, &principal, waiting).await? {
            shown.push(view);
        }
    }
    Ok(page_json(shown, page, total))
}

#[utoipa::path(get, path = "/v2/queues/{queue_name}/calls/{call_control_id}", tag = "queues",
    params(("queue_name" = String, Path), ("call_control_id" = String, Path)),
    responses((status = 200, description = "The call and its place in line", body = super::schemas::Data<QueueCallView>),
    (status = 404, description = "No such queue, or the call does not wait in it", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn call(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, call)): Path<(String, CallId)>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let waiting = in_line(&state, &principal, &name, &call)?;
    let view = call_view(&state, &principal, waiting).await?.ok_or_else(not_in_line)?;
    Ok(Json(json!({ "data": view })))
}

#[utoipa::path(post, path = "/v2/queues/{queue_name}/calls/{call_control_id}", tag = "queues",
    params(("queue_name" = String, Path), ("call_control_id" = String, Path)), request_body = UpdateQueueCall,
    responses((status = 200, description = "The call, unchanged (keep_after_hangup false)", body = super::schemas::Data<QueueCallView>),
    (status = 404, description = "No such queue, or the call does not wait in it", body = ErrorEnvelope),
    (status = 422, description = "keep_after_hangup true: not available in Bond yet", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update_call(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, call)): Path<(String, CallId)>,
    Body(body): Body<UpdateQueueCall>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    if body.keep_after_hangup == Some(true) {
        return Err(ApiError::unprocessable("10015", NO_KEEP_AFTER_HANGUP, "/keep_after_hangup"));
    }
    let waiting = in_line(&state, &principal, &name, &call)?;
    let view = call_view(&state, &principal, waiting).await?.ok_or_else(not_in_line)?;
    Ok(Json(json!({ "data": view })))
}

#[utoipa::path(delete, path = "/v2/queues/{queue_name}/calls/{call_control_id}", tag = "queues",
    params(("queue_name" = String, Path), ("call_control_id" = String, Path)),
    responses((status = 204, description = "The call left the queue (call.dequeued, reason leave); it stays up"),
    (status = 404, description = "No such queue, or the call does not wait in it", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn remove_call(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, call)): Path<(String, CallId)>,
) -> Result<axum::http::StatusCode, ApiError> {
    principal.require(Role::Supervisor)?;
    in_line(&state, &principal, &name, &call)?;
    let record = state
        .store
        .get_call(&principal.organization_id, &call)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(not_in_line)?;
    state.calls.leave_queue(&record).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `call` waiting in the organization's queue `name`, or 404.
fn in_line(state: &AppState, principal: &Principal, name: &str, call: &CallId) -> Result<InLine, ApiError> {
    let queues = state.calls.queues();
    let queue = queues.get(&principal.organization_id, name).map_err(|e| refused(e, "/queue_name"))?;
    let (position, waiting) = queue.position(call).ok_or_else(not_in_line)?;
    Ok(InLine::of(queue, position, waiting, monotonic()))
}

/// The waiting call with its record; `None` if the record is gone.
async fn call_view(
    state: &AppState,
    principal: &Principal,
    w: InLine,
) -> Result<Option<QueueCallView>, ApiError> {
    let record = state
        .store
        .get_call(&principal.organization_id, &w.call)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(record.map(|c| QueueCallView {
        record_type: "queue_call",
        is_alive: c.is_alive(),
        call_control_id: c.call_control_id,
        call_leg_id: c.call_leg_id,
        call_session_id: c.call_session_id,
        connection_id: c.connection_id,
        from: c.from,
        to: c.to,
        enqueued_at: w.enqueued_at,
        queue_id: w.queue_id,
        queue_position: w.position,
        wait_time_secs: w.waited_secs,
    }))
}

/// Skills as queues and agents name them: at most 32, each 1 to 64
/// characters; trimmed, sorted, each once.
pub fn checked_skills(skills: &[String], pointer: &str) -> Result<Vec<String>, ApiError> {
    let fine = skills.len() <= 32 && skills.iter().all(|s| !s.trim().is_empty() && s.chars().count() <= 64);
    if !fine {
        return Err(ApiError::unprocessable("10002", "skills: at most 32, each 1 to 64 characters", pointer));
    }
    let mut skills: Vec<String> = skills.iter().map(|s| s.trim().to_owned()).collect();
    skills.sort();
    skills.dedup();
    Ok(skills)
}

fn not_in_line() -> ApiError {
    ApiError::not_found("The call does not wait in that queue.")
}

fn checked_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::unprocessable(
            "10002",
            "queue_name must be 1 to 255 characters",
            "/queue_name",
        ));
    }
    Ok(name)
}

fn checked_size(size: i64) -> Result<u32, ApiError> {
    match size {
        1..=10_000 => Ok(size as u32),
        _ => Err(ApiError::unprocessable("10002", "max_size must be 1 to 10000", "/max_size")),
    }
}

/// A refused queue request: 404 for a queue that does not exist, else 422.
fn refused(error: QueueError, pointer: &str) -> ApiError {
    match error {
        QueueError::NoSuchQueue(_) => ApiError::not_found(error.to_string()),
        _ => ApiError::unprocessable("10002", error.to_string(), pointer),
    }
}
