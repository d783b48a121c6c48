//! `/v2/recordings`: list and read recordings, and download them through signed links.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::page_json;
use super::{found, ApiError, ErrorEnvelope};
use crate::auth::{Principal, Role};
use crate::state::AppState;
use bond_store::clock::unix_seconds;
use bond_store::{Page, RecordingRecord};

fn recording_json(state: &AppState, r: &RecordingRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert("record_type".into(), json!("recording"));
        o.insert("format".into(), json!("wav"));
        let finished = matches!(r.status.as_str(), "completed" | "repaired");
        let url = finished.then(|| state.calls.links().url(&r.id, unix_seconds()));
        o.insert("download_urls".into(), json!({ "wav": url }));
    }
    v
}

#[utoipa::path(get, path = "/v2/recordings", tag = "recordings",
    params(("page[number]" = Option<i64>, Query), ("page[size]" = Option<i64>, Query)),
    responses((status = 200, description = "The organization's recordings, newest first (each with download_urls.wav)", body = super::schemas::Paged<RecordingRecord>),
    (status = 401, description = "No or wrong API key", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let (items, total) = state
        .store
        .list_recordings(&principal.organization_id, page)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let data: Vec<Value> = items.iter().map(|r| recording_json(&state, r)).collect();
    Ok(page_json(data, page, total))
}

#[utoipa::path(get, path = "/v2/recordings/{id}", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, description = "The recording with a signed, expiring download URL (download_urls.wav)", body = super::schemas::Data<RecordingRecord>),
    (status = 404, description = "Missing or another organization's", body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Supervisor)?;
    let r = found(
        state.store.get_recording(&principal.organization_id, &id).await,
        "No recording with that id.",
    )?;
    Ok(Json(json!({ "data": recording_json(&state, &r) })))
}

/// What a download reads from disk at a time.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
pub struct Signed {
    expires: Option<i64>,
    signature: Option<String>,
}

/// The WAV file, for whoever holds an unexpired link made by Bond. No API key.
#[utoipa::path(get, path = "/v2/recordings/{id}/download", tag = "recordings",
    params(("id" = String, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    responses((status = 200, description = "audio/wav", body = String),
    (status = 403, description = "Expired or tampered link", body = ErrorEnvelope),
    (status = 404, description = "No such recording file", body = ErrorEnvelope)))]
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(signed): Query<Signed>,
) -> Result<Response, ApiError> {
    let forbidden = || {
        ApiError::new(StatusCode::FORBIDDEN, "10010", "Forbidden", "The link has expired or is not valid.")
    };
    let (Some(expires), Some(signature)) = (signed.expires, signed.signature) else {
        return Err(forbidden());
    };
    if !state.calls.links().verify(&id, expires, &signature, unix_seconds()) {
        return Err(forbidden());
    }
    let recording = found(state.store.get_recording_any(&id).await, "No recording with that id.")?;
    let missing = || ApiError::not_found("The recording file is not available.");
    // The local file until it is stored (and deleted), then the stored object.
    let path = state.calls.recordings_dir().join(&recording.file_name);
    // Streamed from disk or the store a chunk at a time, never read whole into memory.
    let mut length = None;
    let body = match (tokio::fs::File::open(&path).await, state.calls.recording_storage()) {
        (Ok(file), _) => {
            length = file.metadata().await.ok().map(|m| m.len());
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, DOWNLOAD_CHUNK))
        }
        (Err(_), Some(storage)) => match storage.read(&recording.file_name).await {
            Ok(stream) => Body::from_stream(stream),
            Err(e) => {
                tracing::warn!(recording = %id, error = %e, "a stored recording could not be read");
                return Err(missing());
            }
        },
        (Err(_), None) => return Err(missing()),
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{id}.wav\"")),
        ],
        body,
    )
        .into_response();
    if let Some(length) = length {
        response.headers_mut().insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    }
    Ok(response)
}
