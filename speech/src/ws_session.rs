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
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::stt::{StreamPart, SttError, Transcript};
use super::ws_stream::{connect, send_audio};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
    /// The socket's address for `language`, with its `Authorization` header value.
    fn endpoint(&self, language: &str) -> Result<(url::Url, String), String>;
    fn tls(&self) -> Option<super::tls::TlsConfig>;
    /// Sent after an utterance's audio: the provider answers with its final text.
    fn flush(&self) -> &'static str;
    /// Sent while idle, if the provider closes quiet connections.
    fn keep_alive(&self) -> Option<&'static str>;
    /// Sent when the stream ends.
    fn close(&self) -> &'static str;
}

/// The provider's messages during one utterance.
pub trait UtteranceReader: Default + Send {
    /// Take one text message; `Ok(true)` once the final text after a flush is in.
    fn read(&mut self, text: &str) -> Result<bool, String>;
    /// The text so far (interim) or in all (after the flush).
    fn transcript(&self) -> Transcript;
}

enum Command {
    Audio {
        utterance: u64,
        audio: Vec<i16>,
        language: String,
        last: bool,
        reply: oneshot::Sender<Result<Transcript, SttError>>,
    },
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

    /// Utterance `utterance` so far (`last: false`) or whole (`last: true`) on `stream`'s connection.
    pub async fn utterance(
        &self,
        stream: &str,
        utterance: u64,
        audio: Vec<i16>,
        language: &str,
        last: bool,
    ) -> Result<Transcript, SttError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Audio { utterance, audio, language: language.to_owned(), last, reply };
        let task = self.task(stream)?;
        if task.send(command).await.is_err() {
            return Err(SttError::Failed(P::NAME, "the stream's task ended".into()));
        }
        answer.await.map_err(|_| SttError::Failed(P::NAME, "the stream's task ended".into()))?
    }

    /// [`Self::utterance`] for [`crate::SpeechToText::transcribe_stream`].
    pub fn request(
        self: &Arc<Self>,
        part: StreamPart<'_>,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let (streams, stream, language) = (self.clone(), part.stream.to_owned(), language.to_owned());
        Box::pin(async move { streams.utterance(&stream, part.utterance, audio, &language, part.last).await })
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
            Some(Command::Audio { utterance: id, audio, language, last, reply }) => {
                let result = utterance(&*protocol, &mut open, id, &audio, &language, last).await;
                let _ = reply.send(result);
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
    id: u64,
    audio: &[i16],
    language: &str,
    last: bool,
) -> Result<Transcript, SttError> {
    if open.as_ref().is_some_and(|c| c.language != language) {
        *open = None;
    }
    let reused = open.is_some();
    match attempt(protocol, open, id, audio, language, last).await {
        Err(SttError::Failed(..)) if reused => {
            tracing::info!(engine = P::NAME, "speech-to-text connection lost; opening another");
            *open = None;
            attempt(protocol, open, id, audio, language, last).await
        }
        result => result,
    }
}

async fn attempt<P: StreamProtocol>(
    protocol: &P,
    open: &mut Option<Connection<P>>,
    id: u64,
    audio: &[i16],
    language: &str,
    last: bool,
) -> Result<Transcript, SttError> {
    let failed = |e: String| SttError::Failed(P::NAME, e);
    if open.is_none() {
        let (url, authorization) = protocol.endpoint(language).map_err(failed)?;
        let socket = connect(P::NAME, url.as_str(), protocol.tls(), &authorization).await?;
        let reader = P::Reader::default();
        *open = Some(Connection { socket, language: language.to_owned(), utterance: None, sent: 0, reader });
    }
    let Some(c) = open.as_mut() else { return Err(failed("not connected".into())) };
    if c.utterance != Some(id) {
        // Another utterance: what the provider heard of an earlier one (whose
        // end went to another engine) is not part of it.
        c.utterance = Some(id);
        c.sent = 0;
        c.reader = P::Reader::default();
    }
    let result = exchange(protocol, c, audio, last).await;
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
