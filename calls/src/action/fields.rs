//! The bodies of the call-control actions: serde structs for the plain ones,
//! checks for the rest. Fields Bond does not use are ignored, as Telnyx's are;
//! a field of the wrong type or value is a [`CallError::Invalid`] pointing at it.

use std::time::Duration;

use base64::Engine as _;
use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::ringtone::{self, Ringtone};
use bond_codecs::SampleRate;
use bond_media_engine::leg::DtmfTiming;
use bond_media_engine::runtime::RecordChannels;
use bond_media_engine::{DtmfPassing, SupervisorRole};
use bond_store::CallId;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{Action, HoldWith};
use crate::error::CallError;
use crate::queue::{Enqueue, NO_KEEP_AFTER_HANGUP};
use crate::recording::RecordOptions;
use crate::service::BridgeOptions;
use crate::speech::{Tracks, TranscriptionRequest, TranslationRequest};
use crate::Endpoint;

/// `body` as `T`; a field of the wrong type is 10002 pointing at it.
pub fn parse<T: DeserializeOwned>(body: &Value) -> Result<T, CallError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let pointer = if path == "." { "/".to_owned() } else { format!("/{}", path.replace('.', "/")) };
        CallError::invalid("10002", format!("{path}: {}", e.inner()), pointer)
    })
}

fn invalid(detail: impl Into<String>, pointer: &str) -> CallError {
    CallError::invalid("10002", detail, pointer)
}

/// `client_state`, on a dial or any action: base64 text.
pub fn check_client_state(text: &str) -> Result<(), CallError> {
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(_) => Ok(()),
        Err(_) => Err(invalid("client_state must be base64", "/client_state")),
    }
}

/// An action body's `client_state`, checked; `None` when absent or empty.
pub fn client_state(body: &Value) -> Result<Option<String>, CallError> {
    match body.get("client_state") {
        None => Ok(None),
        Some(Value::String(text)) => {
            check_client_state(text)?;
            Ok(Some(text.clone()).filter(|t| !t.is_empty()))
        }
        Some(_) => Err(invalid("client_state must be base64", "/client_state")),
    }
}

#[derive(Debug, Deserialize)]
pub struct Reject {
    pub cause: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StreamingStop {
    pub stream_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PlaybackStop {
    pub overlay: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Bridge {
    call_control_id_to_bridge_with: Option<CallId>,
    /// Telnyx's older name for the same field.
    call_control_id: Option<CallId>,
    #[serde(default)]
    prevent_double_bridge: bool,
    /// `self`: this call stays (parked) when the other hangs up.
    park_after_unbridge: Option<String>,
    mute_dtmf: Option<String>,
    #[serde(default)]
    play_ringtone: bool,
}

/// `bridge`: the other call, `prevent_double_bridge`, `park_after_unbridge`,
/// `mute_dtmf`, `play_ringtone` with its `ringtone` (`us` unless named), and
/// `record` from the answer.
pub fn bridge(body: &Value) -> Result<Action, CallError> {
    let fields: Bridge = parse(body)?;
    let pointer = "/call_control_id_to_bridge_with";
    let with = fields
        .call_control_id_to_bridge_with
        .or(fields.call_control_id)
        .ok_or_else(|| CallError::invalid("10005", "call_control_id_to_bridge_with is required", pointer))?;
    // mute_dtmf: "self" keeps the other call's digits from this one, "opposite" the reverse.
    let dtmf = match fields.mute_dtmf.as_deref() {
        None | Some("none") => DtmfPassing::Both,
        Some("self") => DtmfPassing::FromFirst,
        Some("opposite") => DtmfPassing::FromSecond,
        Some("both") => DtmfPassing::None,
        Some(other) => {
            return Err(invalid(
                format!("mute_dtmf '{other}' must be none, both, self or opposite"),
                "/mute_dtmf",
            ))
        }
    };
    let options = BridgeOptions {
        prevent_double_bridge: fields.prevent_double_bridge,
        park_after_unbridge: fields.park_after_unbridge.as_deref() == Some("self"),
        dtmf,
    };
    let ringtone = fields.play_ringtone.then_some(ringtone(&body["ringtone"], "/ringtone")?);
    let record = record_options(body, "record", "record_channels", "record_format")?;
    Ok(Action::Bridge { with, options, record, ringtone })
}

/// A `ringtone` (Telnyx's country codes; `us` when not given), or 422 at `pointer`.
pub(crate) fn ringtone(value: &Value, pointer: &str) -> Result<&'static Ringtone, CallError> {
    let named = match value {
        Value::Null => Ringtone::named(ringtone::DEFAULT),
        value => value.as_str().and_then(Ringtone::named),
    };
    named.ok_or_else(|| {
        let names: Vec<_> = ringtone::RINGTONES.iter().map(|r| r.name).collect();
        invalid(format!("ringtone must be one of {}", names.join(", ")), pointer)
    })
}

#[derive(Debug, Deserialize)]
struct Mute {
    direction: Option<String>,
}

/// `mute` / `unmute` (`on`): `direction` inbound, outbound or both.
pub fn mute(body: &Value, on: bool) -> Result<Action, CallError> {
    let (inbound, outbound) = match parse::<Mute>(body)?.direction.as_deref() {
        None | Some("both") => (Some(on), Some(on)),
        Some("inbound") => (Some(on), None),
        Some("outbound") => (None, Some(on)),
        Some(other) => {
            return Err(invalid(
                format!("direction '{other}' must be inbound, outbound or both"),
                "/direction",
            ))
        }
    };
    Ok(Action::Mute { inbound, outbound })
}

#[derive(Debug, Deserialize)]
struct Hold {
    audio_file: Option<String>,
}

/// `hold`: silence, or `audio_file` (a plain file name in the data directory) looped.
pub fn hold(body: &Value) -> Result<HoldWith, CallError> {
    let Some(file) = parse::<Hold>(body)?.audio_file else { return Ok(HoldWith::Silence) };
    Endpoint::parse(&format!("loop:play?file={file}"))
        .map_err(|_| invalid("audio_file must be a plain file name", "/audio_file"))?;
    Ok(HoldWith::Music(file))
}

#[derive(Debug, Deserialize)]
struct SendDtmf {
    digits: Option<String>,
    duration_millis: Option<u64>,
}

/// `digits` (0-9, *, #, A-D) and `duration_millis` (100-500). Telnyx's `w`/`W`
/// pauses are refused until the sender can pause.
pub fn dtmf(body: &Value) -> Result<(Vec<DtmfDigit>, DtmfTiming), CallError> {
    let fields: SendDtmf = parse(body)?;
    let text = fields
        .digits
        .filter(|d| !d.is_empty())
        .ok_or_else(|| CallError::invalid("10005", "digits is required", "/digits"))?;
    let tone_ms = match fields.duration_millis {
        None => 250,
        Some(ms @ 100..=500) => ms as u32,
        Some(_) => return Err(invalid("duration_millis must be 100-500", "/duration_millis")),
    };
    let mut digits = Vec::new();
    for c in text.chars() {
        if c == 'w' || c == 'W' {
            return Err(CallError::invalid(
                "10015",
                "pauses (w, W) in digits are not available yet",
                "/digits",
            ));
        }
        digits.push(
            DtmfDigit::from_char(c).map_err(|_| invalid(format!("'{c}' is not a DTMF digit"), "/digits"))?,
        );
    }
    Ok((digits, DtmfTiming { tone_ms, gap_ms: 100 }))
}

/// `record_start`: `format` (wav), `channels` (single, dual), Bond's `sample_rate` (16000, or the leg's).
pub fn record_start(body: &Value) -> Result<RecordOptions, CallError> {
    if body.get("recording_track").and_then(Value::as_str).is_some_and(|track| track != "both") {
        return Err(CallError::invalid(
            "10015",
            "only recording_track 'both' is available yet",
            "/recording_track",
        ));
    }
    check_format(body.get("format"), "/format")?;
    let channels = channels(body.get("channels"), "/channels")?;
    let rate = match body.get("sample_rate") {
        None | Some(Value::Null) => None,
        Some(v) if v.as_u64() == Some(16_000) => Some(SampleRate::Hz16000),
        Some(_) => {
            return Err(invalid("sample_rate must be 16000 (or left out for the leg's rate)", "/sample_rate"))
        }
    };
    Ok(RecordOptions { channels, rate })
}

/// `record: "record-from-answer"` with its channels and format, on dial and bridge.
pub fn record_options(
    body: &Value,
    key: &str,
    channels_key: &str,
    format_key: &str,
) -> Result<Option<RecordOptions>, CallError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) if v.as_str() == Some("record-from-answer") => {
            check_format(body.get(format_key), &format!("/{format_key}"))?;
            let channels = channels(body.get(channels_key), &format!("/{channels_key}"))?;
            Ok(Some(RecordOptions { channels, rate: None }))
        }
        Some(_) => Err(invalid(format!("{key} must be 'record-from-answer'"), &format!("/{key}"))),
    }
}

fn check_format(value: Option<&Value>, pointer: &str) -> Result<(), CallError> {
    match value.and_then(Value::as_str) {
        None | Some("wav") => Ok(()),
        Some("mp3") => {
            Err(CallError::invalid("10015", "mp3 recordings are not available yet; use wav", pointer))
        }
        Some(other) => Err(invalid(format!("'{other}' is not a recording format"), pointer)),
    }
}

fn channels(value: Option<&Value>, pointer: &str) -> Result<RecordChannels, CallError> {
    match value.and_then(Value::as_str) {
        None | Some("single") => Ok(RecordChannels::Single),
        Some("dual") => Ok(RecordChannels::Dual),
        Some(other) => Err(invalid(format!("channels '{other}' must be single or dual"), pointer)),
    }
}

#[derive(Debug, Deserialize)]
struct SwitchRole {
    role: Option<String>,
}

/// `switch_supervisor_role`'s `role`: barge, whisper or monitor.
pub fn supervisor_role(body: &Value) -> Result<SupervisorRole, CallError> {
    parse::<SwitchRole>(body)?
        .role
        .as_deref()
        .and_then(crate::supervisor_role)
        .ok_or_else(|| invalid("role must be barge, whisper or monitor", "/role"))
}

/// `client_state_update`: `client_state` is required (its base64 is checked with every action's).
pub fn client_state_update(body: &Value) -> Result<Action, CallError> {
    match body.get("client_state").and_then(Value::as_str) {
        Some(client_state) if !client_state.is_empty() => Ok(Action::ClientStateUpdate),
        _ => Err(CallError::invalid("10005", "client_state is required", "/client_state")),
    }
}

/// Telnyx's `transcription_engine` names; Bond runs its own engines for all of them.
const TELNYX_ENGINES: &[&str] = &["A", "B", "Google", "Telnyx", "Deepgram", "Azure"];

fn language(body: &Value, key: &str) -> Result<Option<String>, CallError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(tag))
            if (2..=35).contains(&tag.len())
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Ok(Some(tag.clone()))
        }
        Some(_) => {
            Err(invalid(format!("{key} must be a language code such as en or es-MX"), &format!("/{key}")))
        }
    }
}

/// `transcription_start`'s body; `engine` holds the name asked for, checked
/// against the running engines by [`transcription_engine`].
pub fn transcription(body: &Value) -> Result<TranscriptionRequest, CallError> {
    let engine = match body.get("transcription_engine") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(invalid("transcription_engine must be a name", "/transcription_engine")),
    };
    let tracks = match body.get("transcription_tracks").and_then(Value::as_str) {
        None | Some("inbound") => Tracks::Inbound,
        Some("outbound") => Tracks::Outbound,
        Some("both") => Tracks::Both,
        Some(_) => {
            return Err(invalid(
                "transcription_tracks must be inbound, outbound or both",
                "/transcription_tracks",
            ))
        }
    };
    let language = language(body, "language")?.unwrap_or_else(|| "en".into());
    // Telnyx takes it at the top or in `transcription_engine_config`.
    let config = body.get("transcription_engine_config");
    let interim = body.get("interim_results").or_else(|| config.and_then(|c| c.get("interim_results")));
    let interim_results = match interim {
        None => false,
        Some(Value::Bool(on)) => *on,
        Some(_) => return Err(invalid("interim_results must be true or false", "/interim_results")),
    };
    Ok(TranscriptionRequest { engine, tracks, language, interim_results })
}

/// The engine `asked` names among the running `engines` (lower-cased), `None`
/// for Telnyx's own names (Bond's configured order then), else 10002.
pub fn transcription_engine(asked: Option<&str>, engines: &[&str]) -> Result<Option<String>, CallError> {
    match asked {
        None => Ok(None),
        Some(name) if engines.iter().any(|e| e.eq_ignore_ascii_case(name)) => {
            Ok(Some(name.to_ascii_lowercase()))
        }
        Some(name) if TELNYX_ENGINES.contains(&name) => Ok(None),
        Some(_) => {
            let names = [engines, TELNYX_ENGINES].concat().join(", ");
            Err(invalid(format!("transcription_engine must be one of {names}"), "/transcription_engine"))
        }
    }
}

/// `translation_start`'s body as given; what it leaves out comes from the voice config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    from: Option<String>,
    to: Option<String>,
    voice_to_voice: Option<bool>,
}

pub fn translation(body: &Value) -> Result<Translation, CallError> {
    let voice_to_voice = match body.get("voice_to_voice") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid("voice_to_voice must be true or false", "/voice_to_voice")),
    };
    Ok(Translation {
        from: language(body, "translate_from")?,
        to: language(body, "translate_to")?,
        voice_to_voice,
    })
}

impl Translation {
    /// The request, with the organization's defaults for what the body left out.
    pub fn with_defaults(
        self,
        default_from: Option<&str>,
        default_to: Option<&str>,
        default_voice: bool,
    ) -> Result<TranslationRequest, CallError> {
        let from = self.from.or(default_from.map(str::to_owned));
        let to = self.to.or(default_to.map(str::to_owned));
        let (Some(from), Some(to)) = (from, to) else {
            return Err(invalid(
                "translate_from and translate_to are needed (or set them in /v2/voice_config)",
                "/translate_to",
            ));
        };
        Ok(TranslationRequest { from, to, voice_to_voice: self.voice_to_voice.unwrap_or(default_voice) })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn transcription_bodies_default_to_the_inbound_track_in_english_and_accept_telnyx_engine_names() {
        let r = transcription(&json!({})).unwrap();
        assert_eq!((r.engine, r.tracks, r.language.as_str()), (None, Tracks::Inbound, "en"));
        let body = json!({"transcription_engine": "B", "transcription_tracks": "both", "language": "es-MX"});
        let r = transcription(&body).unwrap();
        assert_eq!((r.tracks, r.language.as_str()), (Tracks::Both, "es-MX"));
        assert_eq!(transcription_engine(r.engine.as_deref(), &["whisper"]).unwrap(), None);
        assert_eq!(transcription_engine(Some("Whisper"), &["whisper"]).unwrap().as_deref(), Some("whisper"));
        assert!(transcription_engine(Some("nope"), &["whisper"]).is_err());
        for bad in [json!({"transcription_tracks": "left"}), json!({"language": "e n"})] {
            assert!(matches!(transcription(&bad), Err(CallError::Invalid { .. })), "{bad}");
        }
    }

    #[test]
    fn translation_bodies_fall_back_to_the_voice_config_and_need_both_languages() {
        let r = translation(&json!({"translate_to": "es"})).unwrap().with_defaults(Some("en"), None, true);
        let r = r.unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str(), r.voice_to_voice), ("en", "es", true));
        let body = json!({"translate_from": "es", "voice_to_voice": false});
        let r = translation(&body).unwrap().with_defaults(None, Some("en"), true).unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str(), r.voice_to_voice), ("es", "en", false));
        assert!(translation(&json!({"translate_from": "en"}))
            .unwrap()
            .with_defaults(None, None, false)
            .is_err());
    }
}

#[derive(Debug, Deserialize)]
struct EnqueueFields {
    queue_name: Option<String>,
    max_size: Option<i64>,
    max_wait_time_secs: Option<i64>,
    keep_after_hangup: Option<bool>,
}

/// `enqueue`: the queue's name (1 to 255 characters, as Telnyx's), its size
/// if this makes it, and how long the call may wait.
pub fn enqueue(body: &Value) -> Result<Action, CallError> {
    let fields = parse::<EnqueueFields>(body)?;
    let Some(name) = fields.queue_name.as_deref().map(str::trim) else {
        return Err(CallError::invalid("10005", "queue_name is required", "/queue_name"));
    };
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid("queue_name must be 1 to 255 characters", "/queue_name"));
    }
    if fields.keep_after_hangup == Some(true) {
        return Err(CallError::invalid("10015", NO_KEEP_AFTER_HANGUP, "/keep_after_hangup"));
    }
    let max_size = match fields.max_size {
        None => None,
        Some(n @ 1..=10_000) => Some(n as u32),
        Some(_) => return Err(invalid("max_size must be 1 to 10000", "/max_size")),
    };
    let max_wait = match fields.max_wait_time_secs {
        None => None,
        Some(secs @ 1..=86_400) => Some(Duration::from_secs(secs as u64)),
        Some(_) => return Err(invalid("max_wait_time_secs must be 1 to 86400", "/max_wait_time_secs")),
    };
    Ok(Action::Enqueue { name: name.to_owned(), ask: Enqueue { max_size, max_wait } })
}
