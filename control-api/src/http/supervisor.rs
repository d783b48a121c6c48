//! Live translation for supervisors: every segment of one call (what was said so
//! far first, for late joiners) or of the whole organization (the wall display),
//! as Server-Sent Events or over a WebSocket. Keys with role `supervisor` or
//! `admin` only; another organization's call is 404, like a missing one.
//!
//! The WebSocket (`/v2/supervisor/ws`) is for browsers, which cannot set headers
//! on it: the first message authenticates, `{"type":"subscribe","token":KEY}`
//! plus `call_control_id` for one call; then `{"type":"translation","segment":{...}}`
//! per segment. A failed subscribe gets `{"type":"error",...}` and close code 1008;
//! the token expiring closes the socket with 4001, the token or key revoked with 4003.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;
use bond_store::Segment;

const PAGE_HTML: &str = include_str!("../../assets/supervisor.html");
const PAGE_JS: &str = include_str!("../../assets/supervisor.js");

/// `GET /supervisor`: the supervisors' page (plain HTML/JS, like the softphone).
pub async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(PAGE_HTML)
}

pub async fn page_js() -> Response {
    super::agents::javascript(PAGE_JS)
}

/// How long a socket may take to subscribe.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(10);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a supervisor stream carries.
#[derive(Debug, Clone, PartialEq)]
enum Update {
    Segment(Box<Segment>),
    /// The consumer fell this many segments behind; they were skipped.
    Lagged(u64),
}

/// The segments `principal` may follow: of `call` (with what was said so far) or of the organization.
async fn updates(
    state: &AppState,
    principal: &Principal,
    call: Option<&bond_store::CallId>,
) -> Result<impl Stream<Item = Update> + Send + 'static, ApiError> {
    principal.require(Role::Supervisor)?;
    // Subscribe first: a segment stored while the catch-up is read comes live and is skipped once.
    let live = state.calls.subscribe_segments();
    let (so_far, call) = match call {
        Some(id) => {
            let call = super::calls::find_call(state, principal, id).await?;
            let so_far = state.store.call_segments(&call.organization_id, &call.call_control_id).await;
            (so_far.map_err(|e| ApiError::internal(&e))?, Some(call.call_control_id))
        }
        None => (Vec::new(), None),
    };
    let organization = principal.organization_id.clone();
    let wanted = move |s: &Segment| {
        s.fields.organization_id == organization
            && call.as_ref().is_none_or(|c| *c == s.fields.call_control_id)
    };
    Ok(follow(so_far, live, wanted))
}

fn follow(
    so_far: Vec<Segment>,
    live: broadcast::Receiver<Segment>,
    wanted: impl Fn(&Segment) -> bool + Send + 'static,
) -> impl Stream<Item = Update> + Send + 'static {
    let seen: HashSet<String> = so_far.iter().map(|s| s.id.clone()).collect();
    let catch_up = stream::iter(so_far.into_iter().map(|s| Update::Segment(Box::new(s))));
    let live = stream::unfold((live, seen, wanted), |(mut live, mut seen, wanted)| async move {
        loop {
            match live.recv().await {
                Ok(s) if wanted(&s) && !seen.remove(&s.id) => {
                    return Some((Update::Segment(Box::new(s)), (live, seen, wanted)))
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Some((Update::Lagged(n), (live, seen, wanted)))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    catch_up.chain(live)
}

fn sse(
    updates: impl Stream<Item = Update> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = updates.map(|update| {
        Ok(match update {
            Update::Segment(s) => Event::default()
                .event("translation")
                .id(s.id.clone())
                .data(serde_json::to_string(&s).unwrap_or_default()),
            Update::Lagged(n) => Event::default().event("lagged").data(json!({ "skipped": n }).to_string()),
        })
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

#[utoipa::path(get, path = "/v2/calls/{id}/translations/stream", tag = "calls",
    params(("id" = String, Path, description = "call_control_id")),
    responses((status = 200, description = "Server-Sent Events: `translation` per segment, the call so far first", body = String),
    (status = 404, description = "Missing or another organization's", body = ErrorEnvelope),
    (status = 403, description = "Supervisors and admins only", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn call_stream(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<bond_store::CallId>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Ok(sse(updates(&state, &principal, Some(&id)).await?))
}

#[utoipa::path(get, path = "/v2/translations/stream", tag = "calls",
    responses((status = 200, description = "Server-Sent Events: every translated segment of the organization's calls", body = String),
    (status = 403, description = "Supervisors and admins only", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn organization_stream(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Ok(sse(updates(&state, &principal, None).await?))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Subscribe {
    Subscribe { token: String, call_control_id: Option<bond_store::CallId> },
}

/// `GET /v2/supervisor/ws`: the same streams over a WebSocket, authenticated by its first message.
#[utoipa::path(get, path = "/v2/supervisor/ws", tag = "translations",
    description = "The organization's translated segments as they are stored, over a WebSocket. The first frame must be {\"type\":\"subscribe\",\"token\":<supervisor token or key>} within 10 s; then Bond sends one JSON frame per segment (the shape of GET /v2/calls/{id}/translations items, with call_control_id). A failed subscribe gets {\"type\":\"error\",...} and close 1008; the token expiring closes it with 4001, the token or key revoked with 4003.",
    responses((status = 101, description = "Switched to WebSocket")))]
pub async fn socket(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(16 * 1024)
        .read_buffer_size(bond_streams::READ_BUFFER)
        .on_upgrade(move |socket| supervise(state, socket))
}

async fn supervise(state: AppState, mut socket: WebSocket) {
    let first = tokio::time::timeout(SUBSCRIBE_WITHIN, socket.recv()).await;
    let subscribed = match first {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<Subscribe>(&text) {
            Ok(Subscribe::Subscribe { token, call_control_id }) => {
                match Principal::signed_in(&state, &token).await {
                    Ok((principal, credential)) => updates(&state, &principal, call_control_id.as_ref())
                        .await
                        .map(|updates| (updates, credential))
                        .map_err(|e| e.body.detail),
                    Err(e) => Err(e.body.detail),
                }
            }
            Err(e) => Err(format!("the first message must be {{\"type\":\"subscribe\",\"token\":...}}: {e}")),
        },
        _ => Err(format!("no subscribe message within {} s", SUBSCRIBE_WITHIN.as_secs())),
    };
    let (updates, credential) = match subscribed {
        Ok(subscribed) => subscribed,
        Err(detail) => {
            let _ =
                socket.send(Message::text(json!({ "type": "error", "detail": detail }).to_string())).await;
            let close =
                CloseFrame { code: axum::extract::ws::close_code::POLICY, reason: "not subscribed".into() };
            let _ = socket.send(Message::Close(Some(close))).await;
            return;
        }
    };
    let _ = socket.send(Message::text(json!({ "type": "subscribed" }).to_string())).await;
    let mut updates = std::pin::pin!(updates);
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    let lapsed = credential.lapsed(&state.store, &state.revocations);
    tokio::pin!(lapsed);
    loop {
        let message = tokio::select! {
            lapse = &mut lapsed => {
                let (code, reason) = lapse.close_frame();
                let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                break;
            }
            update = updates.next() => match update {
                Some(Update::Segment(s)) => json!({ "type": "translation", "segment": s }),
                Some(Update::Lagged(n)) => json!({ "type": "lagged", "skipped": n }),
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            _ = keep_alive.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                continue;
            }
        };
        if socket.send(Message::text(message.to_string())).await.is_err() {
            break;
        }
    }
}
