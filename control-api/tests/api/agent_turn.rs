//! TURN credentials on the agents' signalling socket: in the `registered`
//! frame, and fresh ones every half of their life while the agent stays
//! signed in, so a call taken after the first ones expire still gets a relay.

use crate::common::socket::{frame_of_type, serve};
use crate::common::{call, ADMIN_KEY};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The expiry (unix seconds) of a frame's TURN username, `<expiry>:<agent>`.
fn expiry(frame: &Value) -> i64 {
    let username = frame["ice_servers"][0]["username"].as_str().unwrap();
    let (expiry, agent) = username.split_once(':').unwrap();
    assert_eq!(agent, "ana");
    expiry.parse().unwrap()
}

#[tokio::test]
async fn a_signed_in_agent_gets_fresh_turn_credentials_before_the_old_ones_expire() {
    let turn = [
        ("BOND_TURN_URLS", "turn:127.0.0.1:3478"),
        ("BOND_TURN_SECRET", "north"),
        ("BOND_TURN_TTL_SECS", "2"),
    ];
    let (_dir, state, _conn) = crate::common::setup(&turn).await;
    let (addr, _server) = serve(&state).await;
    let (_, _, json) =
        call(&state, "POST", "/v2/agent_tokens", Some(ADMIN_KEY), Some(json!({ "agent": "ana" }))).await;
    let token = json["data"]["token"].as_str().unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v2/agent/ws")).await.unwrap();
    ws.send(Message::text(json!({ "type": "register", "token": token }).to_string())).await.unwrap();

    let registered = frame_of_type(&mut ws, "registered").await;
    let first = expiry(&registered);
    let refreshed = frame_of_type(&mut ws, "ice_servers").await;
    assert!(expiry(&refreshed) > first, "{registered} then {refreshed}");
    assert_eq!(refreshed["ice_servers"][0]["urls"], json!(["turn:127.0.0.1:3478"]));
    assert_ne!(refreshed["ice_servers"][0]["credential"], registered["ice_servers"][0]["credential"]);
}
