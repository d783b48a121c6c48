//! TURN relays for agents behind firewalls that block UDP to Bond.
//!
//! Bond hands each browser, when it registers, the ICE servers to gather
//! relayed candidates from, with short-lived credentials in the TURN REST API
//! scheme (draft-uberti-behave-turn-rest-00, coturn's `use-auth-secret`): the
//! username is `<expiry, unix seconds>:<agent>` and the password is
//! base64(HMAC-SHA1(shared secret, username)). The TURN server checks both
//! with the secret alone, so no per-agent account is kept anywhere, and a
//! leaked credential stops working at its expiry. A browser signed in for
//! longer than that is sent fresh credentials every half of it, so the calls
//! it takes later still reach the relay.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

/// One ICE server as `RTCPeerConnection`'s `iceServers` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// The configured TURN servers and the secret they share with Bond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServers {
    urls: Vec<String>,
    secret: String,
    ttl_secs: i64,
}

impl TurnServers {
    /// `urls` (`turn:host:port?transport=udp`, `turns:...`) sharing `secret`,
    /// with credentials good for `ttl_secs`; `None` without a URL.
    pub fn new(urls: Vec<String>, secret: String, ttl_secs: i64) -> Option<Self> {
        (!urls.is_empty()).then_some(Self { urls, secret, ttl_secs })
    }

    /// How often a signed-in browser gets fresh credentials: half their life
    /// (at least a second), so it never holds only expired ones.
    pub fn refresh_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.ttl_secs / 2).max(1).unsigned_abs())
    }

    /// The ICE servers for `agent`, with a credential made at `now` (unix seconds).
    pub fn ice_servers(&self, agent: &str, now: i64) -> Vec<IceServer> {
        let username = format!("{}:{agent}", now + self.ttl_secs);
        let mut mac = Hmac::<Sha1>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key");
        mac.update(username.as_bytes());
        let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        vec![IceServer { urls: self.urls.clone(), username, credential }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_the_rest_api_hmac_of_an_expiring_username() {
        let turn = TurnServers::new(vec!["turn:turn.example:3478".into()], "north".into(), 600).unwrap();
        let servers = turn.ice_servers("dana.k", 1_700_000_000);
        assert_eq!(servers[0].urls, ["turn:turn.example:3478"]);
        assert_eq!(servers[0].username, "1700000600:dana.k");
        // echo -n 1700000600:dana.k | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(servers[0].credential, "XTagOrn+YNrXQsGYGPUJ62FHG78=");
    }

    #[test]
    fn credentials_are_refreshed_at_half_their_life_and_at_most_each_second() {
        let turn = |ttl| TurnServers::new(vec!["turn:t".into()], "s".into(), ttl).unwrap();
        assert_eq!(turn(86_400).refresh_every().as_secs(), 43_200);
        assert_eq!(turn(1).refresh_every().as_secs(), 1);
    }

    #[test]
    fn no_url_means_no_turn() {
        assert_eq!(TurnServers::new(Vec::new(), "secret".into(), 600), None);
    }
}
