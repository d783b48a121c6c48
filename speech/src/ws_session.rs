//! One provider connection per call stream (a call's side): a task owns the
//! WebSocket, opened at the stream's first audio and kept open between
//! utterances (a keep-alive message while idle, where the provider wants one)
//! until the stream ends. Each request sends only the audio the provider has
//! not had yet: an interim snapshot sends what was said since the last one and
//! returns the text so far; the final one sends the rest and the provider's
//! flush message, and waits for its final text. A connection that fails is
//! dropped; the next request opens a new one and sends the utterance whole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::stt::{StreamPart, SttError, Transcript};
use super::ws_stream::{connect, send_audio, stream_utterance, Socket};

/// How long an interim request waits for the provider's newest text.
const INTERIM_WAIT: Duration = Duration::from_millis(300);
/// Longest wait for a final text after the flush.
const FINAL_WAIT: Duration = Duration::from_secs(10);
/// Requests that may wait for one stream's task.
const QUEUE: usize = 4;

/// What one provider's streaming protocol needs.
pub trait StreamProtocol: Send + Sync + 'static {
    /// Reads one utterance's messages.
    type Reader: UtteranceReader;
    const NAME: &'static str;
    /// The socket's address for `language`, with its `Authorization` header
    /// value; `streaming` for a call stream's connection, else for one utterance.
    fn endpoint(&self, language: &str, streaming: bool) -> Result<(url::Url, String), String>;
    fn tls(&self) -> Option<super::tls::TlsConfig>;
    /// Sent after an utterance's audio: the provider answers with its final text.
    fn flush(&self) -> &'static str;
    /// Sent while idle, if the provider closes quiet connections.
    fn keep_alive(&self) -> Option<&'static str>;
    /// Sent when the stream ends (or a connection of its own's one utterance).
    fn close(&self) -> &'static str;
}

/// The provider's messages during one utterance.
pub trait UtteranceReader: Default + Send {
    /// Take one text message; `Ok(true)` once the final text after a flush is in.
    fn read(&mut self, text: &str) -> Result<bool, String>;
    /// The text so far (interim) or in all (after the flush).
    fn transcript(&self) -> Transcript;
}

/// Part of an utterance for a stream's task.
struct Request {
    utterance: u64,
    audio: Vec<i16>,
    language: String,
    last: bool,
}

enum Command {
    Audio(Request, oneshot::Sender<Result<Transcript, SttError>>),
    Close,
}

/// The open streams of one provider, by stream key.
pub struct Streams<P: StreamProtocol> {
    protocol: Arc<P>,
    tasks: Mutex<HashMap<String, mpsc::Sender<Command>>>,
    keep_alive_every: Duration,
}

impl<P: StreamProtocol> std::fmt::Debug for Streams<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").field("provider", &P::NAME).finish()
    }
}

impl<P: StreamProtocol> Streams<P> {
    pub fn new(protocol: P, keep_alive_every: Duration) -> Self {
        Self { protocol: Arc::new(protocol), tasks: Mutex::new(HashMap::new()), keep_alive_every }
    }

    /// Part of an utterance on its stream's connection, for
    /// [`crate::SpeechToText::transcribe_stream`].
    pub fn request(
        self: &Arc<Self>,
        part: StreamPart<'_>,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let streams = self.clone();
        let stream = part.stream.to_owned();
        let request =
            Request { utterance: part.utterance, audio, language: language.to_owned(), last: part.last };
        Box::pin(async move {
            let ended = || SttError::Failed(P::NAME, "the stream's task ended".into());
            let (reply, answer) = oneshot::channel();
            let task = streams.task(&stream)?;
            task.send(Command::Audio(request, reply)).await.map_err(|_| ended())?;
            answer.await.map_err(|_| ended())?
        })
    }

    /// One utterance on a connection of its own, ended by the close message,
    /// for [`crate::SpeechToText::transcribe`].
    pub fn alone(&self, audio: Vec<i16>, language: &str) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let protocol = self.protocol.clone();
        let endpoint = protocol.endpoint(language, false);
        Box::pin(async move {
            let (url, authorization) = endpoint.map_err(|e| SttError::Failed(P::NAME, e))?;
            let mut reader = P::Reader::default();
            let (tls, close) = (protocol.tls(), protocol.close());
            stream_utterance(P::NAME, url.as_str(), tls, &authorization, &audio, close, |t| {
                reader.read(t).map(|_| ())
            })
            .await?;
            Ok(reader.transcript())
        })
    }

    /// The stream is over: its connection is closed.
    pub fn end(&self, stream: &str) {
        let task = self.tasks.lock().ok().and_then(|mut t| t.remove(stream));
        if let Some(task) = task {
            let _ = task.try_send(Command::Close);
        }
    }

    fn task(&self, stream: &str) -> Result<mpsc::Sender<Command>, SttError> {
        let mut tasks = self.tasks.lock().map_err(|_| SttError::Failed(P::NAME, "poisoned".into()))?;
        tasks.retain(|_, t| !t.is_closed());
        let task = tasks.entry(stream.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(self.protocol.clone(), rx, self.keep_alive_every));
            tx
        });
        Ok(task.clone())
    }
}

/// One stream's connection and where its current utterance is.
struct Connection<P: StreamProtocol> {
    socket: Socket,
    language: String,
    /// The utterance being sent, and how many of its samples the provider has.
    utterance: Option<u64>,
    sent: usize,
    reader: P::Reader,
}

async fn run<P: StreamProtocol>(
    protocol: Arc<P>,
    mut commands: mpsc::Receiver<Command>,
    keep_alive_every: Duration,
) {
    let mut open: Option<Connection<P>> = None;
    loop {
        let idle = tokio::time::sleep(keep_alive_every);
        let command = tokio::select! {
            command = commands.recv() => command,
            () = idle, if open.is_some() => {
                if let (Some(c), Some(message)) = (open.as_mut(), protocol.keep_alive()) {
                    if c.socket.send(Message::text(message)).await.is_err() {
                        open = None;
                    }
                }
                continue;
            }
        };
        match command {
            Some(Command::Audio(request, reply)) => {
                let _ = reply.send(utterance(&*protocol, &mut open, &request).await);
            }
            Some(Command::Close) | None => break,
        }
    }
    if let Some(mut c) = open {
        let _ = c.socket.send(Message::text(protocol.close())).await;
        let _ = c.socket.close(None).await;
    }
}

/// One request on the stream's connection, opening one if there is none (or the
/// language changed); a connection that fails mid-way is replaced once.
async fn utterance<P: StreamProtocol>(
    protocol: &P,
    open: &mut Option<Connection<P>>,
    request: &Request,
) -> Result<Transcript, SttError> {
    if open.as_ref().is_some_and(|c| c.language != request.language) {
        *open = None;
    }
    let reused = open.is_some();
    match attempt(protocol, open, request).await {
        Err(SttError::Failed(..)) if reused => {
            tracing::info!(engine = P::NAME, "speech-to-text connection lost; opening another");
            *open = None;
            attempt(protocol, open, request).await
        }
        result => result,
    }
}

async fn attempt<P: StreamProtocol>(
    protocol: &P,
    open: &mut Option<Connection<P>>,
    request: &Request,
) -> Result<Transcript, SttError> {
    let failed = |e: String| SttError::Failed(P::NAME, e);
    if open.is_none() {
        let (url, authorization) = protocol.endpoint(&request.language, true).map_err(failed)?;
        let socket = connect(P::NAME, url.as_str(), protocol.tls(), &authorization).await?;
        let (language, reader) = (request.language.clone(), P::Reader::default());
        *open = Some(Connection { socket, language, utterance: None, sent: 0, reader });
    }
    let Some(c) = open.as_mut() else { return Err(failed("not connected".into())) };
    if c.utterance != Some(request.utterance) {
        // Another utterance: what the provider heard of an earlier one (whose
        // end went to another engine) is not part of it.
        c.utterance = Some(request.utterance);
        c.sent = 0;
        c.reader = P::Reader::default();
    }
    let result = exchange(protocol, c, &request.audio, request.last).await;
    if result.is_err() {
        *open = None;
    }
    result
}

async fn exchange<P: StreamProtocol>(
    protocol: &P,
    c: &mut Connection<P>,
    audio: &[i16],
    last: bool,
) -> Result<Transcript, SttError> {
    let failed = |e: String| SttError::Failed(P::NAME, e);
    send_audio(&mut c.socket, &audio[c.sent.min(audio.len())..]).await.map_err(failed)?;
    c.sent = c.sent.max(audio.len());
    if !last {
        // Whatever the provider says within a moment: the text so far.
        let reading = async {
            loop {
                if let Err(e) = read(&mut c.reader, c.socket.next().await) {
                    return e;
                }
            }
        };
        if let Ok(e) = tokio::time::timeout(INTERIM_WAIT, reading).await {
            return Err(failed(e));
        }
        return Ok(c.reader.transcript());
    }
    c.socket.send(Message::text(protocol.flush())).await.map_err(|e| failed(e.to_string()))?;
    let done = async {
        loop {
            if read(&mut c.reader, c.socket.next().await)? {
                return Ok::<_, String>(());
            }
        }
    };
    match tokio::time::timeout(FINAL_WAIT, done).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(failed(e)),
        Err(_) => return Err(SttError::Stalled(P::NAME, FINAL_WAIT.as_millis() as u64)),
    }
    let transcript = std::mem::take(&mut c.reader).transcript();
    c.utterance = None;
    c.sent = 0;
    Ok(transcript)
}

/// One message off the socket: text goes to the reader; a close or an error ends the connection.
fn read<R: UtteranceReader>(
    reader: &mut R,
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<bool, String> {
    match message {
        Some(Ok(Message::Text(text))) => reader.read(&text),
        Some(Ok(Message::Close(_))) | None => Err("the provider closed the connection".into()),
        Some(Ok(_)) => Ok(false),
        Some(Err(e)) => Err(e.to_string()),
    }
}
