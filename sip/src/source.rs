//! Where a request came from: the transport's source address, never what the
//! request says about itself.
//!
//! A Via's `received` and `rport` are what the server *writes* (RFC 3261
//! §18.2.1, RFC 3581 §4); a client may send its own, and its Via host is
//! whatever it wrote. Bond's [`StampSource`] runs on every message as the
//! transport hands it over and sets the top Via's `received` to the address
//! the datagram or TCP connection really came from, replacing any the sender
//! put there. [`source_ip`] then reads that stamp and nothing else, so a
//! connection's `allowed_ips` cannot be matched by a forged header.

use std::net::{IpAddr, SocketAddr};

use rsipstack::sip::param::Received;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Param, Request, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

/// Stamps each request's top Via with the transport's source address.
#[derive(Debug, Default)]
pub struct StampSource;

impl MessageInspector for StampSource {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        msg
    }

    fn after_received(&self, msg: SipMessage, from: Option<&SipAddr>) -> SipMessage {
        let from = from.and_then(|f| SocketAddr::try_from(f.addr.clone()).ok());
        match msg {
            SipMessage::Request(mut request) => {
                stamp(&mut request, from.map(|f| f.ip()));
                request.into()
            }
            response => response,
        }
    }
}

/// Set the top Via's `received` to `source`, dropping any the sender wrote.
/// Without a source (a transport that gives none) the sender's are dropped
/// all the same, so [`source_ip`] finds nothing and the request is refused.
fn stamp(request: &mut Request, source: Option<IpAddr>) {
    let Ok(via) = request.via_header_mut() else { return };
    let stamped = via.update_first_value(|first| {
        let mut typed = first.typed()?;
        typed.params.retain(|p| !matches!(p, Param::Received(_)));
        if let Some(ip) = source {
            let host = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            typed.params.push(Param::Received(Received::new(host)));
        }
        Ok(typed.into())
    });
    if stamped.is_err() {
        // A Via Bond cannot read gets no stamp; make sure it keeps no `received` either.
        let value = via.value().to_owned();
        via.replace(strip_received(&value));
    }
}

/// `value` with every `;received=...` parameter taken out (the raw text of a Via
/// the typed parser refused).
fn strip_received(value: &str) -> String {
    value
        .split(';')
        .filter(|p| !p.trim().to_ascii_lowercase().starts_with("received"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The address the request arrived from, as [`StampSource`] stamped it.
pub fn source_ip(request: &Request) -> Option<IpAddr> {
    let via = request.via_header().ok()?.typed().ok()?;
    via.params.iter().find_map(|p| match p {
        Param::Received(r) => r.value().trim_matches(['[', ']']).parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::Transport;

    fn invite(via: &str) -> Request {
        let text = format!(
            "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:100@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_str()).expect("a valid request")
    }

    fn received_from(via: &str, from: &str) -> Option<IpAddr> {
        let addr: SocketAddr = from.parse().unwrap();
        let from = SipAddr { r#type: Some(Transport::Udp), addr: addr.into() };
        let SipMessage::Request(request) = StampSource.after_received(invite(via).into(), Some(&from)) else {
            panic!("a request stays a request");
        };
        source_ip(&request)
    }

    #[test]
    fn a_forged_received_gives_way_to_the_transport_source() {
        let via = "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx;received=127.0.0.2;rport";
        assert_eq!(received_from(via, "127.0.0.1:5999"), Some(IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn a_via_host_that_is_not_the_source_is_not_believed() {
        let via = "SIP/2.0/TCP 127.0.0.2:5060;branch=z9hG4bKx";
        assert_eq!(received_from(via, "127.0.0.1:40000"), Some(IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn ipv6_sources_are_stamped_in_brackets_and_read_back() {
        let via = "SIP/2.0/UDP [::1]:5060;branch=z9hG4bKx;received=192.0.2.1";
        assert_eq!(received_from(via, "[2001:db8::7]:5060"), Some("2001:db8::7".parse().unwrap()));
    }

    #[test]
    fn an_unstamped_request_has_no_source() {
        let request = invite("SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKx");
        assert_eq!(source_ip(&request), None, "the Via host is not a source");
        let SipMessage::Request(request) = StampSource.after_received(
            invite("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;received=127.0.0.2").into(),
            None,
        ) else {
            panic!("a request stays a request");
        };
        assert_eq!(source_ip(&request), None, "the sender's received is dropped");
    }

    #[test]
    fn received_is_stripped_from_raw_text() {
        assert_eq!(
            strip_received("SIP/2.0/UDP h;branch=b;received=1.2.3.4;rport"),
            "SIP/2.0/UDP h;branch=b;rport"
        );
    }
}
