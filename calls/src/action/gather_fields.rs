//! The bodies of `gather`, `gather_using_audio` and `gather_using_speak`:
//! Telnyx's fields over its defaults. Digits are 0-9, `*`, `#` and A-D.

use std::time::Duration;

use bond_codecs::dtmf::DtmfDigit;
use serde::Deserialize;
use serde_json::Value;

use super::fields::parse;
use super::Action;
use crate::error::CallError;
use crate::gather::{GatherSpec, GatherUsing, PromptedSpec};
use crate::playback::{speak_request, AudioSource};

/// The longest any gather timer may be (an hour).
const MAX_MILLIS: u64 = 3_600_000;
/// The most prompts a prompted gather may play.
const MAX_TRIES: u32 = 100;

#[derive(Debug, Deserialize)]
struct Fields {
    minimum_digits: Option<u32>,
    maximum_digits: Option<u32>,
    timeout_millis: Option<u64>,
    initial_timeout_millis: Option<u64>,
    inter_digit_timeout_millis: Option<u64>,
    terminating_digit: Option<String>,
    valid_digits: Option<String>,
    gather_id: Option<String>,
    maximum_tries: Option<u32>,
    audio_url: Option<String>,
    invalid_audio_url: Option<String>,
    invalid_payload: Option<String>,
    /// Bond's speech gather: `"dtmf"` (the default) or `"dtmf speech"`.
    bond_input: Option<String>,
    /// The language a speech gather listens for (BCP 47, default `en`).
    bond_speech_language: Option<String>,
}

fn invalid(detail: impl Into<String>, pointer: &str) -> CallError {
    CallError::invalid("10002", detail, pointer)
}

fn millis(value: Option<u64>, key: &str, default: Duration) -> Result<Duration, CallError> {
    match value {
        None => Ok(default),
        Some(ms @ 1..=MAX_MILLIS) => Ok(Duration::from_millis(ms)),
        Some(_) => Err(invalid(format!("{key} must be 1 to {MAX_MILLIS}"), &format!("/{key}"))),
    }
}

/// What every gather shares: how many digits, which, the terminating one, the
/// wait between digits.
fn digits(asked: &Fields) -> Result<GatherSpec, CallError> {
    let mut spec = GatherSpec { gather_id: asked.gather_id.clone(), ..GatherSpec::default() };
    let count = |value: u32, key: &str| match value {
        1..=128 => Ok(value as usize),
        _ => Err(invalid(format!("{key} must be 1 to 128"), &format!("/{key}"))),
    };
    if let Some(n) = asked.minimum_digits {
        spec.minimum_digits = count(n, "minimum_digits")?;
    }
    if let Some(n) = asked.maximum_digits {
        spec.maximum_digits = count(n, "maximum_digits")?;
    }
    if spec.minimum_digits > spec.maximum_digits {
        return Err(invalid("minimum_digits must not exceed maximum_digits", "/minimum_digits"));
    }
    spec.inter_digit_timeout =
        millis(asked.inter_digit_timeout_millis, "inter_digit_timeout_millis", spec.inter_digit_timeout)?;
    let keys = |text: &str| text.chars().all(|c| DtmfDigit::from_char(c).is_ok());
    if let Some(digit) = &asked.terminating_digit {
        let mut chars = digit.chars();
        spec.terminating_digit = match (chars.next(), chars.next()) {
            (None, _) => None,
            (Some(c), None) if keys(digit) => Some(c),
            _ => {
                return Err(invalid("terminating_digit must be one of 0-9, *, #, A-D", "/terminating_digit"))
            }
        };
    }
    if let Some(valid) = &asked.valid_digits {
        if valid.is_empty() || !keys(valid) {
            return Err(invalid("valid_digits must be digits from 0-9, *, #, A-D", "/valid_digits"));
        }
        spec.valid_digits = valid.clone();
    }
    Ok(spec)
}

/// `gather`: also `initial_timeout_millis` (before the first digit) and
/// `timeout_millis` (the whole gather).
pub fn gather(body: &Value) -> Result<Action, CallError> {
    let asked = parse::<Fields>(body)?;
    let mut spec = digits(&asked)?;
    spec.timeout = millis(asked.timeout_millis, "timeout_millis", spec.timeout)?;
    spec.initial_timeout =
        millis(asked.initial_timeout_millis, "initial_timeout_millis", spec.initial_timeout)?;
    spec.speech = speech_language(&asked)?;
    Ok(Action::Gather(spec))
}

/// The language to listen in when `bond_input` asks for speech as well as digits.
fn speech_language(asked: &Fields) -> Result<Option<String>, CallError> {
    let words: Vec<&str> = asked.bond_input.as_deref().unwrap_or("dtmf").split_whitespace().collect();
    match words.as_slice() {
        ["dtmf"] => Ok(None),
        ["dtmf", "speech"] | ["speech", "dtmf"] => {
            Ok(Some(asked.bond_speech_language.clone().unwrap_or_else(|| "en".into())))
        }
        _ => Err(invalid("bond_input must be \"dtmf\" or \"dtmf speech\"", "/bond_input")),
    }
}

/// `gather_using_audio` (`speak` false: `audio_url`, `invalid_audio_url`) and
/// `gather_using_speak` (`payload`, `invalid_payload`, spoken in `voice` and
/// `language`): also `maximum_tries` (3) and `timeout_millis` (60,000: the
/// wait after each prompt).
pub fn gather_using(body: &Value, speak: bool) -> Result<Action, CallError> {
    let asked = parse::<Fields>(body)?;
    let mut spec = PromptedSpec::new(digits(&asked)?);
    spec.gather.speech = speech_language(&asked)?;
    // Each try is as long as the caller keeps pressing; only the waits end it.
    spec.gather.timeout = Duration::from_millis(MAX_MILLIS);
    spec.gather.initial_timeout =
        millis(asked.timeout_millis, "timeout_millis", spec.gather.initial_timeout)?;
    if let Some(tries) = asked.maximum_tries {
        if !(1..=MAX_TRIES).contains(&tries) {
            return Err(invalid(format!("maximum_tries must be 1 to {MAX_TRIES}"), "/maximum_tries"));
        }
        spec.maximum_tries = tries;
    }
    let (prompt, invalid_prompt) = if speak { spoken(body, &asked)? } else { files(body, &asked)? };
    spec.has_invalid_prompt = invalid_prompt.is_some();
    Ok(Action::GatherUsing(Box::new(GatherUsing { spec, prompt, invalid: invalid_prompt })))
}

/// `audio_url` and `invalid_audio_url`; Telnyx's uploaded media are not in Bond.
fn files(body: &Value, asked: &Fields) -> Result<(AudioSource, Option<AudioSource>), CallError> {
    for key in ["media_name", "invalid_media_name"] {
        if body.get(key).is_some_and(|v| !v.is_null()) {
            let detail = format!("{key} is not available in Bond; use a URL");
            return Err(CallError::invalid("10015", detail, format!("/{key}")));
        }
    }
    let prompt = asked.audio_url.clone().ok_or_else(|| invalid("audio_url is required", "/audio_url"))?;
    Ok((AudioSource::Url(prompt), asked.invalid_audio_url.clone().map(AudioSource::Url)))
}

/// `payload` and `invalid_payload`, both checked as `speak` checks its payload.
fn spoken(body: &Value, asked: &Fields) -> Result<(AudioSource, Option<AudioSource>), CallError> {
    let prompt = speak_request(body)?.source;
    let invalid_prompt = match &asked.invalid_payload {
        Some(text) => {
            let mut other = body.clone();
            other["payload"] = Value::String(text.clone());
            let request = speak_request(&other).map_err(|e| match e {
                CallError::Invalid { code, detail, pointer } if pointer == "/payload" => CallError::Invalid {
                    code,
                    detail: detail.replace("payload", "invalid_payload"),
                    pointer: "/invalid_payload".into(),
                },
                other => other,
            })?;
            Some(request.source)
        }
        None => None,
    };
    Ok((prompt, invalid_prompt))
}
