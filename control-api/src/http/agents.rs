//! Agents: `POST /v2/agent_tokens` issues an agent's token; `GET /v2/agent/ws` is
//! the softphone's signaling WebSocket; `GET /agent` serves the softphone page.
//!
//! The socket is this layer's: the upgrade, the first frame's token check, and
//! the close codes. No registration, a bad token or binary frames close it with
//! 1008 / 1003; the token expiring, the agent registering elsewhere or the token
//! being revoked closes it with 4001 / 4000 / 4003. What each text frame means
//! (docs/agents.md) is `bond-agents`'s.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use bond_agents::{AgentControl, AgentMessage, ClientMessage, SignedIn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::Body;
use super::{ApiError, ErrorEnvelope};
use crate::agent_token::{self, AgentClaims, TokenRole, DEFAULT_TTL_SECS, MAX_TTL_SECS};
use crate::auth::{Principal, Role};
use crate::revocation::Credential;
use crate::state::AppState;
use bond_calls::Endpoint;
use bond_store::clock::unix_seconds;

const SOFTPHONE_HTML: &str = include_str!("../../assets/agent.html");
const SOFTPHONE_JS: &str = include_str!("../../assets/softphone.js");
const WEBRTC_JS: &str = include_str!("../../assets/webrtc.js");
/// An SDP offer is a few kB; nothing the browser sends needs more.
const MAX_MESSAGE: usize = 64 * 1024;
const REGISTER_WITHIN: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    agent: String,
    ttl_secs: Option<i64>,
    /// The connection the agent places calls on (optional).
    connection_id: Option<String>,
}

/// `POST /v2/agent_tokens`: a short-lived token for an agent (supervisors, admins).
#[utoipa::path(post, path = "/v2/agent_tokens", tag = "agents",
    request_body(content = TokenBody, description = "agent: the name, as dialed with agent:<name>; ttl_secs: default 3600, at most 129600; connection_id: where the agent's own calls are placed (without it the agent only takes calls)"),
    responses((status = 201, description = "The token, shown once", body = super::schemas::Data<super::schemas::IssuedToken>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope), (status = 422, description = "Bad agent name or ttl", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn issue_token(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<TokenBody>,
) -> Result<Response, ApiError> {
    principal.require(Role::Supervisor)?;
    if !is_agent_name(&body.agent) {
        return Err(ApiError::unprocessable(
            "10002",
            "agent must be a name as dialed with agent:<name> (letters, digits, . _ -)",
            "/agent",
        ));
    }
    let ttl = checked_ttl(body.ttl_secs)?;
    if let Some(id) = &body.connection_id {
        let found = state.store.get_connection(&principal.organization_id, id).await;
        if found.map_err(|e| ApiError::internal(&e))?.is_none() {
            return Err(ApiError::unprocessable(
                "10005",
                "No call control application with that connection_id.",
                "/connection_id",
            ));
        }
    }
    let claims = AgentClaims {
        organization_id: principal.organization_id,
        agent: body.agent,
        expires: unix_seconds() + ttl,
        connection_id: body.connection_id,
        id: uuid::Uuid::new_v4().to_string(),
        role: TokenRole::Agent,
    };
    let token = agent_token::issue(&state.signer, &claims);
    let data = json!({ "record_type": "agent_token", "id": claims.id, "token": token, "agent": claims.agent,
        "connection_id": claims.connection_id, "expires_at": agent_token::expires_at(&claims) });
    Ok((StatusCode::CREATED, Json(json!({ "data": data }))).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisorTokenBody {
    /// Who it is for (shown in the audit log as `supervisor:<name>`).
    name: String,
    ttl_secs: Option<i64>,
}

/// `POST /v2/supervisor_tokens`: a short-lived token the supervisors' page
/// signs in with (supervisors, admins), so no API key is pasted into a browser.
#[utoipa::path(post, path = "/v2/supervisor_tokens", tag = "agents",
    request_body(content = SupervisorTokenBody, description = "ttl_secs: default 3600, at most 129600"),
    responses((status = 201, description = "The token, shown once", body = super::schemas::Data<super::schemas::IssuedToken>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope), (status = 422, description = "Bad name or ttl", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn issue_supervisor_token(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<SupervisorTokenBody>,
) -> Result<Response, ApiError> {
    principal.require(Role::Supervisor)?;
    if !is_agent_name(&body.name) {
        return Err(ApiError::unprocessable("10002", "name must be letters, digits, . _ -", "/name"));
    }
    let ttl = checked_ttl(body.ttl_secs)?;
    let claims = AgentClaims {
        organization_id: principal.organization_id,
        agent: body.name,
        expires: unix_seconds() + ttl,
        connection_id: None,
        id: uuid::Uuid::new_v4().to_string(),
        role: TokenRole::Supervisor,
    };
    let token = agent_token::issue(&state.signer, &claims);
    let data = json!({ "record_type": "supervisor_token", "id": claims.id, "token": token, "name": claims.agent,
        "expires_at": agent_token::expires_at(&claims) });
    Ok((StatusCode::CREATED, Json(json!({ "data": data }))).into_response())
}

/// A name as dialed with `agent:<name>`; supervisor names follow the same rule.
fn is_agent_name(name: &str) -> bool {
    matches!(Endpoint::parse(&format!("agent:{name}")), Ok(Endpoint::Agent(_)))
}

/// A token's lifetime: the default when absent, else within 1..=MAX_TTL_SECS.
fn checked_ttl(ttl_secs: Option<i64>) -> Result<i64, ApiError> {
    let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return Err(ApiError::unprocessable(
            "10002",
            format!("ttl_secs must be between 1 and {MAX_TTL_SECS}"),
            "/ttl_secs",
        ));
    }
    Ok(ttl)
}

/// `DELETE /v2/agent_tokens/{id}`: the token stops working at once; a
/// signaling or supervisor socket signed in with it is closed with 4003.
#[utoipa::path(delete, path = "/v2/agent_tokens/{id}", tag = "agents", params(("id" = String, Path, description = "The id POST /v2/agent_tokens answered with")),
    responses((status = 200, description = "Revoked", body = super::schemas::Data<super::schemas::Revoked>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    // Kept until the longest a token can live has passed.
    let expires_at = unix_seconds() + MAX_TTL_SECS;
    state
        .store
        .revoke_agent_token(&principal.organization_id, &id, expires_at)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    state.revocations.announce(&principal.organization_id, &id);
    Ok(Json(json!({ "data": { "record_type": "agent_token", "id": id, "revoked": true } })))
}

/// `GET /agent`: the softphone page.
pub async fn softphone() -> Html<&'static str> {
    Html(SOFTPHONE_HTML)
}

pub async fn softphone_js() -> Response {
    javascript(SOFTPHONE_JS)
}

/// `GET /agent/webrtc.js`: the microphone, offer and meters the softphone and the supervisor page share.
pub async fn webrtc_js() -> Response {
    javascript(WEBRTC_JS)
}

pub fn javascript(source: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], source).into_response()
}

/// `GET /v2/agent/ws`: the signaling socket (authenticated by its first message).
#[utoipa::path(get, path = "/v2/agent/ws", tag = "agents",
    description = "The softphone's signaling WebSocket. Text frames of JSON: the browser sends ClientMessage frames (the first must be register {token} with an agent token, within 10 s), Bond answers with AgentMessage frames. A bad token or a first frame that is not register closes with 1008, a binary frame with 1003, the token expiring with 4001, a newer registration of the same agent with 4000, the token revoked with 4003.",
    responses((status = 101, description = "Switched to WebSocket: ClientMessage frames in, AgentMessage frames out")))]
pub async fn signaling(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .read_buffer_size(bond_streams::READ_BUFFER)
        .on_upgrade(move |socket| session(state, socket))
}

async fn session(state: AppState, mut socket: WebSocket) {
    let claims = match tokio::time::timeout(REGISTER_WITHIN, registration(&state, &mut socket)).await {
        Ok(Ok(claims)) => claims,
        Ok(Err(reason)) => return close(&mut socket, 1008, reason).await,
        Err(_) => return close(&mut socket, 1008, "register with an agent token first".into()).await,
    };
    let who = signed_in(&claims);
    let mut registration = state.calls.agents().register(&who, bond_store::clock::monotonic());
    // Dials to this agent through other nodes come here (docs/cluster.md).
    let dials_from_other_nodes = match &state.forwarder {
        Some(bus) => {
            bus.agent_registered(&state, &who.organization_id, &who.agent).await;
            Some(bus.serve_agent(&state, &who.organization_id, &who.agent))
        }
        None => None,
    };
    let ice_servers = state.turn.as_ref().map(|turn| turn.ice_servers(&who.agent, unix_seconds()));
    let registered = AgentMessage::Registered {
        agent: who.agent.clone(),
        expires: claims.expires,
        connection_id: who.connection_id.clone(),
        ice_servers: ice_servers.unwrap_or_default(),
    };
    let _ = send(&mut socket, &registered).await;
    let credential = Credential::of_token(&claims);
    let lapsed = credential.lapsed(&state.store, &state.revocations);
    tokio::pin!(lapsed);
    let mut refresh = state.turn.as_ref().map(|turn| {
        let mut every = tokio::time::interval(turn.refresh_every());
        every.reset(); // the first tick after one period, not at once
        every
    });
    loop {
        tokio::select! {
            turn = fresh_turn(&state, &who.agent, refresh.as_mut()) => {
                if send(&mut socket, &AgentMessage::IceServers { ice_servers: turn }).await.is_err() {
                    break;
                }
            }
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let reply = bond_agents::handle(&state.calls, &who, &text).await;
                    if let Some(reply) = reply {
                        if send(&mut socket, &reply).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    close(&mut socket, 1003, "signaling is JSON text frames".into()).await;
                    break;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            message = registration.messages.recv() => match message {
                Some(message) => {
                    if send(&mut socket, &message).await.is_err() {
                        break;
                    }
                }
                None => {
                    close(&mut socket, 4000, "the agent registered elsewhere".into()).await;
                    break;
                }
            },
            lapse = &mut lapsed => {
                let (code, reason) = lapse.close_frame();
                close(&mut socket, code, reason.into()).await;
                break;
            }
        }
    }
    if let Some(serving) = dials_from_other_nodes {
        serving.abort();
    }
    bond_agents::signed_out(&state.calls, &who, registration.id).await;
}

/// Fresh TURN credentials for `agent` when `refresh` ticks; never without TURN.
async fn fresh_turn(
    state: &AppState,
    agent: &str,
    refresh: Option<&mut tokio::time::Interval>,
) -> Vec<bond_agents::turn::IceServer> {
    let (Some(turn), Some(refresh)) = (state.turn.as_ref(), refresh) else {
        return std::future::pending().await;
    };
    refresh.tick().await;
    turn.ice_servers(agent, unix_seconds())
}

/// The first frame must register with a valid token.
async fn registration(state: &AppState, socket: &mut WebSocket) -> Result<AgentClaims, String> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Register { token }) => {
                        match crate::auth::verify_agent_token(state, &token).await {
                            Ok(claims) if claims.role == TokenRole::Agent => Ok(claims),
                            Ok(_) => Err("register with an agent token, not a supervisor's".into()),
                            Err(e) => Err(e.body.detail),
                        }
                    }
                    _ => Err("the first message must be register {token}".into()),
                };
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return Err("the first message must be register {token}".into()),
        }
    }
}

/// One signaling frame from a registered agent, answered as the socket would
/// (the JSON of the reply, if any): for the `agent_frame` fuzz target.
pub async fn signaling_frame(state: &AppState, claims: &AgentClaims, text: &str) -> Option<String> {
    bond_agents::handle(&state.calls, &signed_in(claims), text).await.map(|reply| reply.to_json())
}

/// The agent a verified token names.
fn signed_in(claims: &AgentClaims) -> SignedIn {
    SignedIn {
        organization_id: claims.organization_id.clone(),
        agent: claims.agent.clone(),
        connection_id: claims.connection_id.clone(),
    }
}

async fn send(socket: &mut WebSocket, message: &AgentMessage) -> Result<(), axum::Error> {
    socket.send(Message::Text(message.to_json().into())).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: String) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}
