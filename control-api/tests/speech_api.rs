//! Transcription and translation over the API, with stand-in engines so the
//! test checks Bond's part (the fork, cutting utterances, events, storage,
//! supervisor streams and who may read them) and not a model's accuracy; the
//! embedded engines are tested end to end in tests/interop/test_speech.py.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bond_codecs::level::rms_for_dbm0;
use bond_codecs::signals::syllables;
use bond_control_api::auth::Role;
use bond_control_api::state::AppState;
use bond_speech::{
    MtChain, MtError, SpeechEngines, SpeechToText, SttChain, SttError, TextToSpeech, Transcript, Translator,
    TtsChain, TtsError,
};
use common::{admin_org, call, connection, ADMIN_KEY};
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
    let state = with_engines(common::state(dir.path(), &url, &[]).await);
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
    common::queued_events(state, id, prefix, count, Duration::from_secs(15)).await
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
    let state = common::state(dir.path(), &url, &[]).await;
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
    let state = with_engines(common::state(dir.path(), &url, &[]).await);
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

/// A chat-completions server as OpenAI documents it: Bearer auth, `model` and
/// `messages` in, `choices[0].message.content` out, `{"error": {...}}` with a 4xx.
async fn chat_server(
    status: StatusCode,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) -> String {
    use axum::extract::State;
    use axum::http::HeaderMap;
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;
    async fn complete(
        State((status, seen)): State<(StatusCode, Seen)>,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> (StatusCode, axum::Json<Value>) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        seen.lock().unwrap().push((auth, body.clone()));
        if status != StatusCode::OK {
            let error = json!({ "error": { "message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded" } });
            return (status, axum::Json(error));
        }
        let text = body["messages"][1]["content"].as_str().unwrap_or_default();
        let answer = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": body["model"],
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": format!(" Hola: {text}\n") }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25 }
        });
        (StatusCode::OK, axum::Json(answer))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(complete))
        .with_state((status, seen));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_openai_compatible_endpoint_translates_with_the_calls_earlier_words() {
    use bond_speech::openai::ChatTranslator;
    let seen = std::sync::Arc::default();
    let url = chat_server(StatusCode::OK, std::sync::Arc::clone(&seen)).await;
    let translator = ChatTranslator::new(&format!("{url}/"), "sk-test", "small-model");
    let context = vec!["My name is Ana.".to_owned()];
    let out = translator.translate("I need help", "en", "es", &context).await.unwrap();
    assert_eq!(out, "Hola: I need help");
    let seen = seen.lock().unwrap();
    let (auth, body) = &seen[0];
    assert_eq!(auth, "Bearer sk-test");
    assert_eq!(body["model"], "small-model");
    assert_eq!(body["messages"][0]["role"], "system");
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("from en to es") && system.contains("My name is Ana."), "{system}");
    assert_eq!(body["messages"][1], json!({ "role": "user", "content": "I need help" }));
}

#[tokio::test]
async fn a_failing_translator_hands_over_to_the_next_and_rests() {
    use bond_speech::openai::ChatTranslator;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>> = std::sync::Arc::default();
    let url = chat_server(StatusCode::TOO_MANY_REQUESTS, seen.clone()).await;
    let limited = ChatTranslator::new(&url, "sk-test", "m");
    let err = limited.translate("hello", "en", "es", &[]).await.unwrap_err();
    assert!(err.to_string().contains("429") && err.to_string().contains("Rate limit reached"), "{err}");
    let chain = MtChain::new(vec![Box::new(limited), Box::new(Shout)]);
    assert_eq!(chain.translate("hello", "en", "es", &[]).await.unwrap(), "[es] HELLO");
    assert_eq!(chain.translate("again", "en", "es", &[]).await.unwrap(), "[es] AGAIN");
    assert_eq!(seen.lock().unwrap().len(), 2, "one direct call, one through the chain: then it rests");
    let nowhere = ChatTranslator::new("http://127.0.0.1:9/v1", "k", "m");
    assert!(MtChain::new(vec![Box::new(nowhere)]).translate("hello", "en", "es", &[]).await.is_err());
}

/// What a provider's test server saw: the Authorization header, the query, and the audio bytes.
type Seen = tokio::sync::mpsc::UnboundedReceiver<(String, String, usize)>;

/// A streaming STT server at `path`: optionally greets with `hello`, counts the
/// binary audio until a text frame containing `end`, then sends `replies(ms of
/// audio)` and closes.
async fn provider_server(
    path: &str,
    hello: Option<Value>,
    end: &'static str,
    replies: fn(usize) -> Vec<Value>,
) -> (String, Seen) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}{path}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tx, hello) = (tx.clone(), hello.clone());
            tokio::spawn(async move {
                let mut seen = (String::new(), String::new());
                #[allow(clippy::result_large_err)] // tungstenite's callback signature
                let callback = |request: &Request, response: Response| {
                    let auth = request.headers().get("authorization").and_then(|v| v.to_str().ok());
                    seen = (
                        auth.unwrap_or_default().to_owned(),
                        request.uri().query().unwrap_or_default().to_owned(),
                    );
                    Ok(response)
                };
                let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await.unwrap();
                if let Some(hello) = hello {
                    ws.send(Message::text(hello.to_string())).await.unwrap();
                }
                let mut bytes = 0;
                while let Some(Ok(message)) = ws.next().await {
                    match message {
                        Message::Binary(audio) => bytes += audio.len(),
                        Message::Text(t) if t.contains(end) => break,
                        _ => {}
                    }
                }
                for reply in replies(bytes / 32) {
                    ws.send(Message::text(reply.to_string())).await.unwrap();
                }
                let _ = ws.close(None).await;
                let _ = tx.send((seen.0, seen.1, bytes));
            });
        }
    });
    (url, rx)
}

/// Deepgram's `/v1/listen` as documented: `Authorization: Token <key>`, the audio
/// format in the query, binary audio, `CloseStream`, then `Results` (an interim
/// one and finals) and `Metadata`.
async fn deepgram_server() -> (String, Seen) {
    provider_server("/v1/listen", None, "CloseStream", |ms| {
        let result = |text: String, fin: bool| {
            json!({ "type": "Results", "channel_index": [0, 1], "duration": 1.0, "start": 0.0,
                "is_final": fin, "speech_final": fin,
                "channel": { "alternatives": [{ "transcript": text, "confidence": 0.9, "words": [] }] } })
        };
        vec![
            result("heard".into(), false),
            result("heard".into(), true),
            result(format!("{ms} ms"), true),
            json!({ "type": "Metadata", "request_id": "r1", "duration": 1.0 }),
        ]
    })
    .await
}

/// AssemblyAI's Universal-Streaming v3 as its message sequence documents it: the
/// key in `Authorization`, `Begin`, binary PCM, `Terminate`, then `Turn`s (a
/// partial, the ended turn, its formatted twin) and `Termination`.
async fn assemblyai_server() -> (String, Seen) {
    let begin = json!({ "type": "Begin", "id": "session-1", "expires_at": 1_900_000_000 });
    provider_server("/v3/ws", Some(begin), "Terminate", |ms| {
        let turn = |text: String, end: bool, formatted: bool| {
            json!({ "type": "Turn", "turn_order": 0, "turn_is_formatted": formatted, "end_of_turn": end,
                "transcript": text, "end_of_turn_confidence": 0.7,
                "words": [{ "text": "heard", "confidence": 0.8, "start": 0, "end": 400, "word_is_final": true }] })
        };
        vec![
            turn("heard".into(), false, false),
            turn(format!("heard {ms} ms"), true, false),
            turn(format!("Heard {ms} ms."), true, true),
            json!({ "type": "Termination", "audio_duration_seconds": 1, "session_duration_seconds": 1 }),
        ]
    })
    .await
}

#[tokio::test]
async fn assemblyai_hears_an_utterance_and_keeps_the_formatted_turn() {
    use bond_speech::assemblyai::AssemblyAi;
    let (url, mut seen) = assemblyai_server().await;
    let heard = AssemblyAi::new(&url, "aai-key").transcribe(vec![0; 8_000], "en").await.unwrap();
    assert_eq!((heard.text.as_str(), heard.engine), ("Heard 500 ms.", "assemblyai"));
    assert!((heard.confidence - 0.8).abs() < 1e-6);
    let (auth, query, bytes) = seen.recv().await.unwrap();
    assert_eq!((auth.as_str(), bytes), ("aai-key", 16_000));
    assert!(
        query.contains("encoding=pcm_s16le") && query.contains("speech_model=universal-streaming-english"),
        "{query}"
    );
}

#[tokio::test]
async fn deepgram_hears_an_utterance_sent_as_16_bit_pcm_and_a_dead_deepgram_hands_over() {
    use bond_speech::deepgram::Deepgram;
    let (url, mut seen) = deepgram_server().await;
    let deepgram = Deepgram::new(&url, "dg-key", "nova-2");
    let heard = deepgram.transcribe(vec![0; 16_000], "en-US").await.unwrap();
    assert_eq!((heard.text.as_str(), heard.engine), ("heard 1000 ms", "deepgram"));
    let (auth, query, bytes) = seen.recv().await.unwrap();
    assert_eq!((auth.as_str(), bytes), ("Token dg-key", 32_000));
    assert!(
        query.contains("encoding=linear16")
            && query.contains("sample_rate=16000")
            && query.contains("language=en-US"),
        "{query}"
    );

    let dead = Deepgram::new("ws://127.0.0.1:9/v1/listen", "k", "nova-2");
    let chain = SttChain::new(vec![Box::new(dead), Box::new(Durations)]);
    let heard = chain.transcribe(vec![0; 8_000], "en", None, bond_store::clock::monotonic()).await.unwrap();
    assert_eq!(heard.engine, "durations", "whisper's place: the next engine takes over");
}

/// A text-to-speech server as ElevenLabs documents its streaming endpoint:
/// `POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000`, the key
/// in `xi-api-key`, JSON `text`/`model_id`; raw 16 kHz PCM back, or a 401 with
/// `{"detail": ...}` for a wrong key.
async fn elevenlabs_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>) {
    use axum::extract::{Path, RawQuery, State};
    use axum::http::HeaderMap;
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;
    async fn speak(
        State(seen): State<Seen>,
        Path(voice): Path<String>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> (StatusCode, Vec<u8>) {
        let key = headers.get("xi-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        seen.lock().unwrap().push((voice, query.unwrap_or_default(), body.clone()));
        if key != "el-key" {
            let detail = json!({ "detail": { "status": "invalid_api_key", "message": "Invalid API key" } });
            return (StatusCode::UNAUTHORIZED, detail.to_string().into_bytes());
        }
        // 100 ms of speech per word, as 16-bit little-endian samples.
        let words = body["text"].as_str().unwrap_or_default().split_whitespace().count();
        let samples = bond_codecs::signals::sine(440.0, 16_000, words * 1_600, 8_000.0);
        (StatusCode::OK, samples.iter().flat_map(|s| s.to_le_bytes()).collect())
    }
    let seen: Seen = std::sync::Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/v1/text-to-speech/{voice}/stream", axum::routing::post(speak))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// A voice that counts its calls and says nothing useful.
struct Murmur(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl TextToSpeech for Murmur {
    fn name(&self) -> &'static str {
        "murmur"
    }
    fn speak(&self, _: &str, _: &str) -> BoxFuture<'static, Result<Vec<i16>, TtsError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(vec![1; 160]) })
    }
}

#[tokio::test]
async fn an_elevenlabs_compatible_voice_speaks_and_a_rejected_key_hands_over_and_rests() {
    use bond_speech::elevenlabs::ElevenLabs;
    let (url, seen) = elevenlabs_server().await;
    let voice = ElevenLabs::new(&url, "el-key", "voice-1", "eleven_multilingual_v2");
    let spoken = voice.speak("hola que tal", "es-MX").await.unwrap();
    assert_eq!(spoken.len(), 3 * 1_600, "three words of 16 kHz speech");
    {
        let seen = seen.lock().unwrap();
        let (voice_id, query, body) = &seen[0];
        assert_eq!((voice_id.as_str(), query.as_str()), ("voice-1", "output_format=pcm_16000"));
        assert_eq!(
            body,
            &json!({ "text": "hola que tal", "model_id": "eleven_multilingual_v2", "language_code": "es" })
        );
    }

    let wrong = ElevenLabs::new(&url, "wrong", "voice-1", "m");
    let err = wrong.speak("hola", "es").await.unwrap_err();
    assert!(err.to_string().contains("401") && err.to_string().contains("invalid_api_key"), "{err}");
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let chain = TtsChain::new(vec![Box::new(wrong), Box::new(Murmur(calls.clone()))]);
    assert_eq!(chain.speak("hola", "es").await.unwrap().len(), 160);
    assert_eq!(chain.speak("otra vez", "es").await.unwrap().len(), 160);
    assert_eq!(seen.lock().unwrap().len(), 3, "the rejected voice rests after its failure");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
