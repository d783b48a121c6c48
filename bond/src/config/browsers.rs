//! The `[webrtc]` and `[turn]` sections: how browsers (agents and
//! supervisors) reach Bond's media.

use std::net::{IpAddr, SocketAddr};

use bond_codecs::Codec;
use bond_media_engine::webrtc::DEFAULT_CODECS;
use serde::{Deserialize, Serialize};

/// Browser (WebRTC) legs: the one UDP port they share (and a TCP listener on
/// it), and their codecs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    pub listen: SocketAddr,
    /// Address in Bond's ICE candidate; unset: `rtp.public_ip`, else the listen
    /// address, else (listening on 0.0.0.0) the address of the default route.
    pub public_ip: Option<IpAddr>,
    /// Codecs browsers are answered with, best first: `opus`, `G722`, `PCMU`,
    /// `PCMA` (a list, or one string separated by commas, as the environment gives it).
    #[serde(deserialize_with = "names")]
    pub codecs: Vec<String>,
    /// Take browsers over TCP on the same address and port too (ICE-TCP, for
    /// firewalls that let no UDP through).
    pub tcp: bool,
}

/// The TURN servers agents' browsers relay through when UDP to Bond is
/// blocked; the credentials Bond hands them follow the TURN REST API scheme
/// (coturn: `use-auth-secret`, `static-auth-secret`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// `turn:host:port?transport=udp`, `turn:host:port?transport=tcp`,
    /// `turns:host:port` (a list, or one string separated by commas); empty: no TURN.
    #[serde(deserialize_with = "names")]
    pub urls: Vec<String>,
    /// The secret shared with the TURN server.
    #[serde(skip_serializing)]
    pub secret: String,
    /// How long a credential is good for, from the agent's sign-in.
    pub ttl_secs: i64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self { urls: Vec::new(), secret: String::new(), ttl_secs: 86_400 }
    }
}

/// A list of names, or the same in one string separated by commas.
pub(super) fn names<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Names::deserialize(deserializer)? {
        Names::List(list) => list,
        Names::Text(text) => {
            text.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect()
        }
    })
}

impl WebRtcConfig {
    /// `codecs` as the engine's codecs (names checked by [`Config::load`]).
    pub fn engine_codecs(&self) -> Vec<Codec> {
        self.codecs.iter().filter_map(|name| Codec::from_encoding_name(name)).collect()
    }
}

/// 31000: below Linux's ephemeral ports (32768-60999), so no outgoing
/// connection on the host can be holding it when Bond starts.
impl Default for WebRtcConfig {
    fn default() -> Self {
        let codecs = DEFAULT_CODECS.iter().map(|c| c.encoding_name().to_owned()).collect();
        Self { listen: SocketAddr::from(([0, 0, 0, 0], 31_000)), public_ip: None, codecs, tcp: true }
    }
}
