//! A connection's `bond.sip` settings: who may call in, the trunk Bond calls out
//! through, and the codecs it offers.

use std::net::IpAddr;

use bond_codecs::Codec;
use serde_json::Value;

use super::digest::Credentials;
use bond_store::Connection;

/// Codecs Bond offers and accepts on SIP legs, in its order of preference.
pub const DEFAULT_CODECS: &[Codec] = &[Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

/// SIP transport towards a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkTransport {
    Udp,
    Tcp,
    /// Verified against the system's roots and `trusted_ca`.
    Tls,
}

impl TrunkTransport {
    /// rsipstack's name for it.
    pub fn sip(self) -> rsipstack::sip::Transport {
        match self {
            Self::Udp => rsipstack::sip::Transport::Udp,
            Self::Tcp => rsipstack::sip::Transport::Tcp,
            Self::Tls => rsipstack::sip::Transport::Tls,
        }
    }

    /// What a SIP URI says for it (`;transport=tcp`); nothing for UDP.
    pub fn uri_parameter(self) -> &'static str {
        match self {
            Self::Udp => "",
            Self::Tcp => ";transport=tcp",
            Self::Tls => ";transport=tls",
        }
    }
}

/// Where Bond sends calls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub host: String,
    pub port: u16,
    pub transport: TrunkTransport,
    /// Digest credentials answering 401/407.
    pub username: Option<String>,
    pub password: Option<String>,
}

/// `bond.sip` of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSettings {
    /// Source addresses whose INVITEs land on this connection.
    pub allowed_ips: Vec<IpAddr>,
    /// Digest credentials an INVITE from any address may answer a challenge with.
    pub inbound_auth: Option<Credentials>,
    /// Live SIP calls at once; further INVITEs get 503.
    pub max_concurrent_calls: Option<usize>,
    pub codecs: Vec<Codec>,
    pub trunk: Option<Trunk>,
    /// SRTP (SDES) on this connection's calls.
    pub srtp: SrtpMode,
    /// Whether a peer's REFER is carried out (off by default: it makes Bond
    /// dial, through this connection's trunk, a number the peer chose).
    pub accept_refer: bool,
}

/// Whether a connection's calls use SRTP, keyed by SDES (`a=crypto`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum SrtpMode {
    /// Plain RTP; an `RTP/SAVP` offer is refused (488).
    #[default]
    Off,
    /// SRTP when the peer wants it: an `RTP/SAVP` offer, or keys in an
    /// `RTP/AVP` one, get SRTP; Bond's own offers carry keys in `RTP/AVP`, so a
    /// peer without SRTP still answers plainly.
    Offered,
    /// SRTP or no call: Bond offers `RTP/SAVP`, refuses offers without a
    /// key (488) and hangs up on answers without one.
    Required,
}

impl SipSettings {
    /// `None` when the connection has no `bond.sip`.
    pub fn of(connection: &Connection) -> Option<Self> {
        Self::from_value(connection.settings.get("bond")?.get("sip")?).ok()
    }

    /// Read and check `bond.sip`; the error names the field.
    pub fn from_value(sip: &Value) -> Result<Self, String> {
        let object = sip.as_object().ok_or("bond.sip must be an object")?;
        for key in object.keys() {
            if ![
                "allowed_ips",
                "inbound_auth",
                "max_concurrent_calls",
                "codecs",
                "trunk",
                "srtp",
                "accept_refer",
            ]
            .contains(&key.as_str())
            {
                return Err(format!("bond.sip.{key} is not a setting"));
            }
        }
        let allowed_ips = match sip.get("allowed_ips") {
            None => Vec::new(),
            Some(list) => list
                .as_array()
                .ok_or("bond.sip.allowed_ips must be a list of IP addresses")?
                .iter()
                .map(|ip| {
                    ip.as_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("bond.sip.allowed_ips: {ip} is not an IP address"))
                })
                .collect::<Result<_, _>>()?,
        };
        let max_concurrent_calls = match sip.get("max_concurrent_calls") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|n| *n > 0)
                    .ok_or("bond.sip.max_concurrent_calls must be a positive integer")?
                    as usize,
            ),
        };
        let codecs = match sip.get("codecs") {
            None => DEFAULT_CODECS.to_vec(),
            Some(list) => {
                let names = list.as_array().ok_or("bond.sip.codecs must be a list")?;
                let codecs: Vec<Codec> = names
                    .iter()
                    .map(|n| {
                        n.as_str().and_then(Codec::from_encoding_name).ok_or_else(|| {
                            format!("bond.sip.codecs: {n} is not one of PCMU, PCMA, G722, OPUS")
                        })
                    })
                    .collect::<Result<_, _>>()?;
                if codecs.is_empty() {
                    return Err("bond.sip.codecs must name at least one codec".into());
                }
                codecs
            }
        };
        let trunk = sip.get("trunk").map(trunk_of).transpose()?;
        let inbound_auth = sip.get("inbound_auth").map(credentials_of).transpose()?;
        let srtp = match sip.get("srtp").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            None if sip.get("srtp").is_none() => SrtpMode::Off,
            Some("off") => SrtpMode::Off,
            Some("offered") => SrtpMode::Offered,
            Some("required") => SrtpMode::Required,
            _ => return Err("bond.sip.srtp must be off, offered or required".into()),
        };
        let accept_refer = match sip.get("accept_refer") {
            None | Some(Value::Null) => false,
            Some(v) => v.as_bool().ok_or("bond.sip.accept_refer must be true or false")?,
        };
        Ok(Self { allowed_ips, inbound_auth, max_concurrent_calls, codecs, trunk, srtp, accept_refer })
    }
}

fn credentials_of(auth: &Value) -> Result<Credentials, String> {
    let text = |k: &str| auth.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
    match (text("username"), text("password")) {
        (Some(username), Some(password)) => Ok(Credentials { username, password }),
        _ => Err("bond.sip.inbound_auth needs a username and a password".into()),
    }
}

fn trunk_of(trunk: &Value) -> Result<Trunk, String> {
    let text = |k: &str| trunk.get(k).and_then(Value::as_str).map(str::to_owned);
    let host = text("host").filter(|h| !h.is_empty()).ok_or("bond.sip.trunk.host is required")?;
    let transport = match text("transport").as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("udp") => TrunkTransport::Udp,
        Some("tcp") => TrunkTransport::Tcp,
        Some("tls") => TrunkTransport::Tls,
        Some(other) => return Err(format!("bond.sip.trunk.transport '{other}' must be udp, tcp or tls")),
    };
    let port = match trunk.get("port") {
        // SIP over TLS has a port of its own (RFC 3261 section 19.1.2).
        None if transport == TrunkTransport::Tls => 5061,
        None => 5060,
        Some(p) => p
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or("bond.sip.trunk.port must be a port number")?,
    };
    Ok(Trunk { host, port, transport, username: text("username"), password: text("password") })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_tls_trunk_is_on_5061_unless_it_says_otherwise() {
        let tls = |trunk| SipSettings::from_value(&json!({ "trunk": trunk })).unwrap().trunk.unwrap();
        let trunk = tls(json!({"host": "sip.example.net", "transport": "tls"}));
        assert_eq!((trunk.port, trunk.transport), (5061, TrunkTransport::Tls));
        assert_eq!(trunk.transport.uri_parameter(), ";transport=tls");
        assert_eq!(tls(json!({"host": "h", "port": 5071, "transport": "TLS"})).port, 5071);
    }

    #[test]
    fn a_full_setting_reads_back() {
        let s = SipSettings::from_value(&json!({
            "allowed_ips": ["10.0.0.1", "::1"], "max_concurrent_calls": 20, "codecs": ["pcma", "OPUS"],
            "trunk": {"host": "sip.example.net", "port": 5080, "transport": "TCP", "username": "u", "password": "p"},
            "inbound_auth": {"username": "carrier", "password": "pw"}
        }))
        .unwrap();
        assert_eq!(s.allowed_ips.len(), 2);
        assert_eq!(s.inbound_auth.map(|c| c.username), Some("carrier".into()));
        assert_eq!(s.max_concurrent_calls, Some(20));
        assert_eq!(s.codecs, vec![Codec::Pcma, Codec::Opus]);
        let trunk = s.trunk.unwrap();
        assert_eq!((trunk.port, trunk.transport), (5080, TrunkTransport::Tcp));
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let s = SipSettings::from_value(&json!({"trunk": {"host": "10.1.1.1"}})).unwrap();
        assert_eq!(s.codecs, DEFAULT_CODECS);
        assert!(!s.accept_refer, "a peer's REFER is refused unless the connection says otherwise");
        let trunk = s.trunk.unwrap();
        assert_eq!((trunk.port, trunk.transport), (5060, TrunkTransport::Udp));
    }

    #[test]
    fn mistakes_name_the_field() {
        for (value, field) in [
            (json!({"allowed_ips": ["nope"]}), "allowed_ips"),
            (json!({"codecs": ["G729"]}), "codecs"),
            (json!({"codecs": []}), "codecs"),
            (json!({"max_concurrent_calls": 0}), "max_concurrent_calls"),
            (json!({"trunk": {"port": 5060}}), "trunk.host"),
            (json!({"trunk": {"host": "h", "transport": "sctp"}}), "transport"),
            (json!({"registrar": "x"}), "registrar"),
            (json!({"srtp": "yes"}), "srtp"),
            (json!({"accept_refer": "yes"}), "accept_refer"),
            (json!({"inbound_auth": {"username": "u"}}), "inbound_auth"),
        ] {
            let error = SipSettings::from_value(&value).unwrap_err();
            assert!(error.contains(field), "{value}: {error}");
        }
    }
}
