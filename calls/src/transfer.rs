//! `transfer` (Telnyx Call Control): dial a new party for a call and bridge
//! the two when it answers. Built from the primitives a dial already has: the
//! new call is `link_to` the transferred one with `bridge_on_answer`, so it
//! shares its `call_session_id`, rings while the caller keeps what it had (or
//! hears its early media: `early_media.rs`),
//! is cancelled if the caller hangs up first, and when it fails only its own
//! `call.hangup` is sent: the transferred call stays up and takes further
//! commands.

use bond_codecs::ringtone::Ringtone;
use serde::Deserialize;
use serde_json::Value;

use super::action::fields::{check_client_state, parse};
use super::dial::{check_from, check_limits, Dial};
use super::endpoint::Endpoint;
use super::error::CallError;
use super::linked::Link;
use super::service::CallService;
use bond_store::CallRecord;

/// A `transfer` action, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub to: String,
    pub endpoint: Endpoint,
    /// Caller id shown to the new party; the transferred call's `from` when not given.
    pub from: Option<String>,
    pub from_display_name: Option<String>,
    /// How long the new party may ring (5-600 s).
    pub timeout_secs: Option<i64>,
    pub time_limit_secs: Option<i64>,
    /// `target_leg_client_state`: the new call's `client_state`.
    pub client_state: Option<String>,
    /// Where the new call's webhooks go (the connection's URLs when not given);
    /// the HTTP edge checks them as a dial's.
    pub webhook_url: Option<String>,
    pub webhook_failover_url: Option<String>,
    /// Added to the new call's INVITE when it is a SIP call.
    pub custom_headers: Vec<bond_sip::ExtraHeader>,
    /// `early_media` (Telnyx's default: on): the caller hears the new party's
    /// early media while it rings.
    pub early_media: bool,
}

#[derive(Debug, Deserialize)]
struct Fields {
    to: Option<String>,
    from: Option<String>,
    from_display_name: Option<String>,
    timeout_secs: Option<i64>,
    time_limit_secs: Option<i64>,
    target_leg_client_state: Option<String>,
    webhook_url: Option<String>,
    webhook_failover_url: Option<String>,
    custom_headers: Option<Vec<super::refer::NameValue>>,
    early_media: Option<bool>,
}

/// What Telnyx's `transfer` can do that Bond does not yet: refused, not ignored.
const UNAVAILABLE: &[&str] = &["audio_url", "media_name"];

/// The `transfer` body: `to` (any destination a dial takes), `from`,
/// `from_display_name`, `timeout_secs`, `time_limit_secs`, `target_leg_client_state`,
/// `webhook_url`, `webhook_failover_url`, `custom_headers`, `early_media`.
pub fn transfer_request(body: &Value) -> Result<Transfer, CallError> {
    let invalid = |detail: &str, pointer: &str| CallError::invalid("10002", detail, pointer);
    for key in UNAVAILABLE {
        if body.get(*key).is_some_and(|v| !v.is_null()) {
            let detail = format!("{key} is not available on transfer in Bond yet");
            return Err(CallError::invalid("10015", detail, format!("/{key}")));
        }
    }
    let asked = parse::<Fields>(body)?;
    let to = asked.to.filter(|t| !t.is_empty()).ok_or_else(|| invalid("to is required", "/to"))?;
    let endpoint = Endpoint::parse(&to).map_err(|e| invalid(&e.0, "/to"))?;
    if let Some(from) = &asked.from {
        check_from(from)?;
    }
    check_limits(asked.timeout_secs, asked.time_limit_secs)?;
    if let Some(state) = &asked.target_leg_client_state {
        check_client_state(state)
            .map_err(|_| invalid("target_leg_client_state must be base64", "/target_leg_client_state"))?;
    }
    Ok(Transfer {
        to,
        endpoint,
        from: asked.from,
        from_display_name: asked.from_display_name,
        timeout_secs: asked.timeout_secs,
        time_limit_secs: asked.time_limit_secs,
        client_state: asked.target_leg_client_state.filter(|s| !s.is_empty()),
        webhook_url: asked.webhook_url.filter(|u| !u.is_empty()),
        webhook_failover_url: asked.webhook_failover_url.filter(|u| !u.is_empty()),
        custom_headers: super::refer::custom_headers(&asked.custom_headers.unwrap_or_default())?,
        early_media: asked.early_media.unwrap_or(true),
    })
}

impl CallService {
    /// `transfer`: dial `to` for an answered `call`, bridged with it on
    /// answer; with `ringback` (a voice agent's `transfer` tool), the caller
    /// hears that tone until the new party answers.
    pub async fn transfer(
        &self,
        call: &CallRecord,
        transfer: Transfer,
        ringback: Option<&'static Ringtone>,
    ) -> Result<(), CallError> {
        self.answered_leg(call, "a transfer").await?;
        let dialed = self.dial_linked(call, transfer, true, None).await?;
        match ringback {
            Some(tone) => self.ring_back_for_dial(call, &dialed.call_control_id, tone, true).await,
            None => Ok(()),
        }
    }

    /// Dial `transfer`'s target for `call`, sharing its session and
    /// cancelled if it ends first; bridged with it on answer if asked, and
    /// screened by `amd` if given.
    pub(super) async fn dial_linked(
        &self,
        call: &CallRecord,
        transfer: Transfer,
        bridge_on_answer: bool,
        amd: Option<crate::amd::AmdRequest>,
    ) -> Result<CallRecord, CallError> {
        let connection = self.store.get_connection(&call.organization_id, &call.connection_id).await?;
        let connection = connection.filter(|c| c.active).ok_or_else(|| {
            CallError::invalid("10015", "The call's connection is no longer active.", "/call_control_id")
        })?;
        let dial = Dial {
            to: transfer.to,
            endpoint: transfer.endpoint,
            from: transfer.from.unwrap_or_else(|| call.from.clone()),
            from_display_name: transfer.from_display_name,
            client_state: transfer.client_state,
            webhook_url: transfer.webhook_url,
            webhook_failover_url: transfer.webhook_failover_url,
            time_limit_secs: transfer.time_limit_secs,
            timeout_secs: transfer.timeout_secs,
            amd,
            link: Some(Link {
                call: call.call_control_id.clone(),
                call_session_id: call.call_session_id.clone(),
                bridge_on_answer,
                early_media: transfer.early_media,
            }),
            supervise: None,
            placed_by: call.placed_by.clone(),
            srtp: false,
            custom_headers: transfer.custom_headers,
        };
        self.dial(&connection, dial).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointer(body: Value) -> String {
        match transfer_request(&body) {
            Err(CallError::Invalid { pointer, .. }) => pointer,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_transfer_takes_any_destination_a_dial_takes() {
        let t = transfer_request(&json!({ "to": "loop:tone?hz=1200", "target_leg_client_state": "aGk=" }))
            .unwrap();
        assert!(matches!(t.endpoint, Endpoint::Loop(_)));
        assert_eq!((t.from, t.client_state.as_deref()), (None, Some("aGk=")));
        assert!(t.early_media, "Telnyx passes early media unless told not to");
        let t = transfer_request(&json!({ "to": "loop:echo", "early_media": false })).unwrap();
        assert!(!t.early_media);
        let t = transfer_request(&json!({ "to": "loop:echo", "webhook_url": "https://hooks.example.com/t" }))
            .unwrap();
        assert_eq!(
            (t.webhook_url.as_deref(), t.webhook_failover_url),
            (Some("https://hooks.example.com/t"), None)
        );
        let t =
            transfer_request(&json!({ "to": "+15551230000", "from": "+15550001111", "timeout_secs": 20 }))
                .unwrap();
        assert_eq!((t.endpoint, t.timeout_secs), (Endpoint::E164("+15551230000".into()), Some(20)));
    }

    #[test]
    fn a_wrong_transfer_field_points_at_itself() {
        assert_eq!(pointer(json!({})), "/to");
        assert_eq!(pointer(json!({ "to": "nowhere" })), "/to");
        assert_eq!(pointer(json!({ "to": "+15551230000", "from": "loop:echo" })), "/from");
        assert_eq!(pointer(json!({ "to": "+15551230000", "timeout_secs": 2 })), "/timeout_secs");
        assert_eq!(pointer(json!({ "to": "+15551230000", "time_limit_secs": 0 })), "/time_limit_secs");
        assert_eq!(
            pointer(json!({ "to": "+15551230000", "target_leg_client_state": "%" })),
            "/target_leg_client_state"
        );
        assert_eq!(
            pointer(json!({ "to": "+15551230000", "audio_url": "https://example.com/r.wav" })),
            "/audio_url"
        );
    }
}
