//! The HTTP surface. [`app`] builds the whole router from state, so tests call
//! it with `tower::ServiceExt::oneshot` and no server.

mod account;
mod calls;
mod connections;
mod error;
pub mod extract;
pub mod guard;
mod health;
mod voice_config;

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ErrorBody, ErrorSource};

use crate::state::AppState;

/// Every route Bond serves.
pub fn app(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let api = Router::new()
        .route("/v2/call_control_applications", get(connections::list).post(connections::create))
        .route(
            "/v2/call_control_applications/{id}",
            get(connections::get).patch(connections::update).delete(connections::delete),
        )
        .route("/v2/calls", get(calls::list).post(calls::dial))
        .route("/v2/calls/{id}", get(calls::get))
        .route("/v2/calls/{id}/actions/{action}", post(calls::action))
        .route("/v2/webhook_public_key", get(account::webhook_public_key))
        .route("/v2/audit_log", get(account::audit_log))
        .route(
            "/v2/voice_config",
            get(voice_config::get).patch(voice_config::update).put(voice_config::update),
        )
        .layer(middleware::from_fn_with_state(state.clone(), guard::audit))
        .layer(middleware::from_fn_with_state(state.clone(), guard::rate_limit));
    Router::new()
        .merge(api)
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(count_requests))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("The requested path does not exist.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "10015",
        "Method not allowed",
        "This path does not accept that method.",
    )
}

/// `bond_http_requests_total` and `bond_http_request_duration_seconds` per route and status.
async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    #[allow(clippy::disallowed_methods)] // the HTTP layer is runtime, not core
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("bond_http_requests_total", &labels).increment(1);
    metrics::histogram!("bond_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
