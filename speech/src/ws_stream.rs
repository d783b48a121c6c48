//! What the streaming STT connectors share: open a provider's WebSocket with
//! its auth header and send audio as 16-bit little-endian PCM in 100 ms binary
//! frames; and, for one utterance on a connection of its own, send the
//! provider's end-of-stream message and hand every text message to the
//! connector until the server closes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::stt::{SttError, STT_RATE_HZ};
use super::tls::TlsConfig;

/// Samples per binary frame sent (100 ms).
const FRAME: usize = STT_RATE_HZ as usize / 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A provider's WebSocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A provider's socket (`wss://` verified against `tls`, the public roots
/// without it), with `authorization` in its header.
pub async fn connect(
    engine: &'static str,
    url: &str,
    tls: Option<TlsConfig>,
    authorization: &str,
) -> Result<Socket, SttError> {
    let failed = |e: String| SttError::Failed(engine, e);
    let mut request = url.into_client_request().map_err(|e| failed(e.to_string()))?;
    let key = HeaderValue::from_str(authorization)
        .map_err(|_| failed("the API key is not a header value".into()))?;
    request.headers_mut().insert("authorization", key);
    let connector = tls.map(tokio_tungstenite::Connector::Rustls);
    let connect = tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector);
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(SttError::Unavailable(engine, e.to_string())),
        Err(_) => Err(SttError::Unavailable(engine, "no connection within 5 s".into())),
    }
}

/// `audio` as 16-bit little-endian PCM in 100 ms binary frames.
pub async fn send_audio(socket: &mut Socket, audio: &[i16]) -> Result<(), String> {
    for chunk in audio.chunks(FRAME) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        socket.send(Message::binary(bytes)).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One utterance on a connection of its own; `read` takes each text message.
pub async fn stream_utterance(
    engine: &'static str,
    url: &str,
    tls: Option<TlsConfig>,
    authorization: &str,
    audio: &[i16],
    end_of_stream: &str,
    mut read: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), SttError> {
    let failed = |e: String| SttError::Failed(engine, e);
    let mut socket = connect(engine, url, tls, authorization).await?;
    send_audio(&mut socket, audio).await.map_err(failed)?;
    socket.send(Message::text(end_of_stream)).await.map_err(|e| failed(e.to_string()))?;
    while let Some(message) = socket.next().await {
        match message.map_err(|e| failed(e.to_string()))? {
            Message::Text(text) => read(&text).map_err(failed)?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}
