//! `gather` through the API: a gather ending by itself as its call hangs up
//! is reported once, and before `call.hangup`; so is a digit heard as it hangs up.

use std::time::Duration;

use crate::common::{action, connection, dial, each_backend, outbox, queued_events, setup};
use axum::http::StatusCode;
use bond_control_api::state::AppState;
use bond_store::CallId;
use serde_json::json;

/// `call`'s events in the outbox, in order: "type detail" (a digit's digit, a gather's digits).
async fn events_of(state: &AppState, call: &str) -> Vec<String> {
    let detail =
        |p: &serde_json::Value| p["digit"].as_str().or(p["digits"].as_str()).unwrap_or("-").to_owned();
    outbox(state)
        .await
        .into_iter()
        .filter(|(_, p)| p["call_control_id"] == call)
        .map(|(t, p)| format!("{t} {}", detail(&p)))
        .collect()
}

/// The engine reports a digit while the call is up, and the events task handles
/// it after the call's hangup was written (the hangup reached the call's row
/// first): `call.hangup` stays the call's last event. A digit handled while the
/// call is up is reported, and ends the gather waiting for it.
#[tokio::test]
async fn a_digit_handled_after_the_hangup_is_not_reported_after_it() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let party = dial(&state, &conn, "loop:silence").await;
        let gather = json!({ "maximum_digits": 1, "initial_timeout_millis": 60000 });
        assert_eq!(action(&state, &party, "gather", gather).await.0, StatusCode::OK);
        state.calls.digit_heard(&CallId::from(party.as_str()), '5').await;
        queued_events(&state, &party, "call.gather.ended", 1, Duration::from_secs(5)).await;

        assert_eq!(action(&state, &party, "hangup", json!({})).await.0, StatusCode::OK);
        queued_events(&state, &party, "call.hangup", 1, Duration::from_secs(5)).await;
        state.calls.digit_heard(&CallId::from(party.as_str()), '7').await;

        let seen = events_of(&state, &party).await;
        let from_dtmf: Vec<_> = seen.iter().skip_while(|e| !e.starts_with("call.dtmf")).collect();
        assert_eq!(from_dtmf, ["call.dtmf.received 5", "call.gather.ended 5", "call.hangup -"], "{seen:?}");
    })
    .await;
}

/// A gather's first timer runs out after 100 ms; the hangup is asked 20-96 ms
/// after the gather began (a different point each round), so in some rounds
/// the gather times out first and in others the hangup ends it.
#[tokio::test]
async fn a_gather_timing_out_as_the_call_hangs_up_ends_once_before_the_hangup() {
    let (_dir, state, conn) = setup(&[]).await;
    for round in 0..20u64 {
        let party = dial(&state, &conn, "loop:silence").await;
        let gather = json!({ "initial_timeout_millis": 100 });
        assert_eq!(action(&state, &party, "gather", gather).await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(20 + 4 * round)).await;
        assert_eq!(action(&state, &party, "hangup", json!({})).await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;

        let seen: Vec<String> = outbox(&state)
            .await
            .into_iter()
            .filter(|(t, p)| {
                p["call_control_id"] == party.as_str() && (t == "call.gather.ended" || t == "call.hangup")
            })
            .map(|(t, p)| format!("{t} {}", p["status"].as_str().unwrap_or("-")))
            .collect();
        assert_eq!(seen.len(), 2, "round {round}: one end of the gather, then the hangup: {seen:?}");
        assert!(
            ["call.gather.ended timeout", "call.gather.ended call_hangup"].contains(&seen[0].as_str()),
            "round {round}: {seen:?}"
        );
        assert_eq!(seen[1], "call.hangup -", "round {round}: {seen:?}");
    }
}
