//! `/health`, `/ready`, `/metrics` and unknown paths, through the router with no server.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bond_control_api::app;
use bond_control_api::state::AppState;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn state(dir: &std::path::Path) -> AppState {
    let url = format!("sqlite://{}?mode=rwc", dir.join("bond.db").display());
    crate::common::state(dir, &url, &[("BOND_HTTP_MAX_BODY_BYTES", "1024")]).await
}

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    let response = app(state.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn health_answers_with_version_and_instance() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let (status, body) = get(&state, "/health").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert!(json["instance_id"].as_str().is_some_and(|id| id.len() == 36));
}

#[tokio::test]
async fn ready_follows_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    assert_eq!(get(&state, "/ready").await.0, StatusCode::OK);
    state.store.db().close().await;
    let (status, body) = get(&state, "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("unreachable"), "{body}");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_engine_and_http_series() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    get(&state, "/health").await;
    let (status, body) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for series in [
        "bond_legs_active",
        "bond_rtp_packets_received_total",
        "bond_bridge_frames_dropped_total",
        "bond_http_requests_total",
    ] {
        assert!(body.contains(series), "{series} missing from:\n{body}");
    }
    assert!(body.contains("route=\"/health\""), "{body}");
    assert!(body.contains("bond_engine_timer_lateness_seconds_bucket{le=\"0.001\"}"), "{body}");
    assert!(body.contains("bond_engine_timer_lateness_seconds_bucket{le=\"+Inf\"}"), "{body}");
}

#[tokio::test]
async fn unknown_paths_get_a_telnyx_shaped_404() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let (status, body) = get(&state, "/v2/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["errors"][0]["code"], "10005");
    assert!(json["errors"][0]["detail"].is_string());
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let request =
        Request::post("/health").header("content-length", "4096").body(Body::from(vec![b'x'; 4096])).unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_wrong_method_gets_a_telnyx_shaped_405() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let response = app(state).oneshot(Request::delete("/health").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["errors"][0]["title"], "Method not allowed");
}

#[tokio::test]
async fn openapi_json_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    // Public: it describes the API and holds no secrets.
    let (status, _, spec) = crate::common::call(&state, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let expected: &[(&str, &[&str])] = &[
        ("/health", &["get"]),
        ("/ready", &["get"]),
        ("/metrics", &["get"]),
        ("/v2/call_control_applications", &["get", "post"]),
        ("/v2/call_control_applications/{id}", &["get", "patch", "delete"]),
        ("/v2/calls", &["get", "post"]),
        ("/v2/calls/{id}", &["get"]),
        ("/v2/calls/{id}/actions/{action}", &["post"]),
        ("/v2/calls/{id}/translations", &["get"]),
        ("/v2/calls/{id}/translations/stream", &["get"]),
        ("/v2/translations/stream", &["get"]),
        ("/v2/webhook_public_key", &["get"]),
        ("/v2/audit_log", &["get"]),
        ("/v2/voice_config", &["get", "patch"]),
        ("/v2/recordings", &["get"]),
        ("/v2/recordings/{id}", &["get"]),
        ("/v2/recordings/{id}/download", &["get"]),
        ("/v2/agents", &["get"]),
        ("/v2/agents/{name}", &["patch"]),
        ("/v2/conferences", &["get", "post"]),
        ("/v2/conferences/{id}", &["get"]),
        ("/v2/conferences/{conference_id}/participants", &["get"]),
        ("/v2/conferences/{id}/actions/{action}", &["post"]),
        ("/v2/queues", &["get", "post"]),
        ("/v2/queues/{queue_name}", &["get", "post", "delete"]),
        ("/v2/queues/{queue_name}/calls", &["get"]),
        ("/v2/queues/{queue_name}/calls/{call_control_id}", &["get", "post", "delete"]),
        ("/v2/agent_tokens", &["post"]),
        ("/v2/agent_tokens/{id}", &["delete"]),
        ("/v2/supervisor_tokens", &["post"]),
        ("/v2/api_keys", &["get"]),
        ("/v2/api_keys/{id}", &["delete"]),
        ("/v2/agent/ws", &["get"]),
        ("/v2/supervisor/ws", &["get"]),
        ("/media/telnyx/{connection_id}", &["get"]),
        ("/media/twilio/{connection_id}", &["get"]),
        ("/webhooks/telnyx/{connection_id}", &["post"]),
    ];
    let paths = spec["paths"].as_object().unwrap();
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys().collect::<Vec<_>>());
    for (path, methods) in expected {
        for method in *methods {
            assert!(paths[*path][*method]["responses"].is_object(), "{method} {path}");
        }
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert!(spec["components"]["schemas"]["ErrorEnvelope"].is_object());
    // Request bodies are described field by field.
    for body in ["DialBody", "ConnectionBody", "TokenBody", "SupervisorTokenBody"] {
        let properties = &spec["components"]["schemas"][body]["properties"];
        assert!(properties.as_object().is_some_and(|p| p.len() >= 2), "{body}: {properties}");
    }
    assert!(spec["components"]["schemas"]["DialBody"]["properties"]["to"].is_object());
    // Answers too: the call a dial placed, a call's status, a page of connections.
    let answer = |path: &str, method: &str, status: &str| {
        spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"].to_string()
    };
    assert!(
        answer("/v2/calls", "post", "200").contains("DialAnswer"),
        "{}",
        answer("/v2/calls", "post", "200")
    );
    assert!(answer("/v2/calls/{id}", "get", "200").contains("CallRecord"));
    assert!(answer("/v2/call_control_applications", "get", "200").contains("Connection"));
    assert!(spec["components"]["schemas"]["CallRecord"]["properties"]["hangup_cause"].is_object());
    // The signaling socket's frames, both ways.
    for frame in ["ClientMessage", "AgentMessage"] {
        let schema = &spec["components"]["schemas"][frame];
        assert!(schema["oneOf"].as_array().is_some_and(|kinds| kinds.len() > 5), "{frame}: {schema}");
    }
}
