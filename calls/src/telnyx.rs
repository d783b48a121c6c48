//! Telnyx as a carrier: a connection holding Telnyx credentials dials numbers
//! through Telnyx's Call Control API, with the call's media streamed back to
//! Bond (`stream_url` -> `/media/telnyx/{connection_id}`, bidirectional RTP
//! mode) and its webhooks sent to `/webhooks/telnyx/{connection_id}`.
//!
//! The Bond call and the Telnyx call are tied by `client_state` (the Bond
//! call_control_id, base64) and kept in memory while they live.

use bond_store::CallId;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use dashmap::DashMap;
use serde_json::{json, Value};

use bond_store::Connection;
use bond_streams::auth::StreamSecrets;

/// Telnyx errors and timeouts give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection's `bond.telnyx` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelnyxSettings {
    pub api_key: String,
    pub api_base_url: String,
    /// Telnyx's own connection (Call Control application) id to dial on.
    pub connection_id: String,
    /// Base64 of Telnyx's Ed25519 public key, for its webhooks.
    pub public_key: Option<String>,
    /// Token Telnyx shows when it opens the media stream.
    pub stream_token: String,
    pub codec: String,
}

impl TelnyxSettings {
    /// `None` when the connection is not a Telnyx one.
    pub fn of(connection: &Connection) -> Option<Self> {
        let bond = connection.settings.get("bond")?;
        let t = bond.get("telnyx")?;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            api_key: text(t, "api_key")?,
            api_base_url: text(t, "api_base_url")
                .unwrap_or_else(|| "https://api.telnyx.com/v2".into())
                .trim_end_matches('/')
                .to_owned(),
            connection_id: text(t, "connection_id")?,
            public_key: text(t, "public_key"),
            stream_token: StreamSecrets::of(connection).telnyx_stream_token?,
            codec: text(t, "stream_codec").unwrap_or_else(|| "PCMU".into()),
        })
    }
}

/// Bond calls placed through Telnyx: Telnyx's call_control_id by Bond's, and back.
#[derive(Debug, Clone, Default)]
pub struct TelnyxCalls {
    by_bond: Arc<DashMap<CallId, (String, TelnyxSettings)>>,
    by_telnyx: Arc<DashMap<String, CallId>>,
    http: reqwest::Client,
}

/// The `client_state` that ties a Telnyx call to Bond's.
pub fn client_state(bond_call: &CallId) -> String {
    BASE64.encode(format!("bond:{bond_call}"))
}

/// The Bond call a `client_state` names, if it is one of Bond's.
pub fn bond_call_of(client_state: &str) -> Option<CallId> {
    let decoded = BASE64.decode(client_state).ok()?;
    String::from_utf8(decoded).ok()?.strip_prefix("bond:").map(CallId::from)
}

impl TelnyxCalls {
    /// `POST {api}/calls` for Bond call `bond_call`; returns Telnyx's call_control_id.
    pub async fn dial(
        &self,
        settings: &TelnyxSettings,
        bond_call: &CallId,
        bond_connection: &str,
        public_url: &str,
        to: &str,
        from: &str,
    ) -> Result<String, String> {
        let public = public_url.trim_end_matches('/');
        let ws = public.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        let body = json!({
            "connection_id": settings.connection_id,
            "to": to,
            "from": from,
            "client_state": client_state(bond_call),
            "webhook_url": format!("{public}/webhooks/telnyx/{bond_connection}"),
            "stream_url": format!("{ws}/media/telnyx/{bond_connection}"),
            "stream_track": "inbound_track",
            "stream_codec": settings.codec,
            "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": settings.codec,
            "stream_auth_token": settings.stream_token,
        });
        let response = self
            .http
            .post(format!("{}/calls", settings.api_base_url))
            .bearer_auth(&settings.api_key)
            .timeout(REQUEST_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("Telnyx did not answer: {e}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = answer["errors"][0]["detail"].as_str().unwrap_or("no detail");
            return Err(format!("Telnyx refused the call ({status}): {detail}"));
        }
        let id =
            answer["data"]["call_control_id"].as_str().ok_or("Telnyx's answer has no call_control_id")?;
        self.by_bond.insert(bond_call.to_owned(), (id.to_owned(), settings.clone()));
        self.by_telnyx.insert(id.to_owned(), bond_call.to_owned());
        Ok(id.to_owned())
    }

    /// Bond's call for a Telnyx call_control_id.
    pub fn bond_call(&self, telnyx_call: &str) -> Option<CallId> {
        self.by_telnyx.get(telnyx_call).map(|c| c.clone())
    }

    /// The stream codec a Telnyx call was dialed with, and its sampling rate.
    pub fn codec(&self, bond_call: &CallId) -> (String, u32) {
        let codec = self.by_bond.get(bond_call).map_or_else(|| "PCMU".to_owned(), |c| c.1.codec.clone());
        let rate = match codec.as_str() {
            "G722" => 16_000,
            "OPUS" => 48_000,
            _ => 8_000,
        };
        (codec, rate)
    }

    pub fn is_telnyx(&self, bond_call: &CallId) -> bool {
        self.by_bond.contains_key(bond_call)
    }

    /// Forget a call; if Telnyx may still have it up, hang it up there (in the background).
    pub fn release(&self, bond_call: &CallId, hang_up: bool) {
        let Some((_, (telnyx_call, settings))) = self.by_bond.remove(bond_call) else { return };
        self.by_telnyx.remove(&telnyx_call);
        if !hang_up {
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move {
            let url = format!("{}/calls/{telnyx_call}/actions/hangup", settings.api_base_url);
            let sent = http
                .post(url)
                .bearer_auth(&settings.api_key)
                .timeout(REQUEST_TIMEOUT)
                .json(&json!({}))
                .send();
            if let Err(e) = sent.await {
                tracing::warn!(%telnyx_call, error = %e, "could not hang up the Telnyx call");
            }
        });
    }
}

/// Telnyx hangup causes Bond passes on (anything else is `unspecified`).
pub fn hangup_cause(cause: &str) -> &'static str {
    const CAUSES: [&str; 10] = [
        "call_rejected",
        "normal_clearing",
        "originator_cancel",
        "timeout",
        "time_limit",
        "user_busy",
        "not_found",
        "no_answer",
        "unspecified",
        "normal_unspecified",
    ];
    CAUSES.into_iter().find(|c| *c == cause).unwrap_or("unspecified")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_state_round_trips_and_foreign_states_are_not_bonds() {
        assert_eq!(bond_call_of(&client_state(&CallId::from("v3:abc"))), Some("v3:abc".into()));
        assert_eq!(bond_call_of(&BASE64.encode("somebody else's")), None);
        assert_eq!(bond_call_of("%%%"), None);
    }

    #[test]
    fn unknown_hangup_causes_are_unspecified() {
        assert_eq!(hangup_cause("user_busy"), "user_busy");
        assert_eq!(hangup_cause("alien_abduction"), "unspecified");
    }
}
