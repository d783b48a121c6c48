//! `bond webhooks tail`: a webhook receiver for trying Bond out. It answers
//! every POST with 200 and prints one line per event (time, event type, call,
//! and the payload's other fields), checking the Ed25519 signature when given
//! the organization's public key (`bond admin public-key --org ID`).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use bond_store::clock::unix_seconds;
use bond_store::webhooks::signing::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Serve on `listen` until the process is stopped.
pub async fn run(listen: SocketAddr, public_key: Option<String>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let app = Router::new().fallback(post(receive)).with_state(public_key);
    eprintln!("bond: printing the webhooks POSTed to http://{}/ (Ctrl-C stops)", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn receive(State(public_key): State<Option<String>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let line = describe(&body, public_key.as_deref(), &headers);
    #[allow(clippy::print_stdout)] // the command's output
    {
        println!("{line}");
    }
    StatusCode::OK
}

/// One line for a webhook: `<occurred_at> <event_type> <call_control_id> <payload>`.
fn describe(body: &[u8], public_key: Option<&str>, headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let signature = match public_key {
        None => "",
        Some(key) => {
            let timestamp = header(TIMESTAMP_HEADER).parse().unwrap_or(0);
            if verify(key, header(SIGNATURE_HEADER), timestamp, body, unix_seconds()) {
                " [signature ok]"
            } else {
                " [BAD SIGNATURE]"
            }
        }
    };
    let Ok(envelope) = serde_json::from_slice::<Value>(body) else {
        return format!("(not JSON: {} bytes){signature}", body.len());
    };
    let data = &envelope["data"];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut payload = data["payload"].clone();
    let call = payload.get("call_control_id").map(text).unwrap_or_else(|| "-".into());
    if let Value::Object(fields) = &mut payload {
        fields.remove("call_control_id");
    }
    format!("{} {} {call} {payload}{signature}", text(&data["occurred_at"]), text(&data["event_type"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_one_line_with_its_type_and_call_and_a_checked_signature() {
        let signer = bond_store::webhooks::WebhookSigner::from_secret([3; 32]);
        let body = br#"{"data":{"event_type":"call.answered","occurred_at":"2026-11-25T00:00:00Z","payload":{"call_control_id":"v3:abc","from":"+1"}}}"#;
        let now = unix_seconds();
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, now.to_string().parse().unwrap());
        headers.insert(SIGNATURE_HEADER, signer.sign(now, body).parse().unwrap());
        let line = describe(body, Some(&signer.public_key_base64()), &headers);
        assert_eq!(line, r#"2026-11-25T00:00:00Z call.answered v3:abc {"from":"+1"} [signature ok]"#);
        let other = bond_store::webhooks::WebhookSigner::from_secret([4; 32]).public_key_base64();
        assert!(describe(body, Some(&other), &headers).ends_with("[BAD SIGNATURE]"));
        assert_eq!(describe(b"nope", None, &headers), "(not JSON: 4 bytes)");
    }
}
