//! `transfer` over the API: where the new call's webhooks go, and what is refused.

use crate::common::{action, connection, dial, each_backend, error_code};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_transfer_sends_the_new_calls_webhooks_where_it_says() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let id = dial(&state, &conn, "loop:echo").await;
        let hooks = "https://hooks.example.com/transferred";
        let body = json!({ "to": "loop:tone?hz=900", "webhook_url": hooks });
        let (status, json) = action(&state, &id, "transfer", body).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let pending = state.store.pending_events(1000).await.unwrap();
        let new: Vec<&str> = pending
            .iter()
            .filter(|e| e.call_control_id.as_ref().is_some_and(|c| c.as_str() != id))
            .map(|e| e.url.as_str())
            .collect();
        assert!(!new.is_empty() && new.iter().all(|url| *url == hooks), "{new:?}");
        let (status, json) =
            action(&state, &id, "transfer", json!({ "to": "loop:echo", "webhook_url": "ftp://x" })).await;
        assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "10002"), "{json}");
    })
    .await;
}
