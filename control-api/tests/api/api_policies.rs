//! What the API allows and keeps, through the router: idempotency, rate
//! limits, body size, the audit log, the webhook key, voice config, the
//! country allow-list, raw SIP dialing and SIP address claims.
//! Every test runs on SQLite, and on Postgres when BOND_TEST_DATABASE_URL is set.

use crate::common::{
    action, admin_org, call, connection, dial, each_backend, error_code, key_for, ADMIN_KEY,
};
use axum::http::StatusCode;
use bond_control_api::auth::Role;
use bond_control_api::state::AppState;
use serde_json::{json, Value};

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
    let state = crate::common::state(
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
    let (_dir, state, _) = crate::common::setup(&[]).await;
    let started = bond_store::clock::monotonic();
    let mut statuses = Vec::new();
    for n in 0..40 {
        let bogus = format!("KEYmadeup{n:04}");
        statuses.push(call(&state, "GET", "/v2/calls", Some(&bogus), None).await.0.as_u16());
    }
    // The burst of failures, then 429s; the bucket gives one try back a second, so a
    // slow machine may see a 401 more for each second the 40 requests took.
    let burst = bond_control_api::http::guard::AUTH_FAILURES_BURST as usize;
    let given_back = started.elapsed().as_secs() as usize + 1;
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    assert!(statuses[..burst].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(unauthorized <= burst + given_back, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let state = crate::common::state(dir.path(), &url, &[("BOND_HTTP_MAX_BODY_BYTES", "256")]).await;
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
