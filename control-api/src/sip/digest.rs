//! Digest authentication of incoming INVITEs (RFC 3261 section 22, RFC 2617 MD5
//! with `qop=auth`) for connections with `bond.sip.inbound_auth`: a request
//! without credentials gets `401` and a challenge; its retry carries an
//! `Authorization` that must name a connection's user, answer the challenge
//! with that user's password, and carry a nonce Bond issued in the last five
//! minutes. Nonces are stateless (the time they were issued, HMAC-signed with a
//! secret made at start), so a flood of INVITEs costs no memory.

use hmac::{Hmac, Mac};
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{typed, Header, Method, Request};
use sha2::Sha256;

/// How long a nonce may be answered.
const NONCE_TTL_SECS: i64 = 300;
pub const REALM: &str = "bond";

/// A connection's `bond.sip.inbound_auth`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// What the credentials in a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No `Authorization`: challenge it.
    Missing,
    /// A nonce Bond did not issue, or issued too long ago: challenge again (`stale=true`).
    Stale,
    /// The user of `index` in the list, who answered the challenge.
    Accepted(usize),
    /// Unreadable, an unknown user, or the wrong password.
    Refused,
}

/// Issues and checks challenges.
pub struct DigestAuth {
    secret: [u8; 32],
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth").finish_non_exhaustive()
    }
}

impl Default for DigestAuth {
    fn default() -> Self {
        Self { secret: rand::random() }
    }
}

impl DigestAuth {
    /// A `WWW-Authenticate` header for a `401`, issued at `now` (Unix seconds).
    pub fn challenge(&self, now: i64, stale: bool) -> Header {
        let stale = if stale { ", stale=true" } else { "" };
        let value = format!(
            "Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"{stale}",
            self.nonce(now)
        );
        Header::WwwAuthenticate(value.into())
    }

    /// Check `request`'s `Authorization` against `users` at `now`.
    pub fn check(&self, request: &Request, users: &[&Credentials], now: i64) -> Verdict {
        let Some(header) = request.authorization_header() else { return Verdict::Missing };
        let Ok(auth) = typed::Authorization::parse(header.value()) else { return Verdict::Refused };
        let Some(index) = users.iter().position(|u| u.username == auth.username) else {
            return Verdict::Refused;
        };
        if auth.realm != REALM {
            return Verdict::Refused;
        }
        if !self.issued(&auth.nonce, now) {
            return Verdict::Stale;
        }
        if verify_digest(&auth, &users[index].password, &Method::Invite, header.value()) {
            Verdict::Accepted(index)
        } else {
            Verdict::Refused
        }
    }

    fn nonce(&self, issued: i64) -> String {
        format!("{issued:x}.{}", self.signature(issued))
    }

    /// Whether `nonce` is one of ours and still fresh at `now`.
    fn issued(&self, nonce: &str, now: i64) -> bool {
        let Some((time, signature)) = nonce.split_once('.') else { return false };
        let Ok(issued) = i64::from_str_radix(time, 16) else { return false };
        format!("{issued:x}") == time
            && signature == self.signature(issued)
            && (0..=NONCE_TTL_SECS).contains(&(now - issued))
    }

    fn signature(&self, issued: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(&issued.to_be_bytes());
        mac.finalize().into_bytes().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::headers::auth::{Algorithm, AuthQop};

    use super::*;

    fn invite(authorization: Option<String>) -> Request {
        let mut text = String::from(
            "INVITE sip:+15551230000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:caller@127.0.0.1>;tag=1\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: a@b\r\n\
             CSeq: 2 INVITE\r\nMax-Forwards: 70\r\n",
        );
        if let Some(a) = authorization {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        Request::try_from(text.as_str()).unwrap()
    }

    fn answer(user: &str, password: &str, nonce: &str) -> String {
        let uri = "sip:+15551230000@127.0.0.1:5060";
        let qop = AuthQop::Auth { cnonce: "c0ffee".into(), nc: 1 };
        let response =
            compute_digest(user, password, REALM, nonce, &Method::Invite, uri, Algorithm::Md5, Some(&qop));
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5, qop=auth, cnonce=\"c0ffee\", nc=00000001"
        )
    }

    fn nonce_of(header: &Header) -> String {
        let text = header.to_string();
        text.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
    }

    #[test]
    fn the_right_answer_to_a_fresh_challenge_names_its_user() {
        let auth = DigestAuth::default();
        let trunk = Credentials { username: "trunk".into(), password: "s3cret".into() };
        let other = Credentials { username: "other".into(), password: "x".into() };
        let users = [&other, &trunk];
        assert_eq!(auth.check(&invite(None), &users, 1000), Verdict::Missing);
        let nonce = nonce_of(&auth.challenge(1000, false));
        let request = invite(Some(answer("trunk", "s3cret", &nonce)));
        assert_eq!(auth.check(&request, &users, 1010), Verdict::Accepted(1));
        assert_eq!(auth.check(&request, &users, 1000 + NONCE_TTL_SECS + 1), Verdict::Stale, "too old");
        let wrong = invite(Some(answer("trunk", "guess", &nonce)));
        assert_eq!(auth.check(&wrong, &users, 1010), Verdict::Refused);
        let stranger = invite(Some(answer("nobody", "s3cret", &nonce)));
        assert_eq!(auth.check(&stranger, &users, 1010), Verdict::Refused);
    }

    #[test]
    fn a_nonce_bond_did_not_issue_or_garbage_is_not_accepted() {
        let auth = DigestAuth::default();
        let trunk = Credentials { username: "trunk".into(), password: "s3cret".into() };
        let forged = format!("{:x}.{}", 1000, "0".repeat(32));
        assert_eq!(
            auth.check(&invite(Some(answer("trunk", "s3cret", &forged))), &[&trunk], 1000),
            Verdict::Stale
        );
        let someone_elses = nonce_of(&DigestAuth::default().challenge(1000, false));
        let request = invite(Some(answer("trunk", "s3cret", &someone_elses)));
        assert_eq!(auth.check(&request, &[&trunk], 1000), Verdict::Stale);
        assert_eq!(auth.check(&invite(Some("Digest garbage".into())), &[&trunk], 1000), Verdict::Refused);
    }
}
