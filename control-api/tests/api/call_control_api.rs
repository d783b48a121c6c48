//! The call-control API through the router: auth and roles, connections, calls
//! on built-in legs, actions and their errors (policies: `api_policies.rs`).
//! Every test runs on SQLite, and on Postgres when BOND_TEST_DATABASE_URL is set.

use std::time::Duration;

use crate::common::{action, admin_org, call, connection, each_backend, error_code, key_for, ADMIN_KEY};
use axum::http::StatusCode;
use bond_agents::{AgentControl, AgentMessage, SignedIn};
use bond_control_api::auth::Role;
use bond_control_api::state::AppState;
use serde_json::{json, Value};

async fn dial(state: &AppState, connection_id: &str, to: &str) -> Value {
    let body = json!({ "connection_id": connection_id, "to": to, "from": "+13125550100" });
    let (status, _, json) = call(state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["data"].clone()
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
            // An application's SIP header may not be one the stack writes, or span lines.
            (json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100",
                "custom_headers": [{ "name": "X-Ok", "value": "1" }, { "name": "Call-ID", "value": "x" }] }), "/custom_headers/1"),
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
        let (status, json) = action(&state, &id, "fork_start", json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert_eq!(json["errors"][0]["code"], "10015", "{json}");
        let refer = json!({ "sip_address": "sip:+15551230000@pbx.example.com" });
        let (status, json) = action(&state, &id, "refer", refer).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "only a SIP call can be referred: {json}");
        assert_eq!(json["errors"][0]["code"], "90015", "{json}");
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

        let hangups =
            crate::common::queued_events(&state, &id, "call.hangup", 1, Duration::from_secs(5)).await;
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
        let bridged =
            crate::common::queued_events(&state, &a, "call.bridged", 1, Duration::from_secs(5)).await;
        assert_eq!(bridged[0]["payload"]["client_state"], "YnJpZGdl", "{bridged:?}");

        // A body that fails to parse changes nothing.
        let (status, _) = action(&state, &a, "hangup", json!({ "client_state": "not base64!" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = action(&state, &a, "hangup", json!({ "client_state": "aGFuZ3Vw" })).await;
        assert_eq!(status, StatusCode::OK);
        let hangup = crate::common::queued_events(&state, &a, "call.hangup", 1, Duration::from_secs(5)).await;
        assert_eq!(hangup[0]["payload"]["client_state"], "aGFuZ3Vw", "{hangup:?}");
        // The other call keeps its own.
        let hangup = crate::common::queued_events(&state, &b, "call.hangup", 1, Duration::from_secs(5)).await;
        assert_eq!(hangup[0]["payload"]["client_state"], Value::Null, "{hangup:?}");
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
        let bob =
            SignedIn { organization_id: admin_org(&state).await, agent: "bob".into(), connection_id: None };
        let mut bob = state.calls.agents().register(&bob, bond_store::clock::monotonic());
        let customer = id_of(&dial(&state, &conn, "loop:tone?hz=700").await);
        let ringing = dial_bridged_on_answer(&state, &conn, "agent:bob", &customer).await;
        assert!(matches!(bob.messages.recv().await, Some(AgentMessage::IncomingCall { .. })));

        action(&state, &customer, "hangup", json!({})).await;
        let cancelled = get_call(&state, &ringing).await;
        assert_eq!(cancelled["is_alive"], false, "{cancelled}");
        assert_eq!(cancelled["hangup_cause"], "originator_cancel");
        assert_eq!(cancelled["hangup_source"], "caller");
        let told = bob.messages.recv().await.unwrap();
        assert_eq!(
            told,
            AgentMessage::Hangup { call_control_id: ringing.into(), cause: "originator_cancel".into() }
        );
    })
    .await;
}

#[tokio::test]
async fn a_call_past_its_time_limit_ends_with_time_limit_and_takes_its_partner_along() {
    each_backend(|state| async move {
        let conn = connection(&state).await;
        let body =
            json!({ "connection_id": conn, "to": "loop:echo", "from": "+13125550100", "time_limit_secs": 1 });
        let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let limited = id_of(&json["data"]);
        let partner = dial_bridged_on_answer(&state, &conn, "loop:silence", &limited).await;
        assert_eq!(get_call(&state, &partner).await["state"], "bridged");

        let hangup =
            crate::common::queued_events(&state, &limited, "call.hangup", 1, Duration::from_secs(10)).await;
        assert_eq!(hangup.len(), 1, "the time limit never ended the call");
        let ended = get_call(&state, &limited).await;
        assert_eq!(
            (&ended["hangup_cause"], &ended["hangup_source"]),
            (&json!("time_limit"), &json!("unknown"))
        );
        // The partner is hung up after the limited call, on its own task.
        let gone =
            crate::common::queued_events(&state, &partner, "call.hangup", 1, Duration::from_secs(10)).await;
        assert_eq!(gone.len(), 1, "the partner was not taken along");
        let partner = get_call(&state, &partner).await;
        assert_eq!(
            (&partner["is_alive"], &partner["hangup_cause"]),
            (&json!(false), &json!("normal_clearing"))
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
