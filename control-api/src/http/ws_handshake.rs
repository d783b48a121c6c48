//! The server side of the WebSocket opening handshake (RFC 6455 section 4.2),
//! handing over the upgraded connection itself. axum's `WebSocketUpgrade`
//! keeps the connection wrapped; the carrier media-stream routes need it bare,
//! to take its TCP socket to the leg's media-driver thread (`listener::take_tcp`).

use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::ApiError;

/// A request to open a WebSocket, checked; [`accept`](Self::accept) answers it.
#[derive(Debug)]
pub struct WebSocketRequest {
    accept_key: String,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let refuse = |status, detail: &str| {
            Err(ApiError::new(
                status,
                "10001",
                "Malformed request",
                format!("Not a WebSocket opening handshake: {detail}."),
            ))
        };
        if parts.method != Method::GET {
            return refuse(StatusCode::METHOD_NOT_ALLOWED, "the method must be GET");
        }
        if !lists(&parts.headers, CONNECTION, "upgrade") || !lists(&parts.headers, UPGRADE, "websocket") {
            return refuse(StatusCode::BAD_REQUEST, "it must ask to upgrade to websocket");
        }
        if parts.headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
            return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13");
        }
        let Some(key) = parts.headers.get(SEC_WEBSOCKET_KEY) else {
            return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
        };
        let accept_key = derive_accept_key(key.as_bytes());
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return refuse(StatusCode::UPGRADE_REQUIRED, "this connection cannot be upgraded");
        };
        Ok(Self { accept_key, on_upgrade })
    }
}

impl WebSocketRequest {
    /// Answer `101 Switching Protocols`; `serve` gets the connection once it
    /// has switched (on a task of its own; nothing if the switch fails).
    pub fn accept<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Self { accept_key, on_upgrade } = self;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(upgraded).await,
                Err(e) => tracing::debug!(error = %e, "a WebSocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(value) = accept_key.parse() {
            headers.insert(SEC_WEBSOCKET_ACCEPT, value);
        }
        response
    }
}

/// Whether header `name` lists `token` (comma-separated, any case).
fn lists(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
