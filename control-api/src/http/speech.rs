//! Speech on calls over HTTP: the bodies of `transcription_start` (Telnyx) and
//! `translation_start` (Bond), and a call's stored translation segments (the
//! live streams are `supervisor.rs`).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::calls::{Tracks, TranscriptionRequest, TranslationRequest};
use crate::state::AppState;

/// Telnyx's `transcription_engine` names; Bond runs its own engines for all of them.
const TELNYX_ENGINES: &[&str] = &["A", "B", "Google", "Telnyx", "Deepgram", "Azure"];

fn invalid(detail: &str, pointer: &str) -> ApiError {
    ApiError::unprocessable("10002", detail, pointer)
}

fn language(body: &Value, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(tag))
            if (2..=35).contains(&tag.len())
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Ok(Some(tag.clone()))
        }
        Some(_) => {
            Err(invalid(&format!("{key} must be a language code such as en or es-MX"), &format!("/{key}")))
        }
    }
}

/// `transcription_start`'s body.
pub fn transcription_request(body: &Value, engines: &[&str]) -> Result<TranscriptionRequest, ApiError> {
    let engine = match body.get("transcription_engine").and_then(Value::as_str) {
        None => None,
        Some(name) if engines.iter().any(|e| e.eq_ignore_ascii_case(name)) => Some(name.to_ascii_lowercase()),
        Some(name) if TELNYX_ENGINES.contains(&name) => None,
        Some(_) => {
            let names = [engines, TELNYX_ENGINES].concat().join(", ");
            return Err(invalid(
                &format!("transcription_engine must be one of {names}"),
                "/transcription_engine",
            ));
        }
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

/// `translation_start`'s body; languages it leaves out come from the organization's voice config.
pub fn translation_request(
    body: &Value,
    default_from: Option<&str>,
    default_to: Option<&str>,
    default_voice: bool,
) -> Result<TranslationRequest, ApiError> {
    let from = language(body, "translate_from")?.or(default_from.map(str::to_owned));
    let to = language(body, "translate_to")?.or(default_to.map(str::to_owned));
    let (Some(from), Some(to)) = (from, to) else {
        return Err(invalid(
            "translate_from and translate_to are needed (or set them in /v2/voice_config)",
            "/translate_to",
        ));
    };
    let voice_to_voice = match body.get("voice_to_voice") {
        None | Some(Value::Null) => default_voice,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("voice_to_voice must be true or false", "/voice_to_voice")),
    };
    Ok(TranslationRequest { from, to, voice_to_voice })
}

#[utoipa::path(get, path = "/v2/calls/{id}/translations", tag = "calls",
    params(("id" = String, Path, description = "call_control_id")),
    responses((status = 200, description = "The call's translated segments in order", body = Object),
    (status = 404, description = "Missing or another organization's", body = ErrorEnvelope),
    (status = 403, description = "Supervisors and admins only", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let call = super::calls::find_call(&state, &principal, &id).await?;
    let segments = state.store.call_segments(&call.organization_id, &call.call_control_id).await;
    let segments = segments.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "data": segments })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcription_bodies_default_to_the_inbound_track_in_english_and_accept_telnyx_engine_names() {
        let r = transcription_request(&json!({}), &["whisper"]).unwrap();
        assert_eq!((r.engine, r.tracks, r.language.as_str()), (None, Tracks::Inbound, "en"));
        let r = transcription_request(
            &json!({"transcription_engine": "B", "transcription_tracks": "both", "language": "es-MX"}),
            &["whisper"],
        )
        .unwrap();
        assert_eq!((r.engine, r.tracks, r.language.as_str()), (None, Tracks::Both, "es-MX"));
        let r = transcription_request(&json!({"transcription_engine": "Whisper"}), &["whisper"]).unwrap();
        assert_eq!(r.engine.as_deref(), Some("whisper"));
        for bad in [
            json!({"transcription_engine": "nope"}),
            json!({"transcription_tracks": "left"}),
            json!({"language": "e n"}),
        ] {
            assert_eq!(transcription_request(&bad, &["whisper"]).unwrap_err().status.as_u16(), 422, "{bad}");
        }
    }

    #[test]
    fn translation_bodies_fall_back_to_the_voice_config_and_need_both_languages() {
        let r = translation_request(&json!({"translate_to": "es"}), Some("en"), None, true).unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str(), r.voice_to_voice), ("en", "es", true));
        let r = translation_request(
            &json!({"translate_from": "es", "voice_to_voice": false}),
            None,
            Some("en"),
            true,
        )
        .unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str(), r.voice_to_voice), ("es", "en", false));
        assert!(translation_request(&json!({"translate_from": "en"}), None, None, false).is_err());
    }
}
