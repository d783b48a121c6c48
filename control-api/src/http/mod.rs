//! The HTTP surface. [`app`] builds the whole router from state, so tests call
//! it with `tower::ServiceExt::oneshot` and no server.

mod account;
mod actions;
mod agent_presence;
mod agent_states;
mod agents;
pub use agents::signaling_frame;
mod calls;
mod conferences;
mod connections;
mod deadline;
mod error;
pub mod extract;
pub mod forward;
pub mod guard;
mod health;
pub mod listener;
mod media_streams;
mod placing;
mod queues;
mod recordings;
pub mod schemas;
mod segment_fanout;
pub mod shared_limit;
mod speech;
mod supervisor;
mod telnyx_webhooks;
mod voice_config;
mod ws_handshake;

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, put};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{found, ApiError, ErrorBody, ErrorEnvelope, ErrorSource};

use crate::state::AppState;

/// The OpenAPI document's fixed parts; paths are added from the routes themselves.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Bond", description = "Bond's control API. It follows Telnyx Call Control v2: same paths, fields, errors and webhooks."),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorSource, bond_agents::ClientMessage, bond_agents::AgentMessage)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("API key").build(),
            ),
        );
    }
}

/// The authenticated `/v2` API, each route with its OpenAPI description.
fn api_routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(connections::list, connections::create))
        .routes(routes!(connections::get, connections::update, connections::delete))
        .routes(routes!(calls::list, calls::dial))
        .routes(routes!(calls::get))
        .routes(routes!(actions::action))
        .routes(routes!(account::webhook_public_key))
        .routes(routes!(account::audit_log))
        .routes(routes!(voice_config::get, voice_config::update))
        .routes(routes!(recordings::list))
        .routes(routes!(queues::list, queues::create))
        .routes(routes!(conferences::list, conferences::create))
        .routes(routes!(conferences::get))
        .routes(routes!(conferences::participants))
        .routes(routes!(conferences::action))
        .routes(routes!(agent_states::list))
        .routes(routes!(agent_states::update))
        .routes(routes!(queues::get, queues::update, queues::delete))
        .routes(routes!(queues::calls))
        .routes(routes!(queues::call, queues::update_call, queues::remove_call))
        .routes(routes!(recordings::get))
        .routes(routes!(speech::list))
        .routes(routes!(supervisor::call_stream))
        .routes(routes!(supervisor::organization_stream))
        .routes(routes!(agents::issue_token))
        .routes(routes!(agents::revoke_token))
        .routes(routes!(agents::issue_supervisor_token))
        .routes(routes!(account::api_keys))
        .routes(routes!(account::revoke_api_key))
        .route("/v2/voice_config", put(voice_config::update))
        .layer(middleware::from_fn_with_state(state.clone(), guard::audit))
        .layer(middleware::from_fn_with_state(state.clone(), guard::rate_limit))
}

/// Every described route: the API plus the unauthenticated operations endpoints.
fn all_routes(state: &AppState) -> OpenApiRouter<AppState> {
    api_routes(state)
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(recordings::download))
        .routes(routes!(agents::signaling))
        .routes(routes!(supervisor::socket))
        .routes(routes!(media_streams::telnyx))
        .routes(routes!(media_streams::twilio))
        .routes(routes!(telnyx_webhooks::receive))
}

/// Every route Bond serves, and `/openapi.json` generated from them.
pub fn app(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let (router, spec) = all_routes(&state).split_for_parts();
    let spec = std::sync::Arc::new(spec);
    router
        .route("/agent", get(agents::softphone))
        .route("/agent/softphone.js", get(agents::softphone_js))
        .route("/agent/webrtc.js", get(agents::webrtc_js))
        .route("/supervisor", get(supervisor::page))
        .route("/supervisor/supervisor.js", get(supervisor::page_js))
        // Public: the spec describes the API and holds no secrets.
        .route("/openapi.json", get(move || async move { axum::Json(spec.as_ref().clone()) }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(count_requests))
        .layer(middleware::from_fn(deadline::body_deadline))
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
