//! Shared by the control-api tests: a full application state on a temporary
//! SQLite file (and on Postgres when BOND_TEST_DATABASE_URL is set).

#![allow(dead_code)] // each test binary uses part of this

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bond_control_api::state::AppState;
use bond_control_api::{app, serve, Config};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const ADMIN_KEY: &str = "KEYTESTADMIN0000000000000000000001";

/// Database URLs to run each test on. Postgres tests get a fresh schema each.
pub async fn database_urls(dir: &std::path::Path) -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.join("bond.db").display())];
    if let Ok(base) = std::env::var("BOND_TEST_DATABASE_URL") {
        urls.push(fresh_postgres_schema(&base).await);
    }
    urls
}

/// A new schema in the Postgres database, selected through `options=-csearch_path`.
async fn fresh_postgres_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base).await.expect("BOND_TEST_DATABASE_URL reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

/// Configuration for a test Bond: its data directory, a database, loopback RTP.
pub fn config(dir: &std::path::Path, database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(String, String)> = vec![
        ("BOND_DATA_DIR".into(), dir.display().to_string()),
        ("BOND_DATABASE_URL".into(), database_url.into()),
        ("BOND_RTP_BIND_IP".into(), "127.0.0.1".into()),
        ("BOND_WEBRTC_LISTEN".into(), "127.0.0.1:0".into()),
        ("BOND_BOOTSTRAP_API_KEY".into(), ADMIN_KEY.into()),
        ("BOND_RATE_LIMIT_PER_SECOND".into(), "1000".into()),
        ("BOND_RATE_LIMIT_BURST".into(), "1000".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load(None, env).expect("test config")
}

pub async fn state(dir: &std::path::Path, database_url: &str, extra: &[(&str, &str)]) -> AppState {
    serve::build_state(&config(dir, database_url, extra)).await.expect("state")
}

/// One request through the router; returns status, headers and JSON (Null when empty).
pub async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = match body {
        Some(b) => request.header("content-type", "application/json").body(Body::from(b.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, headers, json)
}
