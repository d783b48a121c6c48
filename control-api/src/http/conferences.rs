//! `/v2/conferences` (Telnyx Call Control): create a conference from a call,
//! list and show conferences and their participants, and the conference
//! actions (`join`, `leave`, `mute`, `unmute`, `hold`, `unhold`, `update`,
//! `play`, `speak`, `stop`, `record_start`, `record_stop`, `record_pause`,
//! `record_resume`, `end`). Conferences are kept in memory (`bond_calls::conference`): a restart
//! forgets them, as it ends their calls.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use bond_calls::action::fields::check_client_state;
use bond_calls::conference::{
    Beeps, Conference, Join, NewConference, SupervisorRole, DEFAULT_DURATION, DEFAULT_MAX_PARTICIPANTS,
};
use bond_store::{CallId, Page};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::calls::find_call;
use super::extract::{page_json, typed, Body};
use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;

/// A conference as Telnyx shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConferenceView {
    /// `conference`.
    record_type: &'static str,
    id: String,
    name: String,
    created_at: String,
    updated_at: String,
    expires_at: String,
    connection_id: String,
    /// `in_progress` or `completed`.
    status: &'static str,
    /// `all_left`, `ended_via_api`, `host_left` or `time_exceeded`, once ended.
    end_reason: Option<&'static str>,
    ended_by: Option<EndedBy>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndedBy {
    call_control_id: CallId,
}

impl ConferenceView {
    fn of(c: &Conference) -> Self {
        Self {
            record_type: "conference",
            id: c.id.clone(),
            name: c.name.clone(),
            created_at: c.created_at.clone(),
            updated_at: c.updated_at.clone(),
            expires_at: c.expires_at.clone(),
            connection_id: c.connection_id.clone(),
            status: c.status(),
            end_reason: c.ended.as_ref().map(|(reason, _)| reason.as_str()),
            ended_by: c
                .ended
                .as_ref()
                .and_then(|(_, by)| by.clone())
                .map(|call_control_id| EndedBy { call_control_id }),
        }
    }
}

/// A participant as Telnyx shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParticipantView {
    /// `participant`.
    record_type: &'static str,
    id: String,
    call_control_id: CallId,
    call_leg_id: String,
    conference: ConferenceRef,
    created_at: String,
    updated_at: String,
    end_conference_on_exit: bool,
    soft_end_conference_on_exit: bool,
    muted: bool,
    on_hold: bool,
    /// `joined`.
    status: &'static str,
    whisper_call_control_ids: Vec<CallId>,
    /// Bond's own: `none`, `barge`, `monitor` or `whisper`.
    supervisor_role: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConferenceRef {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConference {
    call_control_id: CallId,
    /// 1 to 255 characters.
    name: String,
    /// `always`, `never` (default), `on_enter` or `on_exit`: whether joining and leaving beep.
    beep_enabled: Option<String>,
    client_state: Option<String>,
    /// Accepted; Bond adds no comfort noise.
    comfort_noise: Option<bool>,
    command_id: Option<String>,
    /// 1 to 1440; default 240 (Telnyx's four hours).
    duration_minutes: Option<i64>,
    /// What participants waiting for the start hear (a WAV, looped; Bond's hold tune when not given).
    hold_audio_url: Option<String>,
    hold_media_name: Option<String>,
    /// 2 to 800; default 250.
    max_participants: Option<i64>,
    /// Accepted; a Bond node hosts its own conferences.
    region: Option<String>,
    /// Default true; false: everyone who joins waits on hold until a participant
    /// joins with `start_conference_on_enter`.
    start_conference_on_create: Option<bool>,
}

#[utoipa::path(post, path = "/v2/conferences", tag = "conferences", request_body = CreateConference,
    responses((status = 200, description = "The new conference, with the call in it", body = super::schemas::Data<ConferenceView>),
    (status = 422, description = "Invalid field, or the call cannot join", body = ErrorEnvelope),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<CreateConference>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::unprocessable("10002", "name must be 1 to 255 characters", "/name"));
    }
    let beeps = beeps(body.beep_enabled.as_deref())?.unwrap_or_default();
    not_yet(body.hold_media_name.is_some(), "hold_media_name", "uploaded media")?;
    let _ = (body.comfort_noise, body.region);
    let max_participants = match body.max_participants {
        None => DEFAULT_MAX_PARTICIPANTS,
        Some(n @ 2..=800) => n as usize,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "10002",
                "max_participants must be 2 to 800",
                "/max_participants",
            ))
        }
    };
    let duration = match body.duration_minutes {
        None => DEFAULT_DURATION,
        Some(m @ 1..=1440) => Duration::from_secs(m as u64 * 60),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "10002",
                "duration_minutes must be 1 to 1440",
                "/duration_minutes",
            ))
        }
    };
    let call = find_call(&state, &principal, &body.call_control_id).await?;
    // `command_id`, kept on the creating call: a repeat gets the first answer.
    let command_id = body.command_id.as_deref().filter(|c| !c.is_empty());
    if let Some(command_id) = command_id {
        let stored = state.store.command_result(&call.call_control_id, command_id).await;
        if let Some((_, stored)) = stored.map_err(|e| ApiError::internal(&e))? {
            return Ok(Json(serde_json::from_str(&stored).unwrap_or(Value::Null)));
        }
    }
    let call = joining_call(&state, &principal, &body.call_control_id, body.client_state.as_deref()).await?;
    let new = NewConference {
        name: name.to_owned(),
        max_participants,
        duration,
        beeps,
        start_on_create: body.start_conference_on_create.unwrap_or(true),
        hold_audio_url: body.hold_audio_url,
    };
    let id = state.calls.create_conference(&call, new).await?;
    let response = {
        let conferences = state.calls.conferences();
        let conference = conferences.get(&principal.organization_id, &id).map_err(missing)?;
        json!({ "data": ConferenceView::of(conference) })
    };
    if let Some(command_id) = command_id {
        let text = response.to_string();
        let saved = state.store.save_command_result(&call.call_control_id, command_id, "create", 200, &text);
        saved.await.map_err(|e| ApiError::internal(&e))?;
    }
    Ok(Json(response))
}

#[utoipa::path(get, path = "/v2/conferences", tag = "conferences",
    params(("filter[name]" = Option<String>, Query), ("filter[status]" = Option<String>, Query, description = "`in_progress` or `completed`"),
    ("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "The organization's conferences, newest first", body = super::schemas::Paged<ConferenceView>),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<HashMap<String, String>>,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let name = query.get("filter[name]");
    let status = query.get("filter[status]");
    let conferences = state.calls.conferences();
    let all: Vec<ConferenceView> = conferences
        .list(&principal.organization_id)
        .into_iter()
        .filter(|c| name.is_none_or(|n| &c.name == n) && status.is_none_or(|s| c.status() == s))
        .map(ConferenceView::of)
        .collect();
    let total = all.len() as i64;
    let shown: Vec<ConferenceView> =
        all.into_iter().skip(page.offset() as usize).take(page.size as usize).collect();
    Ok(page_json(shown, page, total))
}

#[utoipa::path(get, path = "/v2/conferences/{id}", tag = "conferences", params(("id" = String, Path)),
    responses((status = 200, description = "The conference", body = super::schemas::Data<ConferenceView>),
    (status = 404, description = "No such conference", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let conferences = state.calls.conferences();
    let conference = conferences.get(&principal.organization_id, &id).map_err(missing)?;
    Ok(Json(json!({ "data": ConferenceView::of(conference) })))
}

#[utoipa::path(get, path = "/v2/conferences/{conference_id}/participants", tag = "conferences",
    params(("conference_id" = String, Path), ("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "Who is in the conference, in the order they joined", body = super::schemas::Paged<ParticipantView>),
    (status = 404, description = "No such conference", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn participants(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let (conference, shown, total) = {
        let conferences = state.calls.conferences();
        let c = conferences.get(&principal.organization_id, &id).map_err(missing)?;
        let shown: Vec<_> =
            c.participants.iter().skip(page.offset() as usize).take(page.size as usize).cloned().collect();
        (ConferenceRef { id: c.id.clone(), name: c.name.clone() }, shown, c.participants.len() as i64)
    };
    let mut views = Vec::with_capacity(shown.len());
    for p in shown {
        let call = state
            .store
            .get_call(&principal.organization_id, &p.call)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        views.push(ParticipantView {
            record_type: "participant",
            id: p.id,
            call_leg_id: call.map(|c| c.call_leg_id).unwrap_or_default(),
            call_control_id: p.call,
            conference: ConferenceRef { id: conference.id.clone(), name: conference.name.clone() },
            created_at: p.created_at,
            updated_at: p.updated_at,
            end_conference_on_exit: p.end_conference_on_exit,
            soft_end_conference_on_exit: p.soft_end_conference_on_exit,
            muted: p.muted,
            on_hold: p.on_hold,
            status: "joined",
            whisper_call_control_ids: p.whisper_to,
            supervisor_role: p.role.as_str(),
        });
    }
    Ok(page_json(views, page, total))
}

/// `join`'s fields (Telnyx).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    call_control_id: CallId,
    beep_enabled: Option<String>,
    client_state: Option<String>,
    command_id: Option<String>,
    end_conference_on_exit: Option<bool>,
    soft_end_conference_on_exit: Option<bool>,
    hold: Option<bool>,
    hold_audio_url: Option<String>,
    hold_media_name: Option<String>,
    mute: Option<bool>,
    region: Option<String>,
    start_conference_on_enter: Option<bool>,
    supervisor_role: Option<String>,
    whisper_call_control_ids: Option<Vec<CallId>>,
}

/// `leave`'s fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveBody {
    call_control_id: CallId,
    beep_enabled: Option<String>,
    command_id: Option<String>,
    region: Option<String>,
}

/// `mute`, `unmute`, `hold` and `unhold`'s fields: the participants (all when none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantsBody {
    #[serde(default)]
    call_control_ids: Vec<CallId>,
    audio_url: Option<String>,
    media_name: Option<String>,
    region: Option<String>,
}

/// `update`'s fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    call_control_id: CallId,
    supervisor_role: String,
    #[serde(default)]
    whisper_call_control_ids: Vec<CallId>,
    command_id: Option<String>,
    region: Option<String>,
}

/// `end`'s and `record_stop`'s (pause, resume) fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndBody {
    command_id: Option<String>,
    region: Option<String>,
}

/// `record_start`'s fields: a WAV of what every participant may hear.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordStartBody {
    format: Option<String>,
    command_id: Option<String>,
    play_beep: Option<bool>,
    custom_file_name: Option<String>,
    trim: Option<String>,
    region: Option<String>,
}

#[utoipa::path(post, path = "/v2/conferences/{id}/actions/{action}", tag = "conferences",
    params(("id" = String, Path), ("action" = String, Path, description = "join, leave, mute, unmute, hold, unhold, update, play, speak, stop, send_dtmf, record_start, record_stop, record_pause, record_resume or end")),
    request_body = Object,
    responses((status = 200, description = "Done: `{\"data\": {\"result\": \"ok\"}}`"),
    (status = 404, description = "No such conference", body = ErrorEnvelope),
    (status = 422, description = "Invalid field, a call not in the conference, an ended conference, or an action Bond does not have yet (10015)", body = ErrorEnvelope),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn action(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, action)): Path<(String, String)>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let org = principal.organization_id.as_str();
    let calls = &state.calls;
    calls.conferences().get(org, &id).map_err(missing)?;
    // `command_id`: a repeat is answered as the first was, not carried out again.
    let command_id =
        body.get("command_id").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
    if let Some(command_id) = &command_id {
        let stored = state.store.command_result(&id, command_id).await.map_err(|e| ApiError::internal(&e))?;
        if let Some((_, stored)) = stored {
            return Ok(Json(serde_json::from_str(&stored).unwrap_or(Value::Null)));
        }
    }
    act_on_conference(&state, &principal, &id, &action, body).await?;
    let response = json!({ "data": { "result": "ok" } });
    if let Some(command_id) = &command_id {
        let text = response.to_string();
        let saved = state.store.save_command_result(&id, command_id, &action, 200, &text);
        saved.await.map_err(|e| ApiError::internal(&e))?;
    }
    Ok(Json(response))
}

/// Carry out conference action `action` with its `body`.
async fn act_on_conference(
    state: &AppState,
    principal: &Principal,
    id: &str,
    action: &str,
    body: Value,
) -> Result<(), ApiError> {
    let (calls, org) = (&state.calls, principal.organization_id.as_str());
    match action {
        "join" => {
            let body: JoinBody = typed(body)?;
            let beeps = beeps(body.beep_enabled.as_deref())?;
            not_yet(body.hold_media_name.is_some(), "hold_media_name", "uploaded media")?;
            let _ = (body.command_id, body.region);
            let role = supervisor_role(body.supervisor_role.as_deref().unwrap_or("none"))?;
            let call =
                joining_call(state, principal, &body.call_control_id, body.client_state.as_deref()).await?;
            let join = Join {
                role,
                whisper_to: body.whisper_call_control_ids.unwrap_or_default(),
                mute: body.mute.unwrap_or(false),
                hold: body.hold.unwrap_or(false),
                hold_audio_url: body.hold_audio_url,
                end_conference_on_exit: body.end_conference_on_exit.unwrap_or(false),
                soft_end_conference_on_exit: body.soft_end_conference_on_exit.unwrap_or(false),
                beeps,
                start_conference_on_enter: body.start_conference_on_enter.unwrap_or(false),
            };
            calls.join_conference(org, id, &call, join).await?;
        }
        "leave" => {
            let body: LeaveBody = typed(body)?;
            let beeps = beeps(body.beep_enabled.as_deref())?;
            let _ = (body.command_id, body.region);
            calls.leave_conference(org, id, &body.call_control_id, beeps).await?;
        }
        "mute" | "unmute" | "hold" | "unhold" => {
            let body: ParticipantsBody = typed(body)?;
            not_yet(body.media_name.is_some(), "media_name", "uploaded media")?;
            let _ = body.region;
            let ids = &body.call_control_ids;
            match action {
                "mute" => calls.mute_participants(org, id, ids, true).await?,
                "unmute" => calls.mute_participants(org, id, ids, false).await?,
                "hold" => calls.hold_participants(org, id, ids, Some(body.audio_url)).await?,
                _ => calls.hold_participants(org, id, ids, None).await?,
            }
        }
        "update" => {
            let body: UpdateBody = typed(body)?;
            let _ = (body.command_id, body.region);
            let role = supervisor_role(&body.supervisor_role)?;
            calls
                .update_participant(org, id, &body.call_control_id, role, body.whisper_call_control_ids)
                .await?;
        }
        "end" => {
            let body: EndBody = typed(body)?;
            let _ = (body.command_id, body.region);
            calls.end_conference(org, id).await?;
        }
        "play" | "speak" | "stop" => {
            let some: Vec<CallId> = participant_ids(&body)?;
            match (action, some.is_empty()) {
                ("play", true) => {
                    calls.conference_playback(org, id, bond_calls::playback_request(&body)?).await?
                }
                ("speak", true) => {
                    calls.conference_playback(org, id, bond_calls::speak_request(&body)?).await?
                }
                ("stop", true) => calls.stop_conference_playback(org, id).await?,
                ("play", false) => {
                    calls.participants_playback(org, id, &some, bond_calls::playback_request(&body)?).await?
                }
                ("speak", false) => {
                    calls.participants_playback(org, id, &some, bond_calls::speak_request(&body)?).await?
                }
                _ => calls.stop_participants_playback(org, id, &some).await?,
            }
        }
        "record_start" => {
            let body: RecordStartBody = typed(body)?;
            not_yet(body.format.as_deref().is_some_and(|f| f != "wav"), "format", "mp3 recordings")?;
            not_yet(body.play_beep == Some(true), "play_beep", "beeps")?;
            not_yet(body.custom_file_name.is_some(), "custom_file_name", "custom file names")?;
            not_yet(body.trim.is_some(), "trim", "trimmed recordings")?;
            let _ = (body.command_id, body.region);
            calls.start_conference_recording(org, id).await?;
        }
        "record_stop" | "record_pause" | "record_resume" => {
            let body: EndBody = typed(body)?;
            let _ = (body.command_id, body.region);
            match action {
                "record_stop" => calls.stop_conference_recording(org, id).await?,
                "record_pause" => calls.pause_conference_recording(org, id, true).await?,
                _ => calls.pause_conference_recording(org, id, false).await?,
            }
        }
        "send_dtmf" => {
            let ids: Vec<CallId> = participant_ids(&body)?;
            let (digits, timing) = bond_calls::action::fields::dtmf(&body)?;
            calls.conference_dtmf(org, id, &ids, digits, timing).await?;
        }
        "gather_using_audio" => {
            return Err(ApiError::unprocessable(
                "10015",
                format!("The conference action '{action}' is not available in Bond yet."),
                "/action",
            ));
        }
        _ => return Err(ApiError::not_found(format!("No conference action '{action}'."))),
    }
    Ok(())
}

/// `call_control_ids`, when an action names some participants (none: all, or the conference).
fn participant_ids(body: &Value) -> Result<Vec<CallId>, ApiError> {
    match body.get("call_control_ids") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(ids) => serde_json::from_value(ids.clone()).map_err(|_| {
            ApiError::unprocessable(
                "10002",
                "call_control_ids must be a list of call ids",
                "/call_control_ids",
            )
        }),
    }
}

/// `beep_enabled` (`always`, `never`, `on_enter`, `on_exit`), when given.
fn beeps(value: Option<&str>) -> Result<Option<Beeps>, ApiError> {
    Ok(value.map(|v| Beeps::parse(v, "/beep_enabled")).transpose()?)
}

/// The organization's call `id`, with its `client_state` set first when one is given.
async fn joining_call(
    state: &AppState,
    principal: &Principal,
    id: &CallId,
    client_state: Option<&str>,
) -> Result<bond_store::CallRecord, ApiError> {
    let call = find_call(state, principal, id).await?;
    let Some(client_state) = client_state else { return Ok(call) };
    check_client_state(client_state)?;
    let updated = state
        .store
        .set_client_state(&principal.organization_id, &call.call_control_id, client_state)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    updated.ok_or_else(ApiError::call_ended)
}

fn missing(error: bond_calls::conference::ConferenceError) -> ApiError {
    ApiError::not_found(error.to_string())
}

fn supervisor_role(name: &str) -> Result<SupervisorRole, ApiError> {
    SupervisorRole::parse(name).ok_or_else(|| {
        ApiError::unprocessable(
            "10002",
            "supervisor_role must be barge, monitor, none or whisper",
            "/supervisor_role",
        )
    })
}

/// A Telnyx field asking for what Bond does not have yet: 10015, naming it.
fn not_yet(asked: bool, field: &str, what: &str) -> Result<(), ApiError> {
    match asked {
        true => Err(ApiError::unprocessable(
            "10015",
            format!("{what} ({field}) are not available in Bond yet"),
            &format!("/{field}"),
        )),
        false => Ok(()),
    }
}
