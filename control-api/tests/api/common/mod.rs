//! Shared by the control-api tests: a full application state on a temporary
//! SQLite file (and on Postgres when BOND_TEST_DATABASE_URL is set).

#![allow(dead_code)] // each test binary uses part of this

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bond::{serve, Config};
use bond_control_api::app;
use bond_control_api::auth::Role;
use bond_control_api::state::AppState;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub mod socket;

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

/// Share of the energy of `samples` at `hz` (0..=1): near 1 for a clean tone.
pub fn tone_share(samples: &[i16], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
    for (n, &s) in samples.iter().enumerate() {
        let x = f64::from(s);
        re += x * (w * n as f64).cos();
        im += x * (w * n as f64).sin();
        total += x * x;
    }
    2.0 * (re * re + im * im) / samples.len() as f64 / total.max(1.0)
}

/// A state on a fresh SQLite file with one call-control application (webhooks to
/// a closed port, so events stay in the outbox); returns its connection id.
pub async fn setup(extra: &[(&str, &str)]) -> (tempfile::TempDir, AppState, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let state = state(dir.path(), &url, extra).await;
    let body =
        serde_json::json!({ "application_name": "test", "webhook_event_url": "http://127.0.0.1:9/hooks" });
    let (_, _, json) =
        call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
    let conn = json["data"]["id"].as_str().unwrap().to_owned();
    (dir, state, conn)
}

/// Dial `to` on `conn`; returns the call_control_id.
pub async fn dial(state: &AppState, conn: &str, to: &str) -> String {
    let body = serde_json::json!({ "connection_id": conn, "to": to, "from": "+13125550100" });
    let (status, _, json) = call(state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["data"]["call_control_id"].as_str().unwrap().to_owned()
}

pub async fn action(state: &AppState, id: &str, action: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, json) =
        call(state, "POST", &format!("/v2/calls/{id}/actions/{action}"), Some(ADMIN_KEY), Some(body)).await;
    (status, json)
}

/// GET a signed link (no API key) through the router.
pub async fn download(state: &AppState, url: &str) -> (StatusCode, Vec<u8>) {
    use tower::ServiceExt;
    let path = url.split_once("://").unwrap().1.split_once('/').unwrap().1;
    let request = axum::http::Request::get(format!("/{path}")).body(axum::body::Body::empty()).unwrap();
    let response = bond_control_api::app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    (status, http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes().to_vec())
}

/// Events in the outbox, in order: (event_type, payload).
pub async fn outbox(state: &AppState) -> Vec<(String, Value)> {
    state
        .store
        .pending_events(1000)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
        .map(|d| (d["event_type"].as_str().unwrap_or_default().to_owned(), d["payload"].clone()))
        .collect()
}

/// The webhooks queued for call `id` whose type starts with `prefix`, waiting up to `within` for `count` of them.
pub async fn queued_events(
    state: &AppState,
    id: &str,
    prefix: &str,
    count: usize,
    within: std::time::Duration,
) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..within.as_millis() / 100 {
        events = state
            .store
            .pending_events(1_000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.call_control_id.as_deref() == Some(id))
            .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
            .filter(|e| e["event_type"].as_str().unwrap().starts_with(prefix))
            .collect::<Vec<Value>>();
        if events.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    events
}

/// Run `test` on a fresh state on each database (SQLite, and Postgres when set).
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(AppState) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    for url in database_urls(dir.path()).await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        test(state(sub.path(), &url, &[]).await).await;
    }
}

/// A new call-control application of the admin's organization; its id.
pub async fn connection(state: &AppState) -> String {
    let body =
        serde_json::json!({ "application_name": "app", "webhook_event_url": "http://127.0.0.1:9/hooks" });
    let (status, _, json) =
        call(state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["data"]["id"].as_str().unwrap().to_owned()
}

/// A new API key with `role`, in `org` or in a new organization.
pub async fn key_for(state: &AppState, org: Option<&str>, role: Role) -> String {
    let org = match org {
        Some(o) => o.to_owned(),
        None => state.store.create_organization("other").await.unwrap().id,
    };
    state.store.create_api_key(&org, role, "test").await.unwrap().1
}

/// The organization of the admin key.
pub async fn admin_org(state: &AppState) -> String {
    let key = bond_control_api::auth::hash_key(ADMIN_KEY);
    state.store.key_owner(&key).await.unwrap().unwrap().organization_id
}

/// The Telnyx error code of an error answer.
pub fn error_code(json: &Value) -> &str {
    json["errors"][0]["code"].as_str().unwrap_or_default()
}

/// What `call` heard (the right channel of its dual recording) over `ms` from
/// now, less its first 200 ms.
pub async fn heard(state: &AppState, call_id: &str, ms: u64) -> Vec<i16> {
    let start = serde_json::json!({ "format": "wav", "channels": "dual" });
    assert_eq!(action(state, call_id, "record_start", start).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    assert_eq!(action(state, call_id, "record_stop", serde_json::json!({})).await.0, StatusCode::OK);
    let saved: Vec<Value> = outbox(state)
        .await
        .into_iter()
        .filter(|(t, p)| t == "call.recording.saved" && p["call_control_id"] == call_id)
        .map(|(_, p)| p)
        .collect();
    let (_, wav) = download(state, saved.last().unwrap()["recording_urls"]["wav"].as_str().unwrap()).await;
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    samples.iter().skip(1).step_by(2).skip(1600).copied().collect()
}

/// A mono 16-bit WAV of a tone.
pub fn tone_wav(hz: f64, rate: u32, secs: f64) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
    for s in bond_codecs::signals::sine(hz, rate, (f64::from(rate) * secs) as usize, 8000.0) {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
    out.into_inner()
}

pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
