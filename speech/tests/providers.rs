//! Bond's clients of speech providers (an OpenAI-compatible chat endpoint,
//! Deepgram, AssemblyAI, ElevenLabs) against test servers speaking each
//! provider's published protocol, and the engine chains handing over when one
//! fails. No call, no HTTP API of Bond's: the clients alone.

use axum::http::StatusCode;
use std::time::Instant;

use bond_speech::{
    MtChain, MtError, SpeechToText, SttChain, SttError, TextToSpeech, Transcript, Translator, TtsChain,
    TtsError,
};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

/// The time, read once for a chain to count its rests from.
#[allow(clippy::disallowed_methods)] // a test's own clock, outside the media core
fn now() -> Instant {
    Instant::now()
}

/// The engine a chain falls back to: answers at once, and says it was the one.
struct Backup;

impl SpeechToText for Backup {
    fn name(&self) -> &'static str {
        "backup"
    }
    fn transcribe(&self, _: Vec<i16>, _: &str) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let heard = Transcript { text: "heard by the backup".into(), confidence: 1.0, engine: "backup" };
        Box::pin(async move { Ok(heard) })
    }
}

impl Translator for Backup {
    fn name(&self) -> &'static str {
        "backup"
    }
    fn translate(
        &self,
        text: &str,
        _: &str,
        to: &str,
        _: &[String],
    ) -> BoxFuture<'static, Result<String, MtError>> {
        let out = format!("{to}: {text}");
        Box::pin(async move { Ok(out) })
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
    let chain = MtChain::new(vec![Box::new(limited), Box::new(Backup)]);
    assert_eq!(chain.translate("hello", "en", "es", &[]).await.unwrap(), "es: hello");
    assert_eq!(chain.translate("again", "en", "es", &[]).await.unwrap(), "es: again");
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
    let chain = SttChain::new(vec![Box::new(dead), Box::new(Backup)]);
    let heard = chain.transcribe(vec![0; 8_000], "en", None, now()).await.unwrap();
    assert_eq!(heard.engine, "backup", "whisper's place: the next engine takes over");
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

/// Serve `app` on a free local port; its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// An ElevenLabs-compatible server that streams one second of speech in
/// chunks of odd byte counts, and holds the last ones back until `go` is
/// notified: speech taken in parts must not wait for the whole answer.
async fn streaming_elevenlabs(go: std::sync::Arc<tokio::sync::Notify>) -> String {
    let speech = bond_codecs::signals::sine(440.0, 16_000, 16_000, 8_000.0);
    let bytes: Vec<u8> = speech.iter().flat_map(|s| s.to_le_bytes()).collect();
    let app = axum::Router::new().route(
        "/v1/text-to-speech/{voice}/stream",
        axum::routing::post(move || {
            let (bytes, go) = (bytes.clone(), go.clone());
            async move {
                let chunks: Vec<Vec<u8>> = bytes.chunks(4_001).map(<[u8]>::to_vec).collect();
                let body = futures_util::stream::unfold((chunks, 0), move |(chunks, i)| {
                    let go = go.clone();
                    async move {
                        if i == 3 {
                            go.notified().await;
                        }
                        let chunk = chunks.get(i)?.clone();
                        Some((Ok::<_, std::io::Error>(chunk), (chunks, i + 1)))
                    }
                });
                axum::body::Body::from_stream(body)
            }
        }),
    );
    serve(app).await
}

#[tokio::test]
async fn elevenlabs_speech_is_taken_in_parts_as_it_streams_samples_split_across_chunks_kept_whole() {
    use bond_speech::elevenlabs::ElevenLabs;
    use futures_util::StreamExt;
    let go = std::sync::Arc::new(tokio::sync::Notify::new());
    let url = streaming_elevenlabs(go.clone()).await;
    let voice = ElevenLabs::new(&url, "el-key", "voice-1", "eleven_multilingual_v2");
    // The server sends 12,003 bytes, then waits: the first part comes without the rest.
    let parts =
        tokio::time::timeout(std::time::Duration::from_secs(10), voice.speak_parts("hello", "en", ""))
            .await
            .expect("the first part came before the server sent the rest")
            .unwrap();
    assert!(parts.first.len() >= 1_600, "at least 100 ms first: {}", parts.first.len());
    assert!(parts.first.len() < 16_000, "not the whole second");
    go.notify_one();
    let mut all = parts.first;
    let mut rest = parts.rest;
    let mut more = 0;
    while let Some(part) = rest.next().await {
        all.extend(part.unwrap());
        more += 1;
    }
    assert!(more >= 2, "the rest came as the connection gave it: {more} parts");
    assert_eq!(all, bond_codecs::signals::sine(440.0, 16_000, 16_000, 8_000.0), "every sample, in order");
}

/// An ElevenLabs-compatible server that streams eight chunks of 100 ms of
/// speech, each `gap` after the one before (the first too, after the headers).
async fn paced_elevenlabs(gap: std::time::Duration) -> String {
    let app = axum::Router::new().route(
        "/v1/text-to-speech/{voice}/stream",
        axum::routing::post(move || async move {
            let body = futures_util::stream::unfold(0, move |i| async move {
                (i < 8).then_some(())?;
                tokio::time::sleep(gap).await;
                Some((Ok::<_, std::io::Error>(vec![1u8; 3_200]), i + 1))
            });
            axum::body::Body::from_stream(body)
        }),
    );
    serve(app).await
}

#[tokio::test]
async fn an_elevenlabs_answer_may_stream_for_longer_than_the_idle_wait_but_not_stall_past_it() {
    use bond_speech::elevenlabs::ElevenLabs;
    use std::time::Duration;
    let (idle, total) = (Duration::from_millis(400), Duration::from_secs(10));
    let steady = paced_elevenlabs(Duration::from_millis(100)).await;
    let voice = ElevenLabs::new(&steady, "el-key", "voice-1", "m").with_timeouts(idle, total);
    let speech = voice.speak("hello", "en", "").await.expect("0.8 s of streaming, never 0.4 s quiet");
    assert_eq!(speech.len(), 8 * 1_600, "every chunk");

    let stalling = paced_elevenlabs(Duration::from_millis(900)).await;
    let voice = ElevenLabs::new(&stalling, "el-key", "voice-1", "m").with_timeouts(idle, total);
    let err = voice.speak("hello", "en", "").await.expect_err("a server quiet for 0.9 s");
    assert_eq!(err.0, "elevenlabs", "{err:?}");
}

/// A voice that counts its calls and says nothing useful.
struct Murmur(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl TextToSpeech for Murmur {
    fn name(&self) -> &'static str {
        "murmur"
    }
    fn speak(&self, _: &str, _: &str, _: &str) -> BoxFuture<'static, Result<Vec<i16>, TtsError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(vec![1; 160]) })
    }
}

#[tokio::test]
async fn an_elevenlabs_compatible_voice_speaks_and_a_rejected_key_hands_over_and_rests() {
    use bond_speech::elevenlabs::ElevenLabs;
    let (url, seen) = elevenlabs_server().await;
    let voice = ElevenLabs::new(&url, "el-key", "voice-1", "eleven_multilingual_v2");
    let spoken = voice.speak("hola que tal", "es-MX", "AWS.Polly.Joanna").await.unwrap();
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

    // Telnyx's name for an ElevenLabs voice picks the model and the voice.
    voice.speak("hola", "es", "ElevenLabs.eleven_turbo_v2.voice-2").await.unwrap();
    {
        let seen = seen.lock().unwrap();
        let (voice_id, _, body) = &seen[1];
        assert_eq!((voice_id.as_str(), &body["model_id"]), ("voice-2", &json!("eleven_turbo_v2")));
    }

    let wrong = ElevenLabs::new(&url, "wrong", "voice-1", "m");
    let err = wrong.speak("hola", "es", "").await.unwrap_err();
    assert!(err.to_string().contains("401") && err.to_string().contains("invalid_api_key"), "{err}");
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let chain = TtsChain::new(vec![Box::new(wrong), Box::new(Murmur(calls.clone()))]);
    assert_eq!(chain.speak("hola", "es", "").await.unwrap().len(), 160);
    assert_eq!(chain.speak("otra vez", "es", "").await.unwrap().len(), 160);
    assert_eq!(seen.lock().unwrap().len(), 4, "the rejected voice rests after its failure");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
