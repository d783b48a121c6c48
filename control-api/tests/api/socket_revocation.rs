//! A socket signed in with a token or key is closed when that credential is
//! revoked (4003) or, for a token, expires (4001): revoked through the API it
//! closes at once; revoked by another process (the store alone) it is found
//! on the next periodic look.

use std::time::Duration;

use crate::common::socket::{serve, signed_in, Socket};
use crate::common::{call, ADMIN_KEY};
use bond_control_api::auth::{hash_key, Role};
use bond_control_api::revocation::{Credential, Lapse};
use bond_control_api::state::AppState;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The close code the server ends the socket with (None: it did not, within 10 s).
async fn closed_with(ws: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

async fn issue(state: &AppState, path: &str, body: Value) -> (String, String) {
    let (status, _, json) = call(state, "POST", path, Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, axum::http::StatusCode::CREATED, "{json}");
    (json["data"]["token"].as_str().unwrap().into(), json["data"]["id"].as_str().unwrap().into())
}

async fn organization(state: &AppState) -> String {
    let admin = state.store.key_owner(&hash_key(ADMIN_KEY)).await.unwrap().unwrap();
    admin.organization_id
}

#[tokio::test]
async fn revoking_an_agent_token_closes_its_signaling_socket_with_4003() {
    let (_dir, state, _conn) = crate::common::setup(&[]).await;
    let (addr, _server) = serve(&state).await;
    let (token, id) = issue(&state, "/v2/agent_tokens", json!({ "agent": "ana" })).await;
    let mut ws =
        signed_in(addr, "/v2/agent/ws", json!({ "type": "register", "token": token }), "registered").await;

    let (status, _, json) =
        call(&state, "DELETE", &format!("/v2/agent_tokens/{id}"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{json}");
    assert_eq!(closed_with(&mut ws).await, Some(4003));
}

#[tokio::test]
async fn revoking_a_key_or_a_supervisor_token_closes_the_supervisor_socket_with_4003() {
    let (_dir, state, _conn) = crate::common::setup(&[]).await;
    let (addr, _server) = serve(&state).await;
    let (token, id) = issue(&state, "/v2/supervisor_tokens", json!({ "name": "sam" })).await;
    let subscribe = |token: &str| json!({ "type": "subscribe", "token": token });
    let mut by_token = signed_in(addr, "/v2/supervisor/ws", subscribe(&token), "subscribed").await;
    let (record, key) =
        state.store.create_api_key(&organization(&state).await, Role::Supervisor, "wall").await.unwrap();
    let mut by_key = signed_in(addr, "/v2/supervisor/ws", subscribe(&key), "subscribed").await;
    let mut other = signed_in(addr, "/v2/supervisor/ws", subscribe(ADMIN_KEY), "subscribed").await;

    call(&state, "DELETE", &format!("/v2/agent_tokens/{id}"), Some(ADMIN_KEY), None).await;
    assert_eq!(closed_with(&mut by_token).await, Some(4003), "the supervisor token");
    call(&state, "DELETE", &format!("/v2/api_keys/{}", record.id), Some(ADMIN_KEY), None).await;
    assert_eq!(closed_with(&mut by_key).await, Some(4003), "the key");

    other.send(Message::Ping(b"still here".to_vec().into())).await.unwrap();
    assert!(answers_ping(&mut other).await, "a socket on another key stays open");
}

/// Whether our ping comes back (the server's own keep-alive pings are skipped).
async fn answers_ping(ws: &mut Socket) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Pong(payload)))) => return &payload[..] == b"still here",
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => return false,
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test]
async fn a_revocation_made_by_another_process_is_found_on_the_next_look() {
    let (_dir, state, _conn) = crate::common::setup(&[]).await;
    let org = organization(&state).await;
    let (record, key) = state.store.create_api_key(&org, Role::Supervisor, "wall").await.unwrap();
    let by_key =
        Credential::ApiKey { organization_id: org.clone(), id: record.id.clone(), hash: hash_key(&key) };
    let by_token =
        Credential::Token { organization_id: org.clone(), id: "tok-1".into(), expires: i64::MAX / 2 };
    let every = Duration::from_millis(50);
    let watch = |c: Credential| {
        let state = state.clone();
        tokio::spawn(async move { c.lapsed_checking_every(every, &state.store, &state.revocations).await })
    };
    let (key_watch, token_watch) = (watch(by_key), watch(by_token));
    tokio::time::sleep(every * 3).await;
    assert!(!key_watch.is_finished() && !token_watch.is_finished(), "both still work");

    // As `bond admin revoke-key` would: the store only, nothing announced.
    assert!(state.store.revoke_api_key(Some(&org), &record.id).await.unwrap());
    state.store.revoke_agent_token(&org, "tok-1", i64::MAX / 2).await.unwrap();
    let within = Duration::from_secs(10);
    assert_eq!(tokio::time::timeout(within, key_watch).await.unwrap().unwrap(), Lapse::Revoked);
    assert_eq!(tokio::time::timeout(within, token_watch).await.unwrap().unwrap(), Lapse::Revoked);
}

#[tokio::test]
async fn a_token_that_expires_lapses_as_expired() {
    let (_dir, state, _conn) = crate::common::setup(&[]).await;
    let soon = bond_store::clock::unix_seconds() + 1;
    let token =
        Credential::Token { organization_id: organization(&state).await, id: "tok-2".into(), expires: soon };
    let lapse = tokio::time::timeout(Duration::from_secs(10), token.lapsed(&state.store, &state.revocations));
    assert_eq!(lapse.await.unwrap(), Lapse::Expired);
}
