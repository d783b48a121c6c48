//! `playback_start`, `playback_stop` and `speak` through the API: the audio
//! reaches the call's party (checked in a recording of what it heard), from
//! base64 content, from an `audio_url` served over HTTP and from espeak-ng,
//! with `call.playback.*` / `call.speak.*` in order and 422s for bad requests.

use std::io::Cursor;
use std::time::Duration;

use crate::common::{action, base64, dial, download, outbox, setup, tone_share, tone_wav};
use axum::http::StatusCode;
use bond_control_api::state::AppState;
use serde_json::{json, Value};

async fn wait_for(state: &AppState, event_type: &str, count: usize) -> Vec<(String, Value)> {
    for _ in 0..200 {
        let all = outbox(state).await;
        if all.iter().filter(|(t, _)| t == event_type).count() >= count {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {count} x {event_type} in {:?}", outbox(state).await);
}

/// Stop the recording of `id` and return what its party heard (the right channel).
async fn heard_by(state: &AppState, id: &str) -> Vec<i16> {
    action(state, id, "record_stop", json!({})).await;
    let (_, saved) = wait_for(state, "call.recording.saved", 1)
        .await
        .into_iter()
        .rfind(|(t, _)| t == "call.recording.saved")
        .unwrap();
    let (status, wav) = download(state, saved["recording_urls"]["wav"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = hound::WavReader::new(Cursor::new(wav)).unwrap();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    samples.iter().skip(1).step_by(2).copied().collect()
}

/// A party (loop:silence) bridged to a 700 Hz tone, recorded from now on.
async fn recorded_party(state: &AppState, conn: &str) -> String {
    let party = dial(state, conn, "loop:silence").await;
    let other = dial(state, conn, "loop:tone?hz=700").await;
    let (status, json) =
        action(state, &party, "bridge", json!({ "call_control_id_to_bridge_with": other })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let start = json!({ "format": "wav", "channels": "dual" });
    assert_eq!(action(state, &party, "record_start", start).await.0, StatusCode::OK);
    party
}

#[tokio::test]
async fn played_content_replaces_what_the_party_hears_and_is_reported_start_and_end() {
    let (_dir, state, conn) = setup(&[]).await;
    let party = recorded_party(&state, &conn).await;
    // 44.1 kHz: resampled to the call's 8 kHz.
    let body =
        json!({ "playback_content": base64(&tone_wav(1500.0, 44_100, 0.6)), "client_state": "cGxheQ==" });
    let (status, json) = action(&state, &party, "playback_start", body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    wait_for(&state, "call.playback.ended", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heard = heard_by(&state, &party).await;

    let all = outbox(&state).await;
    let playback: Vec<_> = all.iter().filter(|(t, _)| t.starts_with("call.playback")).collect();
    assert_eq!(playback.len(), 2);
    let (started, ended) = (&playback[0], &playback[1]);
    assert_eq!(started.0, "call.playback.started");
    assert_eq!(ended.0, "call.playback.ended");
    assert_eq!(ended.1["status"], "completed");
    assert_eq!(ended.1["overlay"], false);
    assert_eq!(ended.1["client_state"], "cGxheQ==");
    assert_eq!(ended.1["call_control_id"], party.as_str());

    // Find the clip in what the party heard: 1500 Hz for 0.6 s, the bridge's 700 Hz around it.
    let blocks: Vec<bool> = heard.chunks_exact(800).map(|b| tone_share(b, 1500.0, 8000) > 0.8).collect();
    let clip_blocks = blocks.iter().filter(|&&b| b).count();
    assert!((5..=6).contains(&clip_blocks), "0.6 s of clip in 100 ms blocks: {blocks:?}");
    let last = &heard[heard.len() - 1600..];
    assert!(tone_share(last, 700.0, 8000) > 0.8, "the bridge is heard again");
}

#[tokio::test]
async fn a_looping_url_playback_is_stopped_and_a_call_hangup_ends_what_is_left() {
    let (_dir, state, conn) = setup(&[]).await;
    let served = tone_wav(1000.0, 16_000, 0.2);
    let app =
        axum::Router::new().route("/tone.wav", axum::routing::get(move || async move { served.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/tone.wav", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let party = recorded_party(&state, &conn).await;
    let looping = json!({ "audio_url": url, "loop": "infinity" });
    assert_eq!(action(&state, &party, "playback_start", looping.clone()).await.0, StatusCode::OK);
    assert_eq!(
        action(&state, &party, "playback_start", json!({ "audio_url": url, "loop": 50 })).await.0,
        StatusCode::OK
    );
    wait_for(&state, "call.playback.started", 1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stop = json!({ "stop": "current" });
    assert_eq!(action(&state, &party, "playback_stop", stop).await.0, StatusCode::OK);
    wait_for(&state, "call.playback.started", 2).await;
    assert_eq!(action(&state, &party, "playback_start", looping).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(action(&state, &party, "hangup", json!({})).await.0, StatusCode::OK);

    let all = outbox(&state).await;
    let seen: Vec<String> = all
        .iter()
        .filter(|(t, p)| {
            t.starts_with("call.playback") || (t == "call.hangup" && p["call_control_id"] == party.as_str())
        })
        .map(|(t, p)| format!("{t} {}", p["status"].as_str().unwrap_or("-")))
        .collect();
    let expected = [
        "call.playback.started -",
        "call.playback.ended cancelled",
        "call.playback.started -",
        "call.playback.ended call_hangup",
        "call.playback.ended call_hangup",
        "call.hangup -",
    ];
    assert_eq!(seen, expected, "the second clip was playing and the third queued at the hangup");
    let media_url = all.iter().find(|(t, _)| t == "call.playback.started").unwrap().1["media_url"].clone();
    assert_eq!(media_url, url.as_str());
}

/// Clips of 40 ms queued back to back start and end every few frames; a hangup
/// among them (at a different point each round) must not be followed by any of
/// their events, and each clip started is ended once.
#[tokio::test]
async fn no_clip_event_follows_the_call_hangup_when_clips_turn_over_as_it_hangs_up() {
    let (_dir, state, conn) = setup(&[]).await;
    let clip = json!({ "playback_content": base64(&tone_wav(1000.0, 8_000, 0.04)) });
    for round in 0..12u64 {
        let party = dial(&state, &conn, "loop:silence").await;
        for _ in 0..30 {
            assert_eq!(action(&state, &party, "playback_start", clip.clone()).await.0, StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_millis(100 + 23 * round)).await;
        assert_eq!(action(&state, &party, "hangup", json!({})).await.0, StatusCode::OK);

        let seen: Vec<String> = outbox(&state)
            .await
            .into_iter()
            .filter(|(t, p)| {
                p["call_control_id"] == party.as_str()
                    && (t.starts_with("call.playback") || t == "call.hangup")
            })
            .map(|(t, p)| format!("{t} {}", p["status"].as_str().unwrap_or("-")))
            .collect();
        let hangup = seen.iter().position(|e| e == "call.hangup -").expect("call.hangup");
        assert_eq!(hangup, seen.len() - 1, "round {round}: events after the hangup: {seen:?}");
        let started = seen.iter().filter(|e| e.starts_with("call.playback.started")).count();
        let ended = seen.iter().filter(|e| e.starts_with("call.playback.ended")).count();
        assert_eq!(ended, 30, "round {round}: every clip ends once: {seen:?}");
        assert!(started <= ended, "round {round}: {seen:?}");
    }
}

#[tokio::test]
async fn speak_says_the_text_with_espeak_ng_and_reports_it() {
    let (_dir, state, conn) = setup(&[]).await;
    let party = recorded_party(&state, &conn).await;
    let body = json!({ "payload": "Hello, your agent will be with you shortly.", "voice": "female", "language": "en-US" });
    let (status, json) = action(&state, &party, "speak", body).await;
    assert_eq!(status, StatusCode::OK, "espeak-ng must be installed (scripts/test installs it): {json}");
    wait_for(&state, "call.speak.ended", 1).await;
    let heard = heard_by(&state, &party).await;
    let speak: Vec<_> =
        outbox(&state).await.into_iter().filter(|(t, _)| t.starts_with("call.speak")).collect();
    assert_eq!(
        speak.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["call.speak.started", "call.speak.ended"]
    );
    assert_eq!(speak[1].1["status"], "completed");
    // Speech is not the bridge's pure tone: over a second of the audio is something else.
    let speech_blocks = heard.chunks_exact(800).filter(|b| tone_share(b, 700.0, 8000) < 0.5).count();
    assert!(speech_blocks >= 10, "{speech_blocks} blocks of 100 ms not the bridge's tone");

    let (status, json) =
        action(&state, &party, "speak", json!({ "payload": "hola", "language": "xx-YY" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(json["errors"][0]["source"]["pointer"], "/language");
}

#[tokio::test]
async fn bad_playback_and_speak_requests_are_422_with_pointers() {
    let (_dir, state, conn) = setup(&[]).await;
    let id = dial(&state, &conn, "loop:echo").await;
    let wav = base64(&tone_wav(1000.0, 8000, 0.1));
    for (name, body, pointer) in [
        ("playback_start", json!({}), "/audio_url"),
        (
            "playback_start",
            json!({ "audio_url": "http://127.0.0.1:9/a.wav", "playback_content": wav }),
            "/playback_content",
        ),
        ("playback_start", json!({ "playback_content": "not base64!" }), "/playback_content"),
        ("playback_start", json!({ "playback_content": base64(b"ID3 an mp3") }), "/playback_content"),
        ("playback_start", json!({ "audio_url": "http://127.0.0.1:9/a.wav" }), "/audio_url"),
        ("playback_start", json!({ "audio_url": "file:///etc/passwd" }), "/audio_url"),
        // The cloud metadata service: never fetched (`egress.rs`).
        ("playback_start", json!({ "audio_url": "http://169.254.169.254/latest/meta-data/" }), "/audio_url"),
        ("playback_start", json!({ "playback_content": wav, "loop": 0 }), "/loop"),
        ("playback_start", json!({ "playback_content": wav, "audio_type": "mp3" }), "/audio_type"),
        ("playback_start", json!({ "media_name": "greeting" }), "/media_name"),
        ("playback_start", json!({ "playback_content": wav, "target_legs": "both" }), "/target_legs"),
        ("playback_stop", json!({ "stop": "some" }), "/stop"),
        ("speak", json!({ "payload": "" }), "/payload"),
        ("speak", json!({ "payload": "x".repeat(3001) }), "/payload"),
        ("speak", json!({ "payload": "hi", "payload_type": "html" }), "/payload_type"),
        ("speak", json!({ "payload": "hi", "language": "en US; rm -rf" }), "/language"),
    ] {
        let (status, json) = action(&state, &id, name, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name} {body}: {json}");
        assert_eq!(json["errors"][0]["source"]["pointer"], pointer, "{name} {body}: {json}");
    }
    // Stopping with nothing playing is fine; an ended call is 90018.
    assert_eq!(action(&state, &id, "playback_stop", json!({})).await.0, StatusCode::OK);
    action(&state, &id, "hangup", json!({})).await;
    let (status, json) = action(&state, &id, "playback_start", json!({ "playback_content": wav })).await;
    assert_eq!(
        (status, json["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("90018"))
    );
}
