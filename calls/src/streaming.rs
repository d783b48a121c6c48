//! `streaming_start` / `streaming_stop`: a call's audio streamed out to the
//! application's WebSocket in Telnyx's media-streaming format
//! (`bond_streams::fork`), with `streaming.started`, `streaming.stopped` and
//! `streaming.failed`. A call has one stream at a time; it ends with the call.

use bond_codecs::l16::ByteOrder;
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::{EngineEvent, LegId};
use bond_store::CallId;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::error::CallError;
use super::service::CallService;
use bond_store::CallRecord;
use bond_streams::back::{BackChannel, Inject, Reply, TargetLegs};
use bond_streams::fork::{self, Ended, Notice, StreamRequest, StreamStart};

/// The name of a call's streaming fork (beside transcription's).
const STREAM_FORK: &str = "stream";

impl CallService {
    /// Start streaming a live call's audio; returns at once, and
    /// `streaming.started` (with the stream's id) follows when the socket is open.
    pub async fn start_streaming(&self, call: &CallRecord, request: StreamRequest) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        let stream_id = uuid::Uuid::new_v4().to_string();
        let claimed = self.live.update(&call.call_control_id, |c| {
            let free = c.stream.is_none();
            if free {
                c.stream = Some(stream_id.clone());
            }
            free
        });
        if !claimed {
            return Err(CallError::invalid(
                "90019",
                "The call is already streaming; stop that stream first.",
                "/call_control_id",
            ));
        }
        let start = StreamStart {
            stream_id: stream_id.clone(),
            user_id: call.organization_id.clone(),
            call_control_id: call.call_control_id.clone(),
            call_session_id: call.call_session_id.clone(),
            from: call.from.clone(),
            to: call.to.clone(),
            client_state: call.client_state.clone(),
        };
        tokio::spawn(self.clone().run_stream(leg, request, start));
        Ok(())
    }

    /// `stream_url` on dial: stream from the answer (at once for a call answered already).
    pub async fn stream_from_answer(
        &self,
        call: &CallRecord,
        request: StreamRequest,
    ) -> Result<(), CallError> {
        let id = &call.call_control_id;
        self.live.update(id, |c| c.pending_stream = Some(request));
        if self.answered_already(call).await? {
            self.start_pending_stream(call).await;
        }
        Ok(())
    }

    /// A dialed call was answered: start the stream its dial asked for.
    pub(super) async fn start_pending_stream(&self, call: &CallRecord) {
        let Some(request) = self.live.update(&call.call_control_id, |c| c.pending_stream.take()) else {
            return;
        };
        if let Err(e) = self.start_streaming(call, request).await {
            tracing::warn!(call = %call.call_control_id, error = ?e, "the dial's stream could not start");
        }
    }

    /// `streaming_stop`: end the call's stream (`stream_id`, if given, must be it).
    pub async fn stop_streaming(&self, call: &CallRecord, stream_id: Option<&str>) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        let removed = self.live.update(&call.call_control_id, |c| {
            c.stream.take_if(|running| stream_id.is_none_or(|id| id == running)).is_some()
        });
        if !removed {
            return Err(CallError::invalid(
                "90020",
                "The call has no such stream.",
                if stream_id.is_some() { "/stream_id" } else { "/call_control_id" },
            ));
        }
        // The stream's task sees its fork end, sends `stop` and reports `streaming.stopped`.
        self.engine.stop_fork(leg, STREAM_FORK).await?;
        Ok(())
    }

    async fn run_stream(self, leg: LegId, request: StreamRequest, start: StreamStart) {
        let call = &start.call_control_id;
        let ended = match fork::connect(&request.url, request.auth_token.as_deref()).await {
            Err(reason) => Ended::Failed(reason),
            Ok(mut socket) => match self.engine.start_fork(leg, STREAM_FORK).await {
                Err(e) => {
                    let _ = socket.close(None).await;
                    Ended::Failed(format!("the call's audio could not be forked: {e}"))
                }
                Ok(audio) if !self.streams_to(call, &start.stream_id) => {
                    // Stopped while it was connecting.
                    let _ = self.engine.stop_fork(leg, STREAM_FORK).await;
                    let _ = socket.close(None).await;
                    drop(audio);
                    Ended::Stopped
                }
                Ok(audio) => {
                    self.stream_event(call, "streaming.started", &request, &start.stream_id, None).await;
                    let (inject, injected) = tokio::sync::mpsc::unbounded_channel();
                    let (notify, notices) = tokio::sync::mpsc::unbounded_channel();
                    tokio::spawn(self.clone().pass_digits(leg, notify.clone()));
                    if let Some(back) = request.back {
                        tokio::spawn(self.clone().play_back(
                            start.clone(),
                            leg,
                            back.target,
                            injected,
                            notify,
                        ));
                    }
                    let ended = fork::run(socket, audio, &request, &start, inject, notices).await;
                    if ended != Ended::Stopped {
                        let _ = self.engine.stop_fork(leg, STREAM_FORK).await;
                    }
                    ended
                }
            },
        };
        self.live.update(call, |c| c.stream.take_if(|running| *running == start.stream_id));
        match ended {
            Ended::Stopped | Ended::Closed => {
                self.stream_event(call, "streaming.stopped", &request, &start.stream_id, None).await
            }
            Ended::Failed(reason) => {
                tracing::warn!(%call, url = %request.url, %reason, "stream failed");
                self.stream_event(call, "streaming.failed", &request, &start.stream_id, Some(&reason)).await
            }
        }
    }

    /// Play what the application sends back on its stream to the target legs
    /// (`TargetLegs::legs`), until the stream ends. What waits on the channel
    /// is taken at once, so a burst is queued as one clip (`Inject::joined`).
    /// Audio that cannot be played is never dropped quietly: the application
    /// gets an `error` frame, and the log a line.
    async fn play_back(
        self,
        start: StreamStart,
        own: LegId,
        target: TargetLegs,
        mut injected: UnboundedReceiver<Inject>,
        notify: UnboundedSender<Notice>,
    ) {
        while let Some(first) = injected.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = injected.try_recv() {
                batch.push(more);
            }
            let partner = match target {
                TargetLegs::Own => None,
                TargetLegs::Opposite | TargetLegs::Both => {
                    let call =
                        self.store.get_call(&start.user_id, &start.call_control_id).await.ok().flatten();
                    call.and_then(|c| c.bridged_with).and_then(|p| self.registry.leg(&p))
                }
            };
            let legs = target.legs(own, partner);
            for inject in Inject::joined(batch) {
                for &leg in &legs {
                    let result = match &inject {
                        Inject::Clear => {
                            self.engine.stop_playback(leg, false, true).await.map_err(|e| e.to_string())
                        }
                        Inject::Play { samples, rate } => {
                            self.play_samples(leg, samples, *rate, self.next_id()).await
                        }
                    };
                    if let Err(e) = result {
                        tracing::info!(call = %start.call_control_id, error = %e, "audio sent back on the stream not played");
                        let detail = format!("the audio could not be played: {e}");
                        let _ = notify.send(Notice::Error(Reply::Error {
                            code: 100_002,
                            title: "unknown_error",
                            detail,
                        }));
                    }
                }
            }
        }
    }

    /// Tell the stream each digit the call's party presses, until the stream ends.
    async fn pass_digits(self, leg: LegId, notify: UnboundedSender<Notice>) {
        let mut events = self.engine.subscribe();
        loop {
            tokio::select! {
                () = notify.closed() => return,
                event = events.recv() => match event {
                    Ok(EngineEvent::DtmfReceived { leg: from, digit, .. }) if from == leg => {
                        let _ = notify.send(Notice::Dtmf(digit.as_char()));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Whether the call's current stream is `stream_id`.
    fn streams_to(&self, call: &CallId, stream_id: &str) -> bool {
        self.live.read(call, |c| c.stream.as_deref() == Some(stream_id)).unwrap_or(false)
    }

    async fn stream_event(
        &self,
        call: &CallId,
        event_type: &str,
        request: &StreamRequest,
        stream_id: &str,
        failure: Option<&str>,
    ) {
        let mut fields = Map::new();
        fields.insert("stream_url".into(), json!(request.url));
        fields.insert("stream_id".into(), json!(stream_id));
        if let Some(reason) = failure {
            fields.insert("failure_reason".into(), json!(reason));
            fields.insert("stream_type".into(), json!("websocket"));
            fields.insert(
                "stream_params".into(),
                json!({ "stream_url": request.url, "track": request.track.as_str() }),
            );
        }
        if let Err(e) = self.call_event(call, event_type, fields).await {
            tracing::error!(%call, error = %e, "could not record {event_type}");
        }
    }
}

/// A stream request from `streaming_start`'s body.
pub fn stream_request(body: &Value) -> Result<StreamRequest, CallError> {
    let invalid = |detail: &str, pointer: &'static str| CallError::invalid("10002", detail, pointer);
    let url = body.get("stream_url").and_then(Value::as_str).unwrap_or_default();
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") => {}
        _ => return Err(invalid("stream_url must be a ws:// or wss:// URL", "/stream_url")),
    }
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let track = match text("stream_track") {
        None => fork::Track::Inbound,
        Some(t) => fork::Track::parse(t).ok_or_else(|| {
            invalid("stream_track must be inbound_track, outbound_track or both_tracks", "/stream_track")
        })?,
    };
    let codec = fork::stream_codec(text("stream_codec").unwrap_or("default")).ok_or_else(|| {
        invalid("stream_codec must be PCMU, PCMA, G722, OPUS, L16 or default", "/stream_codec")
    })?;
    let back = match text("stream_bidirectional_mode") {
        None => None,
        Some("rtp") => Some(back_channel(body)?),
        Some("mp3") => Some(BackChannel { codec: None, ..back_channel(body)? }),
        Some(_) => {
            return Err(invalid("stream_bidirectional_mode must be rtp or mp3", "/stream_bidirectional_mode"))
        }
    };
    let auth_token = text("stream_auth_token").map(str::to_owned);
    if auth_token.as_ref().is_some_and(|t| t.len() > 4000) {
        return Err(invalid("stream_auth_token is at most 4000 characters", "/stream_auth_token"));
    }
    Ok(StreamRequest {
        url: url.to_owned(),
        track,
        codec,
        auth_token,
        custom_parameters: custom_parameters(body)?,
        back,
    })
}

/// `stream_bidirectional_codec`, `_sampling_rate` (L16) and `_target_legs`.
fn back_channel(body: &Value) -> Result<BackChannel, CallError> {
    let invalid = |detail: &str, pointer: &'static str| CallError::invalid("10002", detail, pointer);
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let rate = match body.get("stream_bidirectional_sampling_rate").and_then(Value::as_u64) {
        None | Some(8000) => SampleRate::Hz8000,
        Some(16000) => SampleRate::Hz16000,
        Some(_) => {
            return Err(invalid(
                "stream_bidirectional_sampling_rate must be 8000 or 16000 in Bond",
                "/stream_bidirectional_sampling_rate",
            ))
        }
    };
    let codec = match text("stream_bidirectional_codec").unwrap_or("PCMU") {
        "L16" => Codec::L16 { rate, order: ByteOrder::BigEndian },
        other => fork::stream_codec(other).filter(|_| other != "default").ok_or_else(|| {
            invalid(
                "stream_bidirectional_codec must be PCMU, PCMA, G722, OPUS or L16",
                "/stream_bidirectional_codec",
            )
        })?,
    };
    let target = TargetLegs::parse(text("stream_bidirectional_target_legs").unwrap_or("opposite"))
        .ok_or_else(|| {
            invalid(
                "stream_bidirectional_target_legs must be both, self or opposite",
                "/stream_bidirectional_target_legs",
            )
        })?;
    Ok(BackChannel { codec: Some(codec), target })
}

/// Telnyx `custom_parameters` (`[{name, value}]`) as one object.
fn custom_parameters(body: &Value) -> Result<Value, CallError> {
    let mut out = Map::new();
    let Some(list) = body.get("custom_parameters").filter(|v| !v.is_null()) else {
        return Ok(Value::Object(out));
    };
    let bad = || {
        CallError::invalid("10002", "custom_parameters must be a list of {name, value}", "/custom_parameters")
    };
    for item in list.as_array().ok_or_else(bad)? {
        let name = item.get("name").and_then(Value::as_str).ok_or_else(bad)?;
        out.insert(name.to_owned(), item.get("value").cloned().unwrap_or(Value::Null));
    }
    Ok(Value::Object(out))
}
