//! The call-control API through the router: auth and roles, connections, calls
//! on built-in legs, actions, idempotency, errors, rate limits and the audit log.
//! Every test runs on SQLite, and on Postgres when BOND_TEST_DATABASE_URL is set.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use bond_control_api::auth::Role;
use bond_control_api::state::AppState;
use common::{call, ADMIN_KEY};
use serde_json::{json, Value};

async fn each_backend<F, Fut>(test: F)
where
    F: Fn(AppState) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        test(common::state(sub.path(), &url, &[]).await).await;
    }
}

async fn connection(state: &AppState) -> String {
    let body = json!({ "application_name": "app", "webhook_event_url": "http://127.0.0.1:9/hooks" });
    let (status, _, json) =
        call(state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["data"]["id"].as_str().unwrap().to_owned()
}

async fn dial(state: &AppState, connection_id: &str, to: &str) -> Value {
    let body = json!({ "connection_id": connection_id, "to": to, "from": "+13125550100" });
    let (status, _, json) = call(state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["data"].clone()
}

async fn action(state: &AppState, id: &str, action: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, json) =
        call(state, "POST", &format!("/v2/calls/{id}/actions/{action}"), Some(ADMIN_KEY), Some(body)).await;
    (status, json)
}

async fn key_for(state: &AppState, org: Option<&str>, role: Role) -> String {
    let org = match org {
        Some(o) => o.to_owned(),
        None => state.store.create_organization("other").await.unwrap().id,
    };
    state.store.create_api_key(&org, role, "test").await.unwrap().1
}

/// The organization of the admin key.
async fn admin_org(state: &AppState) -> String {
    let key = bond_control_api::auth::hash_key(ADMIN_KEY);
    state.store.key_owner(&key).await.unwrap().unwrap().organization_id
}

fn error_code(json: &Value) -> &str {
    json["errors"][0]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn requests_without_or_with_a_wrong_key_get_401() {
    each_backend(|state| async move {
        let (status, _, json) = call(&state, "GET", "/v2/calls", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(json["errors"][0]["detail"].is_string());
        let (status, _, _) = call(&state, "GET", "/v2/calls", Some("KEYnotarealkey"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(&state, "GET", "/health", None, None).await;
        assert_eq!(status, StatusCode::OK, "health needs no key");
    })
    .await;
}

#[tokio::test]
async fn roles_limit_what_a_key_may_do() {
    each_backend(|state| async move {
        let agent = key_for(&state, Some(&admin_org(&state).await), Role::Agent).await;
        let body = json!({ "application_name": "x", "webhook_event_url": "http://127.0.0.1:9/" });
        let (status, _, json) =
            call(&state, "POST", "/v2/call_control_applications", Some(&agent), Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
        let (status, _, _) = call(&state, "GET", "/v2/audit_log", Some(&agent), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // An agent may dial and read calls.
        let conn = connection(&state).await;
        let body = json!({ "connection_id": conn, "to": "loop:silence", "from": "+13125550100" });
        let (status, _, json) = call(&state, "POST", "/v2/calls", Some(&agent), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
    })
    .await;
}

#[tokio::test]
async fn another_organizations_resources_are_404_like_missing_ones() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let call_id = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();
        let stranger = key_for(&state, None, Role::Admin).await;
        for path in [format!("/v2/calls/{call_id}"), format!("/v2/call_control_applications/{conn}")] {
            let (foreign, _, foreign_json) = call(&state, "GET", &path, Some(&stranger), None).await;
            let (missing, _, missing_json) =
                call(&state, "GET", &format!("{path}x"), Some(&stranger), None).await;
            assert_eq!(foreign, StatusCode::NOT_FOUND);
            assert_eq!(missing, StatusCode::NOT_FOUND);
            assert_eq!(foreign_json, missing_json);
        }
        let (status, json) = {
            let (s, _, j) = call(
                &state,
                "POST",
                &format!("/v2/calls/{call_id}/actions/hangup"),
                Some(&stranger),
                Some(json!({})),
            )
            .await;
            (s, j)
        };
        assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
        let (_, _, list) = call(&state, "GET", "/v2/calls", Some(&stranger), None).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 0);
    })
    .await;
}

#[tokio::test]
async fn connections_can_be_created_read_listed_updated_and_deleted() {
    each_backend(|state| async move {
        let body = json!({
            "application_name": "Support line",
            "webhook_event_url": "https://example.com/hooks",
            "webhook_event_failover_url": "https://backup.example.com/hooks",
            "webhook_timeout_secs": 5,
            "inbound": { "channel_limit": 10 },
            "bond": { "stream_token": "s3cret" },
        });
        let (status, _, created) =
            call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
        let data = &created["data"];
        let id = data["id"].as_str().unwrap();
        assert!(id.chars().all(|c| c.is_ascii_digit()), "Telnyx-style numeric id: {id}");
        assert_eq!(data["record_type"], "call_control_application");
        assert_eq!(data["inbound"]["channel_limit"], 10);
        assert_eq!(data["active"], true);

        let (_, _, got) =
            call(&state, "GET", &format!("/v2/call_control_applications/{id}"), Some(ADMIN_KEY), None).await;
        assert_eq!(&got["data"], data);

        let patch = json!({ "application_name": "Renamed", "active": false });
        let (status, _, updated) = call(
            &state,
            "PATCH",
            &format!("/v2/call_control_applications/{id}"),
            Some(ADMIN_KEY),
            Some(patch),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(updated["data"]["application_name"], "Renamed");
        assert_eq!(
            updated["data"]["webhook_event_url"], "https://example.com/hooks",
            "unchanged fields stay"
        );

        connection(&state).await;
        let (_, _, list) = call(
            &state,
            "GET",
            "/v2/call_control_applications?page[size]=1&page[number]=2",
            Some(ADMIN_KEY),
            None,
        )
        .await;
        assert_eq!(list["meta"]["total_results"], 2);
        assert_eq!(list["meta"]["total_pages"], 2);
        assert_eq!(list["data"].as_array().unwrap().len(), 1);

        let (status, _, _) =
            call(&state, "DELETE", &format!("/v2/call_control_applications/{id}"), Some(ADMIN_KEY), None)
                .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) =
            call(&state, "GET", &format!("/v2/call_control_applications/{id}"), Some(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn a_supervisor_reads_connections_without_their_credentials_and_an_admin_with_them() {
    each_backend(|state| async move {
        let body = json!({
            "application_name": "Carrier",
            "webhook_event_url": "https://example.com/hooks",
            "bond": {
                "sip": { "trunk": { "host": "sip.example.net", "username": "u", "password": "trunk-pw" },
                         "inbound_auth": { "username": "carrier", "password": "digest-pw" } },
                "telnyx": { "api_key": "KEY-secret", "connection_id": "123" },
                "media_streams": { "telnyx_stream_token": "tok-secret", "twilio_auth_token": "tw-secret" },
            },
        });
        let (_, _, created) =
            call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        let supervisor = key_for(&state, Some(&admin_org(&state).await), Role::Supervisor).await;
        let path = format!("/v2/call_control_applications/{id}");

        let (_, _, admin_view) = call(&state, "GET", &path, Some(ADMIN_KEY), None).await;
        assert_eq!(admin_view["data"]["bond"]["telnyx"]["api_key"], "KEY-secret");
        for view in [
            call(&state, "GET", &path, Some(&supervisor), None).await.2["data"].clone(),
            call(&state, "GET", "/v2/call_control_applications", Some(&supervisor), None).await.2["data"][0]
                .clone(),
        ] {
            let bond = &view["bond"];
            for secret in [
                &bond["sip"]["trunk"]["password"],
                &bond["sip"]["inbound_auth"]["password"],
                &bond["telnyx"]["api_key"],
                &bond["media_streams"]["telnyx_stream_token"],
                &bond["media_streams"]["twilio_auth_token"],
            ] {
                assert_eq!(secret, "[redacted]", "{view}");
            }
            assert!(!view.to_string().contains("secret") && !view.to_string().contains("-pw"), "{view}");
            // What is not a credential reads as written.
            assert_eq!(bond["sip"]["trunk"]["username"], "u");
            assert_eq!(bond["telnyx"]["connection_id"], "123");
        }
    })
    .await;
}

#[tokio::test]
async fn invalid_connections_get_422_with_a_pointer() {
    each_backend(|state| async move {
        for (body, pointer) in [
            (json!({ "webhook_event_url": "https://x.example" }), "/application_name"),
            (json!({ "application_name": "a" }), "/webhook_event_url"),
            (json!({ "application_name": "a", "webhook_event_url": "ftp://x" }), "/webhook_event_url"),
            (json!({ "application_name": "a", "webhook_event_url": "http://169.254.169.254/" }), "/webhook_event_url"),
            (json!({ "application_name": "a", "webhook_event_url": "https://x.example", "webhook_event_failover_url": "http://[fe80::1]/" }), "/webhook_event_failover_url"),
            (json!({ "application_name": "a", "webhook_event_url": "https://x.example", "webhook_timeout_secs": 99 }), "/webhook_timeout_secs"),
            (json!({ "application_name": 5, "webhook_event_url": "https://x.example" }), "/application_name"),
        ] {
            let (status, _, json) = call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
            assert_eq!(json["errors"][0]["source"]["pointer"], pointer, "{json}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_tone_call_is_bridged_to_an_echo_call_and_hung_up() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let tone = dial(&state, &conn, "loop:tone?hz=440").await;
        assert_eq!(tone["record_type"], "call");
        assert_eq!(tone["is_alive"], true);
        let tone_id = tone["call_control_id"].as_str().unwrap().to_owned();
        let echo_id = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();

        let (_, _, status) =
            call(&state, "GET", &format!("/v2/calls/{tone_id}"), Some(ADMIN_KEY), None).await;
        assert_eq!(status["data"]["state"], "answered");
        assert_eq!(status["data"]["to"], "loop:tone?hz=440");

        let (code, json) =
            action(&state, &tone_id, "bridge", json!({ "call_control_id_to_bridge_with": echo_id })).await;
        assert_eq!(code, StatusCode::OK, "{json}");
        assert_eq!(json["data"]["result"], "ok");
        let (_, _, status) =
            call(&state, "GET", &format!("/v2/calls/{echo_id}"), Some(ADMIN_KEY), None).await;
        assert_eq!(status["data"]["state"], "bridged");
        assert_eq!(status["data"]["bridged_with"], tone_id.as_str());

        tokio::time::sleep(Duration::from_millis(200)).await;
        let (code, _) = action(&state, &tone_id, "hangup", json!({})).await;
        assert_eq!(code, StatusCode::OK);
        for (id, source) in [(&tone_id, "caller"), (&echo_id, "unknown")] {
            let (_, _, status) = call(&state, "GET", &format!("/v2/calls/{id}"), Some(ADMIN_KEY), None).await;
            let data = &status["data"];
            assert_eq!(data["is_alive"], false, "{data}");
            assert_eq!(data["hangup_cause"], "normal_clearing");
            assert_eq!(data["hangup_source"], source);
            assert!(data["end_time"].is_string());
        }
        let (code, json) = action(&state, &tone_id, "hangup", json!({})).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_code(&json), "90018");

        // The outbox holds each call's events in order.
        let events = state.store.pending_events(100).await.unwrap();
        let of = |id: &str| -> Vec<String> {
            events
                .iter()
                .filter(|e| e.call_control_id.as_deref() == Some(id))
                .map(|e| {
                    serde_json::from_str::<Value>(&e.data).unwrap()["event_type"].as_str().unwrap().to_owned()
                })
                .collect()
        };
        assert_eq!(of(&tone_id), ["call.initiated", "call.answered", "call.bridged", "call.hangup"]);
        assert_eq!(of(&echo_id), ["call.initiated", "call.answered", "call.bridged", "call.hangup"]);
        let hangup: Value = serde_json::from_str(
            &events.iter().rev().find(|e| e.call_control_id.as_deref() == Some(&tone_id)).unwrap().data,
        )
        .unwrap();
        let stats = &hangup["payload"]["call_quality_stats"];
        assert!(stats["outbound"]["packet_count"].as_str().unwrap().parse::<u64>().unwrap() >= 5, "{stats}");
        assert_eq!(state.calls.live_calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn dial_validation_errors_are_422_with_pointers() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let cases = [
            (json!({ "to": "loop:echo", "from": "+13125550100" }), "/connection_id"),
            (json!({ "connection_id": conn, "from": "+13125550100" }), "/to"),
            (json!({ "connection_id": conn, "to": "3125550100", "from": "+13125550100" }), "/to"),
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "nobody" }), "/from"),
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100", "client_state": "%%%" }), "/client_state"),
            (json!({ "connection_id": "12345", "to": "loop:echo", "from": "+13125550100" }), "/connection_id"),
            (json!({ "connection_id": conn, "to": "+13125550199", "from": "+13125550100" }), "/to"),
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100", "answering_machine_detection": "psychic" }), "/answering_machine_detection"),
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100", "answering_machine_detection": "detect",
                "answering_machine_detection_config": { "greeting_duration_millis": "long" } }), "/answering_machine_detection_config/greeting_duration_millis"),
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100", "time_limit_secs": 0 }), "/time_limit_secs"),
            // Webhooks never go to link-local or metadata addresses, from a dial either.
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100", "webhook_url": "http://169.254.169.254/hooks" }), "/webhook_url"),
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100", "webhook_failover_url": "http://[fe80::1]/x" }), "/webhook_failover_url"),
        ];
        for (body, pointer) in cases {
            let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {json}");
            assert_eq!(json["errors"][0]["source"]["pointer"], pointer, "{body} -> {json}");
        }
        let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), None).await;
        assert!(status.is_client_error(), "{json}");
    })
    .await;
}

#[tokio::test]
async fn an_action_sent_with_no_body_at_all_is_taken_as_an_empty_object() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let id = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();
        // What Telnyx's SDK and `curl -X POST` send: no body, no content type.
        let (status, _, json) =
            call(&state, "POST", &format!("/v2/calls/{id}/actions/hangup"), Some(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["data"]["result"], "ok");
    })
    .await;
}

#[tokio::test]
async fn unknown_actions_are_404_and_unavailable_ones_422() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let id = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();
        let (status, _) = action(&state, &id, "teleport", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, json) = action(&state, &id, "gather", json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert_eq!(json["errors"][0]["code"], "10015", "{json}");
        let (status, json) = action(&state, &id, "answer", json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an outgoing call cannot be answered: {json}");
        let (status, json) = action(&state, &id, "send_dtmf", json!({ "digits": "12x" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        let (status, json) =
            action(&state, &id, "send_dtmf", json!({ "digits": "1234#", "duration_millis": 100 })).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let (status, json) =
            action(&state, &id, "bridge", json!({ "call_control_id_to_bridge_with": id })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    })
    .await;
}

#[tokio::test]
async fn client_state_update_sets_the_client_state_of_later_webhooks() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let id = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();
        let (status, json) = action(&state, &id, "client_state_update", json!({})).await;
        assert_eq!(
            (status, &json["errors"][0]["source"]["pointer"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!("/client_state"))
        );
        let (status, json) =
            action(&state, &id, "client_state_update", json!({ "client_state": "bm90IGI2NA==" })).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        action(&state, &id, "hangup", json!({})).await;

        let hangups = common::queued_events(&state, &id, "call.hangup", 1, Duration::from_secs(5)).await;
        assert_eq!(hangups[0]["payload"]["client_state"], "bm90IGI2NA==", "{hangups:?}");
        let (_, _, json) = call(&state, "GET", &format!("/v2/calls/{id}"), Some(ADMIN_KEY), None).await;
        assert_eq!(json["data"]["client_state"], "bm90IGI2NA==", "{json}");
        let (status, json) =
            action(&state, &id, "client_state_update", json!({ "client_state": "YQ==" })).await;
        assert_eq!((status, &json["errors"][0]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("90018")));
    })
    .await;
}

/// Telnyx: `client_state` on any action is added "to every subsequent
/// webhook", the ones the action itself causes included.
#[tokio::test]
async fn client_state_on_any_action_is_carried_by_the_webhooks_it_causes_and_later_ones() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let a = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();
        let b = dial(&state, &conn, "loop:silence").await["call_control_id"].as_str().unwrap().to_owned();
        let bridge = json!({ "call_control_id_to_bridge_with": b, "client_state": "YnJpZGdl" });
        let (status, json) = action(&state, &a, "bridge", bridge).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let bridged = common::queued_events(&state, &a, "call.bridged", 1, Duration::from_secs(5)).await;
        assert_eq!(bridged[0]["payload"]["client_state"], "YnJpZGdl", "{bridged:?}");

        // A body that fails to parse changes nothing.
        let (status, _) = action(&state, &a, "hangup", json!({ "client_state": "not base64!" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = action(&state, &a, "hangup", json!({ "client_state": "aGFuZ3Vw" })).await;
        assert_eq!(status, StatusCode::OK);
        let hangup = common::queued_events(&state, &a, "call.hangup", 1, Duration::from_secs(5)).await;
        assert_eq!(hangup[0]["payload"]["client_state"], "aGFuZ3Vw", "{hangup:?}");
        // The other call keeps its own.
        let hangup = common::queued_events(&state, &b, "call.hangup", 1, Duration::from_secs(5)).await;
        assert_eq!(hangup[0]["payload"]["client_state"], Value::Null, "{hangup:?}");
    })
    .await;
}

#[tokio::test]
async fn command_id_and_idempotency_key_replay_the_first_answer() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let body = json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100" });
        let send = |key: &'static str| {
            let state = state.clone();
            let body = body.clone();
            async move {
                let request = axum::http::Request::post("/v2/calls")
                    .header("authorization", format!("Bearer {ADMIN_KEY}"))
                    .header("content-type", "application/json")
                    .header("idempotency-key", key)
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap();
                use tower::ServiceExt;
                let response = bond_control_api::app(state).oneshot(request).await.unwrap();
                let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
                serde_json::from_slice::<Value>(&bytes).unwrap()
            }
        };
        let first = send("dial-1").await;
        let again = send("dial-1").await;
        let other = send("dial-2").await;
        assert_eq!(first, again);
        assert_ne!(first["data"]["call_control_id"], other["data"]["call_control_id"]);
        let (_, _, list) = call(&state, "GET", "/v2/calls", Some(ADMIN_KEY), None).await;
        assert_eq!(list["meta"]["total_results"], 2);

        let id = first["data"]["call_control_id"].as_str().unwrap().to_owned();
        let (s1, j1) = action(&state, &id, "hangup", json!({ "command_id": "bye" })).await;
        let (s2, j2) = action(&state, &id, "hangup", json!({ "command_id": "bye" })).await;
        assert_eq!(s1, StatusCode::OK);
        assert_eq!((s2, j2), (s1, j1), "the repeat replays the first answer, not a 90018");
        let (s3, _) = action(&state, &id, "hangup", json!({ "command_id": "other" })).await;
        assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY);
    })
    .await;
}

/// POST /v2/calls with an `Idempotency-Key`; (status, body).
async fn dial_with_key(state: &AppState, api_key: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::post("/v2/calls")
        .header("authorization", format!("Bearer {api_key}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let response = bond_control_api::app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn one_idempotency_key_makes_one_call_for_one_body_and_one_api_key() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let body = json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100" });
        // Ten at once: one call; the rest replay it or are told it is under way.
        let sends = (0..10).map(|_| dial_with_key(&state, ADMIN_KEY, "burst", &body));
        let answers = futures_util::future::join_all(sends).await;
        let (_, _, list) = call(&state, "GET", "/v2/calls", Some(ADMIN_KEY), None).await;
        assert_eq!(list["meta"]["total_results"], 1, "{answers:?}");
        for (status, json) in &answers {
            assert!([StatusCode::OK, StatusCode::CONFLICT].contains(status), "{status} {json}");
        }
        let first = answers.iter().find(|(s, _)| *s == StatusCode::OK).unwrap().1.clone();
        assert_eq!(dial_with_key(&state, ADMIN_KEY, "burst", &body).await, (StatusCode::OK, first.clone()));
        // The same key with another body is a mistake, not a replay.
        let other = json!({ "connection_id": conn, "to": "loop:silence", "from": "+13125550100" });
        let (status, json) = dial_with_key(&state, ADMIN_KEY, "burst", &other).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        // Another API key's use of the same key is its own request.
        let agent = key_for(&state, Some(&admin_org(&state).await), Role::Agent).await;
        let (status, json) = dial_with_key(&state, &agent, "burst", &body).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_ne!(json["data"]["call_control_id"], first["data"]["call_control_id"]);
        // A refused request gives its key back.
        let bad = json!({ "connection_id": conn, "to": "nowhere", "from": "+13125550100" });
        assert_eq!(
            dial_with_key(&state, ADMIN_KEY, "retry-me", &bad).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(dial_with_key(&state, ADMIN_KEY, "retry-me", &body).await.0, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn too_many_requests_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let state = common::state(
        dir.path(),
        &url,
        &[("BOND_RATE_LIMIT_PER_SECOND", "1"), ("BOND_RATE_LIMIT_BURST", "3")],
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, headers, _) = call(&state, "GET", "/v2/calls", Some(ADMIN_KEY), None).await;
        assert_eq!(headers["x-ratelimit-limit"], "3");
        assert!(headers.contains_key("x-ratelimit-remaining") && headers.contains_key("x-ratelimit-reset"));
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(headers.contains_key("retry-after"));
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Without a key the address is limited on its own budget (and the answer is 401).
    let (status, _, _) = call(&state, "GET", "/v2/calls", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn making_up_a_new_key_for_each_request_does_not_escape_the_rate_limit() {
    let (_dir, state, _) = common::setup(&[]).await;
    let mut statuses = Vec::new();
    for n in 0..40 {
        let bogus = format!("KEYmadeup{n:04}");
        statuses.push(call(&state, "GET", "/v2/calls", Some(&bogus), None).await.0.as_u16());
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(unauthorized, bond_control_api::http::guard::AUTH_FAILURES_BURST as usize, "{statuses:?}");
    assert!(statuses[unauthorized..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let state = common::state(dir.path(), &url, &[("BOND_HTTP_MAX_BODY_BYTES", "256")]).await;
    let big = json!({ "application_name": "x".repeat(1000), "webhook_event_url": "https://x.example" });
    let (status, _, json) =
        call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
}

#[tokio::test]
async fn mutating_calls_are_in_the_audit_log() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        dial(&state, &conn, "loop:silence").await;
        let bad = json!({ "connection_id": conn, "to": "nowhere", "from": "+13125550100" });
        call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(bad)).await;
        call(&state, "GET", "/v2/calls", Some(ADMIN_KEY), None).await;
        let (status, _, log) = call(&state, "GET", "/v2/audit_log", Some(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::OK);
        let entries: Vec<(String, String, i64)> = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["method"].as_str().unwrap().into(),
                    e["path"].as_str().unwrap().into(),
                    e["status"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries.len(), 3, "reads are not audited: {entries:?}");
        assert!(entries.contains(&("POST".into(), "/v2/call_control_applications".into(), 201)));
        assert!(entries.contains(&("POST".into(), "/v2/calls".into(), 200)));
        assert!(entries.contains(&("POST".into(), "/v2/calls".into(), 422)));
    })
    .await;
}

#[tokio::test]
async fn the_webhook_public_key_is_32_bytes_of_base64() {
    each_backend(|state| async move {
        let (status, _, json) = call(&state, "GET", "/v2/webhook_public_key", Some(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::OK);
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(json["data"]["public_key"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
    })
    .await;
}

#[tokio::test]
async fn voice_config_is_read_updated_and_validated() {
    each_backend(|state| async move {
        let (status, _, json) = call(&state, "GET", "/v2/voice_config", Some(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["data"]["live_translate"], false);
        assert_eq!(json["data"]["answering_machine_detection"], "disabled");

        let patch = json!({ "live_translate": true, "translate_from": "en", "translate_to": "es-MX", "record": true });
        let (status, _, json) = call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(patch)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let (_, _, json) = call(&state, "GET", "/v2/voice_config", Some(ADMIN_KEY), None).await;
        assert_eq!(json["data"]["translate_to"], "es-MX");
        assert_eq!(json["data"]["record"], true);

        for (bad, pointer) in [
            (json!({ "translate_from": "English" }), "/translate_from"),
            (json!({ "answering_machine_detection": "maybe" }), "/answering_machine_detection"),
            (json!({ "answering_machine_detection": "detect", "answering_machine_detection_config": { "initial_silence_millis": 0 } }),
                "/answering_machine_detection_config/initial_silence_millis"),
            (json!({ "outbound_countries": ["US", "XX"] }), "/outbound_countries"),
            (json!({ "live_translate": true, "translate_from": null }), "/live_translate"),
        ] {
            let (status, _, json) = call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(bad)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
            assert_eq!(json["errors"][0]["source"]["pointer"], pointer, "{json}");
        }
        let (status, _, _) = call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(json!({ "colour": 1 }))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");
    })
    .await;
}

#[tokio::test]
async fn dials_to_countries_off_the_allow_list_are_refused() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let patch = json!({ "outbound_countries": ["US", "CA"] });
        call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(patch)).await;
        let dial_to = |to: &'static str| {
            let state = state.clone();
            let conn = conn.clone();
            async move {
                let body = json!({ "connection_id": conn, "to": to, "from": "+13125550100" });
                call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await
            }
        };
        let (status, _, json) = dial_to("+442071234567").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_code(&json), "10016", "{json}");
        assert!(json["errors"][0]["detail"].as_str().unwrap().contains("GB"));
        // An allowed country gets past the allow-list (and then needs a trunk Bond does not have yet).
        let (status, _, json) = dial_to("+14165550100").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_ne!(error_code(&json), "10016", "{json}");
        // Built-in legs are not countries.
        let (status, _, _) = dial_to("loop:echo").await;
        assert_eq!(status, StatusCode::OK);
        // A number inside a sip: URI is held to the list; a bare one cannot be placed, so it is refused.
        for to in ["sip:+442071234567@sip.example.net", "sip:011442071234567@sip.example.net"] {
            let (status, _, json) = dial_to(to).await;
            assert_eq!(
                (status, error_code(&json)),
                (StatusCode::UNPROCESSABLE_ENTITY, "10016"),
                "{to}: {json}"
            );
        }
        let (_, _, json) = dial_to("sip:alice@sip.example.net").await;
        assert_ne!(error_code(&json), "10016", "a name is not a number: {json}");
    })
    .await;
}

#[tokio::test]
async fn only_the_roles_the_voice_config_names_may_dial_raw_sip_uris() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let supervisor = key_for(&state, Some(&admin_org(&state).await), Role::Supervisor).await;
        let body =
            json!({ "connection_id": conn, "to": "sip:alice@sip.example.net", "from": "+13125550100" });
        let (status, _, json) =
            call(&state, "POST", "/v2/calls", Some(&supervisor), Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "admins only by default: {json}");
        assert!(json["errors"][0]["detail"].as_str().unwrap().contains("sip_uri_dialing"), "{json}");
        let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body.clone())).await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{json}");
        let patch = json!({ "sip_uri_dialing": "supervisor" });
        let (status, _, json) = call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(patch)).await;
        assert_eq!(
            (status, &json["data"]["sip_uri_dialing"]),
            (StatusCode::OK, &json!("supervisor")),
            "{json}"
        );
        let (status, _, json) = call(&state, "POST", "/v2/calls", Some(&supervisor), Some(body)).await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{json}");
        let patch = json!({ "sip_uri_dialing": "root" });
        let (status, _, _) = call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(patch)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    })
    .await;
}

#[tokio::test]
async fn hold_and_mute_actions_are_accepted_and_validated() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let id = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();
        for (name, body) in [
            ("mute", json!({ "direction": "inbound" })),
            ("unmute", json!({})),
            ("hold", json!({})),
            ("unhold", json!({})),
        ] {
            let (status, json) = action(&state, &id, name, body).await;
            assert_eq!(status, StatusCode::OK, "{name}: {json}");
        }
        let (status, json) = action(&state, &id, "mute", json!({ "direction": "sideways" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        let (status, json) = action(&state, &id, "hold", json!({ "audio_file": "missing.wav" })).await;
        assert_eq!(
            (status, json["errors"][0]["source"]["pointer"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("/audio_file"))
        );
        let (status, _) = action(&state, &id, "hold", json!({ "audio_file": "../secret.wav" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        action(&state, &id, "hangup", json!({})).await;
        let (status, json) = action(&state, &id, "mute", json!({})).await;
        assert_eq!(error_code(&json), "90018", "{status}");
    })
    .await;
}

async fn get_call(state: &AppState, id: &str) -> Value {
    call(state, "GET", &format!("/v2/calls/{id}"), Some(ADMIN_KEY), None).await.2["data"].clone()
}

fn id_of(call: &Value) -> String {
    call["call_control_id"].as_str().unwrap().to_owned()
}

/// Dial `to` linked to `link`, bridged with it on answer; the new call's id.
async fn dial_bridged_on_answer(state: &AppState, connection_id: &str, to: &str, link: &str) -> String {
    let body = json!({ "connection_id": connection_id, "to": to, "from": "+13125550100",
        "link_to": link, "bridge_on_answer": true });
    let (status, _, json) = call(state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    id_of(&json["data"])
}

#[tokio::test]
async fn a_dial_with_bridge_on_answer_joins_its_link_to_call_in_the_same_session() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let echo = id_of(&dial(&state, &conn, "loop:echo").await);
        let tone = dial_bridged_on_answer(&state, &conn, "loop:tone?hz=440", &echo).await;
        let (echo_call, tone_call) = (get_call(&state, &echo).await, get_call(&state, &tone).await);
        assert_eq!(tone_call["state"], "bridged", "{tone_call}");
        assert_eq!(tone_call["bridged_with"], echo.as_str());
        assert_eq!(echo_call["bridged_with"], tone.as_str());
        assert_eq!(tone_call["call_session_id"], echo_call["call_session_id"]);

        // link_to alone shares the session and bridges nothing.
        let body =
            json!({ "connection_id": conn, "to": "loop:silence", "from": "+13125550100", "link_to": echo });
        let (_, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
        let silence = get_call(&state, &id_of(&json["data"])).await;
        assert_eq!(silence["state"], "answered");
        assert_eq!(silence["call_session_id"], echo_call["call_session_id"]);
    })
    .await;
}

#[tokio::test]
async fn link_to_must_name_a_live_call_and_bridge_on_answer_needs_it() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let dial_with = |extra: Value| {
            let state = state.clone();
            let mut body = json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100" });
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            async move { call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await }
        };
        let (status, _, json) = dial_with(json!({ "bridge_on_answer": true })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["errors"][0]["source"]["pointer"], "/link_to", "{json}");
        let (status, _, json) =
            dial_with(json!({ "link_to": "v3:nosuchcall", "bridge_on_answer": true })).await;
        assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "90018"));
        let ended = id_of(&dial(&state, &conn, "loop:echo").await);
        action(&state, &ended, "hangup", json!({})).await;
        let (status, _, json) = dial_with(json!({ "link_to": ended })).await;
        assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "90018"));
    })
    .await;
}

#[tokio::test]
async fn a_ringing_dial_is_cancelled_when_its_link_to_call_hangs_up() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let mut bob = state.calls.register_agent(&admin_org(&state).await, "bob");
        let customer = id_of(&dial(&state, &conn, "loop:tone?hz=700").await);
        let ringing = dial_bridged_on_answer(&state, &conn, "agent:bob", &customer).await;
        assert!(matches!(bob.messages.recv().await, Some(bond_calls::AgentMessage::IncomingCall { .. })));

        action(&state, &customer, "hangup", json!({})).await;
        let cancelled = get_call(&state, &ringing).await;
        assert_eq!(cancelled["is_alive"], false, "{cancelled}");
        assert_eq!(cancelled["hangup_cause"], "originator_cancel");
        assert_eq!(cancelled["hangup_source"], "caller");
        let told = bob.messages.recv().await.unwrap();
        assert_eq!(
            told,
            bond_calls::AgentMessage::Hangup { call_control_id: ringing, cause: "originator_cancel".into() }
        );
    })
    .await;
}

#[tokio::test]
async fn streaming_start_checks_its_fields_and_stop_needs_a_stream() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let id = dial(&state, &conn, "loop:echo").await["call_control_id"].as_str().unwrap().to_owned();
        for (body, pointer) in [
            (json!({}), "/stream_url"),
            (json!({ "stream_url": "https://example.com/" }), "/stream_url"),
            (json!({ "stream_url": "ws://127.0.0.1:9/", "stream_track": "inbound" }), "/stream_track"),
            (json!({ "stream_url": "ws://127.0.0.1:9/", "stream_codec": "AMR-WB" }), "/stream_codec"),
            (
                json!({ "stream_url": "ws://127.0.0.1:9/", "stream_bidirectional_mode": "flac" }),
                "/stream_bidirectional_mode",
            ),
            (
                json!({ "stream_url": "ws://127.0.0.1:9/", "stream_bidirectional_mode": "rtp", "stream_bidirectional_codec": "AMR-WB" }),
                "/stream_bidirectional_codec",
            ),
            (
                json!({ "stream_url": "ws://127.0.0.1:9/", "stream_bidirectional_mode": "rtp", "stream_bidirectional_target_legs": "left" }),
                "/stream_bidirectional_target_legs",
            ),
            (
                json!({ "stream_url": "ws://127.0.0.1:9/", "custom_parameters": { "a": 1 } }),
                "/custom_parameters",
            ),
        ] {
            let (status, json) = action(&state, &id, "streaming_start", body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {json}");
            assert_eq!(json["errors"][0]["source"]["pointer"], pointer, "{body}: {json}");
        }
        let (status, json) = action(&state, &id, "streaming_stop", json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no stream to stop: {json}");
    })
    .await;
}

#[tokio::test]
async fn a_sip_address_belongs_to_one_organization() {
    each_backend(|state| async move {
        let other = key_for(&state, None, Role::Admin).await;
        let trunk = |ips: &[&str]| {
            json!({ "application_name": "trunk", "webhook_event_url": "http://127.0.0.1:9/hooks",
                    "bond": { "sip": { "allowed_ips": ips } } })
        };
        let create = |key: String, body: Value| {
            let state = state.clone();
            async move { call(&state, "POST", "/v2/call_control_applications", Some(&key), Some(body)).await }
        };
        let (status, _, first) = create(ADMIN_KEY.into(), trunk(&["192.0.2.10", "192.0.2.11"])).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let (status, _, json) = create(other.clone(), trunk(&["192.0.2.11"])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert_eq!(json["errors"][0]["source"]["pointer"], "/bond/sip/allowed_ips", "{json}");
        let (status, _, theirs) = create(other.clone(), trunk(&["192.0.2.12"])).await;
        assert_eq!(status, StatusCode::CREATED, "{theirs}");
        // Nor may the first organization take the other's address by an update.
        let path = format!("/v2/call_control_applications/{}", first["data"]["id"].as_str().unwrap());
        let patch = json!({ "bond": { "sip": { "allowed_ips": ["192.0.2.12"] } } });
        let (status, _, json) = call(&state, "PATCH", &path, Some(ADMIN_KEY), Some(patch)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        // The same organization may use an address on two connections of its own.
        let (status, _, json) = create(ADMIN_KEY.into(), trunk(&["192.0.2.10"])).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        // bond.sip is checked as it is written.
        let bad = json!({ "application_name": "t", "webhook_event_url": "http://127.0.0.1:9/hooks",
                          "bond": { "sip": { "allowed_ips": ["not-an-ip"] } } });
        let (status, _, json) = create(ADMIN_KEY.into(), bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert!(json["errors"][0]["detail"].as_str().unwrap().contains("not-an-ip"), "{json}");
    })
    .await;
}
