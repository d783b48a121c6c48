//! `/v2/calls`: dial, read and list (the actions are `actions.rs`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bond_store::CallId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{page_json, typed, Body};
use super::forward::Answer;
use super::placing::place;
use super::{found, ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;
use bond_calls::action::fields;
use bond_calls::country::{country_of, in_countries};
use bond_calls::endpoint::{self, PhoneUser};
use bond_calls::{amd, stream_request, supervisor_role, AmdRequest, Dial, Endpoint, Link, Supervise};
use bond_store::{CallRecord, Claim, IdempotencyScope, Page, VoiceConfig};

/// The `POST /v2/calls` fields Bond understands. Fields for features Bond does not
/// have yet (AMD, streaming, recording, ...) are refused rather than ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DialBody {
    connection_id: Option<String>,
    /// E.164, `sip:`, `agent:<name>` or `loop:echo|tone|silence|play`.
    #[schema(value_type = Option<String>)]
    pub(super) to: Option<Value>,
    from: Option<String>,
    from_display_name: Option<String>,
    timeout_secs: Option<i64>,
    time_limit_secs: Option<i64>,
    client_state: Option<String>,
    command_id: Option<String>,
    webhook_url: Option<String>,
    webhook_url_method: Option<String>,
    webhook_failover_url: Option<String>,
    custom_headers: Option<Vec<NameValue>>,
    answering_machine_detection: Option<String>,
    #[schema(value_type = Option<Object>)]
    answering_machine_detection_config: Option<Value>,
    record: Option<String>,
    record_channels: Option<String>,
    record_format: Option<String>,
    pub(super) link_to: Option<CallId>,
    bridge_on_answer: Option<bool>,
    pub(super) supervise_call_control_id: Option<CallId>,
    supervisor_role: Option<String>,
    /// `stream_url` and the other `stream_*` fields, and fields Bond refuses as not available yet.
    #[serde(flatten)]
    #[schema(ignore)]
    other: serde_json::Map<String, Value>,
}

/// A SIP header for the INVITE (`custom_headers`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NameValue {
    name: String,
    value: String,
}

/// Features named by a dial field that Bond cannot honour yet.
const NOT_YET: &[(&str, &str)] =
    &[("transcription", "transcription"), ("audio_url", "playback"), ("media_name", "playback")];

fn required<'a>(value: &'a Option<String>, pointer: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::unprocessable("10005", format!("{} is required", &pointer[1..]), pointer))
}

#[utoipa::path(post, path = "/v2/calls", tag = "calls",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body(content = DialBody, description = "to: E.164, sip:, agent: or loop:echo|tone|silence|play; link_to shares that call's call_session_id; bridge_on_answer bridges with link_to once answered (link_to ending first cancels the call); stream_url and the stream_* fields stream from the answer"),
    responses((status = 200, description = "The call placed (or the first answer, replayed)", body = super::schemas::Data<super::schemas::DialAnswer>),
    (status = 422, description = "Invalid destination, country not allowed, or feature not available", body = ErrorEnvelope),
    (status = 429, description = "Over the rate limit", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn dial(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Body(raw): Body<Value>,
) -> Result<Response, ApiError> {
    let body: DialBody = typed(raw.clone())?;
    principal.require(Role::Agent)?;
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body.command_id.clone());
    let Some(key) = idempotency_key else {
        return Ok(place(&state, &principal, &raw, body).await?.into_response());
    };
    let scope = IdempotencyScope {
        organization_id: &principal.organization_id,
        api_key_id: &principal.api_key_id,
        key: &key,
    };
    let request_hash = crate::auth::hash_key(&raw.to_string());
    match state
        .store
        .claim_idempotency_key(&scope, &request_hash)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        Claim::Mine => {}
        Claim::Replay(status, stored) => return Ok(replay(status, &stored)),
        Claim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "10011",
                "Conflict",
                "A request with this Idempotency-Key is still being answered; retry it shortly.",
            ))
        }
        Claim::Mismatch => {
            return Err(ApiError::unprocessable(
                "10002",
                "This Idempotency-Key was used with another request body; use a new key for a new request.",
                "/",
            ))
        }
    }
    match place(&state, &principal, &raw, body).await {
        Ok(answer) if answer.status == 200 => {
            state
                .store
                .finish_idempotent(&scope, 200, &answer.body.to_string())
                .await
                .map_err(|e| ApiError::internal(&e))?;
            Ok(answer.into_response())
        }
        outcome => {
            // Nothing was placed: the key may be used again. Unless the node the
            // dial went to did not answer in time: it may have placed the call, so
            // the key stays claimed (retries hear 409 until it is taken over).
            let unknown = matches!(&outcome, Err(e) if e.status == StatusCode::GATEWAY_TIMEOUT);
            if !unknown {
                if let Err(db) = state.store.release_idempotency_key(&scope).await {
                    tracing::warn!(error = %db, "could not give an Idempotency-Key back");
                }
            }
            outcome.map(Answer::into_response)
        }
    }
}

/// What a dial answers with.
pub(super) fn dial_answer(call: &CallRecord) -> Value {
    json!({ "data": {
        "call_control_id": call.call_control_id,
        "call_leg_id": call.call_leg_id,
        "call_session_id": call.call_session_id,
        "is_alive": call.is_alive(),
        "record_type": "call",
        "client_state": call.client_state,
        "start_time": call.created_at,
    }})
}

/// What an agent may not do when dialing: place calls on another connection
/// than its token's (or on any, with a token that has none), supervise
/// calls, stream them elsewhere, or send their webhooks elsewhere.
fn confine_agent_dial(principal: &Principal, connection_id: &str, body: &DialBody) -> Result<(), ApiError> {
    if principal.role >= Role::Supervisor {
        return Ok(());
    }
    if let Some(token_connection) = &principal.token_connection {
        if token_connection.as_deref() != Some(connection_id) {
            return Err(forbidden("This agent token places calls only on the connection it was issued for."));
        }
    }
    let reserved = [
        ("supervise_call_control_id", body.supervise_call_control_id.is_some()),
        ("stream_url", body.other.get("stream_url").is_some_and(|v| !v.is_null())),
        ("webhook_url", body.webhook_url.is_some() || body.webhook_failover_url.is_some()),
    ];
    match reserved.iter().find(|(_, given)| *given) {
        Some((field, _)) => Err(forbidden(&format!("{field} needs the supervisor role."))),
        None => Ok(()),
    }
}

pub(super) fn forbidden(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "10010", "Forbidden", detail)
}

/// What the organization's voice config allows a dial to reach: who may dial
/// raw `sip:` URIs, and which countries a number (alone or inside a `sip:`
/// URI) may be in.
pub(super) fn check_outbound(endpoint: &Endpoint, config: &VoiceConfig, role: Role) -> Result<(), ApiError> {
    if matches!(endpoint, Endpoint::Sip(_)) && role < config.sip_uri_dialing {
        return Err(forbidden(&format!(
            "Dialing sip: URIs needs the {} role (voice_config.sip_uri_dialing).",
            config.sip_uri_dialing.as_str()
        )));
    }
    let Some(allowed) = &config.outbound_countries else { return Ok(()) };
    let number = match endpoint {
        Endpoint::E164(number) => number.as_str(),
        Endpoint::Sip(uri) => match endpoint::phone_number_in(uri) {
            PhoneUser::None => return Ok(()),
            PhoneUser::E164(number) => number,
            PhoneUser::Bare => {
                return Err(ApiError::unprocessable(
                    "10016",
                    "This organization limits outbound countries: a number in a sip: URI must be \
                     in E.164 form (+ and country code) to be checked.",
                    "/to",
                ))
            }
        },
        _ => return Ok(()),
    };
    if in_countries(number, allowed) {
        return Ok(());
    }
    Err(ApiError::unprocessable(
        "10016",
        format!(
            "Calls to {} are not allowed for this organization.",
            country_of(number).unwrap_or("that country")
        ),
        "/to",
    ))
}

pub(super) async fn dial_checked(
    state: &AppState,
    principal: &Principal,
    body: DialBody,
) -> Result<CallRecord, ApiError> {
    for (field, feature) in NOT_YET {
        if body.other.get(*field).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::unprocessable(
                "10015",
                format!("{feature} is not available in Bond yet"),
                &format!("/{field}"),
            ));
        }
    }
    let connection_id = required(&body.connection_id, "/connection_id")?;
    confine_agent_dial(principal, connection_id, &body)?;
    let to = match &body.to {
        Some(Value::String(to)) if !to.is_empty() => to.clone(),
        Some(Value::Array(_)) => {
            return Err(ApiError::unprocessable(
                "10015",
                "simultaneous ringing (a list of 'to') is not available yet",
                "/to",
            ))
        }
        _ => return Err(ApiError::unprocessable("10005", "to is required", "/to")),
    };
    let endpoint = Endpoint::parse(&to).map_err(|e| ApiError::unprocessable("10002", e.0, "/to"))?;
    let endpoint = match body.other.get("sip_transport_protocol") {
        None | Some(Value::Null) => Ok(endpoint),
        Some(Value::String(protocol)) => endpoint.with_sip_transport(protocol),
        Some(_) => Err(bond_calls::endpoint::EndpointError("not a string".into())),
    }
    .map_err(|e| ApiError::unprocessable("10002", e.0, "/sip_transport_protocol"))?;
    let srtp = media_encryption(&body, &endpoint)?;
    if matches!(endpoint, Endpoint::E164(_) | Endpoint::Sip(_)) {
        let config =
            state.store.voice_config(&principal.organization_id).await.map_err(|e| ApiError::internal(&e))?;
        check_outbound(&endpoint, &config, principal.role)?;
    }
    let from = required(&body.from, "/from")?.to_owned();
    bond_calls::check_from(&from)?;
    if let Some(client_state) = &body.client_state {
        fields::check_client_state(client_state)?;
    }
    bond_calls::check_limits(body.timeout_secs, body.time_limit_secs)?;
    if body.webhook_url_method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("POST")) {
        return Err(ApiError::unprocessable(
            "10002",
            "Bond sends webhooks with POST only",
            "/webhook_url_method",
        ));
    }
    for (url, pointer) in
        [(&body.webhook_url, "/webhook_url"), (&body.webhook_failover_url, "/webhook_failover_url")]
    {
        if let Some(url) = url {
            super::connections::validate_url(url, pointer)?;
        }
    }
    let custom_headers: Vec<bond_calls::refer::NameValue> = body
        .custom_headers
        .iter()
        .flatten()
        .map(|h| bond_calls::refer::NameValue { name: h.name.clone(), value: h.value.clone() })
        .collect();
    let custom_headers = bond_calls::refer::custom_headers(&custom_headers)?;
    let connection = state
        .store
        .get_connection(&principal.organization_id, connection_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| {
            ApiError::unprocessable(
                "10005",
                "No call control application with that connection_id.",
                "/connection_id",
            )
        })?;
    if !connection.active {
        return Err(ApiError::unprocessable("10015", "The connection is not active.", "/connection_id"));
    }
    let record = fields::record_options(
        &json!({ "record": body.record, "record_channels": body.record_channels, "record_format": body.record_format }),
        "record",
        "record_channels",
        "record_format",
    )?;
    let stream = match body.other.get("stream_url") {
        Some(url) if !url.is_null() => Some(stream_request(&Value::Object(body.other.clone()))?),
        _ => None,
    };
    let amd = amd_request(state, principal, &endpoint, &body).await?;
    let link = link(state, principal, &body).await?;
    let supervise = supervise(state, principal, &body).await?;
    let dial = Dial {
        amd,
        link,
        supervise: supervise.clone(),
        to,
        endpoint,
        from,
        from_display_name: body.from_display_name,
        client_state: body.client_state,
        webhook_url: body.webhook_url,
        webhook_failover_url: body.webhook_failover_url,
        time_limit_secs: body.time_limit_secs,
        timeout_secs: body.timeout_secs,
        placed_by: Some(principal.api_key_id.clone()),
        srtp,
        custom_headers,
    };
    let call = state.calls.dial(&connection, dial).await?;
    if let Some(options) = record {
        // Built-in legs answer at once, so "from answer" is now.
        state.calls.start_recording(&call, options).await?;
    }
    if let Some(request) = stream {
        state.calls.stream_from_answer(&call, request).await?;
    }
    if let Some(supervise) = supervise {
        state.calls.supervise_from_answer(&call, supervise).await?;
    }
    Ok(call)
}

/// Telnyx `media_encryption`: whether the call must be SRTP. Asked for
/// encryption Bond cannot give, a call is refused, never sent in the clear.
fn media_encryption(body: &DialBody, endpoint: &Endpoint) -> Result<bool, ApiError> {
    let pointer = "/media_encryption";
    let asked = match body.other.get("media_encryption") {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::String(asked)) => asked.to_ascii_uppercase(),
        Some(_) => {
            return Err(ApiError::unprocessable("10002", "media_encryption must be a string", pointer))
        }
    };
    match asked.as_str() {
        "DISABLED" => Ok(false),
        "SRTP" if matches!(endpoint, Endpoint::E164(_) | Endpoint::Sip(_)) => Ok(true),
        "SRTP" => Err(ApiError::unprocessable("10015", "media_encryption SRTP is for SIP calls", pointer)),
        "DTLS" => {
            Err(ApiError::unprocessable("10015", "media_encryption DTLS is not available in Bond", pointer))
        }
        _ => {
            Err(ApiError::unprocessable("10002", "media_encryption must be disabled, SRTP or DTLS", pointer))
        }
    }
}

/// `link_to` a live call of the organization, and `bridge_on_answer` with it.
async fn link(state: &AppState, principal: &Principal, body: &DialBody) -> Result<Option<Link>, ApiError> {
    let bridge_on_answer = body.bridge_on_answer.unwrap_or(false);
    let Some(id) = &body.link_to else {
        if bridge_on_answer {
            return Err(ApiError::unprocessable("10005", "bridge_on_answer needs link_to", "/link_to"));
        }
        return Ok(None);
    };
    let call = live_call(state, principal, id, "link_to").await?;
    principal.require_call(&call)?;
    let (call, call_session_id) = (call.call_control_id, call.call_session_id);
    Ok(Some(Link { call, call_session_id, bridge_on_answer, early_media: false }))
}

/// The organization's live call `id`, named by the dial field `field` (422 `90018` otherwise).
pub(super) async fn live_call(
    state: &AppState,
    principal: &Principal,
    id: &CallId,
    field: &str,
) -> Result<CallRecord, ApiError> {
    let call =
        state.store.get_call(&principal.organization_id, id).await.map_err(|e| ApiError::internal(&e))?;
    call.filter(CallRecord::is_alive).ok_or_else(|| {
        ApiError::unprocessable("90018", format!("{field} names no live call."), &format!("/{field}"))
    })
}

/// `supervise_call_control_id` (a live call of the organization) and `supervisor_role` (default `barge`).
async fn supervise(
    state: &AppState,
    principal: &Principal,
    body: &DialBody,
) -> Result<Option<Supervise>, ApiError> {
    let Some(id) = &body.supervise_call_control_id else {
        return Ok(None);
    };
    let role = supervisor_role(body.supervisor_role.as_deref().unwrap_or("barge")).ok_or_else(|| {
        ApiError::unprocessable(
            "10002",
            "supervisor_role must be barge, whisper or monitor",
            "/supervisor_role",
        )
    })?;
    let call = live_call(state, principal, id, "supervise_call_control_id").await?;
    Ok(Some(Supervise { call: call.call_control_id, role }))
}

/// AMD as the request asks, or else the organization's default, which never
/// applies to agent legs (detection is for customers).
async fn amd_request(
    state: &AppState,
    principal: &Principal,
    endpoint: &Endpoint,
    body: &DialBody,
) -> Result<Option<AmdRequest>, ApiError> {
    let invalid = |(detail, pointer): (String, String)| ApiError::unprocessable("10002", detail, &pointer);
    if let Some(mode) = &body.answering_machine_detection {
        return amd::request(mode, body.answering_machine_detection_config.as_ref()).map_err(invalid);
    }
    if matches!(endpoint, Endpoint::Agent(_)) {
        return Ok(None);
    }
    let config =
        state.store.voice_config(&principal.organization_id).await.map_err(|e| ApiError::internal(&e))?;
    amd::request(&config.answering_machine_detection, config.answering_machine_detection_config.as_ref())
        .map_err(invalid)
}

pub(super) fn replay(status: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, Json(value)).into_response()
}

/// A call as `GET /v2/calls/{id}` shows it: Telnyx's status fields and Bond's own.
fn call_json(call: &CallRecord) -> Value {
    let duration = call_duration(call);
    let mut v = serde_json::to_value(call).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert("record_type".into(), json!("call"));
        o.insert("is_alive".into(), json!(call.is_alive()));
        o.insert("call_duration".into(), json!(duration));
        o.insert("start_time".into(), json!(call.created_at));
        o.insert("end_time".into(), json!(call.ended_at));
        // Bond's own: the node carrying the call's legs (docs/cluster.md).
        o.insert("node_id".into(), json!(call.node_id));
        // Bond's own: what the call's voice agents used and cost (docs/voice-agents.md).
        if let Some(usage) = &call.assistant_usage {
            o.insert("bond_assistant_usage".into(), usage.clone());
        }
    }
    v
}

fn call_duration(call: &CallRecord) -> i64 {
    use time::format_description::well_known::Rfc3339;
    let parse = |s: &str| time::OffsetDateTime::parse(s, &Rfc3339).ok();
    let start = parse(&call.created_at);
    let end = call.ended_at.as_deref().and_then(parse).or_else(|| parse(&bond_store::clock::rfc3339_now()));
    match (start, end) {
        (Some(s), Some(e)) => (e - s).whole_seconds().max(0),
        _ => 0,
    }
}

/// The organization's call `id` (404 when missing or another organization's).
pub(super) async fn find_call(
    state: &AppState,
    principal: &Principal,
    id: &CallId,
) -> Result<CallRecord, ApiError> {
    found(state.store.get_call(&principal.organization_id, id).await, "No call with that call_control_id.")
}

#[utoipa::path(get, path = "/v2/calls/{id}", tag = "calls", params(("id" = String, Path, description = "call_control_id")),
    responses((status = 200, description = "Call status", body = super::schemas::Data<CallRecord>), (status = 404, description = "Missing or another organization's", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<CallId>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Agent)?;
    let call = find_call(&state, &principal, &id).await?;
    principal.require_call(&call)?;
    Ok(Json(json!({ "data": call_json(&call) })))
}

#[utoipa::path(get, path = "/v2/calls", tag = "calls",
    params(("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "Live calls first, then the most recent", body = super::schemas::Paged<CallRecord>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let (calls, total) =
        state.store.list_calls(&principal.organization_id, page).await.map_err(|e| ApiError::internal(&e))?;
    let data: Vec<Value> = calls.iter().map(call_json).collect();
    Ok(page_json(data, page, total))
}
