//! `GET /media/telnyx/{connection_id}` and `GET /media/twilio/{connection_id}`:
//! WebSocket upgrades for carrier media streams (see `crate::streams`).

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::ws_handshake::WebSocketRequest;
use super::ApiError;
use crate::state::AppState;
use bond_streams::auth::{same, twilio_signature, StreamSecrets};
use bond_streams::frames::Carrier;
use bond_streams::session::{self, Admission};

#[utoipa::path(get, path = "/media/telnyx/{connection_id}", tag = "media_streams", params(("connection_id" = String, Path)),
    description = "A carrier's Telnyx Media Streaming WebSocket (Bond is the server): connected, start, media, dtmf, mark, clear, stop frames as Telnyx sends them; the connection's stream token as the x-telnyx-streaming-auth-token header or in connected. No start within 10 s or a bad token closes with 1008. docs/media-streams.md has every frame.",
    responses((status = 101, description = "Switched to WebSocket"), (status = 404, description = "No such connection", body = super::ErrorEnvelope)))]
pub async fn telnyx(
    ws: WebSocketRequest,
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let connection = connection(&state, &connection_id).await?;
    let expected = StreamSecrets::of(&connection).telnyx_stream_token;
    let shown = headers.get("x-telnyx-streaming-auth-token").and_then(|v| v.to_str().ok());
    // Without the header, the token may still come in the `connected` frame.
    let authorized = matches!((shown, &expected), (Some(shown), Some(expected)) if same(shown, expected));
    let admission = Admission { carrier: Carrier::Telnyx, connection, authorized };
    Ok(ws.accept(move |upgraded| serve_stream(upgraded, state, admission)))
}

#[utoipa::path(get, path = "/media/twilio/{connection_id}", tag = "media_streams", params(("connection_id" = String, Path)),
    description = "A carrier's Twilio Media Streams WebSocket (Bond is the server), checked by X-Twilio-Signature with the connection's Twilio auth token. docs/media-streams.md has every frame.",
    responses((status = 101, description = "Switched to WebSocket"), (status = 403, description = "Bad signature", body = super::ErrorEnvelope), (status = 404, description = "No such connection", body = super::ErrorEnvelope)))]
pub async fn twilio(
    ws: WebSocketRequest,
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let connection = connection(&state, &connection_id).await?;
    let token = StreamSecrets::of(&connection).twilio_auth_token;
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // The URL Twilio signed: Bond's public address, or the Host it was reached at.
    let public = state
        .public_url
        .trim_end_matches('/')
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let candidates = [format!("{public}{path}"), format!("wss://{host}{path}"), format!("ws://{host}{path}")];
    let authorized = match (token, signature) {
        (Some(token), Some(signature)) => candidates
            .iter()
            .filter(|url| url.contains("://"))
            .any(|url| same(&twilio_signature(&token, url), signature)),
        _ => false,
    };
    let admission = Admission { carrier: Carrier::Twilio, connection, authorized };
    Ok(ws.accept(move |upgraded| serve_stream(upgraded, state, admission)))
}

/// Take the upgraded socket out of the HTTP server and hand it to the stream leg.
async fn serve_stream(upgraded: hyper::upgrade::Upgraded, state: AppState, admission: Admission) {
    match super::listener::take_tcp(upgraded) {
        Ok(socket) => session::serve(socket, state.calls, admission).await,
        Err(e) => tracing::warn!(error = %e, "could not take over a media stream's socket"),
    }
}

async fn connection(state: &AppState, id: &str) -> Result<bond_store::Connection, ApiError> {
    let connection = state.store.connection_by_id(id).await.map_err(|e| ApiError::internal(&e))?;
    match connection {
        Some(c) if c.active => Ok(c),
        _ => Err(ApiError::not_found("No active call control application with that id.")),
    }
}
