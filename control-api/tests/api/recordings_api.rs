//! Recording calls through the API: dual-channel WAV with the right tones and
//! length, pause/resume, saved on hangup, `call.recording.saved`, and signed,
//! expiring download links that need no API key.

use std::time::Duration;

use crate::common::{action, call, dial, download, outbox, setup, tone_share, ADMIN_KEY};
use axum::http::StatusCode;
use bond_control_api::state::AppState;
use serde_json::{json, Value};

/// The `call.recording.saved` payloads in the outbox.
async fn saved_events(state: &AppState) -> Vec<Value> {
    outbox(state).await.into_iter().filter(|(t, _)| t == "call.recording.saved").map(|(_, p)| p).collect()
}

#[tokio::test]
async fn a_dual_channel_recording_carries_each_side_and_matches_the_call_length() {
    let (_dir, state, conn) = setup(&[]).await;
    let customer = dial(&state, &conn, "loop:tone?hz=700").await;
    let agent = dial(&state, &conn, "loop:tone?hz=1100").await;
    let (status, json) =
        action(&state, &customer, "bridge", json!({ "call_control_id_to_bridge_with": agent })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let start = json!({ "format": "wav", "channels": "dual", "sample_rate": 16000 });
    #[allow(clippy::disallowed_methods)] // the test measures the wall time the recording spanned
    let started = std::time::Instant::now();
    assert_eq!(action(&state, &customer, "record_start", start.clone()).await.0, StatusCode::OK);
    let (status, json) = action(&state, &customer, "record_start", start).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "one recording at a time: {json}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(action(&state, &customer, "record_pause", json!({})).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(action(&state, &customer, "record_resume", json!({})).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(action(&state, &customer, "record_stop", json!({})).await.0, StatusCode::OK);
    let spanned = started.elapsed().as_millis() as i64;

    let saved = saved_events(&state).await;
    assert_eq!(saved.len(), 1);
    let payload = &saved[0];
    assert_eq!(payload["call_control_id"], customer.as_str());
    assert_eq!(payload["channels"], "dual");
    let duration = payload["duration_millis"].as_i64().unwrap();
    // Most of the 1.5 s of sleeps around the pause (a loaded machine can make the
    // engine skip ticks); the 400 ms pause itself is left out.
    assert!(duration >= 700, "{duration} ms recorded");
    assert!(duration <= spanned - 300, "{duration} ms recorded in {spanned} ms with a 400 ms pause");
    assert!(payload["recording_started_at"].is_string() && payload["recording_ended_at"].is_string());

    let url = payload["recording_urls"]["wav"].as_str().unwrap();
    let (status, wav) = download(&state, url).await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!((reader.spec().channels, reader.spec().sample_rate), (2, 16000));
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let file_ms = (samples.len() / 2) as i64 * 1000 / 16000;
    assert!((file_ms - duration).abs() <= 40, "file {file_ms} ms, reported {duration} ms");
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!(tone_share(&left[1600..], 700.0, 16000) > 0.9, "left is the recorded call's party");
    assert!(tone_share(&right[1600..], 1100.0, 16000) > 0.9, "right is what it heard");

    let id = payload["recording_id"].as_str().unwrap();
    let (status, _, json) = call(&state, "GET", &format!("/v2/recordings/{id}"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["data"]["status"], "completed");
    assert_eq!(json["data"]["record_type"], "recording");
    let (_, _, list) = call(&state, "GET", "/v2/recordings", Some(ADMIN_KEY), None).await;
    assert_eq!(list["meta"]["total_results"], 1);
}

#[tokio::test]
async fn download_links_refuse_tampering_and_expiry() {
    let (_dir, state, conn) = setup(&[("BOND_RECORDING_LINK_SECS", "1")]).await;
    let id = dial(&state, &conn, "loop:tone").await;
    action(&state, &id, "record_start", json!({ "channels": "single" })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    action(&state, &id, "record_stop", json!({})).await;
    let url = saved_events(&state).await[0]["recording_urls"]["wav"].as_str().unwrap().to_owned();
    assert_eq!(download(&state, &url).await.0, StatusCode::OK);
    let tampered = url.replace("signature=", "signature=00");
    assert_eq!(download(&state, &tampered).await.0, StatusCode::FORBIDDEN);
    let unsigned = url.split_once('?').unwrap().0.to_owned();
    assert_eq!(download(&state, &unsigned).await.0, StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(download(&state, &url).await.0, StatusCode::FORBIDDEN, "expired");
}

#[tokio::test]
async fn hanging_up_saves_the_recording_and_record_from_answer_starts_one() {
    let (_dir, state, conn) = setup(&[]).await;
    let body = json!({ "connection_id": conn, "to": "loop:tone", "from": "+13125550100", "record": "record-from-answer", "record_channels": "dual" });
    let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let id = json["data"]["call_control_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    action(&state, &id, "hangup", json!({})).await;
    let saved = saved_events(&state).await;
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["channels"], "dual");
    // The call's events: recording saved before the hangup is reported.
    let types: Vec<String> = state
        .store
        .pending_events(100)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["call.initiated", "call.answered", "call.recording.saved", "call.hangup"]);
}

#[tokio::test]
async fn recording_errors_are_422() {
    let (_dir, state, conn) = setup(&[]).await;
    let id = dial(&state, &conn, "loop:echo").await;
    for (action_name, body) in [
        ("record_stop", json!({})),
        ("record_pause", json!({})),
        ("record_start", json!({ "format": "mp3" })),
        ("record_start", json!({ "channels": "quad" })),
        ("record_start", json!({ "sample_rate": 44100 })),
        ("record_start", json!({ "recording_track": "inbound" })),
    ] {
        let (status, json) = action(&state, &id, action_name, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{action_name} {body}: {json}");
    }
}
