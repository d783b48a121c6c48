//! Calling out: where an INVITE goes and how it is built.

use std::sync::Arc;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{HostWithPort, Transport, Uri};
use rsipstack::transport::SipAddr;

use super::settings::{SipSettings, TrunkTransport};
use super::SipStack;
use crate::Endpoint;

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
    /// A number goes through the connection's trunk; a `sip:` URI is dialed as it is.
    pub fn of(endpoint: &Endpoint, settings: Option<&SipSettings>) -> Result<Self, String> {
        let trunk = settings.and_then(|s| s.trunk.as_ref());
        match endpoint {
            Endpoint::E164(number) => {
                let trunk = trunk
                    .ok_or("this connection has no SIP trunk (bond.sip.trunk) to dial numbers through")?;
                let transport = if trunk.transport == TrunkTransport::Tcp { ";transport=tcp" } else { "" };
                Ok(Self {
                    request_uri: format!("sip:{number}@{}:{}{transport}", trunk.host, trunk.port),
                    next_hop: Some((trunk.host.clone(), trunk.port, trunk.transport)),
                    username: trunk.username.clone(),
                    password: trunk.password.clone(),
                })
            }
            // The trunk's credentials answer only the trunk: any other host could
            // challenge with its own realm and crack the digest offline.
            Endpoint::Sip(uri) => {
                let trunk = trunk.filter(|t| is_trunk_host(uri, &t.host, t.port));
                Ok(Self {
                    request_uri: uri.clone(),
                    next_hop: None,
                    username: trunk.and_then(|t| t.username.clone()),
                    password: trunk.and_then(|t| t.password.clone()),
                })
            }
            _ => Err("not a SIP destination".into()),
        }
    }

    fn is_tcp(&self) -> bool {
        match &self.next_hop {
            Some((_, _, transport)) => *transport == TrunkTransport::Tcp,
            None => self.request_uri.contains("transport=tcp"),
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
pub struct Caller<'a> {
    pub from: &'a str,
    pub display_name: Option<&'a str>,
}

/// Send the INVITE with Bond's `offer`; the dialog reports its progress on the
/// stack's state channel and the handle resolves with the final response.
pub fn invite(
    stack: &Arc<SipStack>,
    destination: &Destination,
    caller: Caller<'_>,
    offer: String,
) -> Result<(InviteDialog, tokio::task::JoinHandle<rsipstack::dialog::invitation::InviteAsyncResult>), String>
{
    let callee = Uri::try_from(destination.request_uri.as_str())
        .map_err(|e| format!("'{}' is not a SIP URI: {e}", destination.request_uri))?;
    let tcp = destination.is_tcp();
    let user: String =
        caller.from.chars().filter(|c| c.is_ascii_alphanumeric() || "+-_.".contains(*c)).collect();
    let contact = stack.contact(&user, tcp);
    let caller_uri = Uri::try_from(
        format!("sip:{}@{}", if user.is_empty() { "bond" } else { &user }, contact.host_with_port).as_str(),
    )
    .map_err(|e| format!("bad caller: {e}"))?;
    let next_hop = destination.next_hop.as_ref().map(|(host, port, transport)| SipAddr {
        r#type: Some(if *transport == TrunkTransport::Tcp { Transport::Tcp } else { Transport::Udp }),
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
        ..Default::default()
    };
    stack.dialogs.do_invite_async(option, stack.states.clone()).map_err(|e| e.to_string())
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
        let to = |uri: &str| Destination::of(&Endpoint::Sip(uri.into()), Some(&settings)).unwrap();
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
        let number = Destination::of(&Endpoint::E164("+15551234567".into()), Some(&settings)).unwrap();
        assert_eq!(number.password.as_deref(), Some("s3cret"));
    }
}
