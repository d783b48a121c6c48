//! Transcription and translation over the API, with stand-in engines so the
//! test checks Bond's part (the fork, cutting utterances, events, storage,
//! supervisor streams and who may read them) and not a model's accuracy; the
//! embedded engines are tested end to end in tests/interop/test_speech.py.

use std::time::Duration;

use crate::common::{admin_org, call, connection, ADMIN_KEY};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bond_codecs::level::rms_for_dbm0;
use bond_codecs::signals::syllables;
use bond_control_api::auth::Role;
use bond_control_api::state::AppState;
use bond_speech::{
    MtChain, MtError, SpeechEngines, SpeechToText, SttChain, SttError, Transcript, Translator, TtsChain,
};
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Hears how long each utterance is (at the 16 kHz the engines get).
struct Durations;

impl SpeechToText for Durations {
    fn name(&self) -> &'static str {
        "durations"
    }
    fn transcribe(
        &self,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let text = format!("{language} speech of {} ms", audio.len() / 16);
        Box::pin(async move { Ok(Transcript { text, confidence: 0.5, engine: "durations" }) })
    }
}

/// Translates by shouting.
struct Shout;

impl Translator for Shout {
    fn name(&self) -> &'static str {
        "shout"
    }
    fn translate(
        &self,
        text: &str,
        _: &str,
        to: &str,
        _: &[String],
    ) -> BoxFuture<'static, Result<String, MtError>> {
        let out = format!("[{to}] {}", text.to_uppercase());
        Box::pin(async move { Ok(out) })
    }
}

fn with_engines(mut state: AppState) -> AppState {
    let engines = SpeechEngines {
        stt: std::sync::Arc::new(SttChain::new(vec![Box::new(Durations)])),
        mt: std::sync::Arc::new(MtChain::new(vec![Box::new(Shout)])),
        tts: std::sync::Arc::new(TtsChain::new(vec![Box::new(bond_speech::tts::Espeak)])),
        llm: std::sync::Arc::default(),
    };
    state.calls = state.calls.clone().with_speech(Ok(engines));
    state
}

/// 1 s of quiet, 2 s of talk, 1.5 s quiet, 1 s talk, 2 s quiet, at 8 kHz.
fn write_speech(dir: &std::path::Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(dir.join("speech.wav"), spec).unwrap();
    let quiet = |ms: usize| vec![0i16; ms * 8];
    let talk = |ms: usize, seed| syllables(seed, 8_000, ms * 8, rms_for_dbm0(-18.0) * 1.6);
    for s in [quiet(1000), talk(2000, 1), quiet(1500), talk(1000, 2), quiet(2000)].concat() {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// Stand-in engines, and a call playing `write_speech`'s talk: (its folder, the state, the connection, the call).
async fn speaking_call() -> (tempfile::TempDir, AppState, String, String) {
    let dir = tempfile::tempdir().unwrap();
    write_speech(dir.path());
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let state = with_engines(crate::common::state(dir.path(), &url, &[]).await);
    let conn = connection(&state).await;
    let customer = dial(&state, &conn, "loop:play?file=speech.wav").await;
    (dir, state, conn, customer)
}

async fn post(state: &AppState, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, json) = call(state, "POST", path, Some(ADMIN_KEY), Some(body)).await;
    (status, json)
}

async fn dial(state: &AppState, conn: &str, to: &str) -> String {
    let (status, json) =
        post(state, "/v2/calls", json!({ "connection_id": conn, "to": to, "from": "+13125550100" })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["data"]["call_control_id"].as_str().unwrap().to_owned()
}

/// The webhooks of `id` whose type starts with `prefix`, waiting for `count` of them.
async fn events(state: &AppState, id: &str, prefix: &str, count: usize) -> Vec<Value> {
    crate::common::queued_events(state, id, prefix, count, Duration::from_secs(15)).await
}

/// The first `count` Server-Sent Events of a stream at `path`.
async fn sse(state: &AppState, path: &str, key: &str, count: usize) -> (StatusCode, Vec<Value>) {
    let request =
        Request::get(path).header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap();
    let response = bond_control_api::app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let mut body = response.into_body();
    let mut text = String::new();
    let mut out = Vec::new();
    while status == StatusCode::OK && out.len() < count {
        let frame =
            tokio::time::timeout(Duration::from_secs(15), body.frame()).await.expect("an event in time");
        let Some(Ok(frame)) = frame else { break };
        if let Some(data) = frame.data_ref() {
            text.push_str(&String::from_utf8_lossy(data));
        }
        out = text
            .split("\n\n")
            .filter(|block| block.contains("event: translation"))
            .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
    }
    (status, out)
}

/// Subscribe on `/v2/supervisor/ws` through a real server; the first `count`
/// messages, and the close code if the server closed instead.
async fn supervisor_socket(
    state: &AppState,
    token: &str,
    call: Option<&str>,
    count: usize,
) -> (Vec<Value>, Option<u16>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        bond_control_api::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v2/supervisor/ws")).await.unwrap();
    let subscribe = json!({ "type": "subscribe", "token": token, "call_control_id": call });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let mut messages: Vec<Value> = Vec::new();
    let mut close = None;
    while messages.len() < count + 1 {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => messages.push(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                close = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
        if messages.len() == count && messages[0]["type"] == "subscribed" {
            break;
        }
    }
    server.abort();
    (messages, close)
}

#[tokio::test]
async fn a_calls_party_is_transcribed_and_translated_utterance_by_utterance_and_supervisors_follow_it() {
    let (_dir, state, conn, customer) = speaking_call().await;
    let agent = dial(&state, &conn, "loop:silence").await;
    let actions = |id: &str, action: &str| format!("/v2/calls/{id}/actions/{action}");
    assert_eq!(
        post(&state, &actions(&customer, "bridge"), json!({ "call_control_id_to_bridge_with": agent }))
            .await
            .0,
        StatusCode::OK
    );
    let (status, json) = post(
        &state,
        &actions(&customer, "translation_start"),
        json!({ "translate_from": "en", "translate_to": "es" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json) =
        post(&state, &actions(&customer, "transcription_start"), json!({ "transcription_tracks": "both" }))
            .await;
    assert_eq!(status, StatusCode::OK, "{json}");

    let transcripts = events(&state, &customer, "call.transcription", 2).await;
    let texts: Vec<&str> = transcripts
        .iter()
        .map(|e| e["payload"]["transcription_data"]["transcript"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "two utterances, and nothing from the agent's silence: {transcripts:?}");
    let lengths: Vec<u64> = texts.iter().map(|t| t.split(' ').nth(3).unwrap().parse().unwrap()).collect();
    assert!((1900..=2400).contains(&lengths[0]), "2 s of talk (and 200 ms before it): {texts:?}");
    assert!((900..=1400).contains(&lengths[1]), "then 1 s: {texts:?}");
    let data = &transcripts[0]["payload"]["transcription_data"];
    assert_eq!(
        (data["is_final"].as_bool(), data["transcription_track"].as_str()),
        (Some(true), Some("inbound"))
    );
    assert_eq!(data["engine"], "durations");

    let translations = events(&state, &customer, "call.translation", 2).await;
    assert_eq!(translations.len(), 2);
    let first = &translations[0]["payload"]["translation_data"];
    assert_eq!(first["original"].as_str(), Some(texts[0]));
    assert_eq!(first["translation"].as_str().unwrap(), format!("[es] {}", texts[0].to_uppercase()));
    assert!(first["speech_end_ms"].as_u64() > first["speech_start_ms"].as_u64());

    // Supervisors: the call so far, in order, from the store and from the stream.
    let supervisor =
        state.store.create_api_key(&admin_org(&state).await, Role::Supervisor, "sup").await.unwrap().1;
    let (status, _, stored) =
        call(&state, "GET", &format!("/v2/calls/{customer}/translations"), Some(&supervisor), None).await;
    assert_eq!(status, StatusCode::OK);
    let originals: Vec<&str> =
        stored["data"].as_array().unwrap().iter().map(|s| s["original"].as_str().unwrap()).collect();
    assert_eq!(originals, texts);
    let (status, streamed) =
        sse(&state, &format!("/v2/calls/{customer}/translations/stream"), &supervisor, 2).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(streamed.iter().map(|s| s["original"].as_str().unwrap()).collect::<Vec<_>>(), texts);

    // Agents may not read them; another organization's supervisor does not see the call.
    let agent_key = state.store.create_api_key(&admin_org(&state).await, Role::Agent, "a").await.unwrap().1;
    assert_eq!(
        sse(&state, &format!("/v2/calls/{customer}/translations/stream"), &agent_key, 1).await.0,
        StatusCode::FORBIDDEN
    );
    let other = state.store.create_organization("other").await.unwrap().id;
    let outsider = state.store.create_api_key(&other, Role::Supervisor, "o").await.unwrap().1;
    assert_eq!(
        sse(&state, &format!("/v2/calls/{customer}/translations/stream"), &outsider, 1).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _, _) =
        call(&state, "GET", &format!("/v2/calls/{customer}/translations"), Some(&outsider), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The same over the supervisors' WebSocket, which authenticates by its first message.
    let (messages, close) = supervisor_socket(&state, &supervisor, Some(&customer), 3).await;
    assert_eq!(messages[0]["type"], "subscribed");
    let over_ws: Vec<&str> =
        messages[1..].iter().map(|m| m["segment"]["original"].as_str().unwrap()).collect();
    assert_eq!((over_ws, close), (texts.clone(), None));
    let (messages, close) = supervisor_socket(&state, &agent_key, None, 1).await;
    assert_eq!((messages[0]["type"].as_str(), close), (Some("error"), Some(1008)), "{messages:?}");
    let (messages, close) = supervisor_socket(&state, &outsider, Some(&customer), 1).await;
    assert!(messages[0]["detail"].as_str().unwrap().contains("No call"), "{messages:?}");
    assert_eq!(close, Some(1008));

    assert_eq!(post(&state, &actions(&customer, "transcription_stop"), json!({})).await.0, StatusCode::OK);
    let (status, json) = post(&state, &actions(&customer, "transcription_stop"), json!({})).await;
    assert_eq!(
        (status, json["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("90020"))
    );
    assert_eq!(post(&state, &actions(&customer, "translation_stop"), json!({})).await.0, StatusCode::OK);
}

#[tokio::test]
async fn interim_results_report_each_second_of_an_utterance_before_its_final() {
    let (_dir, state, _, customer) = speaking_call().await;
    let body = json!({ "transcription_engine_config": { "interim_results": true } });
    let (status, json) =
        post(&state, &format!("/v2/calls/{customer}/actions/transcription_start"), body).await;
    assert_eq!(status, StatusCode::OK, "{json}");

    let mut transcripts = Vec::new();
    for _ in 0..150 {
        transcripts = events(&state, &customer, "call.transcription", 0).await;
        if transcripts.iter().filter(|e| e["payload"]["transcription_data"]["is_final"] == true).count() == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (is_final, ms of audio heard, start of the utterance) in the order reported.
    let seen: Vec<(bool, u64, u64)> = transcripts
        .iter()
        .map(|e| &e["payload"]["transcription_data"])
        .map(|d| {
            let ms = d["transcript"].as_str().unwrap().split(' ').nth(3).unwrap().parse().unwrap();
            (d["is_final"].as_bool().unwrap(), ms, d["speech_start_ms"].as_u64().unwrap())
        })
        .collect();
    let finals: Vec<_> = seen.iter().filter(|s| s.0).collect();
    assert_eq!(finals.len(), 2, "{seen:?}");
    for (i, (is_final, ms, start)) in seen.iter().enumerate() {
        if *is_final {
            continue;
        }
        assert_eq!(ms % 1000, 0, "an interim result is a whole number of seconds so far: {seen:?}");
        let (_, final_ms, _) =
            seen[i..].iter().find(|s| s.0 && s.2 == *start).expect("its final comes after");
        assert!(ms < final_ms, "{seen:?}");
    }
    let interim = |start: u64| seen.iter().filter(|s| !s.0 && s.2 == start).count();
    assert!(interim(finals[0].2) >= 1 && interim(finals[1].2) >= 1, "each utterance is over 1 s: {seen:?}");
    let data = &transcripts.iter().find(|e| e["payload"]["transcription_data"]["is_final"] == false).unwrap()
        ["payload"]["transcription_data"];
    assert_eq!(data["confidence"], 0.0, "Telnyx: an interim result has no confidence yet");

    let body = json!({ "interim_results": "yes" });
    let (status, json) =
        post(&state, &format!("/v2/calls/{customer}/actions/transcription_start"), body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
}

#[tokio::test]
async fn without_engines_transcription_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let state = crate::common::state(dir.path(), &url, &[]).await;
    let conn = connection(&state).await;
    let id = dial(&state, &conn, "loop:silence").await;
    let (status, json) =
        post(&state, &format!("/v2/calls/{id}/actions/transcription_start"), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = json["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("no model at") && detail.contains("scripts/whisper-model"), "{detail}");
}

#[tokio::test]
async fn the_organizations_live_translate_translates_a_new_bridge_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    write_speech(dir.path());
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let state = with_engines(crate::common::state(dir.path(), &url, &[]).await);
    let patch =
        json!({ "live_translate": true, "transcribe": true, "translate_from": "en", "translate_to": "es" });
    let (status, _, json) = call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(patch)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let conn = connection(&state).await;
    let customer = dial(&state, &conn, "loop:play?file=speech.wav").await;
    let agent = dial(&state, &conn, "loop:play?file=speech.wav").await;
    let path = format!("/v2/calls/{customer}/actions/bridge");
    assert_eq!(
        post(&state, &path, json!({ "call_control_id_to_bridge_with": agent })).await.0,
        StatusCode::OK
    );

    for (call, from, to) in [(&customer, "en", "es"), (&agent, "es", "en")] {
        let translations = events(&state, call, "call.translation", 2).await;
        assert_eq!(translations.len(), 2, "both utterances of each party");
        for t in &translations {
            let data = &t["payload"]["translation_data"];
            assert_eq!(
                (data["translate_from"].as_str(), data["translate_to"].as_str()),
                (Some(from), Some(to))
            );
            assert!(data["translation"]
                .as_str()
                .unwrap()
                .starts_with(&format!("[{to}] {} SPEECH", from.to_uppercase())));
        }
        let transcripts = events(&state, call, "call.transcription", 2).await;
        assert!(transcripts
            .iter()
            .all(|t| t["payload"]["transcription_data"]["transcription_track"] == "inbound"));
    }
}
