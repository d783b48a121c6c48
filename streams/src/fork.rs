//! Bond as the sending side of a Telnyx media stream (`streaming_start`): it
//! connects to the application's `stream_url` as a WebSocket client and sends
//! what Telnyx sends (Telnyx's media-streaming documentation): `connected`,
//! `start`, a `media` frame every 20 ms for each track asked for, a `dtmf`
//! frame for each digit the call's party presses (RFC 4733, SIP INFO or
//! in-band), and `stop`. Counters are JSON strings; `chunk` counts each
//! track's frames from 1 and `timestamp` is milliseconds since the stream
//! started. Bond closes the socket with 1000 (normal) when it stops the stream.
//!
//! The audio comes from a fork of the call's leg ([`Fork`]): the media path
//! only offers each tick to a bounded queue, so a slow consumer costs dropped
//! ticks (counted), never a late frame on the call. Encoding, base64 and the
//! socket all run here, in the stream's own task.

use bond_store::CallId;
use std::time::Duration;

use bond_codecs::codec::AudioEncoder;
use bond_codecs::l16::ByteOrder;
use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::runtime::{Fork, ForkTick};

use super::back::{Back, BackChannel, Inject, Reply};
use super::frames::OutboundMediaWriter;
use bond_store::clock::monotonic;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async_tls_with_config, Connector, MaybeTlsStream, WebSocketStream};

/// How long connecting (TCP, TLS, upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one frame may wait for the consumer's socket before the stream fails.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Telnyx's header for `stream_auth_token`.
const AUTH_HEADER: &str = "x-telnyx-streaming-auth-token";

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which side of the call a stream carries (Telnyx `stream_track`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// What the call's party says.
    Inbound,
    /// What the call's party hears.
    Outbound,
    Both,
}

impl Track {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "inbound_track" => Some(Self::Inbound),
            "outbound_track" => Some(Self::Outbound),
            "both_tracks" => Some(Self::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound_track",
            Self::Outbound => "outbound_track",
            Self::Both => "both_tracks",
        }
    }
}

/// Telnyx `stream_codec`: the payload encoding. `default` is PCMU.
pub fn stream_codec(value: &str) -> Option<Codec> {
    match value {
        "default" | "PCMU" => Some(Codec::Pcmu),
        "PCMA" => Some(Codec::Pcma),
        "G722" => Some(Codec::G722),
        "OPUS" => Some(Codec::Opus),
        "L16" => Some(Codec::L16 { rate: SampleRate::Hz16000, order: ByteOrder::BigEndian }),
        _ => None,
    }
}

/// What `streaming_start` asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    pub url: String,
    pub track: Track,
    pub codec: Codec,
    pub auth_token: Option<String>,
    /// Telnyx `custom_parameters` as `{name: value}`.
    pub custom_parameters: Value,
    /// `stream_bidirectional_mode: "rtp"`: audio the application sends back is played into the call.
    pub back: Option<BackChannel>,
}

/// The call the stream belongs to, as the `start` frame tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStart {
    pub stream_id: String,
    pub user_id: String,
    pub call_control_id: CallId,
    pub call_session_id: String,
    pub from: String,
    pub to: String,
    pub client_state: Option<String>,
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Bond stopped it (`streaming_stop` or the call ended): `stop` was sent.
    Stopped,
    /// The consumer closed the socket.
    Closed,
    /// The socket failed, or a frame waited too long for it.
    Failed(String),
}

/// Open the WebSocket to `url`, with Telnyx's auth header when there is a token.
pub async fn connect(url: &str, auth_token: Option<&str>) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| format!("stream_url: {e}"))?;
    if let Some(token) = auth_token {
        let value = HeaderValue::from_str(token).map_err(|_| "stream_auth_token is not a header value")?;
        request.headers_mut().insert(AUTH_HEADER, value);
    }
    let config = WebSocketConfig::default().read_buffer_size(super::READ_BUFFER);
    let connecting = async {
        let tcp = tcp_to(request.uri()).await?;
        // `wss://` verified against the public roots and `trusted_ca`.
        let tls = Connector::Rustls(bond_store::trust::client_config());
        client_async_tls_with_config(request, tcp, Some(config), Some(tls)).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(format!("could not connect to {url}: {e}")),
        Err(_) => Err(format!("could not connect to {url} within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// A TCP connection to the URI's host, on an address the egress guard allows (`egress.rs`).
async fn tcp_to(uri: &Uri) -> Result<TcpStream, String> {
    let host = uri.host().ok_or("stream_url has no host")?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
    let allowed = bond_store::egress::resolve(host, port).await?;
    TcpStream::connect(&allowed[..]).await.map_err(|e| e.to_string())
}

/// What else goes to the application on its stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A digit the call's party pressed.
    Dtmf(char),
    /// Audio the application sent back could not be played.
    Error(Reply),
}

/// Send the stream until the fork ends (then `stop`), the consumer closes, or the socket fails.
/// With a back channel, what the application sends back goes to `inject`; `notices` go out as they come.
pub async fn run(
    mut socket: Socket,
    mut fork: Fork,
    request: &StreamRequest,
    start: &StreamStart,
    inject: mpsc::UnboundedSender<Inject>,
    mut notices: mpsc::UnboundedReceiver<Notice>,
) -> Ended {
    let mut frames = Frames::new(&start.stream_id);
    let mut back = match request.back.map(|channel| Back::new(channel, inject)).transpose() {
        Ok(back) => back,
        Err(e) => return Ended::Failed(e),
    };
    let mut encoders = match Encoders::new(request) {
        Ok(e) => e,
        Err(e) => return Ended::Failed(e),
    };
    let opening = [json!({ "event": "connected", "version": "1.0.0" }), frames.start(request, start)];
    for frame in opening {
        if let Err(e) = send(&mut socket, frame.to_string()).await {
            return Ended::Failed(e);
        }
    }
    let mut tick_index = 0u64;
    loop {
        tokio::select! {
            tick = fork.ticks.recv() => {
                let Some(tick) = tick else {
                    let stop = frames.stop(start);
                    let _ = send(&mut socket, stop.to_string()).await;
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.close(None)).await;
                    return Ended::Stopped;
                };
                let timestamp = tick_index * 20;
                tick_index += 1;
                for (track, chunk, payload) in encoders.encode(&tick) {
                    let frame = frames.media(track, chunk, timestamp, &payload);
                    if let Err(e) = send(&mut socket, frame).await {
                        return Ended::Failed(e);
                    }
                }
            }
            message = socket.next() => {
                let replies = match message {
                    Some(Ok(Message::Close(_))) | None => return Ended::Closed,
                    Some(Ok(Message::Text(text))) => match &mut back {
                        Some(back) => back.handle(&text, monotonic()).await,
                        None => Vec::new(),
                    },
                    // Pings are answered by the library.
                    Some(Ok(_)) => Vec::new(),
                    Some(Err(e)) => return Ended::Failed(e.to_string()),
                };
                for reply in replies {
                    if let Err(e) = send(&mut socket, frames.reply(&reply).to_string()).await {
                        return Ended::Failed(e);
                    }
                }
            }
            Some(notice) = notices.recv() => {
                let frame = match notice {
                    Notice::Dtmf(digit) => frames.dtmf(digit),
                    Notice::Error(reply) => frames.reply(&reply),
                };
                if let Err(e) = send(&mut socket, frame.to_string()).await {
                    return Ended::Failed(e);
                }
            }
            _ = mark_due(back.as_ref().and_then(Back::next_due)) => {
                let due = back.as_mut().map(|b| b.due(monotonic())).unwrap_or_default();
                for reply in due {
                    if let Err(e) = send(&mut socket, frames.reply(&reply).to_string()).await {
                        return Ended::Failed(e);
                    }
                }
            }
        }
    }
}

/// Wait until `due` (forever without one).
async fn mark_due(due: Option<std::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

async fn send(socket: &mut Socket, frame: String) -> Result<(), String> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::text(frame))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("the consumer took no frame for {} s", SEND_TIMEOUT.as_secs())),
    }
}

/// The frames of one stream, numbered.
struct Frames<'a> {
    stream_id: &'a str,
    sequence: u64,
    media: OutboundMediaWriter,
}

impl<'a> Frames<'a> {
    fn new(stream_id: &'a str) -> Self {
        Self { stream_id, sequence: 0, media: OutboundMediaWriter::new(stream_id) }
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn start(&mut self, request: &StreamRequest, start: &StreamStart) -> Value {
        json!({
            "event": "start",
            "sequence_number": self.next_sequence().to_string(),
            "stream_id": self.stream_id,
            "start": {
                "user_id": start.user_id,
                "call_control_id": start.call_control_id,
                "call_session_id": start.call_session_id,
                "from": start.from,
                "to": start.to,
                "client_state": start.client_state,
                "custom_parameters": request.custom_parameters,
                "media_format": {
                    "encoding": request.codec.encoding_name(),
                    "sample_rate": request.codec.sample_rate().hz(),
                    "channels": 1,
                },
            },
        })
    }

    /// Written without a JSON tree: one of these goes out every 20 ms per track.
    fn media(&mut self, track: &str, chunk: u64, timestamp: u64, payload: &[u8]) -> String {
        let sequence = self.next_sequence();
        self.media.frame(sequence, track, chunk, timestamp, payload)
    }

    fn reply(&mut self, reply: &Reply) -> Value {
        let sequence = self.next_sequence().to_string();
        reply.frame(self.stream_id, sequence)
    }

    fn dtmf(&mut self, digit: char) -> Value {
        json!({
            "event": "dtmf",
            "stream_id": self.stream_id,
            "occurred_at": bond_store::clock::rfc3339_now(),
            "sequence_number": self.next_sequence().to_string(),
            "dtmf": { "digit": digit.to_string() },
        })
    }

    fn stop(&mut self, start: &StreamStart) -> Value {
        json!({
            "event": "stop",
            "sequence_number": self.next_sequence().to_string(),
            "stop": { "user_id": start.user_id, "call_control_id": start.call_control_id },
            "stream_id": self.stream_id,
        })
    }
}

/// One track's way from the leg's frames to payloads.
struct TrackEncoder {
    name: &'static str,
    inbound: bool,
    resampler: Option<FrameResampler>,
    encoder: AudioEncoder,
    scratch: AudioFrame,
    payload: Vec<u8>,
    chunks: u64,
}

struct Encoders {
    tracks: Vec<TrackEncoder>,
}

impl Encoders {
    fn new(request: &StreamRequest) -> Result<Self, String> {
        let wanted = match request.track {
            Track::Inbound => vec![("inbound", true)],
            Track::Outbound => vec![("outbound", false)],
            Track::Both => vec![("inbound", true), ("outbound", false)],
        };
        let tracks = wanted
            .into_iter()
            .map(|(name, inbound)| {
                Ok(TrackEncoder {
                    name,
                    inbound,
                    resampler: None,
                    encoder: request.codec.encoder().map_err(|e| e.to_string())?,
                    scratch: AudioFrame::silent(request.codec.sample_rate(), 0),
                    payload: vec![0; request.codec.max_payload_len()],
                    chunks: 0,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { tracks })
    }

    /// Each track's name, chunk number and payload for one tick (a frame that
    /// cannot be encoded is skipped).
    fn encode(&mut self, tick: &ForkTick) -> Vec<(&'static str, u64, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.tracks.len());
        for track in &mut self.tracks {
            let frame = if track.inbound { &tick.inbound } else { &tick.outbound };
            if let Some(payload) = track.encode(frame) {
                track.chunks += 1;
                out.push((track.name, track.chunks, payload));
            }
        }
        out
    }
}

impl TrackEncoder {
    fn encode(&mut self, frame: &AudioFrame) -> Option<Vec<u8>> {
        let rate = self.encoder.codec().sample_rate();
        let frame = if frame.rate() == rate {
            frame
        } else {
            let resampler = match &mut self.resampler {
                Some(r) => r,
                None => self
                    .resampler
                    .insert(FrameResampler::new(frame.rate(), rate, ResamplerProfile::LowDelay).ok()?),
            };
            resampler.process(frame, &mut self.scratch).ok()?;
            &self.scratch
        };
        let len = self.encoder.encode(frame, &mut self.payload).ok()?;
        Some(self.payload[..len].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;

    use super::*;

    #[test]
    fn telnyx_track_and_codec_names_parse() {
        assert_eq!(Track::parse("both_tracks"), Some(Track::Both));
        assert_eq!(Track::parse("inbound"), None, "Telnyx spells stream tracks with _track");
        assert_eq!(stream_codec("default"), Some(Codec::Pcmu));
        assert_eq!(stream_codec("G722"), Some(Codec::G722));
        assert_eq!(stream_codec("AMR-WB"), None);
    }

    #[test]
    fn both_tracks_give_a_payload_each_at_the_stream_codecs_rate() {
        let request = StreamRequest {
            url: "ws://127.0.0.1:1/".into(),
            track: Track::Both,
            codec: stream_codec("G722").unwrap(),
            auth_token: None,
            custom_parameters: json!({}),
            back: None,
        };
        let mut encoders = Encoders::new(&request).unwrap();
        let frame = AudioFrame::silent(SampleRate::Hz8000, 0);
        let tick = ForkTick { inbound: frame.clone(), outbound: frame };
        for chunk in 1..=3 {
            let payloads = encoders.encode(&tick);
            let names: Vec<_> = payloads.iter().map(|(name, n, _)| (*name, *n)).collect();
            assert_eq!(names, [("inbound", chunk), ("outbound", chunk)]);
            assert!(payloads.iter().all(|(_, _, p)| p.len() == 160), "20 ms of G.722 at 64 kbit/s");
        }
    }

    #[test]
    fn frames_are_numbered_with_string_counters() {
        let mut frames = Frames::new("s1");
        let start = StreamStart {
            stream_id: "s1".into(),
            user_id: "org".into(),
            call_control_id: "c1".into(),
            call_session_id: "session".into(),
            from: "+1".into(),
            to: "+2".into(),
            client_state: None,
        };
        let request = StreamRequest {
            url: "ws://x/".into(),
            track: Track::Inbound,
            codec: Codec::Pcmu,
            auth_token: None,
            custom_parameters: json!({ "k": "v" }),
            back: None,
        };
        let first = frames.start(&request, &start);
        assert_eq!(first["sequence_number"], "1");
        assert_eq!(
            first["start"]["media_format"],
            json!({ "encoding": "PCMU", "sample_rate": 8000, "channels": 1 })
        );
        let media: Value = serde_json::from_str(&frames.media("inbound", 1, 40, &[0xff; 160])).unwrap();
        assert_eq!(
            media,
            json!({
                "event": "media",
                "sequence_number": "2",
                "media": { "track": "inbound", "chunk": "1", "timestamp": "40", "payload": BASE64.encode([0xff; 160]) },
                "stream_id": start.stream_id,
            })
        );
        assert_eq!(frames.stop(&start)["sequence_number"], "3");
    }
}
