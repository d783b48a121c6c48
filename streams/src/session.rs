//! One carrier media-stream socket, from `connected` to `stop`.
//!
//! The socket is served on the media-driver thread its leg will run on, from
//! its first frame: its TCP socket is taken out of the HTTP server once
//! upgraded and registered there, so a frame is read, handed to its leg, and
//! the other leg's audio written back without crossing threads. The call's
//! bookkeeping (database, webhooks) runs on the main runtime.
//!
//! Before `start`: check the carrier's credentials (a failed check closes with
//! 1008 policy violation; nothing is created). On `start`: the stream becomes
//! an incoming call whose leg is a stream leg in the engine. Then frames go both
//! ways: the carrier's media, marks, clears and digits to the engine (never
//! waiting for it), and the leg's 20 ms payloads and answered marks back to the
//! carrier. A bad frame is answered with a Telnyx `error` frame (Twilio streams
//! are closed) and the stream goes on; `stop` or a closed socket hangs the call
//! up; a call hung up from the API closes the socket with 1000.

use std::time::Duration;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::l16::ByteOrder;
use bond_media_engine::runtime::{EngineHandle, StreamInput, StreamLeg};
use bond_media_engine::StreamOutput;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::auth::{same, StreamSecrets};
use super::control::{StreamCall, StreamControl};
use super::frames::{self, Carrier, FrameError, Inbound, Start};
use super::UpgradedSocket;
use bond_store::Connection;

/// Frames a carrier may send per second before Bond answers `rate_limit_reached`
/// (media is 50 a second; marks and digits come on top).
const MAX_FRAMES_PER_SECOND: u32 = 200;
/// How long a carrier may take to send `start`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame a carrier may send (a `start` with its custom parameters
/// is a few KiB; a media frame is a few hundred bytes).
const MAX_FRAME: usize = 1 << 20;

const POLICY_VIOLATION: u16 = 1008;
const UNSUPPORTED_DATA: u16 = 1003;
const INTERNAL_ERROR: u16 = 1011;
const NORMAL: u16 = 1000;

/// How the socket was admitted.
#[derive(Debug, Clone)]
pub struct Admission {
    pub carrier: Carrier,
    pub connection: Connection,
    /// Credentials checked at the upgrade (Twilio's signature, Telnyx's header).
    pub authorized: bool,
}

/// Serve an upgraded media-stream connection (its socket taken out of the
/// HTTP server) on the driver thread that will hold its leg; when it ends,
/// hang up its call if it had one.
pub async fn serve<C: StreamControl>(socket: UpgradedSocket, calls: C, admission: Admission) {
    let engine = calls.engine().settled();
    let (started, call) = oneshot::channel();
    let beside = Beside { engine: engine.clone(), calls: calls.clone(), main: Handle::current(), started };
    // A driver that stopped (Bond shutting down) took the task with it.
    let stopped = engine.spawn_home(open(socket, admission, beside)).await.unwrap_or(false);
    if let Ok(call_control_id) = call.await {
        calls.ended(&call_control_id, stopped).await;
    }
}

/// The WebSocket over `socket`, registered on the runtime this runs on, then [`run`].
async fn open<C: StreamControl>(socket: UpgradedSocket, admission: Admission, beside: Beside<C>) -> bool {
    let config = WebSocketConfig::default()
        .read_buffer_size(super::READ_BUFFER)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    match socket {
        UpgradedSocket::Tcp { socket, read } => match tokio::net::TcpStream::from_std(socket) {
            Ok(tcp) => {
                let socket =
                    WebSocketStream::from_partially_read(tcp, read.into(), Role::Server, Some(config));
                run(socket.await, admission, beside).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not register a media stream's socket");
                false
            }
        },
        UpgradedSocket::Other(upgraded) => {
            let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config));
            run(socket.await, admission, beside).await
        }
    }
}

/// What a socket served on a driver thread needs: the engine settled on that
/// driver's shard, the main runtime for the call's bookkeeping, and where to
/// say which call the stream became.
struct Beside<C> {
    engine: EngineHandle,
    calls: C,
    main: Handle,
    started: oneshot::Sender<bond_store::CallId>,
}

/// The frames up to `start`, and whether a `connected` frame carried the
/// connection's Telnyx stream token; `None` when the stream ended or was refused first.
async fn until_start<S>(
    socket: &mut WebSocketStream<S>,
    carrier: Carrier,
    secrets: &StreamSecrets,
) -> Option<(Start, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut token_ok = false;
    loop {
        let text = match socket.next().await? {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(Message::Binary(_)) => {
                refuse_binary(socket, carrier).await;
                return None;
            }
            Ok(_) => continue,
        };
        match frames::parse(&text) {
            Ok(Inbound::Connected { token }) => {
                if let (Some(token), Some(expected)) = (token, &secrets.telnyx_stream_token) {
                    token_ok |= carrier == Carrier::Telnyx && same(&token, expected);
                }
            }
            Ok(Inbound::Start(start)) => return Some((start, token_ok)),
            Ok(_) => {}
            Err(e) => bad_frame(socket, carrier, &e).await,
        }
    }
}

/// From the first frame to the last; true if the carrier stopped the stream.
async fn run<S, C>(mut socket: WebSocketStream<S>, admission: Admission, beside: Beside<C>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: StreamControl,
{
    let Admission { carrier, connection, mut authorized } = admission;
    let secrets = StreamSecrets::of(&connection);
    // Up to `start`, which must come within START_TIMEOUT of opening, pings or not.
    let start = match tokio::time::timeout(START_TIMEOUT, until_start(&mut socket, carrier, &secrets)).await {
        Ok(Some((start, token_ok))) => {
            authorized |= token_ok;
            start
        }
        Ok(None) => return false,
        Err(_) => {
            close(&mut socket, POLICY_VIOLATION, "no start frame").await;
            return false;
        }
    };
    if !authorized {
        tracing::warn!(carrier = carrier.as_str(), connection = %connection.id, "media stream refused: bad credentials");
        close(&mut socket, POLICY_VIOLATION, "authentication failed").await;
        return false;
    }
    let order = if secrets.l16_little_endian { ByteOrder::LittleEndian } else { ByteOrder::BigEndian };
    let codec = match frames::codec_of(&start, order) {
        Ok(c) => c,
        Err(e) => {
            let _ = socket.send(Message::text(frames::error(100_003, "malformed_frame", &e))).await;
            close(&mut socket, UNSUPPORTED_DATA, "unsupported media format").await;
            return false;
        }
    };
    let call = StreamCall {
        codec,
        from: start.from.clone().unwrap_or_else(|| start.carrier_call_id.clone()),
        to: start.to.clone().unwrap_or_default(),
        client_state: start.client_state.clone(),
        extra: carrier_fields(carrier, &start),
    };
    let Beside { engine, calls, main, started } = beside;
    let placed = engine.clone();
    let created = main.spawn(async move { calls.started(&connection, call, &placed).await }).await;
    let (call_control_id, leg) = match created {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::error!(error = ?e, "could not create the call for a media stream");
            close(&mut socket, INTERNAL_ERROR, "could not create the call").await;
            return false;
        }
        Err(_) => return false, // Bond is shutting down
    };
    tracing::info!(carrier = carrier.as_str(), call = %call_control_id, stream = %start.stream_id, "media stream started");
    let _ = started.send(call_control_id);
    stream(&mut socket, &engine, carrier, &start, leg).await
}

/// Frames both ways until the carrier stops (true), its socket closes (false),
/// or the call ends from Bond's side.
async fn stream<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<S>,
    engine: &EngineHandle,
    carrier: Carrier,
    start: &Start,
    leg: StreamLeg,
) -> bool {
    let StreamLeg { id, mut output } = leg;
    let media = frames::MediaWriter::new(carrier, &start.stream_id);
    let mut next_chunk = 0u64;
    let mut frames_this_second = 0u32;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = socket.next() => {
                let text = match message {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        if carrier == Carrier::Twilio {
                            refuse_binary(socket, carrier).await;
                            return false;
                        }
                        bad_frame(socket, carrier, &FrameError::Malformed("binary frame".into())).await;
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
                    Some(Ok(_)) => continue,
                };
                frames_this_second += 1;
                if frames_this_second > MAX_FRAMES_PER_SECOND {
                    if frames_this_second == MAX_FRAMES_PER_SECOND + 1 {
                        let error = frames::error(100_005, "rate_limit_reached", "Too many frames");
                        let _ = socket.send(Message::text(error)).await;
                    }
                    continue;
                }
                let input = match frames::parse(&text) {
                    Ok(Inbound::Media { track, .. }) if track.as_deref().is_some_and(|t| t.starts_with("outbound")) => continue,
                    Ok(Inbound::Media { chunk, sequence, payload, .. }) => {
                        // Order by chunk (Telnyx and Twilio number them), else by sequence number.
                        let number = chunk.or(sequence).unwrap_or(next_chunk + 1);
                        next_chunk = next_chunk.max(number);
                        StreamInput::Media { chunk: number, payload: Bytes::from(payload) }
                    }
                    Ok(Inbound::Mark(name)) => StreamInput::Mark(name),
                    Ok(Inbound::Clear) => StreamInput::Clear,
                    Ok(Inbound::Dtmf(c)) => match DtmfDigit::from_char(c) {
                        Ok(digit) => StreamInput::Dtmf(digit),
                        Err(_) => {
                            bad_frame(socket, carrier, &FrameError::Malformed(format!("'{c}' is not a DTMF digit"))).await;
                            continue;
                        }
                    },
                    Ok(Inbound::Stop) => return true,
                    Ok(Inbound::Error { code, title, detail }) => {
                        tracing::warn!(call_stream = %start.stream_id, %code, %title, %detail, "carrier reported an error");
                        continue;
                    }
                    Ok(Inbound::Connected { .. } | Inbound::Start(_)) => continue,
                    Err(e) => {
                        bad_frame(socket, carrier, &e).await;
                        if carrier == Carrier::Twilio {
                            return false;
                        }
                        continue;
                    }
                };
                engine.stream_input(id, input);
            }
            out = output.recv() => {
                let frame = match out {
                    Some(StreamOutput::Media(payload)) => media.frame(&payload),
                    Some(StreamOutput::Mark(name)) => frames::mark(carrier, &start.stream_id, &name),
                    None => {
                        // The call ended on Bond's side.
                        close(socket, NORMAL, "call ended").await;
                        return true;
                    }
                };
                if socket.send(Message::text(frame)).await.is_err() {
                    return false;
                }
            }
            _ = second.tick() => frames_this_second = 0,
        }
    }
}

/// What `call.initiated` says of the carrier's stream.
fn carrier_fields(carrier: Carrier, start: &Start) -> serde_json::Map<String, Value> {
    let mut extra = serde_json::Map::new();
    extra.insert("stream_carrier".into(), json!(carrier.as_str()));
    extra.insert("stream_id".into(), json!(start.stream_id));
    let id_field = if carrier == Carrier::Telnyx { "carrier_call_control_id" } else { "carrier_call_sid" };
    extra.insert(id_field.into(), json!(start.carrier_call_id));
    if !start.custom_parameters.is_null() {
        extra.insert("custom_parameters".into(), start.custom_parameters.clone());
    }
    extra
}

async fn bad_frame<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<S>,
    carrier: Carrier,
    error: &FrameError,
) {
    tracing::debug!(carrier = carrier.as_str(), %error, "bad media-stream frame");
    match carrier {
        Carrier::Telnyx => {
            let frame = frames::error(error.code(), error.title(), &error.to_string());
            let _ = socket.send(Message::text(frame)).await;
        }
        // Twilio's error for a bad message is 31951; the stream cannot go on.
        Carrier::Twilio => close(socket, POLICY_VIOLATION, "31951 invalid message").await,
    }
}

async fn refuse_binary<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut WebSocketStream<S>, carrier: Carrier) {
    match carrier {
        Carrier::Twilio => close(socket, UNSUPPORTED_DATA, "31950 binary frames are not supported").await,
        Carrier::Telnyx => close(socket, UNSUPPORTED_DATA, "binary frames are not supported").await,
    }
}

async fn close<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut WebSocketStream<S>, code: u16, reason: &str) {
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
