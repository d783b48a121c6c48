//! One provider connection per call stream: Deepgram and AssemblyAI against
//! test servers that keep a connection open as each provider documents it
//! (Deepgram: `Finalize`, `KeepAlive`, `CloseStream`; AssemblyAI v3: `Begin`,
//! `ForceEndpoint`, `Terminate`), counting connections and audio.

use std::time::Duration;

use bond_speech::assemblyai::AssemblyAi;
use bond_speech::deepgram::Deepgram;
use bond_speech::{SpeechToText, StreamPart, Transcript};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What a test server saw on one connection, reported when it closes.
#[derive(Debug, Default)]
struct Connection {
    /// Samples of audio received in all.
    samples: usize,
    keep_alives: usize,
    /// The client's closing message (`CloseStream`, `Terminate`), if it sent one.
    closed_with: Option<String>,
}

/// How a test server answers one connection.
#[derive(Clone, Copy)]
struct Script {
    hello: Option<fn() -> Value>,
    /// Replies to each binary frame, given the ms of audio of the current utterance.
    on_audio: fn(usize) -> Vec<Value>,
    /// The flush message and its replies, given the utterance's ms.
    flush: &'static str,
    on_flush: fn(usize) -> Vec<Value>,
    keep_alive: &'static str,
    close: &'static str,
    /// Close the connection after this many flushes (a provider dropping it).
    drop_after: Option<usize>,
}

async fn server(path: &str, script: Script) -> (String, mpsc::UnboundedReceiver<Connection>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}{path}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let mut seen = Connection::default();
                if let Some(hello) = script.hello {
                    ws.send(Message::text(hello().to_string())).await.unwrap();
                }
                let (mut utterance, mut flushes) = (0, 0);
                while let Some(Ok(message)) = ws.next().await {
                    let replies = match message {
                        Message::Binary(audio) => {
                            seen.samples += audio.len() / 2;
                            utterance += audio.len() / 2;
                            (script.on_audio)(utterance / 16)
                        }
                        Message::Text(t) if t.contains(script.flush) => {
                            flushes += 1;
                            utterance = 0;
                            (script.on_flush)(seen.samples / 16)
                        }
                        Message::Text(t) if t.contains(script.keep_alive) => {
                            seen.keep_alives += 1;
                            vec![]
                        }
                        Message::Text(t) if t.contains(script.close) => {
                            seen.closed_with = Some(t.to_string());
                            break;
                        }
                        _ => vec![],
                    };
                    for reply in replies {
                        ws.send(Message::text(reply.to_string())).await.unwrap();
                    }
                    if script.drop_after == Some(flushes) {
                        break;
                    }
                }
                let _ = ws.close(None).await;
                let _ = tx.send(seen);
            });
        }
    });
    (url, rx)
}

fn deepgram_results(text: String, is_final: bool, from_finalize: bool) -> Value {
    json!({ "type": "Results", "channel_index": [0, 1], "duration": 0.1, "start": 0.0,
        "is_final": is_final, "speech_final": is_final, "from_finalize": from_finalize,
        "channel": { "alternatives": [{ "transcript": text, "confidence": 0.9, "words": [] }] } })
}

/// Deepgram: interim `Results` while audio comes; `Finalize` answered by the
/// final `Results` with `from_finalize: true`. The server's text is the ms of
/// audio it has had on the connection, so what was sent twice shows.
fn deepgram_script(drop_after: Option<usize>) -> Script {
    Script {
        hello: None,
        on_audio: |ms| vec![deepgram_results(format!("so far {ms}"), false, false)],
        flush: "Finalize",
        on_flush: |total_ms| vec![deepgram_results(format!("{total_ms} ms in all"), true, true)],
        keep_alive: "KeepAlive",
        close: "CloseStream",
        drop_after,
    }
}

fn part(stream: &str, utterance: u64, last: bool) -> StreamPart<'_> {
    StreamPart { stream, utterance, last }
}

async fn say(stt: &dyn SpeechToText, stream: &str, utterance: u64, ms: usize, last: bool) -> Transcript {
    stt.transcribe_stream(part(stream, utterance, last), vec![0; ms * 16], "en").await.unwrap()
}

#[tokio::test]
async fn a_calls_utterances_share_one_deepgram_connection_and_each_sample_goes_once() {
    let (url, mut seen) = server("/v1/listen", deepgram_script(None)).await;
    let deepgram = Deepgram::new(&url, "dg-key", "nova-2");
    // An interim snapshot of the first utterance, then all of it: only the rest is sent.
    let interim = say(&deepgram, "call-1:inbound", 100, 500, false).await;
    assert_eq!(interim.text, "so far 500");
    let first = say(&deepgram, "call-1:inbound", 100, 1_000, true).await;
    assert_eq!(first.text, "1000 ms in all");
    let second = say(&deepgram, "call-1:inbound", 2_000, 300, true).await;
    assert_eq!(second.text, "1300 ms in all", "the second utterance on the same connection");
    deepgram.end_stream("call-1:inbound");
    let connection = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.unwrap().unwrap();
    assert_eq!(connection.samples, 1_300 * 16);
    assert!(connection.closed_with.is_some_and(|m| m.contains("CloseStream")));
    assert!(seen.try_recv().is_err(), "one connection only");
}

#[tokio::test]
async fn two_calls_have_a_connection_each() {
    let (url, mut seen) = server("/v1/listen", deepgram_script(None)).await;
    let deepgram = Deepgram::new(&url, "dg-key", "nova-2");
    let (a, b) = tokio::join!(
        say(&deepgram, "call-a:inbound", 1, 400, true),
        say(&deepgram, "call-b:inbound", 1, 700, true)
    );
    assert_eq!((a.text.as_str(), b.text.as_str()), ("400 ms in all", "700 ms in all"));
    deepgram.end_stream("call-a:inbound");
    deepgram.end_stream("call-b:inbound");
    let mut samples = Vec::new();
    for _ in 0..2 {
        samples
            .push(tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.unwrap().unwrap().samples);
    }
    samples.sort_unstable();
    assert_eq!(samples, vec![400 * 16, 700 * 16]);
}

#[tokio::test]
async fn a_dropped_connection_is_opened_again_and_the_utterance_sent_whole() {
    let (url, mut seen) = server("/v1/listen", deepgram_script(Some(1))).await;
    let deepgram = Deepgram::new(&url, "dg-key", "nova-2");
    assert_eq!(say(&deepgram, "call-1:inbound", 1, 600, true).await.text, "600 ms in all");
    // The provider closed the connection after that utterance.
    let first = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.unwrap().unwrap();
    assert_eq!(first.samples, 600 * 16);
    let interim = say(&deepgram, "call-1:inbound", 2, 200, false).await;
    assert_eq!(interim.text, "so far 200", "a new connection for the next utterance");
    assert_eq!(say(&deepgram, "call-1:inbound", 2, 900, true).await.text, "900 ms in all");
    deepgram.end_stream("call-1:inbound");
    let second = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.unwrap().unwrap();
    assert_eq!(second.samples, 900 * 16, "the second connection had the second utterance, once");
}

#[tokio::test]
async fn a_quiet_calls_deepgram_connection_is_kept_alive() {
    let (url, mut seen) = server("/v1/listen", deepgram_script(None)).await;
    let deepgram = Deepgram::new(&url, "dg-key", "nova-2").keeping_alive_every(Duration::from_millis(100));
    say(&deepgram, "call-1:inbound", 1, 200, true).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(say(&deepgram, "call-1:inbound", 2, 200, true).await.text, "400 ms in all");
    deepgram.end_stream("call-1:inbound");
    let connection = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.unwrap().unwrap();
    assert!(connection.keep_alives >= 2, "{connection:?}");
    assert!(seen.try_recv().is_err(), "one connection only");
}

fn turn(order: u64, text: String, end: bool, formatted: bool) -> Value {
    json!({ "type": "Turn", "turn_order": order, "turn_is_formatted": formatted, "end_of_turn": end,
        "transcript": text, "end_of_turn_confidence": 0.7,
        "words": [{ "text": "heard", "confidence": 0.8, "start": 0, "end": 400, "word_is_final": true }] })
}

#[tokio::test]
async fn a_calls_utterances_share_one_assemblyai_session_each_ended_by_force_endpoint() {
    let script = Script {
        hello: Some(|| json!({ "type": "Begin", "id": "session-1", "expires_at": 1_900_000_000 })),
        on_audio: |ms| vec![turn(0, format!("heard {ms}"), false, false)],
        flush: "ForceEndpoint",
        on_flush: |total_ms| {
            vec![
                turn(0, format!("heard {total_ms} ms"), true, false),
                turn(0, format!("Heard {total_ms} ms."), true, true),
            ]
        },
        keep_alive: "KeepAlive",
        close: "Terminate",
        drop_after: None,
    };
    let (url, mut seen) = server("/v3/ws", script).await;
    let assemblyai = AssemblyAi::new(&url, "aai-key");
    assert_eq!(say(&assemblyai, "call-1:outbound", 5, 300, false).await.text, "heard 300");
    assert_eq!(say(&assemblyai, "call-1:outbound", 5, 800, true).await.text, "Heard 800 ms.");
    assert_eq!(say(&assemblyai, "call-1:outbound", 9, 200, true).await.text, "Heard 1000 ms.");
    assemblyai.end_stream("call-1:outbound");
    let connection = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.unwrap().unwrap();
    assert_eq!(connection.samples, 1_000 * 16);
    assert!(connection.closed_with.is_some_and(|m| m.contains("Terminate")));
    assert!(seen.try_recv().is_err(), "one session only");
}
