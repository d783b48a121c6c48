//! Telnyx answering-machine detection on the API: the modes, the
//! `answering_machine_detection_config` object, and the events each mode sends.

use bond_media_engine::amd::{phrases, AmdConfig, AmdEvent, GreetingEnd, GreetingWatch, Verdict};
use serde_json::{json, Map, Value};

/// Telnyx `answering_machine_detection` values (besides `disabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdMode {
    /// `call.machine.detection.ended` only.
    Detect,
    /// Adds `call.machine.greeting.ended` when a beep is heard.
    DetectBeep,
    /// As `detect_beep`, watching 30 s for the beep.
    DetectWords,
    /// Finds the greeting's end (beep or long silence) and reports both.
    GreetingEnd,
    /// The `call.machine.premium.*` events.
    Premium,
}

pub const AMD_MODES: &[&str] =
    &["disabled", "detect", "detect_beep", "detect_words", "greeting_end", "premium"];

impl AmdMode {
    /// `Ok(None)` for `disabled`.
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        Ok(Some(match s {
            "disabled" => return Ok(None),
            "detect" => Self::Detect,
            "detect_beep" => Self::DetectBeep,
            "detect_words" => Self::DetectWords,
            "greeting_end" => Self::GreetingEnd,
            "premium" => Self::Premium,
            _ => return Err(format!("answering_machine_detection must be one of {}", AMD_MODES.join(", "))),
        }))
    }

    fn watch(self) -> GreetingWatch {
        match self {
            Self::Detect => GreetingWatch::None,
            Self::DetectBeep | Self::DetectWords => GreetingWatch::Beep,
            Self::GreetingEnd | Self::Premium => GreetingWatch::EndOrBeep,
        }
    }
}

/// Detection as asked for one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmdRequest {
    pub mode: AmdMode,
    pub config: AmdConfig,
}

impl AmdRequest {
    /// `mode` with no `answering_machine_detection_config`: the greeting's
    /// words count, in English.
    pub fn defaults(mode: AmdMode) -> Self {
        let mut c = AmdConfig { watch: mode.watch(), words_language: Some("en"), ..AmdConfig::default() };
        if mode == AmdMode::DetectWords {
            c.greeting_total_analysis_time_millis = c.greeting_total_analysis_time_millis.max(30_000);
        }
        Self { mode, config: c }
    }
}

/// Build a request from the mode and the (optional) config object. Errors name the bad field.
pub fn request(mode: &str, config: Option<&Value>) -> Result<Option<AmdRequest>, (String, String)> {
    let Some(mode) = AmdMode::parse(mode).map_err(|e| (e, "/answering_machine_detection".to_owned()))? else {
        return Ok(None);
    };
    let mut c = AmdRequest::defaults(mode).config;
    let pointer = |key: &str| format!("/answering_machine_detection_config/{key}");
    let fields = match config {
        None | Some(Value::Null) => return Ok(Some(AmdRequest { mode, config: c })),
        Some(Value::Object(fields)) => fields,
        Some(_) => {
            return Err((
                "answering_machine_detection_config must be an object".into(),
                "/answering_machine_detection_config".into(),
            ))
        }
    };
    for (key, value) in fields {
        if key == "language" {
            // Bond's own: the language the greeting's words are heard in.
            let tag = value.as_str().unwrap_or_default();
            c.words_language = Some(phrases::language(tag).ok_or_else(|| {
                (format!("language must be one of {}", phrases::LANGUAGES.join(", ")), pointer(key))
            })?);
            continue;
        }
        if key == "beep_detection_profile" {
            // Bond always checks a beep's frequency and its surroundings; both values are accepted.
            if !matches!(value.as_str(), Some("both" | "freq_only")) {
                return Err(("beep_detection_profile must be 'both' or 'freq_only'".into(), pointer(key)));
            }
            continue;
        }
        let (slot, max): (&mut u32, u32) = match key.as_str() {
            "total_analysis_time_millis" => (&mut c.total_analysis_time_millis, 60_000),
            "after_greeting_silence_millis" => (&mut c.after_greeting_silence_millis, 10_000),
            "between_words_silence_millis" => (&mut c.between_words_silence_millis, 5_000),
            "greeting_duration_millis" => (&mut c.greeting_duration_millis, 60_000),
            "initial_silence_millis" => (&mut c.initial_silence_millis, 60_000),
            "maximum_number_of_words" => (&mut c.maximum_number_of_words, 1_000),
            "maximum_word_length_millis" => (&mut c.maximum_word_length_millis, 60_000),
            "greeting_total_analysis_time_millis" => (&mut c.greeting_total_analysis_time_millis, 120_000),
            "greeting_silence_duration_millis" => (&mut c.greeting_silence_duration_millis, 60_000),
            "silence_threshold" => {
                let v = value.as_u64().filter(|v| *v <= 32_767).ok_or_else(|| {
                    ("silence_threshold must be an integer from 0 to 32767".to_owned(), pointer(key))
                })?;
                c.silence_threshold = v as u16;
                continue;
            }
            _ => return Err((format!("unknown field '{key}'"), pointer(key))),
        };
        *slot = value
            .as_u64()
            .filter(|v| (1..=u64::from(max)).contains(v))
            .ok_or_else(|| (format!("{key} must be an integer from 1 to {max}"), pointer(key)))?
            as u32;
    }
    Ok(Some(AmdRequest { mode, config: c }))
}

/// The webhook a detector report becomes under `mode`: its type and the fields
/// added to the call's base payload. `None` when the mode does not report it.
pub fn webhook(mode: AmdMode, event: AmdEvent) -> Option<(&'static str, Map<String, Value>)> {
    let premium = mode == AmdMode::Premium;
    let (event_type, result, at, beep_hz) = match event {
        AmdEvent::Detection { verdict, at_millis, .. } => {
            let result = match (premium, verdict) {
                (_, Verdict::Human) if premium => "human_residence",
                (_, Verdict::Human) => "human",
                (_, Verdict::Machine) => "machine",
                (true, Verdict::Fax) => "fax_detected",
                (false, Verdict::Fax) => "machine",
                (true, Verdict::Silence) => "silence",
                (false, Verdict::Silence) | (_, Verdict::NotSure) => "not_sure",
            };
            let event_type =
                if premium { "call.machine.premium.detection.ended" } else { "call.machine.detection.ended" };
            (event_type, result, at_millis, None)
        }
        AmdEvent::GreetingEnded { end, at_millis } => {
            let beep_hz = match end {
                GreetingEnd::Beep { hz } => Some(hz.round()),
                _ => None,
            };
            let result = match (mode, end) {
                (_, GreetingEnd::Beep { .. }) => "beep_detected",
                (AmdMode::Premium, _) => "no_beep_detected",
                (AmdMode::GreetingEnd, GreetingEnd::Ended) => "ended",
                (AmdMode::GreetingEnd, GreetingEnd::NotSure) => "not_sure",
                // detect_beep and detect_words report beeps only.
                _ => return None,
            };
            let event_type =
                if premium { "call.machine.premium.greeting.ended" } else { "call.machine.greeting.ended" };
            (event_type, result, at_millis, beep_hz)
        }
    };
    let mut fields = Map::new();
    fields.insert("result".into(), json!(result));
    fields.insert("decision_time_millis".into(), json!(at));
    if let Some(hz) = beep_hz {
        fields.insert("beep_frequency_hz".into(), json!(hz));
    }
    Some((event_type, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_is_no_request_and_unknown_modes_and_fields_are_refused() {
        assert_eq!(request("disabled", None), Ok(None));
        assert!(request("psychic", None).unwrap_err().1.ends_with("answering_machine_detection"));
        let err = request("detect", Some(&json!({"greeting_duraton_millis": 100}))).unwrap_err();
        assert_eq!(err.1, "/answering_machine_detection_config/greeting_duraton_millis");
        let err = request("detect", Some(&json!({"after_greeting_silence_millis": -5}))).unwrap_err();
        assert!(err.0.contains("from 1 to"), "{err:?}");
    }

    #[test]
    fn config_fields_override_the_defaults_by_their_telnyx_names() {
        let r = request(
            "greeting_end",
            Some(&json!({"after_greeting_silence_millis": 1200, "silence_threshold": 300,
                "beep_detection_profile": "both"})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.config.after_greeting_silence_millis, 1_200);
        assert_eq!(r.config.silence_threshold, 300);
        assert_eq!(r.config.watch, GreetingWatch::EndOrBeep);
        assert_eq!(r.config.total_analysis_time_millis, AmdConfig::default().total_analysis_time_millis);
    }

    #[test]
    fn the_greetings_words_are_heard_in_english_unless_another_known_language_is_named() {
        assert_eq!(request("detect", None).unwrap().unwrap().config.words_language, Some("en"));
        let r = request("premium", Some(&json!({"language": "es-MX"}))).unwrap().unwrap();
        assert_eq!(r.config.words_language, Some("es"));
        let err = request("premium", Some(&json!({"language": "de"}))).unwrap_err();
        assert_eq!(err.1, "/answering_machine_detection_config/language");
    }

    #[test]
    fn each_mode_reports_what_telnyx_sends() {
        let machine = AmdEvent::Detection { verdict: Verdict::Machine, at_millis: 2_100, reason: "" };
        let fax = AmdEvent::Detection { verdict: Verdict::Fax, at_millis: 900, reason: "" };
        let ended = AmdEvent::GreetingEnded { end: GreetingEnd::Ended, at_millis: 9_000 };
        let beep = AmdEvent::GreetingEnded { end: GreetingEnd::Beep { hz: 998.7 }, at_millis: 7_040 };
        let (t, f) = webhook(AmdMode::Detect, machine).unwrap();
        assert_eq!(
            (t, &f["result"], &f["decision_time_millis"]),
            ("call.machine.detection.ended", &json!("machine"), &json!(2_100))
        );
        assert_eq!(webhook(AmdMode::Detect, fax).unwrap().1["result"], "machine");
        assert_eq!(webhook(AmdMode::Premium, fax).unwrap().1["result"], "fax_detected");
        assert!(webhook(AmdMode::DetectBeep, ended).is_none());
        assert_eq!(webhook(AmdMode::GreetingEnd, ended).unwrap().1["result"], "ended");
        let (t, f) = webhook(AmdMode::Premium, ended).unwrap();
        assert_eq!((t, &f["result"]), ("call.machine.premium.greeting.ended", &json!("no_beep_detected")));
        let (t, f) = webhook(AmdMode::DetectBeep, beep).unwrap();
        assert_eq!(
            (t, &f["result"], &f["beep_frequency_hz"]),
            ("call.machine.greeting.ended", &json!("beep_detected"), &json!(999.0))
        );
    }
}
