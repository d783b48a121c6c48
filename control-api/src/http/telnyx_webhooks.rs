//! `POST /webhooks/telnyx/{connection_id}`: Telnyx's call webhooks for calls
//! Bond placed through Telnyx. Each is checked against the connection's Telnyx
//! public key (Ed25519 over `timestamp|raw_body`, 300 s window); a bad one is a
//! 401 and changes nothing. Answered and hangup drive the Bond call; machine
//! detection results and DTMF are passed on to the application as they are.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::ApiError;
use crate::state::AppState;
use bond_calls::telnyx::TelnyxSettings;
use bond_store::clock::unix_seconds;
use bond_store::webhooks::signing::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};

#[utoipa::path(post, path = "/webhooks/telnyx/{connection_id}", tag = "webhooks", params(("connection_id" = String, Path)),
    description = "Telnyx's call webhooks for calls Bond placed through a Telnyx connection, Ed25519-signed (telnyx-signature-ed25519 over timestamp|body, telnyx-timestamp within 300 s) with the connection's Telnyx public key. They act only on that connection's calls.",
    request_body(content = Object, description = "Telnyx's webhook envelope {data: {event_type, id, occurred_at, payload}, meta}"),
    responses((status = 200, description = "{\"data\":{\"result\":\"ok\" or \"ignored\"}}", body = Object), (status = 401, description = "Bad signature or stale timestamp", body = super::ErrorEnvelope), (status = 404, description = "No Telnyx connection with that id", body = super::ErrorEnvelope)))]
pub async fn receive(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let connection =
        state.store.connection_by_id(&connection_id).await.map_err(|e| ApiError::internal(&e))?;
    let Some((connection, public_key)) =
        connection.and_then(|c| TelnyxSettings::of(&c).and_then(|s| s.public_key).map(|key| (c, key)))
    else {
        return Err(ApiError::not_found("No Telnyx connection with that id."));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let timestamp = header(TIMESTAMP_HEADER).parse::<i64>().unwrap_or(0);
    if !verify(&public_key, header(SIGNATURE_HEADER), timestamp, &body, unix_seconds()) {
        tracing::warn!(connection = %connection_id, "Telnyx webhook refused: bad signature or stale timestamp");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "10009",
            "Authentication failed",
            "The webhook signature does not verify with the connection's Telnyx public key.",
        ));
    }
    let event: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::unprocessable("10002", "the body is not JSON", "/"))?;
    let data = &event["data"];
    let payload = &data["payload"];
    let event_type = data["event_type"].as_str().unwrap_or_default();
    let telnyx_call = payload["call_control_id"].as_str().unwrap_or_default();
    let Some(call) = state.calls.telnyx_call(telnyx_call, payload["client_state"].as_str()) else {
        return Ok(ignored("not a call Bond placed"));
    };
    // A webhook acts only on calls of the connection it arrived on: another
    // organization's correctly signed webhook may name this call's id.
    let owner =
        state.store.get_call(&connection.organization_id, &call).await.map_err(|e| ApiError::internal(&e))?;
    if owner.is_none_or(|c| c.connection_id != connection.id) {
        tracing::warn!(connection = %connection.id, %call, "Telnyx webhook names a call of another connection: ignored");
        return Ok(ignored("not a call of this connection"));
    }
    let result = match event_type {
        "call.answered" => state.calls.carrier_answered(&call).await,
        "call.hangup" => {
            let text = |k: &str| payload[k].as_str().unwrap_or_default().to_owned();
            state.calls.carrier_hangup(&call, &text("hangup_cause"), &text("hangup_source")).await;
            Ok(())
        }
        t if t.starts_with("call.machine.") || t == "call.dtmf.received" => {
            let mut fields = serde_json::Map::new();
            for key in ["result", "digit"] {
                if let Some(v) = payload.get(key) {
                    fields.insert(key.into(), v.clone());
                }
            }
            state.calls.call_event(&call, t, fields).await
        }
        _ => Ok(()),
    };
    result.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "data": { "result": "ok" } })))
}

fn ignored(reason: &str) -> Json<Value> {
    Json(json!({ "data": { "result": "ignored", "reason": reason } }))
}
