//! Supervisors over the API (Telnyx `supervise_call_control_id`, `supervisor_role`,
//! `switch_supervisor_role`): a customer saying 700 Hz bridged with an agent
//! saying 1,100 Hz, and a supervisor saying 1,500 Hz; recordings of what the
//! supervisor and the customer heard show who hears whom in each role. The
//! supervisor's call ends with the call it supervises.

use crate::common::{action, call, dial, heard, outbox, setup, tone_share, ADMIN_KEY};
use axum::http::StatusCode;
use serde_json::{json, Value};

fn shares(samples: &[i16]) -> [f64; 3] {
    [700.0, 1100.0, 1500.0].map(|hz| tone_share(samples, hz, 8000))
}

#[tokio::test]
async fn a_supervisor_dialed_on_a_call_monitors_it_switches_to_barge_and_ends_with_it() {
    let (_dir, state, conn) = setup(&[]).await;
    let customer = dial(&state, &conn, "loop:tone?hz=700").await;
    let agent = dial(&state, &conn, "loop:tone?hz=1100").await;
    assert_eq!(
        action(&state, &customer, "bridge", json!({ "call_control_id_to_bridge_with": agent })).await.0,
        StatusCode::OK
    );
    let body = json!({ "connection_id": conn, "to": "loop:tone?hz=1500", "from": "+13125550100",
        "supervise_call_control_id": agent, "supervisor_role": "monitor" });
    let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let supervisor = json["data"]["call_control_id"].as_str().unwrap().to_owned();

    let [c, a, s] = shares(&heard(&state, &supervisor, 800).await);
    assert!(c > 0.3 && a > 0.3 && s < 0.01, "the supervisor hears both parties: {c:.2} {a:.2} {s:.2}");
    let [_, a, s] = shares(&heard(&state, &customer, 800).await);
    assert!(a > 0.9 && s < 0.01, "the customer hears the agent, not the monitor: {a:.2} {s:.2}");

    let (status, json) =
        action(&state, &supervisor, "switch_supervisor_role", json!({ "role": "barge" })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let [_, a, s] = shares(&heard(&state, &customer, 800).await);
    assert!(a > 0.3 && s > 0.3, "barging: the customer hears the supervisor too: {a:.2} {s:.2}");

    let (status, _) = action(&state, &supervisor, "switch_supervisor_role", json!({ "role": "shout" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = action(&state, &customer, "switch_supervisor_role", json!({ "role": "monitor" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the customer supervises nothing");
    assert_eq!(action(&state, &agent, "hangup", json!({})).await.0, StatusCode::OK);
    let hangups = outbox(&state).await.into_iter().filter(|(t, _)| t == "call.hangup");
    let ended: Vec<Value> = hangups.map(|(_, p)| p).filter(|p| p["call_control_id"] == supervisor).collect();
    assert_eq!(ended.len(), 1, "the supervisor's call ends with the call it supervised");
    assert_eq!(ended[0]["hangup_cause"], "normal_clearing");
    let body = json!({ "connection_id": conn, "to": "loop:silence", "from": "+13125550100", "supervise_call_control_id": agent });
    let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a call that ended cannot be supervised: {json}");
    assert_eq!(json["errors"][0]["source"]["pointer"], "/supervise_call_control_id");
}
