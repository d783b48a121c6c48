//! `/v2/voice_config`: the organization's call defaults and outbound allow-list (Bond's own resource).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::extract::Body;
use super::{ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;
use bond_calls::amd;
use bond_calls::country::is_known_country;
use bond_store::VoiceConfig;

#[utoipa::path(get, path = "/v2/voice_config", tag = "voice_config",
    responses((status = 200, description = "The organization's voice configuration", body = super::schemas::Data<VoiceConfig>), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn get(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let config =
        state.store.voice_config(&principal.organization_id).await.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "data": config })))
}

/// Replace the fields given; the others keep their values.
#[utoipa::path(patch, path = "/v2/voice_config", tag = "voice_config", request_body = VoiceConfig,
    responses((status = 200, description = "The updated configuration", body = super::schemas::Data<VoiceConfig>), (status = 422, description = "Invalid field", body = ErrorEnvelope), (status = 401, description = "No or wrong API key", body = ErrorEnvelope), (status = 403, description = "Role may not", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Body(patch): Body<serde_json::Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Admin)?;
    let current =
        state.store.voice_config(&principal.organization_id).await.map_err(|e| ApiError::internal(&e))?;
    let mut merged = serde_json::to_value(current).map_err(|e| ApiError::internal(&e))?;
    if let Value::Object(o) = &mut merged {
        o.extend(patch);
    }
    let config: VoiceConfig =
        serde_json::from_value(merged).map_err(|e| ApiError::unprocessable("10002", e.to_string(), "/"))?;
    validate(&config)?;
    state
        .store
        .save_voice_config(&principal.organization_id, &config)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "data": config })))
}

fn validate(c: &VoiceConfig) -> Result<(), ApiError> {
    for (value, pointer) in [(&c.translate_from, "/translate_from"), (&c.translate_to, "/translate_to")] {
        if let Some(lang) = value {
            let (primary, region) = lang.split_once('-').unwrap_or((lang, ""));
            let ok = (2..=3).contains(&primary.len())
                && primary.chars().all(|ch| ch.is_ascii_lowercase())
                && (region.is_empty() || region.chars().all(|ch| ch.is_ascii_alphanumeric()));
            if !ok {
                return Err(ApiError::unprocessable(
                    "10002",
                    format!("'{lang}' is not a language code like 'en' or 'es-MX'"),
                    pointer,
                ));
            }
        }
    }
    if c.live_translate && (c.translate_from.is_none() || c.translate_to.is_none()) {
        return Err(ApiError::unprocessable(
            "10002",
            "live_translate needs translate_from and translate_to",
            "/live_translate",
        ));
    }
    amd::request(&c.answering_machine_detection, c.answering_machine_detection_config.as_ref())
        .map_err(|(detail, pointer)| ApiError::unprocessable("10002", detail, &pointer))?;
    if let Some(countries) = &c.outbound_countries {
        if let Some(bad) = countries.iter().find(|code| !is_known_country(code)) {
            return Err(ApiError::unprocessable(
                "10002",
                format!("'{bad}' is not a country code Bond knows (ISO 3166-1 alpha-2)"),
                "/outbound_countries",
            ));
        }
    }
    Ok(())
}
