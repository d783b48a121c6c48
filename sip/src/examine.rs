//! Everything Bond's own code reads from a request the SIP stack hands it,
//! without a transaction or a call: for the `sip_request` fuzz target
//! (docs/fuzzing.md). rsipstack parses the message; what is fuzzed here is
//! what Bond does with it after that.

use std::net::SocketAddr;

use bond_media_engine::sdp::{self, SessionDescription};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, SipMessage, ToTypedHeader};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

use super::digest::{Credentials, DigestAuth};
use super::{dialogs, inbound, settings, source};

/// Read `datagram` as a request arriving from `from`, as Bond would.
pub fn examine(datagram: &[u8], from: SocketAddr) {
    let Ok(message) = SipMessage::try_from(datagram) else { return };
    let from = SipAddr { r#type: Some(rsipstack::sip::Transport::Udp), addr: from.into() };
    let SipMessage::Request(request) = source::StampSource.after_received(message, Some(&from)) else {
        return;
    };
    let source = source::source_ip(&request);
    if let Ok(from) = request.from_header().and_then(|f| f.typed()) {
        let _ = inbound::user_or_uri(&from.uri);
    }
    let _ = request.to_header().and_then(|t| t.tag());
    match request.method {
        Method::Invite => {
            let user = Credentials { username: "carrier".into(), password: "pw".into() };
            if let Some(source) = source {
                let _ = DigestAuth::default().check(&request, &[&user], 1_000, source);
            }
            if let Ok(offer) = SessionDescription::parse(&request.body) {
                let _ = sdp::answer(&offer, settings::DEFAULT_CODECS);
            }
        }
        Method::Info => {
            let _ = dialogs::relay_digit(&request.body);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_half_requests_are_read_without_panicking() {
        let from: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        for input in [
            &b""[..],
            b"INVITE",
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;received=\xff\r\n\r\n",
            b"INFO sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INFO\r\nContent-Length: 9\r\n\r\nSignal=5\r\n",
        ] {
            examine(input, from);
        }
    }
}
