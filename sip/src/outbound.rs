//! Calling out: where an INVITE goes, how it is built, and what comes back
//! (early media, the answer, or the failure that ends the call).

use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{HostWithPort, Uri};
use rsipstack::transport::SipAddr;

use bond_codecs::Codec;
use bond_media_engine::leg::Srtp;
use bond_media_engine::runtime::EngineHandle;
use bond_media_engine::sdp::{self, MediaPlan, SessionDescription};
use bond_store::{CallId, Ending};
use rsipstack::dialog::invitation::InviteAsyncResult;

use super::causes::cause_of_status;
use super::control::CallControl;
use super::media::{self, CallMedia};
use super::registry::{SipCall, SipCalls};
use super::settings::{SipSettings, TrunkTransport};
use super::SipStack;

/// Where an outgoing call's INVITE is sent.
#[derive(Debug, Clone)]
pub struct Destination {
    pub request_uri: String,
    /// The next hop (the trunk); `None` resolves the Request-URI.
    pub next_hop: Option<(String, u16, TrunkTransport)>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Destination {
    /// A number, through the connection's trunk.
    pub fn number(number: &str, settings: Option<&SipSettings>) -> Result<Self, String> {
        let trunk = settings
            .and_then(|s| s.trunk.as_ref())
            .ok_or("this connection has no SIP trunk (bond.sip.trunk) to dial numbers through")?;
        let transport = trunk.transport.uri_parameter();
        Ok(Self {
            request_uri: format!("sip:{number}@{}:{}{transport}", trunk.host, trunk.port),
            next_hop: Some((trunk.host.clone(), trunk.port, trunk.transport)),
            username: trunk.username.clone(),
            password: trunk.password.clone(),
        })
    }

    /// A `sip:` URI, dialed as it is. The trunk's credentials answer only the
    /// trunk: any other host could challenge with its own realm and crack the
    /// digest offline.
    pub fn uri(uri: &str, settings: Option<&SipSettings>) -> Self {
        let trunk = settings.and_then(|s| s.trunk.as_ref()).filter(|t| is_trunk_host(uri, &t.host, t.port));
        Self {
            request_uri: uri.to_owned(),
            next_hop: None,
            username: trunk.and_then(|t| t.username.clone()),
            password: trunk.and_then(|t| t.password.clone()),
        }
    }

    /// The transport the INVITE goes over.
    pub fn transport(&self) -> TrunkTransport {
        match &self.next_hop {
            Some((_, _, transport)) => *transport,
            None if self.request_uri.starts_with("sips:") || self.request_uri.contains("transport=tls") => {
                TrunkTransport::Tls
            }
            None if self.request_uri.contains("transport=tcp") => TrunkTransport::Tcp,
            None => TrunkTransport::Udp,
        }
    }
}

/// How long connecting to a trunk over TLS (TCP and the handshake) may take.
const TLS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl SipStack {
    /// Open the TLS connection an INVITE to `destination` will go over, if it
    /// goes over TLS: a trunk whose certificate does not verify, or that cannot
    /// be reached, is refused here with the reason, before any call is made.
    pub async fn reach(&self, destination: &Destination) -> Result<(), String> {
        if destination.transport() != TrunkTransport::Tls {
            return Ok(());
        }
        let (host, port) = match &destination.next_hop {
            Some((host, port, _)) => (host.clone(), *port),
            None => {
                let uri = Uri::try_from(destination.request_uri.as_str()).map_err(|e| e.to_string())?;
                let port = uri.host_with_port.port.as_ref().map_or(5061, |p| p.value().to_owned());
                (uri.host_with_port.host.to_string(), port)
            }
        };
        let target = SipAddr {
            r#type: Some(TrunkTransport::Tls.sip()),
            addr: HostWithPort::try_from(format!("{host}:{port}").as_str())
                .map_err(|e| format!("{host}:{port}: {e}"))?,
        };
        let lookup = self.dialogs.endpoint.transport_layer.lookup(&target, None);
        match tokio::time::timeout(TLS_CONNECT_TIMEOUT, lookup).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot reach {host}:{port} over TLS: {e}")),
            Err(_) => Err(format!("cannot reach {host}:{port} over TLS within 5 s")),
        }
    }
}

/// Whether `uri`'s host and port are the trunk's (`host` compared without
/// case; no port in the URI means 5060).
fn is_trunk_host(uri: &str, host: &str, port: u16) -> bool {
    let Ok(parsed) = Uri::try_from(uri) else { return false };
    let uri_host = parsed.host_with_port.host.to_string();
    let uri_port = parsed.host_with_port.port.as_ref().map_or(5060, |p| p.value().to_owned());
    uri_host.trim_matches(['[', ']']).eq_ignore_ascii_case(host.trim_matches(['[', ']'])) && uri_port == port
}

/// The INVITE's parties.
#[derive(Debug, Clone)]
struct Caller<'a> {
    pub from: &'a str,
    pub display_name: Option<&'a str>,
}

/// Send the INVITE with Bond's `offer`; the dialog reports its progress on the
/// stack's state channel and the handle resolves with the final response.
fn invite(
    stack: &Arc<SipStack>,
    destination: &Destination,
    caller: Caller<'_>,
    offer: String,
    headers: Vec<rsipstack::sip::Header>,
) -> Result<(InviteDialog, tokio::task::JoinHandle<InviteAsyncResult>), String> {
    let callee = Uri::try_from(destination.request_uri.as_str())
        .map_err(|e| format!("'{}' is not a SIP URI: {e}", destination.request_uri))?;
    let user: String =
        caller.from.chars().filter(|c| c.is_ascii_alphanumeric() || "+-_.".contains(*c)).collect();
    let contact = stack.contact(&user, destination.transport().sip());
    let caller_uri = Uri::try_from(
        format!("sip:{}@{}", if user.is_empty() { "bond" } else { &user }, contact.host_with_port).as_str(),
    )
    .map_err(|e| format!("bad caller: {e}"))?;
    let next_hop = destination.next_hop.as_ref().map(|(host, port, transport)| SipAddr {
        r#type: Some(transport.sip()),
        addr: HostWithPort::try_from(format!("{host}:{port}").as_str()).unwrap_or_default(),
    });
    let credential = destination.password.as_ref().map(|password| Credential {
        username: destination.username.clone().unwrap_or_else(|| user.clone()),
        password: password.clone(),
        realm: None,
        auth_username: None,
    });
    let option = InviteOption {
        caller_display_name: caller.display_name.map(str::to_owned),
        caller: caller_uri,
        callee,
        destination: next_hop,
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        contact,
        credential,
        headers: Some(headers).filter(|h: &Vec<_>| !h.is_empty()),
        ..Default::default()
    };
    stack.dialogs.do_invite_async(option, stack.states.clone()).map_err(|e| e.to_string())
}

/// An outgoing call, recorded and with its leg open, to be sent its INVITE.
#[derive(Debug)]
pub struct Outgoing {
    pub call_control_id: CallId,
    pub connection_id: String,
    pub destination: Destination,
    pub from: String,
    pub from_display_name: Option<String>,
    /// The leg and Bond's offer for it.
    pub media: CallMedia,
    pub codecs: Vec<Codec>,
    /// How long it may ring before Bond cancels it.
    pub ring: Duration,
    /// The application's own headers on the INVITE (`custom_headers`).
    pub headers: Vec<super::headers::ExtraHeader>,
}

impl SipCalls {
    /// Send `call`'s INVITE; what comes back is reported to `control`
    /// (answered, or ended with the failure's cause).
    pub fn dial<C: CallControl>(&self, control: C, call: Outgoing) -> Result<(), String> {
        let stack = self.stack().ok_or("SIP is not running in this Bond instance.")?;
        let caller = Caller { from: &call.from, display_name: call.from_display_name.as_deref() };
        let headers = call.headers.iter().map(super::headers::ExtraHeader::header).collect();
        let (dialog, outcome) =
            invite(stack, &call.destination, caller, sdp::write(&call.media.local), headers)?;
        let engine = stack.engine.clone();
        self.insert(SipCall {
            call_control_id: call.call_control_id.clone(),
            connection_id: call.connection_id,
            dialog,
            incoming: false,
            answered: false,
            media: call.media,
            codecs: call.codecs,
            refer_lane: Default::default(),
            ring_timer: None,
        });
        let calls = self.clone();
        let ring = call.ring;
        tokio::spawn(async move {
            calls.await_answer(control, engine, call.call_control_id, outcome, ring).await
        });
        Ok(())
    }

    /// Follow an outgoing INVITE to its final response (or ring timeout).
    async fn await_answer<C: CallControl>(
        self,
        control: C,
        engine: EngineHandle,
        id: CallId,
        mut outcome: tokio::task::JoinHandle<InviteAsyncResult>,
        ring: Duration,
    ) {
        let mut timed_out = false;
        let result = match tokio::time::timeout(ring, &mut outcome).await {
            Ok(result) => result,
            Err(_) => {
                timed_out = true;
                if let Some(sip_call) = self.get(&id) {
                    let _ = sip_call.dialog.cancel().await;
                }
                outcome.await
            }
        };
        let response = match result {
            Ok(Ok((_, response))) => response,
            Ok(Err(e)) => {
                tracing::info!(call = %id, error = %e, "outgoing INVITE failed");
                None
            }
            Err(_) => None,
        };
        let status = response.as_ref().map_or(0, |r| r.status_code.code());
        if (200..300).contains(&status) && !timed_out {
            let body = response.map(|r| r.body).unwrap_or_default();
            let codec = match self.answered(&engine, &id, &body).await {
                Ok(codec) => codec,
                Err(reason) => {
                    tracing::info!(call = %id, %reason, "the answer's SDP is unusable; hanging up");
                    return control.ended(&id, Ending::UNSPECIFIED).await;
                }
            };
            if let Err(e) = control.answered(&id, codec).await {
                tracing::error!(call = %id, error = %e, "could not record an answer");
            }
            return;
        }
        // Already ended from the API (its CANCEL is what came back)?
        if self.remove(&id).is_none() {
            return;
        }
        let cause = if timed_out { "timeout" } else { cause_of_status(status) };
        control.ended(&id, Ending { cause, source: "callee" }).await;
    }

    /// The callee answered: apply its SDP. Returns the codec media now flows in.
    async fn answered(&self, engine: &EngineHandle, id: &CallId, body: &[u8]) -> Result<Codec, String> {
        let sip_call = self.get(id).ok_or("the call has ended")?;
        let plan = match SessionDescription::parse(body) {
            Ok(answer) => sdp::accept_answer(&answer, &sip_call.codecs).map_err(|e| e.to_string())?,
            // A 200 without SDP keeps what early media settled.
            Err(_) if body.is_empty() && sip_call.media.plan.is_some() => {
                sip_call.media.plan.expect("checked")
            }
            Err(e) => return Err(e.to_string()),
        };
        self.apply_plan(engine, id, &sip_call, plan, true).await?;
        self.update(id, |c| c.answered = true);
        Ok(plan.codec)
    }

    /// 183 (or 180) with SDP: play the callee's early media. The call, if its
    /// leg now carries it.
    pub(super) async fn early_media(
        &self,
        engine: &EngineHandle,
        sip_call_id: &str,
        body: &[u8],
    ) -> Option<CallId> {
        let id = self.by_sip_call_id(sip_call_id)?;
        let sip_call = self.get(&id).filter(|c| !c.incoming && !c.answered)?;
        tracing::info!(call = %id, early_media = !body.is_empty(), "call ringing");
        if body.is_empty() {
            return None;
        }
        let plan = SessionDescription::parse(body)
            .map_err(|e| e.to_string())
            .and_then(|a| sdp::accept_answer(&a, &sip_call.codecs).map_err(|e| e.to_string()));
        match plan {
            Ok(plan) => match self.apply_plan(engine, &id, &sip_call, plan, false).await {
                Ok(()) => return Some(id),
                Err(e) => tracing::info!(call = %id, error = %e, "early media not applied"),
            },
            Err(e) => tracing::info!(call = %id, error = %e, "unusable early-media SDP"),
        }
        None
    }

    /// Point the call's leg at what offer/answer settled.
    async fn apply_plan(
        &self,
        engine: &EngineHandle,
        id: &CallId,
        sip_call: &SipCall,
        plan: MediaPlan,
        answered: bool,
    ) -> Result<(), String> {
        let local = &sip_call.media.local;
        let rtp = media::rtp_media(&plan, answered, &local.crypto);
        // Keys offered and none agreed: plain RTP where SRTP was asked for is refused.
        if rtp.srtp == Srtp::Off && (local.secure || plan.crypto.is_some()) {
            return Err("the answer agrees no SRTP key Bond offered".into());
        }
        engine.update_rtp(sip_call.media.leg, rtp, plan.remote).await.map_err(|e| e.to_string())?;
        self.update(id, |c| c.media.plan = Some(plan));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SipSettings {
        let trunk = serde_json::json!({ "trunk": {
            "host": "trunk.example.net", "username": "acme", "password": "s3cret" } });
        SipSettings::from_value(&trunk).unwrap()
    }

    #[test]
    fn trunk_credentials_go_only_to_the_trunks_own_host() {
        let settings = settings();
        let to = |uri: &str| Destination::uri(uri, Some(&settings));
        for other in
            ["sip:+442071234567@evil.example", "sip:1@trunk.example.net:5070", "sip:x@trunk.example.net.evil"]
        {
            let d = to(other);
            assert_eq!((d.username, d.password), (None, None), "{other}");
        }
        for own in
            ["sip:+15551234567@trunk.example.net", "sip:+15551234567@TRUNK.example.net:5060;transport=udp"]
        {
            assert_eq!(to(own).password.as_deref(), Some("s3cret"), "{own}");
        }
        let number = Destination::number("+15551234567", Some(&settings)).unwrap();
        assert_eq!(number.password.as_deref(), Some("s3cret"));
    }
}
