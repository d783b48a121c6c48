//! REFER on SIP calls, both ways (the SIP messages are `bond-sip`'s):
//!
//! - `refer` (Telnyx): Bond asks the call's SIP peer to call `sip_address`
//!   itself. `call.refer.started` when the peer takes it, `call.refer.completed`
//!   when its NOTIFY says the target answered (Bond then hangs up, as the
//!   transferor does in RFC 5589), `call.refer.failed` when it refuses or the
//!   target does not answer (the call stays up).
//! - A peer's REFER (a blind transfer from a phone or a PBX), when its
//!   connection has `bond.sip.accept_refer`: the call's bridged partner is
//!   transferred to the number in `Refer-To`, dialed through the connection's
//!   trunk under the organization's `outbound_countries`, as `transfer` does.
//!   The referring call gets the same three events (`requested_by: "peer"`)
//!   and is hung up once the new party is bridged.

use bond_sip::{ExtraHeader, ReferProgress, ReferRefusal, SipSettings};
use bond_store::{CallId, CallRecord, Ending};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::action::fields::parse;
use super::country::in_countries;
use super::dial::Dial;
use super::endpoint::{phone_number_in, Endpoint, PhoneUser};
use super::error::CallError;
use super::linked::Link;
use super::service::CallService;

/// A `refer` action, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refer {
    pub sip_address: String,
    pub headers: Vec<ExtraHeader>,
}

#[derive(Debug, Deserialize)]
struct Fields {
    sip_address: Option<String>,
    custom_headers: Option<Vec<NameValue>>,
}

/// Telnyx's `{ "name", "value" }` header.
#[derive(Debug, Clone, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// Telnyx's `custom_headers`, checked (`ExtraHeader::checked`); a wrong one is
/// 10002 pointing at it.
pub fn custom_headers(headers: &[NameValue]) -> Result<Vec<ExtraHeader>, CallError> {
    let checked = headers.iter().enumerate().map(|(i, h)| {
        ExtraHeader::checked(&h.name, &h.value)
            .map_err(|detail| CallError::invalid("10002", detail, format!("/custom_headers/{i}")))
    });
    checked.collect()
}

/// What Telnyx's `refer` can do that Bond does not yet: refused, not ignored.
const UNAVAILABLE: &[&str] = &["sip_auth_username", "sip_auth_password", "sip_headers"];

/// The `refer` body: `sip_address` (a `sip:` URI) and `custom_headers`.
pub fn refer_request(body: &Value) -> Result<Refer, CallError> {
    for key in UNAVAILABLE {
        if body.get(*key).is_some_and(|v| !v.is_null()) {
            let detail = format!("{key} is not available on refer in Bond yet");
            return Err(CallError::invalid("10015", detail, format!("/{key}")));
        }
    }
    let asked = parse::<Fields>(body)?;
    let sip_address = asked.sip_address.unwrap_or_default();
    if !matches!(Endpoint::parse(&sip_address), Ok(Endpoint::Sip(_))) {
        return Err(CallError::invalid("10002", "sip_address must be a sip: URI", "/sip_address"));
    }
    let headers = custom_headers(&asked.custom_headers.unwrap_or_default())?;
    Ok(Refer { sip_address, headers })
}

/// A REFER in flight, by the call it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Referral {
    /// Bond referred this call's peer (the `refer` action).
    Sent,
    /// This call was dialed for a peer's REFER on `referrer`.
    Dialed { referrer: CallId, refer_to: String },
}

impl CallService {
    /// `refer`: send a REFER to the call's SIP peer.
    pub async fn refer(&self, call: &CallRecord, refer: Refer) -> Result<(), CallError> {
        self.answered_leg(call, "a refer").await?;
        let id = &call.call_control_id;
        self.referrals.insert(id.clone(), Referral::Sent);
        self.sip.refer(id, &refer.sip_address, refer.headers, self.clone()).map_err(|detail| {
            self.referrals.remove(id);
            CallError::invalid(
                "90015",
                format!("Only a SIP call can be referred: {detail}."),
                "/call_control_id",
            )
        })
    }

    /// A REFER Bond sent moved on: its event, and the hangup once it completed.
    pub(super) async fn refer_moved(&self, call: &CallId, progress: ReferProgress) {
        if !matches!(self.referrals.get(call).as_deref(), Some(Referral::Sent)) {
            return; // a NOTIFY for nothing Bond asked
        }
        let (event, status) = match progress {
            ReferProgress::Accepted => ("call.refer.started", None),
            ReferProgress::Finished(status) if status < 300 => ("call.refer.completed", Some(status)),
            ReferProgress::Refused(status) | ReferProgress::Finished(status) => {
                ("call.refer.failed", Some(status))
            }
        };
        if status.is_some() {
            self.referrals.remove(call);
        }
        self.refer_event(call, event, status, None).await;
        if event == "call.refer.completed" {
            self.end(call, Ending::HUNG_UP).await;
        }
    }

    /// A peer's REFER on `call`: transfer its bridged partner to `target`.
    pub(super) async fn peer_referred(&self, call: &CallId, target: String) -> Result<(), ReferRefusal> {
        let refuse = |status, reason: &str| ReferRefusal::new(status, reason);
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::error!(%call, error = %e, "could not look up a referred call");
            refuse(503, "Bond could not look the call up")
        };
        let referrer = self.call_by_id(call).await.map_err(|e| unavailable(&e))?;
        let referrer = referrer.filter(CallRecord::is_alive).ok_or_else(|| refuse(481, "no such call"))?;
        let connection = self.store.get_connection(&referrer.organization_id, &referrer.connection_id).await;
        let connection = connection.map_err(|e| unavailable(&e))?.filter(|c| c.active);
        let connection = connection.ok_or_else(|| refuse(403, "the call's connection is not active"))?;
        if !SipSettings::of(&connection).is_some_and(|s| s.accept_refer) {
            return Err(refuse(403, "REFER is not accepted on this connection (bond.sip.accept_refer)"));
        }
        let partner = self.book().partner(call).cloned();
        let partner =
            partner.ok_or_else(|| refuse(603, "the call is not bridged: there is no one to transfer"))?;
        let PhoneUser::E164(number) = phone_number_in(&target) else {
            return Err(refuse(403, "only a number in E.164 form (sip:+...@...) may be referred to"));
        };
        let config = self.store.voice_config(&referrer.organization_id).await.map_err(|e| unavailable(&e))?;
        if let Some(allowed) = &config.outbound_countries {
            if !in_countries(number, allowed) {
                return Err(refuse(403, "calls to that country are not allowed for this organization"));
            }
        }
        let transferred = self.store.get_call(&referrer.organization_id, &partner).await;
        let transferred = transferred.map_err(|e| unavailable(&e))?;
        let transferred = transferred.ok_or_else(|| refuse(481, "the bridged call has gone"))?;
        // The new party sees the transferred party's number.
        let from = if transferred.direction == "incoming" { &transferred.from } else { &transferred.to };
        let dial = Dial {
            to: number.to_owned(),
            endpoint: Endpoint::E164(number.to_owned()),
            from: from.clone(),
            from_display_name: None,
            client_state: None,
            webhook_url: None,
            webhook_failover_url: None,
            time_limit_secs: None,
            timeout_secs: None,
            amd: None,
            link: Some(Link {
                call: partner.clone(),
                call_session_id: transferred.call_session_id.clone(),
                bridge_on_answer: true,
                early_media: false,
            }),
            supervise: None,
            placed_by: referrer.placed_by.clone(),
            srtp: false,
            custom_headers: Vec::new(),
        };
        let dialed = self.dial(&connection, dial).await.map_err(|e| {
            tracing::info!(%call, error = %e, "the dial for a REFER failed");
            refuse(503, "the referred number could not be dialed")
        })?;
        // A SIP or Telnyx dial answers over the network: well after this.
        let referral = Referral::Dialed { referrer: call.clone(), refer_to: target.clone() };
        self.referrals.insert(dialed.call_control_id, referral);
        self.refer_event(call, "call.refer.started", None, Some(&target)).await;
        Ok(())
    }

    /// The call dialed for a peer's REFER was bridged: the referrer hears
    /// `200 OK` and is hung up.
    pub(super) async fn referred_call_bridged(&self, dialed: &CallId) {
        let Some((_, Referral::Dialed { referrer, refer_to })) = self.referrals.remove(dialed) else {
            return;
        };
        self.sip.notify_refer(&referrer, 200).await;
        self.refer_event(&referrer, "call.refer.completed", Some(200), Some(&refer_to)).await;
        self.end(&referrer, Ending::HUNG_UP).await;
    }

    /// [`referred_call_bridged`](Self::referred_call_bridged) as a task of its
    /// own. Boxed as `Send`: it hangs up a call, whose ending may lead back here.
    pub(super) fn referred_call_bridged_later(
        self,
        dialed: CallId,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move { self.referred_call_bridged(&dialed).await })
    }

    /// `call` ended: a REFER it was part of is over.
    pub(super) async fn referral_ended(&self, call: &CallId, ending: Ending, answered: bool) {
        let Some((_, referral)) = self.referrals.remove(call) else { return };
        let Referral::Dialed { referrer, refer_to } = referral else { return };
        let status = if answered { 500 } else { failure_status(ending.cause) };
        self.sip.notify_refer(&referrer, status).await;
        self.refer_event(&referrer, "call.refer.failed", Some(status), Some(&refer_to)).await;
    }

    /// A call by id, whatever its organization (a SIP peer names no organization).
    async fn call_by_id(&self, call: &CallId) -> Result<Option<CallRecord>, bond_store::db::DbError> {
        let mut tx = self.store.begin().await?;
        let record = self.store.get_call_tx(&mut tx, call).await?;
        self.store.commit(tx).await?;
        Ok(record)
    }

    async fn refer_event(&self, call: &CallId, event: &str, status: Option<u16>, peer_target: Option<&str>) {
        let mut fields = Map::new();
        if let Some(status) = status {
            fields.insert("sip_notify_response".into(), json!(status));
        }
        if let Some(target) = peer_target {
            fields.insert("refer_to".into(), json!(target));
            fields.insert("requested_by".into(), json!("peer"));
        }
        if let Err(e) = self.call_event(call, event, fields).await {
            tracing::error!(%call, event, error = %e, "could not record a refer event");
        }
    }
}

/// The SIP status a REFER's target call ended with, from its Telnyx cause.
fn failure_status(cause: &str) -> u16 {
    match cause {
        "user_busy" => 486,
        "call_rejected" => 603,
        "not_found" => 404,
        "timeout" | "no_answer" => 480,
        "originator_cancel" => 487,
        _ => 503,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(body: Value) -> String {
        match refer_request(&body) {
            Err(CallError::Invalid { pointer, .. }) => pointer,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_refer_takes_a_sip_address_and_headers() {
        let refer = refer_request(&json!({
            "sip_address": "sip:+15551230000@pbx.example.com",
            "custom_headers": [{ "name": "X-Reason", "value": "overflow" }]
        }))
        .unwrap();
        assert_eq!(refer.sip_address, "sip:+15551230000@pbx.example.com");
        assert_eq!(refer.headers, vec![ExtraHeader { name: "X-Reason".into(), value: "overflow".into() }]);
    }

    #[test]
    fn a_wrong_refer_field_points_at_itself() {
        assert_eq!(pointer(json!({})), "/sip_address");
        assert_eq!(pointer(json!({ "sip_address": "+15551230000" })), "/sip_address");
        let address = "sip:a@b.example";
        assert_eq!(
            pointer(json!({ "sip_address": address, "sip_auth_username": "u" })),
            "/sip_auth_username"
        );
        let bad =
            json!({ "sip_address": address, "custom_headers": [{ "name": "X-A", "value": "1\r\nBye: x" }] });
        assert_eq!(pointer(bad), "/custom_headers/0");
        let bad = json!({ "sip_address": address, "custom_headers": [{ "name": "X A", "value": "1" }] });
        assert_eq!(pointer(bad), "/custom_headers/0");
    }

    #[test]
    fn a_failed_target_call_is_told_with_its_sip_status() {
        assert_eq!(failure_status("user_busy"), 486);
        assert_eq!(failure_status("originator_cancel"), 487);
        assert_eq!(failure_status("timeout"), 480);
        assert_eq!(failure_status("unspecified"), 503);
    }
}
