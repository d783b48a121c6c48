//! `gather` through the API: a gather ending by itself as its call hangs up
//! is reported once, and before `call.hangup`.

use std::time::Duration;

use crate::common::{action, dial, outbox, setup};
use axum::http::StatusCode;
use serde_json::json;

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
