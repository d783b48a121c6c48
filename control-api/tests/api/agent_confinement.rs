//! What an agent (an agent token, or an API key with role `agent`) may do
//! through the API: its own calls only, on its own connection, and nothing
//! that sends a call's audio or events elsewhere or supervises a call.

use crate::common::{call, ADMIN_KEY};
use axum::http::StatusCode;
use bond_control_api::state::AppState;
use serde_json::{json, Value};

async fn token(state: &AppState, agent: &str, connection: Option<&str>) -> String {
    issue(state, agent, connection).await["token"].as_str().unwrap().to_owned()
}

async fn issue(state: &AppState, agent: &str, connection: Option<&str>) -> Value {
    let body = json!({ "agent": agent, "connection_id": connection });
    let (status, _, json) = call(state, "POST", "/v2/agent_tokens", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["data"].clone()
}

async fn dial_as(state: &AppState, key: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, json) = call(state, "POST", "/v2/calls", Some(key), Some(body)).await;
    (status, json)
}

async fn act_as(state: &AppState, key: &str, id: &str, action: &str, body: Value) -> StatusCode {
    call(state, "POST", &format!("/v2/calls/{id}/actions/{action}"), Some(key), Some(body)).await.0
}

fn id_of(json: &Value) -> String {
    json["data"]["call_control_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_agent_acts_on_its_own_calls_only() {
    let (_dir, state, conn) = crate::common::setup(&[]).await;
    let ana = token(&state, "ana", Some(&conn)).await;
    let bo = token(&state, "bo", Some(&conn)).await;
    let dial = json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100" });
    let (status, json) = dial_as(&state, &ana, dial.clone()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let anas = id_of(&json);
    let bos = id_of(&dial_as(&state, &bo, dial).await.1);
    let admins = crate::common::dial(&state, &conn, "loop:silence").await;

    for other in [&bos, &admins] {
        let (status, _, _) = call(&state, "GET", &format!("/v2/calls/{other}"), Some(&ana), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(act_as(&state, &ana, other, "hangup", json!({})).await, StatusCode::FORBIDDEN);
    }
    let bridge = json!({ "call_control_id_to_bridge_with": bos });
    assert_eq!(
        act_as(&state, &ana, &anas, "bridge", bridge).await,
        StatusCode::FORBIDDEN,
        "bridged into Bo's call"
    );
    let stream = json!({ "stream_url": "wss://collector.example/x" });
    assert_eq!(act_as(&state, &ana, &anas, "streaming_start", stream).await, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&state, "GET", &format!("/v2/calls/{anas}"), Some(&ana), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(act_as(&state, &ana, &anas, "hangup", json!({})).await, StatusCode::OK);
    // Supervisors and admins still act on every call.
    assert_eq!(act_as(&state, ADMIN_KEY, &bos, "hangup", json!({})).await, StatusCode::OK);
}

#[tokio::test]
async fn an_agent_dials_only_on_its_connection_and_without_streams_supervision_or_webhook_urls() {
    let (_dir, state, conn) = crate::common::setup(&[]).await;
    let body = json!({ "application_name": "other", "webhook_event_url": "http://127.0.0.1:9/hooks" });
    let (_, _, json) =
        call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
    let other_conn = json["data"]["id"].as_str().unwrap().to_owned();
    let ana = token(&state, "ana", Some(&conn)).await;
    let watched = crate::common::dial(&state, &conn, "loop:silence").await;
    let base = json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100" });
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    for (what, body) in [
        ("another connection", with("connection_id", json!(other_conn))),
        ("supervision", with("supervise_call_control_id", json!(watched))),
        ("a media stream", with("stream_url", json!("wss://collector.example/x"))),
        ("a webhook URL", with("webhook_url", json!("https://collector.example/hooks"))),
    ] {
        let (status, json) = dial_as(&state, &ana, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {json}");
    }
    let (status, json) = dial_as(&state, &ana, with("link_to", json!(watched))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "linked to a call that is not Ana's: {json}");
    let takes_calls_only = token(&state, "kim", None).await;
    let (status, json) = dial_as(&state, &takes_calls_only, base.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a token without a connection: {json}");
    let (status, json) = dial_as(&state, &ana, base).await;
    assert_eq!(status, StatusCode::OK, "{json}");
}

#[tokio::test]
async fn revoked_agent_tokens_and_api_keys_stop_working_at_once() {
    let (_dir, state, conn) = crate::common::setup(&[]).await;
    let issued = issue(&state, "ana", Some(&conn)).await;
    let (ana, id) = (issued["token"].as_str().unwrap(), issued["id"].as_str().unwrap());
    let dial = json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100" });
    assert_eq!(dial_as(&state, ana, dial.clone()).await.0, StatusCode::OK);
    let (status, _, _) = call(&state, "DELETE", &format!("/v2/agent_tokens/{id}"), Some(ana), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an agent does not revoke tokens");
    let (status, _, json) =
        call(&state, "DELETE", &format!("/v2/agent_tokens/{id}"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(dial_as(&state, ana, dial.clone()).await.0, StatusCode::UNAUTHORIZED);

    let (status, _, json) = call(&state, "GET", "/v2/api_keys", Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let org = state.store.key_owner(&bond_control_api::auth::hash_key(ADMIN_KEY)).await.unwrap().unwrap();
    let (record, key) = state
        .store
        .create_api_key(&org.organization_id, bond_control_api::auth::Role::Supervisor, "ops")
        .await
        .unwrap();
    assert_eq!(call(&state, "GET", "/v2/calls", Some(&key), None).await.0, StatusCode::OK);
    let path = format!("/v2/api_keys/{}", record.id);
    assert_eq!(call(&state, "DELETE", &path, Some(ADMIN_KEY), None).await.0, StatusCode::OK);
    assert_eq!(call(&state, "GET", "/v2/calls", Some(&key), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&state, "DELETE", &path, Some(ADMIN_KEY), None).await.0, StatusCode::NOT_FOUND);
    let (_, _, json) = call(&state, "GET", "/v2/api_keys", Some(ADMIN_KEY), None).await;
    let listed =
        json["data"].as_array().unwrap().iter().find(|k| k["id"] == record.id.as_str()).unwrap().clone();
    assert!(listed["revoked_at"].is_string() && listed.get("key_hash").is_none(), "{listed}");
}

#[tokio::test]
async fn a_supervisor_token_acts_as_a_supervisor_and_no_more() {
    let (_dir, state, conn) = crate::common::setup(&[]).await;
    let body = json!({ "name": "sam", "ttl_secs": 600 });
    let (status, _, json) = call(&state, "POST", "/v2/supervisor_tokens", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let sam = json["data"]["token"].as_str().unwrap().to_owned();
    let bos = id_of(
        &dial_as(
            &state,
            &token(&state, "bo", Some(&conn)).await,
            json!({
        "connection_id": conn, "to": "loop:echo", "from": "+13125550100" }),
        )
        .await
        .1,
    );
    assert_eq!(call(&state, "GET", "/v2/calls", Some(&sam), None).await.0, StatusCode::OK);
    assert_eq!(call(&state, "GET", &format!("/v2/calls/{bos}"), Some(&sam), None).await.0, StatusCode::OK);
    // It mints agent tokens (the page's own voice leg), but is no admin.
    let (status, _, _) =
        call(&state, "POST", "/v2/agent_tokens", Some(&sam), Some(json!({ "agent": "sam-ear" }))).await;
    assert_eq!(status, StatusCode::CREATED);
    let app = json!({ "application_name": "x", "webhook_event_url": "http://127.0.0.1:9/hooks" });
    let (status, _, _) = call(&state, "POST", "/v2/call_control_applications", Some(&sam), Some(app)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An agent may not mint supervisor tokens.
    let agent = token(&state, "ana", Some(&conn)).await;
    let body = json!({ "name": "ana" });
    assert_eq!(
        call(&state, "POST", "/v2/supervisor_tokens", Some(&agent), Some(body)).await.0,
        StatusCode::FORBIDDEN
    );
}
