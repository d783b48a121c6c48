//! `playback_start`, `playback_stop` and `speak`: audio played to a call's
//! party. The file (fetched from `audio_url` or given as `playback_content`) or
//! espeak-ng's speech is decoded and resampled here, then the engine plays it
//! (`leg/player.rs`): queued clips replace what the party hears, an overlay is
//! mixed on top. `call.playback.*` / `call.speak.*` follow the engine's events;
//! clips still queued or playing when the call ends get `status: call_hangup`.
//! The actions' bodies are read here too (`playback_request`, `speak_request`).

use bond_store::CallId;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use bond_media_engine::leg::{Clip, PlaybackEnd};
use bond_media_engine::LegId;
use serde_json::{json, Map, Value};

use super::error::CallError;
use super::payload;
use super::service::CallService;
use bond_speech::audio::espeak::{self, Speech, MAX_TEXT_CHARS};
use bond_speech::audio::wav;
use bond_store::db::DbError;
use bond_store::CallRecord;

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a playback's audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSource {
    Url(String),
    /// `playback_content`: the WAV itself, base64-decoded.
    Content(Vec<u8>),
    /// `speak`: espeak-ng's voice.
    Speech(Speech),
}

/// The fields `playback_start` and `speak` share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackRequest {
    pub source: AudioSource,
    /// `loop`: how many times; `None` is `"infinity"`.
    pub plays: Option<u32>,
    pub overlay: bool,
    /// `stop`: first stop the current clip (`Some(false)`) or every queued one (`Some(true)`).
    pub stop_first: Option<bool>,
    pub client_state: Option<String>,
}

/// A clip Bond has handed the engine, for its events.
#[derive(Debug, Clone)]
pub(super) struct Playing {
    /// Whose webhook hears of it: the call's, or a conference creator's.
    call_control_id: CallId,
    /// Played to this conference (`conference.playback.*`, `conference.speak.*`).
    conference_id: Option<String>,
    speak: bool,
    media_url: Option<String>,
    overlay: bool,
    client_state: Option<String>,
}

impl Playing {
    fn event_type(&self, started: bool) -> &'static str {
        match (self.conference_id.is_some(), self.speak, started) {
            (false, false, true) => "call.playback.started",
            (false, false, false) => "call.playback.ended",
            (false, true, true) => "call.speak.started",
            (false, true, false) => "call.speak.ended",
            (true, false, true) => "conference.playback.started",
            (true, false, false) => "conference.playback.ended",
            (true, true, true) => "conference.speak.started",
            (true, true, false) => "conference.speak.ended",
        }
    }

    fn fields(&self, status: Option<&str>) -> Map<String, Value> {
        let mut fields = Map::new();
        if let Some(conference) = &self.conference_id {
            fields.insert("conference_id".into(), json!(conference));
        }
        if let Some(state) = &self.client_state {
            fields.insert("client_state".into(), json!(state));
        }
        if !self.speak {
            fields.insert("media_url".into(), json!(self.media_url));
            fields.insert("overlay".into(), json!(self.overlay));
        }
        if let Some(status) = status {
            fields.insert("status".into(), json!(status));
        }
        fields
    }
}

fn status(end: PlaybackEnd) -> &'static str {
    match end {
        PlaybackEnd::Completed => "completed",
        _ => "cancelled",
    }
}

impl CallService {
    /// Queue `samples` (at `rate`) on a leg's main track, after what is queued
    /// there, as clip `id` (its `PlaybackEnded` says when it has played).
    pub(super) async fn play_samples(
        &self,
        leg: LegId,
        samples: &[i16],
        rate: SampleRate,
        id: u64,
    ) -> Result<(), String> {
        let leg_rate = self.engine.leg_rate(leg).await.map_err(|e| e.to_string())?.ok_or("the leg ended")?;
        let samples = resample_clip(samples, rate.hz(), leg_rate).map_err(|e| e.to_string())?;
        let clip = Clip { id, rate: leg_rate, samples: samples.into(), plays: Some(1), duck: false };
        self.engine.play(leg, clip, false).await.map_err(|e| e.to_string())
    }

    /// `playback_start` and `speak`: fetch, decode or synthesize the audio (a bad
    /// file is a 422 now, not an event later), then queue it on the call's leg.
    pub async fn start_playback(&self, call: &CallRecord, request: PlaybackRequest) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        let speak = matches!(request.source, AudioSource::Speech(_));
        let media_url = match &request.source {
            AudioSource::Url(url) => Some(url.clone()),
            _ => None,
        };
        let playing = Playing {
            call_control_id: call.call_control_id.clone(),
            conference_id: None,
            speak,
            media_url,
            overlay: request.overlay,
            client_state: request.client_state,
        };
        let clip = self.load_clip(leg, request.source, request.plays).await?;
        if let Some(all) = request.stop_first {
            self.engine.stop_playback(leg, request.overlay, all).await?;
        }
        self.play(leg, clip, playing).await
    }

    /// `playback_stop`: the current clip of one track, or (`all`) its queue too.
    pub async fn stop_playback(&self, call: &CallRecord, overlay: bool, all: bool) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        self.engine.stop_playback(leg, overlay, all).await.map_err(CallError::from)
    }

    /// The audio of `source` (fetched, given or spoken) as a clip at the leg's
    /// rate, with a fresh id; what cannot be had or decoded is a 422 on its field.
    pub(super) async fn load_clip(
        &self,
        leg: LegId,
        source: AudioSource,
        plays: Option<u32>,
    ) -> Result<Clip, CallError> {
        let rate = self.engine.leg_rate(leg).await?.ok_or(CallError::Ended)?;
        self.load_clip_at(rate, source, plays).await
    }

    /// The audio of `source` as a clip at `rate`, with a fresh id.
    pub(super) async fn load_clip_at(
        &self,
        rate: SampleRate,
        source: AudioSource,
        plays: Option<u32>,
    ) -> Result<Clip, CallError> {
        let (bytes, pointer) = source_bytes(source).await?;
        self.clip(rate, &bytes, pointer, plays)
    }

    /// The audio as a clip at `rate`, with a fresh id.
    fn clip(
        &self,
        rate: SampleRate,
        bytes: &[u8],
        pointer: &'static str,
        plays: Option<u32>,
    ) -> Result<Clip, CallError> {
        let samples = wav::decode(bytes, rate).map_err(|e| CallError::invalid("10002", e, pointer))?;
        let id = self.next_id();
        Ok(Clip { id, rate, samples: Arc::from(samples), plays, duck: false })
    }

    /// `play` and `speak` on a conference: the clip, at the conference's clip
    /// rate, to everyone in it (engine conference `media`); its events go to
    /// the `creator`'s webhook with the conference's id.
    pub(super) async fn play_to_conference(
        &self,
        creator: &CallId,
        conference_id: &str,
        media: LegId,
        request: PlaybackRequest,
    ) -> Result<(), CallError> {
        let playing = Playing {
            call_control_id: creator.clone(),
            conference_id: Some(conference_id.to_owned()),
            speak: matches!(request.source, AudioSource::Speech(_)),
            media_url: match &request.source {
                AudioSource::Url(url) => Some(url.clone()),
                _ => None,
            },
            overlay: false,
            client_state: request.client_state,
        };
        let rate = bond_media_engine::CONFERENCE_CLIP_RATE;
        let clip = self.load_clip_at(rate, request.source, request.plays).await?;
        let id = clip.id;
        self.playbacks.insert(id, playing);
        self.engine.play_to_conference(media, clip, false).await.map_err(|e| {
            self.playbacks.remove(&id);
            CallError::from(e)
        })
    }

    /// `play` and `speak` to some of a conference's participants (their `legs`):
    /// the clip on each one's overlay track, over what the conference says to
    /// it. The first one's clip stands for all in the events (`conference.playback.*`
    /// to the creator), as one clip to the conference would.
    pub(super) async fn play_to_participants(
        &self,
        creator: &CallId,
        conference_id: &str,
        legs: &[LegId],
        request: PlaybackRequest,
    ) -> Result<(), CallError> {
        let speak = matches!(request.source, AudioSource::Speech(_));
        let media_url = match &request.source {
            AudioSource::Url(url) => Some(url.clone()),
            _ => None,
        };
        let (bytes, pointer) = source_bytes(request.source).await?;
        for (i, &leg) in legs.iter().enumerate() {
            let rate = self.engine.leg_rate(leg).await?.ok_or(CallError::Ended)?;
            let clip = self.clip(rate, &bytes, pointer, request.plays)?;
            if i > 0 {
                self.engine.play(leg, clip, true).await?;
                continue;
            }
            let playing = Playing {
                call_control_id: creator.clone(),
                conference_id: Some(conference_id.to_owned()),
                speak,
                media_url: media_url.clone(),
                overlay: true,
                client_state: request.client_state.clone(),
            };
            self.play(leg, clip, playing).await?;
        }
        Ok(())
    }

    async fn play(&self, leg: LegId, clip: Clip, playing: Playing) -> Result<(), CallError> {
        let (id, overlay) = (clip.id, playing.overlay);
        self.playbacks.insert(id, playing);
        self.engine.play(leg, clip, overlay).await.map_err(|e| {
            self.playbacks.remove(&id);
            CallError::from(e)
        })
    }

    /// The engine started or ended clip `id` (`end` is `None` at the start).
    pub(super) async fn playback_event(&self, id: u64, end: Option<PlaybackEnd>) {
        let Some(call) = self.playbacks.get(&id).map(|p| p.call_control_id.clone()) else {
            if end.is_some() {
                // Not the application's clip: a gather's prompt, or a message left on a voicemail?
                self.gather_prompt_ended(id).await;
                self.voicemail_message_ended(id).await;
            }
            return;
        };
        // Taken under the call's row: a clip starting or ending as the call
        // hangs up is reported before `call.hangup`, or, once the hangup has
        // ended it (`end_playbacks`), not at all.
        let report = |_: &CallRecord| {
            let playing = match end {
                None => self.playbacks.get(&id).map(|p| p.clone()),
                Some(_) => self.playbacks.remove(&id).map(|(_, p)| p),
            }?;
            Some((playing.event_type(end.is_none()), playing.fields(end.map(status))))
        };
        if let Err(e) = self.event_holding_call(&call, report).await {
            tracing::error!(%call, error = %e, "could not record a playback event");
        }
    }

    /// The call ended: its clips end with `status: call_hangup`, before `call.hangup`.
    pub(super) async fn end_playbacks(
        &self,
        tx: &mut bond_store::Tx,
        call: &CallRecord,
    ) -> Result<(), DbError> {
        let mut ids: Vec<u64> = self
            .playbacks
            .iter()
            .filter(|p| p.call_control_id == call.call_control_id && p.conference_id.is_none())
            .map(|p| *p.key())
            .collect();
        ids.sort_unstable();
        for id in ids {
            let Some((_, playing)) = self.playbacks.remove(&id) else { continue };
            let mut body = payload::base(call);
            body.extend(playing.fields(Some("call_hangup")));
            self.enqueue(tx, call, playing.event_type(false), Value::Object(body)).await?;
        }
        Ok(())
    }
}

async fn synthesize(speech: &Speech) -> Result<Vec<u8>, CallError> {
    espeak::synthesize(speech).await.map_err(|e| match e {
        espeak::SpeakError::UnknownLanguage(_) => CallError::invalid("10002", e.to_string(), "/language"),
        espeak::SpeakError::NotInstalled => CallError::invalid("10015", e.to_string(), "/payload"),
        espeak::SpeakError::Failed(_) => CallError::invalid("10002", e.to_string(), "/payload"),
    })
}

/// GET `url` (http or https), at most [`wav::MAX_WAV_BYTES`], within 10 s.
async fn fetch(url: &str) -> Result<Vec<u8>, CallError> {
    let refuse = |detail: String| CallError::invalid("10002", detail, "/audio_url");
    let parsed =
        bond_store::egress::http_url(url).map_err(|refused| refuse(format!("audio_url: {refused}")))?;
    let client = bond_store::egress::client(reqwest::Client::builder().timeout(FETCH_TIMEOUT))
        .build()
        .map_err(|e| CallError::Internal(e.to_string()))?;
    let mut response = client
        .get(parsed)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| refuse(format!("audio_url could not be fetched: {e}")))?;
    let mut bytes = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| refuse(format!("audio_url could not be fetched: {e}")))?
    {
        if bytes.len() + chunk.len() > wav::MAX_WAV_BYTES {
            return Err(refuse(format!("audio_url is larger than {} MiB", wav::MAX_WAV_BYTES / 1024 / 1024)));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn client_state(body: &Value) -> Option<String> {
    body.get("client_state").and_then(Value::as_str).map(str::to_owned)
}

/// `playback_start`: `audio_url` or `playback_content` (base64 WAV), and the
/// fields it shares with `speak`.
pub fn playback_request(body: &Value) -> Result<PlaybackRequest, CallError> {
    let invalid = |detail: &str, pointer: &'static str| CallError::invalid("10002", detail, pointer);
    let unavailable = |detail: &str, pointer: &'static str| CallError::invalid("10015", detail, pointer);
    if body.get("media_name").is_some_and(|v| !v.is_null()) {
        return Err(unavailable("media_name is not available in Bond; use audio_url", "/media_name"));
    }
    if body.get("audio_type").and_then(Value::as_str).is_some_and(|t| t != "wav") {
        return Err(unavailable("only wav audio can be played; mp3 is not available yet", "/audio_type"));
    }
    let url = body.get("audio_url").and_then(Value::as_str);
    let content = body.get("playback_content").and_then(Value::as_str);
    let source = match (url, content) {
        (Some(url), None) => AudioSource::Url(url.to_owned()),
        (None, Some(content)) => AudioSource::Content(
            base64::engine::general_purpose::STANDARD
                .decode(content)
                .map_err(|_| invalid("playback_content must be base64", "/playback_content"))?,
        ),
        (None, None) => return Err(invalid("audio_url or playback_content is required", "/audio_url")),
        (Some(_), Some(_)) => {
            return Err(invalid("give audio_url or playback_content, not both", "/playback_content"))
        }
    };
    queued(body, source, body.get("overlay").and_then(Value::as_bool).unwrap_or(false))
}

/// `speak`: `payload` (text, or SSML with `payload_type: ssml`), `language`,
/// `voice`, and the fields it shares with `playback_start`.
pub fn speak_request(body: &Value) -> Result<PlaybackRequest, CallError> {
    let text = body.get("payload").and_then(Value::as_str).unwrap_or_default();
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(CallError::invalid(
            "10002",
            format!("payload must be 1 to {MAX_TEXT_CHARS} characters"),
            "/payload",
        ));
    }
    let ssml = match body.get("payload_type").and_then(Value::as_str) {
        None | Some("text") => false,
        Some("ssml") => true,
        Some(_) => {
            return Err(CallError::invalid("10002", "payload_type must be text or ssml", "/payload_type"))
        }
    };
    let language = body.get("language").and_then(Value::as_str).unwrap_or("en-US");
    let voice = body.get("voice").and_then(Value::as_str).unwrap_or("female");
    let speech = Speech::in_place_of(text.to_owned(), ssml, language, voice);
    queued(body, AudioSource::Speech(speech), false)
}

/// `loop` (1-100 or `"infinity"`), `stop` (`current`, `all`), `target_legs: self`, `client_state`.
fn queued(body: &Value, source: AudioSource, overlay: bool) -> Result<PlaybackRequest, CallError> {
    let invalid = |detail: &str, pointer: &'static str| CallError::invalid("10002", detail, pointer);
    if body.get("target_legs").and_then(Value::as_str).is_some_and(|t| t != "self") {
        return Err(CallError::invalid(
            "10015",
            "target_legs other than self is not available yet",
            "/target_legs",
        ));
    }
    let plays = match body.get("loop") {
        None | Some(Value::Null) => Some(1),
        Some(Value::String(s)) if s == "infinity" => None,
        Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n @ 1..=100) => Some(n as u32),
            _ => return Err(invalid("loop must be 1 to 100 or \"infinity\"", "/loop")),
        },
    };
    Ok(PlaybackRequest {
        source,
        plays,
        overlay,
        stop_first: stop_all(body)?,
        client_state: client_state(body),
    })
}

/// `stop`: `all` (`Some(true)`), `current` (`Some(false)`), or not given.
pub fn stop_all(body: &Value) -> Result<Option<bool>, CallError> {
    match body.get("stop").and_then(Value::as_str) {
        None => Ok(None),
        Some("current") => Ok(Some(false)),
        Some("all") => Ok(Some(true)),
        Some(_) => Err(CallError::invalid("10002", "stop must be current or all", "/stop")),
    }
}

/// The WAV bytes of `source` (fetched, given, or spoken), and the field a
/// problem with them points at.
async fn source_bytes(source: AudioSource) -> Result<(Vec<u8>, &'static str), CallError> {
    Ok(match source {
        AudioSource::Url(url) => (fetch(&url).await?, "/audio_url"),
        AudioSource::Content(bytes) => (bytes, "/playback_content"),
        AudioSource::Speech(speech) => (synthesize(&speech).await?, "/payload"),
    })
}
