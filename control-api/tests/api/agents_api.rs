//! `/v2/agents` over the API: an agent's wrap-up time, set, shown and checked.

use crate::common::{admin_org, call, each_backend, error_code, ADMIN_KEY};
use axum::http::StatusCode;
use bond_agents::{AgentControl, SignedIn};
use serde_json::{json, Value};

#[tokio::test]
async fn an_agents_wrap_up_time_is_set_shown_and_checked() {
    each_backend(|state| async move {
        let dana =
            SignedIn { organization_id: admin_org(&state).await, agent: "dana".into(), connection_id: None };
        let _session = state.calls.agents().register(&dana, bond_store::clock::monotonic());
        let patch = |body: Value| call(&state, "PATCH", "/v2/agents/dana", Some(ADMIN_KEY), Some(body));
        let (status, _, json) = patch(json!({ "wrap_up_secs": 45, "available": true })).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let data = &json["data"];
        assert_eq!((&data["state"], &data["wrap_up_secs"]), (&json!("available"), &json!(45)), "{json}");
        assert!(data["wrap_up_remaining_secs"].is_null(), "no call yet: {json}");
        let (status, _, json) = patch(json!({ "wrap_up_secs": 601 })).await;
        assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "10002"), "{json}");
        let (_, _, json) = call(&state, "GET", "/v2/agents", Some(ADMIN_KEY), None).await;
        assert_eq!(json["data"][0]["wrap_up_secs"], 45, "{json}");
    })
    .await;
}
