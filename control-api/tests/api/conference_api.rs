//! Conferences over the API (`/v2/conferences`): built-in legs saying 700,
//! 1,100 and 1,500 Hz; recordings of what each heard show who hears whom as
//! they join, are muted, whisper, leave; the events and the conference's
//! record follow each step, and refusals answer in Telnyx's shape.

use std::time::Duration;

use crate::common::{
    action, base64, call, dial, download, error_code, heard, key_for, outbox, setup, tone_share, tone_wav,
    ADMIN_KEY,
};
use axum::http::StatusCode;
use bond_control_api::auth::Role;
use bond_control_api::state::AppState;
use serde_json::{json, Value};

/// How much of what `call` hears over `ms` is each party's tone.
async fn shares(state: &AppState, call_id: &str, ms: u64) -> [f64; 3] {
    let heard = heard(state, call_id, ms).await;
    [700.0, 1100.0, 1500.0].map(|hz| tone_share(&heard, hz, 8000))
}

async fn conference_action(state: &AppState, id: &str, name: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/v2/conferences/{id}/actions/{name}");
    let (status, _, json) = call(state, "POST", &path, Some(ADMIN_KEY), Some(body)).await;
    (status, json)
}

async fn create(state: &AppState, call_id: &str) -> String {
    let body = json!({ "call_control_id": call_id, "name": "standup" });
    let (status, _, json) = call(state, "POST", "/v2/conferences", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["data"]["record_type"], "conference");
    assert_eq!(json["data"]["status"], "in_progress");
    json["data"]["id"].as_str().unwrap().to_owned()
}

/// Calls to `a` and `b` in a new conference created with the first: (a, b, conference).
async fn two_in_a_conference(state: &AppState, conn: &str, a: &str, b: &str) -> (String, String, String) {
    let (a, b) = (dial(state, conn, a).await, dial(state, conn, b).await);
    let id = create(state, &a).await;
    let (status, json) = conference_action(state, &id, "join", json!({ "call_control_id": b })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    (a, b, id)
}

/// The events of `kind` for `conference`, as (call_control_id, payload).
async fn events(state: &AppState, kind: &str, conference: &str) -> Vec<(String, Value)> {
    outbox(state)
        .await
        .into_iter()
        .filter(|(t, p)| t == kind && p["conference_id"] == conference)
        .map(|(_, p)| (p["call_control_id"].as_str().unwrap_or_default().to_owned(), p))
        .collect()
}

#[tokio::test]
async fn three_calls_in_a_conference_hear_each_other_and_it_ends_when_all_left() {
    let (_dir, state, conn) = setup(&[]).await;
    let a = dial(&state, &conn, "loop:tone?hz=700").await;
    let b = dial(&state, &conn, "loop:tone?hz=1100").await;
    let c = dial(&state, &conn, "loop:tone?hz=1500").await;
    let id = create(&state, &a).await;
    for joiner in [&b, &c] {
        let (status, json) =
            conference_action(&state, &id, "join", json!({ "call_control_id": joiner })).await;
        assert_eq!((status, &json["data"]["result"]), (StatusCode::OK, &json!("ok")), "{json}");
    }
    assert_eq!(events(&state, "conference.created", &id).await.len(), 1);
    let joined: Vec<String> =
        events(&state, "conference.participant.joined", &id).await.into_iter().map(|e| e.0).collect();
    assert_eq!(joined, [a.clone(), b.clone(), c.clone()]);

    let [x, y, z] = shares(&state, &a, 800).await;
    assert!(x < 0.01 && y > 0.3 && z > 0.3, "a hears b and c, not itself: {x:.2} {y:.2} {z:.2}");
    let [x, y, z] = shares(&state, &c, 800).await;
    assert!(x > 0.3 && y > 0.3 && z < 0.01, "c hears a and b, not itself: {x:.2} {y:.2} {z:.2}");

    let path = format!("/v2/conferences/{id}/participants");
    let (status, _, json) = call(&state, "GET", &path, Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["meta"]["total_results"], 3, "{json}");
    assert_eq!(json["data"][1]["call_control_id"], b.as_str());
    assert_eq!(json["data"][1]["conference"]["id"], id.as_str());

    // b is muted: a no longer hears it. c becomes a coach whispering to b: a no longer hears c.
    assert_eq!(
        conference_action(&state, &id, "mute", json!({ "call_control_ids": [b] })).await.0,
        StatusCode::OK
    );
    let body = json!({ "call_control_id": c, "supervisor_role": "whisper", "whisper_call_control_ids": [b] });
    assert_eq!(conference_action(&state, &id, "update", body).await.0, StatusCode::OK);
    let [_, y, z] = shares(&state, &a, 800).await;
    assert!(y < 0.01 && z < 0.01, "a hears neither the muted b nor the coach: {y:.2} {z:.2}");
    let [x, _, z] = shares(&state, &b, 800).await;
    assert!(x > 0.3 && z > 0.3, "b hears a and its coach: {x:.2} {z:.2}");
    let (_, _, json) = call(&state, "GET", &path, Some(ADMIN_KEY), None).await;
    assert_eq!(
        (&json["data"][1]["muted"], &json["data"][2]["supervisor_role"]),
        (&json!(true), &json!("whisper"))
    );

    // c leaves and stays up; b hangs up; a leaves last and the conference ends.
    assert_eq!(
        conference_action(&state, &id, "leave", json!({ "call_control_id": c })).await.0,
        StatusCode::OK
    );
    assert_eq!(action(&state, &b, "hangup", json!({})).await.0, StatusCode::OK);
    assert_eq!(
        conference_action(&state, &id, "leave", json!({ "call_control_id": a })).await.0,
        StatusCode::OK
    );
    let left: Vec<String> =
        events(&state, "conference.participant.left", &id).await.into_iter().map(|e| e.0).collect();
    assert_eq!(left, [c.clone(), b.clone(), a.clone()]);
    let ended = events(&state, "conference.ended", &id).await;
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].0.as_str(), &ended[0].1["reason"]), (a.as_str(), &json!("all_left")));
    let (_, _, json) = call(&state, "GET", &format!("/v2/conferences/{id}"), Some(ADMIN_KEY), None).await;
    assert_eq!(
        (&json["data"]["status"], &json["data"]["end_reason"]),
        (&json!("completed"), &json!("all_left"))
    );
    let (status, _, _) = call(&state, "GET", &format!("/v2/calls/{c}"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    let h = shares(&state, &c, 600).await;
    assert!(h.iter().sum::<f64>() < 0.05, "c, out of it, hears nothing: {h:.2?}");
}

#[tokio::test]
async fn ending_a_conference_hangs_up_its_participants_and_refusals_follow_telnyx() {
    let (_dir, state, conn) = setup(&[]).await;
    let (a, b, id) = two_in_a_conference(&state, &conn, "loop:tone?hz=700", "loop:tone?hz=1100").await;

    let (status, json) = conference_action(&state, &id, "join", json!({ "call_control_id": b })).await;
    assert_eq!(
        (status, error_code(&json)),
        (StatusCode::UNPROCESSABLE_ENTITY, "10002"),
        "joins once: {json}"
    );
    let (status, json) = conference_action(&state, &id, "gather_using_audio", json!({})).await;
    assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "10015"), "{json}");
    let (status, json) =
        conference_action(&state, &id, "join", json!({ "call_control_id": b, "shout": 1 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused: {json}");
    let (status, _) = conference_action(&state, "no-such-conference", "end", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, json) = action(&state, &a, "bridge", json!({ "call_control_id_to_bridge_with": b })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a conference call is not bridged: {json}");

    // Another organization sees no such conference.
    let stranger = key_for(&state, None, Role::Admin).await;
    let (status, _, _) = call(&state, "GET", &format!("/v2/conferences/{id}"), Some(&stranger), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let path = format!("/v2/conferences/{id}/actions/end");
    let (status, _, _) = call(&state, "POST", &path, Some(&stranger), Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(conference_action(&state, &id, "end", json!({})).await.0, StatusCode::OK);
    for party in [&a, &b] {
        let mut alive = true;
        for _ in 0..50 {
            let (_, _, json) =
                call(&state, "GET", &format!("/v2/calls/{party}"), Some(ADMIN_KEY), None).await;
            alive = json["data"]["is_alive"] == true;
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!alive, "{party} was hung up with the conference");
    }
    let ended = events(&state, "conference.ended", &id).await;
    assert_eq!(ended[0].1["reason"], "ended_via_api");
    let (status, json) = conference_action(&state, &id, "join", json!({ "call_control_id": a })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an ended conference takes nobody: {json}");
    let (_, _, json) =
        call(&state, "GET", "/v2/conferences?filter[status]=completed", Some(ADMIN_KEY), None).await;
    assert_eq!(json["data"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_clip_played_to_a_conference_is_heard_by_all_and_reported_to_the_creator() {
    let (_dir, state, conn) = setup(&[]).await;
    let (a, b, id) = two_in_a_conference(&state, &conn, "loop:silence", "loop:tone?hz=700").await;
    let clip = json!({ "playback_content": base64(&tone_wav(1500.0, 16_000, 1.5)) });
    let (status, json) = conference_action(&state, &id, "play", clip).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let [x, y, z] = shares(&state, &a, 800).await;
    assert!(x > 0.1 && z > 0.3 && y < 0.01, "a hears b and the clip: {x:.2} {z:.2}");
    for _ in 0..50 {
        if !events(&state, "conference.playback.ended", &id).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = events(&state, "conference.playback.started", &id).await;
    let ended = events(&state, "conference.playback.ended", &id).await;
    assert_eq!((started.len(), ended.len()), (1, 1), "the clip's events");
    assert_eq!(started[0].0, a, "the creator's webhook hears of it");

    // To b alone: b hears it over a (silent), a hears b and not the clip.
    let to_some =
        json!({ "playback_content": base64(&tone_wav(1500.0, 16_000, 1.5)), "call_control_ids": [b] });
    let (status, json) = conference_action(&state, &id, "play", to_some).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (to_a, to_b) = tokio::join!(shares(&state, &a, 800), shares(&state, &b, 800));
    assert!(to_b[2] > 0.3, "b hears the clip: {:.2}", to_b[2]);
    assert!(to_a[0] > 0.3 && to_a[2] < 0.01, "a hears b, not the clip: {:.2} {:.2}", to_a[0], to_a[2]);
    let (status, json) = conference_action(&state, &id, "stop", json!({ "call_control_ids": [b] })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json) =
        conference_action(&state, &id, "play", json!({ "audio_url": "x", "call_control_ids": 7 })).await;
    assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "10002"), "{json}");
}

#[tokio::test]
async fn a_recorded_conference_is_saved_with_what_everyone_heard() {
    let (_dir, state, conn) = setup(&[]).await;
    let (a, _, id) = two_in_a_conference(&state, &conn, "loop:tone?hz=700", "loop:tone?hz=1100").await;
    let (status, json) = conference_action(&state, &id, "record_start", json!({ "format": "wav" })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json) = conference_action(&state, &id, "record_start", json!({ "format": "wav" })).await;
    assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "90017"), "once: {json}");
    // The creator's own call can still be recorded on its own.
    assert_eq!(action(&state, &a, "record_start", json!({ "format": "wav" })).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(conference_action(&state, &id, "record_stop", json!({})).await.0, StatusCode::OK);
    let (status, json) = conference_action(&state, &id, "record_stop", json!({})).await;
    assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "90016"), "{json}");

    let saved = events(&state, "conference.recording.saved", &id).await;
    assert_eq!(saved.len(), 1, "one conference.recording.saved");
    assert_eq!(saved[0].0, a, "to the creator's webhook");
    let (_, wav) = download(&state, saved[0].1["recording_urls"]["wav"].as_str().unwrap()).await;
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!((reader.spec().channels, reader.spec().sample_rate), (1, 8000));
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).skip(1600).collect();
    assert!(samples.len() > 4_000, "about a second recorded: {}", samples.len());
    let (x, y) = (tone_share(&samples, 700.0, 8000), tone_share(&samples, 1100.0, 8000));
    assert!(x > 0.3 && y > 0.3, "both parties are in the recording: {x:.2} {y:.2}");
    let (_, _, json) = call(&state, "GET", "/v2/recordings", Some(ADMIN_KEY), None).await;
    let listed =
        json["data"].as_array().unwrap().iter().filter(|r| r["conference_id"] == id.as_str()).count();
    assert_eq!(listed, 1, "listed with its conference: {json}");
}

#[tokio::test]
async fn a_repeated_command_id_is_answered_as_before_and_not_carried_out_again() {
    let (_dir, state, conn) = setup(&[]).await;
    let a = dial(&state, &conn, "loop:tone?hz=700").await;
    let body = json!({ "call_control_id": a, "name": "standup", "command_id": "make-1" });
    let make = || call(&state, "POST", "/v2/conferences", Some(ADMIN_KEY), Some(body.clone()));
    let (status, _, first) = make().await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, _, again) = make().await;
    assert_eq!((status, &again), (StatusCode::OK, &first), "the first answer, replayed");
    let id = first["data"]["id"].as_str().unwrap().to_owned();
    let b = dial(&state, &conn, "loop:tone?hz=1100").await;
    conference_action(&state, &id, "join", json!({ "call_control_id": b })).await;

    let leave = json!({ "call_control_id": b, "command_id": "leave-1" });
    let (status, json) = conference_action(&state, &id, "leave", leave.clone()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json) = conference_action(&state, &id, "leave", leave).await;
    assert_eq!(status, StatusCode::OK, "a repeat is not a second leave (which would be 422): {json}");
    let (status, json) = conference_action(&state, &id, "leave", json!({ "call_control_id": b })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "without the id it is: {json}");
    assert_eq!(events(&state, "conference.participant.left", &id).await.len(), 1);
}

#[tokio::test]
async fn joining_and_leaving_beep_as_the_conference_and_each_participant_say() {
    let (_dir, state, conn) = setup(&[]).await;
    let a = dial(&state, &conn, "loop:silence").await;
    let body = json!({ "call_control_id": a, "name": "beeps", "beep_enabled": "on_enter" });
    let (status, _, json) = call(&state, "POST", "/v2/conferences", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let id = json["data"]["id"].as_str().unwrap().to_owned();
    let (b, c) = (dial(&state, &conn, "loop:silence").await, dial(&state, &conn, "loop:silence").await);
    let steps = async {
        let pause = || tokio::time::sleep(Duration::from_millis(500));
        pause().await;
        conference_action(&state, &id, "join", json!({ "call_control_id": b })).await; // beeps: on_enter
        pause().await;
        let leave = json!({ "call_control_id": b, "beep_enabled": "on_exit" }); // its own setting
        conference_action(&state, &id, "leave", leave).await;
        pause().await;
        let quiet = json!({ "call_control_id": c, "beep_enabled": "never" });
        conference_action(&state, &id, "join", quiet).await;
    };
    let (heard, ()) = tokio::join!(heard(&state, &a, 2200), steps);

    // Bursts of sound after 50 ms of quiet, 10 ms at a time: the two beeps and nothing else.
    let loud: Vec<bool> =
        heard.chunks(80).map(|c| c.iter().map(|&s| i32::from(s).abs()).max() > Some(1000)).collect();
    let starts: Vec<usize> =
        (0..loud.len()).filter(|&i| loud[i] && !loud[i.saturating_sub(5)..i].contains(&true)).collect();
    assert_eq!(starts.len(), 2, "a beep for b joining and one for b leaving, none for c: {starts:?}");
    let notes = |at: usize| {
        let beep = &heard[at * 80..(at * 80 + 1440).min(heard.len())];
        let (first, second) = beep.split_at(beep.len() / 2);
        (tone_share(first, 660.0, 8000), tone_share(second, 880.0, 8000))
    };
    let (low, high) = notes(starts[0]);
    assert!(low > 0.5 && high > 0.5, "joining rises 660 -> 880 Hz: {low:.2} {high:.2}");
    let (low, high) = notes(starts[1]);
    assert!(low < 0.2 && high < 0.2, "leaving falls 880 -> 660 Hz: {low:.2} {high:.2}");
    let (status, json) =
        conference_action(&state, &id, "join", json!({ "call_control_id": b, "beep_enabled": "loud" })).await;
    assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "10002"), "{json}");
}

#[tokio::test]
async fn a_conference_created_unstarted_holds_everyone_until_a_participant_starts_it() {
    let (_dir, state, conn) = setup(&[]).await;
    let a = dial(&state, &conn, "loop:tone?hz=700").await;
    let body = json!({ "call_control_id": a, "name": "waiting", "start_conference_on_create": false });
    let (status, _, json) = call(&state, "POST", "/v2/conferences", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let id = json["data"]["id"].as_str().unwrap().to_owned();
    let b = dial(&state, &conn, "loop:tone?hz=1100").await;
    conference_action(&state, &id, "join", json!({ "call_control_id": b })).await;
    let [x, y, _] = shares(&state, &a, 800).await;
    assert!(x < 0.01 && y < 0.05, "a waits on hold, hearing neither itself nor b: {x:.2} {y:.2}");

    let c = dial(&state, &conn, "loop:tone?hz=1500").await;
    let starter = json!({ "call_control_id": c, "start_conference_on_enter": true });
    conference_action(&state, &id, "join", starter).await;
    let [x, y, z] = shares(&state, &a, 800).await;
    assert!(x < 0.01 && y > 0.3 && z > 0.3, "started: a hears b and c: {x:.2} {y:.2} {z:.2}");
}

#[tokio::test]
async fn digits_sent_to_one_participant_are_heard_by_it_alone() {
    let (_dir, state, conn) = setup(&[]).await;
    let (a, b, id) = two_in_a_conference(&state, &conn, "loop:silence", "loop:silence").await;
    let send = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let body = json!({ "digits": "11", "call_control_ids": [b] });
        conference_action(&state, &id, "send_dtmf", body).await
    };
    let (to_b, to_a, (status, json)) = tokio::join!(heard(&state, &b, 1500), heard(&state, &a, 1500), send);
    assert_eq!(status, StatusCode::OK, "{json}");
    // Digit 1: 697 and 1,209 Hz.
    let (low, high) = (tone_share(&to_b, 697.0, 8000), tone_share(&to_b, 1209.0, 8000));
    assert!(low > 0.1 && high > 0.1, "b hears the digits (half the window): {low:.2} {high:.2}");
    let loudest = to_a.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
    assert!(loudest < 500, "a hears nothing of them: peak {loudest}");
    let (status, json) = conference_action(&state, &id, "send_dtmf", json!({ "digits": "1x" })).await;
    assert_eq!((status, error_code(&json)), (StatusCode::UNPROCESSABLE_ENTITY, "10002"), "{json}");
}
