//! Digest authentication of incoming INVITEs (RFC 3261 section 22, RFC 2617 MD5
//! with `qop=auth`) for connections with `bond.sip.inbound_auth`: a request
//! without credentials gets `401` and a challenge; its retry carries an
//! `Authorization` that must name a connection's user, answer the challenge
//! with that user's password for this request's Request-URI, and carry a nonce
//! Bond issued for this call (its Call-ID) in the last five minutes.
//!
//! Nonces are stateless when issued (the time and the Call-ID, HMAC-signed with
//! a secret made at start), so a flood of INVITEs costs no memory. A nonce is
//! good for one call: once accepted it is kept until it would expire anyway,
//! and a second use is answered with a new challenge. An address whose answers
//! keep failing is refused outright for a while ([`MAX_FAILURES`] in
//! [`FAILURE_WINDOW_SECS`]), so passwords cannot be guessed at line rate.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{typed, Header, Method, Request};
use sha2::Sha256;

/// How long a nonce may be answered.
const NONCE_TTL_SECS: i64 = 300;
pub const REALM: &str = "bond";
/// Failed answers an address may give in [`FAILURE_WINDOW_SECS`] before it is refused.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW_SECS: i64 = 60;

/// Failed digest answers counted for a whole cluster of nodes (Redis, in
/// `cluster.redis_url`), beside each node's own count.
pub trait SharedFailures: Send + Sync + std::fmt::Debug {
    /// Whether `source` has failed too often on any node lately (`false` when
    /// the count cannot be read: the node's own decides).
    fn throttled(&self, source: IpAddr) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
    /// Count a failed answer from `source`.
    fn failed(&self, source: IpAddr) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

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
    /// A nonce Bond did not issue for this call, issued too long ago, or used
    /// already: challenge again (`stale=true`).
    Stale,
    /// The user of `index` in the list, who answered the challenge.
    Accepted(usize),
    /// Unreadable, an unknown user, another URI, or the wrong password.
    Refused,
    /// The address has failed too often lately: refused without a look.
    Throttled,
}

/// Issues and checks challenges.
pub struct DigestAuth {
    secret: [u8; 32],
    /// Nonces accepted once, with when they were issued (forgotten when they expire).
    used: Mutex<HashMap<String, i64>>,
    /// Failed answers per address: (count, start of the window).
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth").finish_non_exhaustive()
    }
}

impl Default for DigestAuth {
    fn default() -> Self {
        Self { secret: rand::random(), used: Mutex::default(), failures: Mutex::default() }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain maps: a panicking holder cannot leave them half-changed.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DigestAuth {
    /// A `WWW-Authenticate` header for a `401` to `request`, issued at `now` (Unix seconds).
    pub fn challenge(&self, request: &Request, now: i64, stale: bool) -> Header {
        let stale = if stale { ", stale=true" } else { "" };
        let value = format!(
            "Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"{stale}",
            self.nonce(now, &call_id(request))
        );
        Header::WwwAuthenticate(value.into())
    }

    /// Check `request`'s `Authorization`, from `source`, against `users` at `now`.
    pub fn check(&self, request: &Request, users: &[&Credentials], now: i64, source: IpAddr) -> Verdict {
        if self.throttled(source, now) {
            return Verdict::Throttled;
        }
        let Some(header) = request.authorization_header() else { return Verdict::Missing };
        let verdict = self.answer(request, header.value(), users, now);
        if verdict == Verdict::Refused {
            self.failed(source, now);
        }
        verdict
    }

    fn answer(&self, request: &Request, header: &str, users: &[&Credentials], now: i64) -> Verdict {
        let Ok(auth) = typed::Authorization::parse(header) else { return Verdict::Refused };
        let Some(index) = users.iter().position(|u| u.username == auth.username) else {
            return Verdict::Refused;
        };
        // The answer must be for this request, not one captured from another.
        if auth.realm != REALM || !same_target(&auth.uri, &request.uri) {
            tracing::debug!(answered_for = %auth.uri, request = %request.uri, "digest answer for another request");
            return Verdict::Refused;
        }
        let Some(issued) = self.issued(&auth.nonce, &call_id(request), now) else {
            return Verdict::Stale;
        };
        if !verify_digest(&auth, &users[index].password, &Method::Invite, header) {
            return Verdict::Refused;
        }
        let mut used = lock(&self.used);
        used.retain(|_, at| now - *at <= NONCE_TTL_SECS);
        if used.insert(auth.nonce.clone(), issued).is_some() {
            return Verdict::Stale;
        }
        Verdict::Accepted(index)
    }

    fn throttled(&self, source: IpAddr, now: i64) -> bool {
        lock(&self.failures)
            .get(&source)
            .is_some_and(|(count, since)| *count >= MAX_FAILURES && now - since < FAILURE_WINDOW_SECS)
    }

    fn failed(&self, source: IpAddr, now: i64) {
        let mut failures = lock(&self.failures);
        failures.retain(|_, (_, since)| now - *since < FAILURE_WINDOW_SECS);
        let entry = failures.entry(source).or_insert((0, now));
        entry.0 += 1;
    }

    fn nonce(&self, issued: i64, call_id: &str) -> String {
        format!("{issued:x}.{}", self.signature(issued, call_id))
    }

    /// When `nonce` was issued, if it is one of ours for `call_id` and still fresh at `now`.
    fn issued(&self, nonce: &str, call_id: &str, now: i64) -> Option<i64> {
        let (time, signature) = nonce.split_once('.')?;
        let issued = i64::from_str_radix(time, 16).ok()?;
        let ours = format!("{issued:x}") == time && signature == self.signature(issued, call_id);
        (ours && (0..=NONCE_TTL_SECS).contains(&(now - issued))).then_some(issued)
    }

    fn signature(&self, issued: i64, call_id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(&issued.to_be_bytes());
        mac.update(call_id.as_bytes());
        mac.finalize().into_bytes().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// Whether a digest `uri` names the Request-URI's target (RFC 2617 §3.2.2.5):
/// the same host and port, and the same user when it names one (some UAs, sipp
/// among them, answer for `sip:host:port` alone).
fn same_target(answered: &rsipstack::sip::Uri, request: &rsipstack::sip::Uri) -> bool {
    let user = |u: &rsipstack::sip::Uri| u.auth.as_ref().map(|a| a.user.clone());
    answered.host_with_port.to_string() == request.host_with_port.to_string()
        && (user(answered).is_none() || user(answered) == user(request))
}

fn call_id(request: &Request) -> String {
    request.call_id_header().map(|c| c.value().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::headers::auth::{Algorithm, AuthQop};

    use super::*;

    const URI: &str = "sip:+15551230000@127.0.0.1:5060";
    const CALLER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    fn invite_for(call: &str, uri: &str, authorization: Option<String>) -> Request {
        let mut text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:caller@127.0.0.1>;tag=1\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: {call}\r\n\
             CSeq: 2 INVITE\r\nMax-Forwards: 70\r\n",
        );
        if let Some(a) = authorization {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        Request::try_from(text.as_str()).unwrap()
    }

    fn invite(authorization: Option<String>) -> Request {
        invite_for("a@b", URI, authorization)
    }

    fn answer(user: &str, password: &str, nonce: &str) -> String {
        let qop = AuthQop::Auth { cnonce: "c0ffee".into(), nc: 1 };
        let response =
            compute_digest(user, password, REALM, nonce, &Method::Invite, URI, Algorithm::Md5, Some(&qop));
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{URI}\", \
             response=\"{response}\", algorithm=MD5, qop=auth, cnonce=\"c0ffee\", nc=00000001"
        )
    }

    fn nonce_of(header: &Header) -> String {
        let text = header.to_string();
        text.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
    }

    fn trunk() -> Credentials {
        Credentials { username: "trunk".into(), password: "s3cret".into() }
    }

    #[test]
    fn the_right_answer_to_a_fresh_challenge_names_its_user() {
        let auth = DigestAuth::default();
        let trunk = trunk();
        let other = Credentials { username: "other".into(), password: "x".into() };
        let users = [&other, &trunk];
        assert_eq!(auth.check(&invite(None), &users, 1000, CALLER), Verdict::Missing);
        let nonce = nonce_of(&auth.challenge(&invite(None), 1000, false));
        let wrong = invite(Some(answer("trunk", "guess", &nonce)));
        assert_eq!(auth.check(&wrong, &users, 1010, CALLER), Verdict::Refused);
        let stranger = invite(Some(answer("nobody", "s3cret", &nonce)));
        assert_eq!(auth.check(&stranger, &users, 1010, CALLER), Verdict::Refused);
        let late = invite(Some(answer("trunk", "s3cret", &nonce)));
        assert_eq!(auth.check(&late, &users, 1000 + NONCE_TTL_SECS + 1, CALLER), Verdict::Stale, "too old");
        let request = invite(Some(answer("trunk", "s3cret", &nonce)));
        assert_eq!(auth.check(&request, &users, 1010, CALLER), Verdict::Accepted(1));
    }

    #[test]
    fn a_nonce_bond_did_not_issue_or_garbage_is_not_accepted() {
        let auth = DigestAuth::default();
        let trunk = trunk();
        let forged = format!("{:x}.{}", 1000, "0".repeat(32));
        assert_eq!(
            auth.check(&invite(Some(answer("trunk", "s3cret", &forged))), &[&trunk], 1000, CALLER),
            Verdict::Stale
        );
        let someone_elses = nonce_of(&DigestAuth::default().challenge(&invite(None), 1000, false));
        let request = invite(Some(answer("trunk", "s3cret", &someone_elses)));
        assert_eq!(auth.check(&request, &[&trunk], 1000, CALLER), Verdict::Stale);
        assert_eq!(
            auth.check(&invite(Some("Digest garbage".into())), &[&trunk], 1000, CALLER),
            Verdict::Refused
        );
    }

    #[test]
    fn a_captured_answer_is_good_for_its_own_call_once_and_for_its_own_uri_only() {
        let auth = DigestAuth::default();
        let trunk = trunk();
        let nonce = nonce_of(&auth.challenge(&invite(None), 1000, false));
        let captured = answer("trunk", "s3cret", &nonce);
        assert_eq!(
            auth.check(&invite(Some(captured.clone())), &[&trunk], 1001, CALLER),
            Verdict::Accepted(0)
        );
        // Replayed: as is, for another Call-ID, and for another number.
        assert_eq!(auth.check(&invite(Some(captured.clone())), &[&trunk], 1002, CALLER), Verdict::Stale);
        let other_call = invite_for("c@d", URI, Some(captured.clone()));
        assert_eq!(auth.check(&other_call, &[&trunk], 1002, CALLER), Verdict::Stale);
        let other_number = invite_for("e@f", "sip:+19005550000@127.0.0.1:5060", Some(captured));
        assert_eq!(auth.check(&other_number, &[&trunk], 1002, CALLER), Verdict::Refused);
    }

    #[test]
    fn an_answer_for_the_host_alone_is_taken_as_sipp_sends_it() {
        let parse = |s: &str| rsipstack::sip::Uri::try_from(s).unwrap();
        let request = parse(URI);
        assert!(same_target(&parse("sip:127.0.0.1:5060"), &request));
        assert!(same_target(&parse(URI), &request));
        assert!(!same_target(&parse("sip:+19005550000@127.0.0.1:5060"), &request));
        assert!(!same_target(&parse("sip:127.0.0.1:5070"), &request));
    }

    #[test]
    fn an_address_that_keeps_guessing_is_refused_for_a_while() {
        let auth = DigestAuth::default();
        let trunk = trunk();
        let nonce = nonce_of(&auth.challenge(&invite(None), 1000, false));
        for n in 0..MAX_FAILURES {
            let guess = invite(Some(answer("trunk", &format!("guess{n}"), &nonce)));
            assert_eq!(auth.check(&guess, &[&trunk], 1000, CALLER), Verdict::Refused);
        }
        let right = invite(Some(answer("trunk", "s3cret", &nonce)));
        assert_eq!(
            auth.check(&right, &[&trunk], 1001, CALLER),
            Verdict::Throttled,
            "even the right one, for now"
        );
        let elsewhere = IpAddr::from([192, 0, 2, 8]);
        assert_eq!(
            auth.check(&right, &[&trunk], 1001, elsewhere),
            Verdict::Accepted(0),
            "others are not held back"
        );
        let nonce = nonce_of(&auth.challenge(&invite(None), 1000 + FAILURE_WINDOW_SECS, false));
        let later = invite(Some(answer("trunk", "s3cret", &nonce)));
        assert_eq!(auth.check(&later, &[&trunk], 1000 + FAILURE_WINDOW_SECS, CALLER), Verdict::Accepted(0));
    }
}
