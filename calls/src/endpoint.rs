//! What `to` (and `from`) may name: a phone number, a SIP URI, an agent, or a built-in leg.

use std::collections::HashMap;

/// A parsed destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// An E.164 number, `+` and 2-15 digits.
    E164(String),
    Sip(String),
    Agent(String),
    Loop(LoopKind),
}

/// The built-in legs that answer at once.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopKind {
    /// Returns what it hears.
    Echo,
    /// Plays a steady tone.
    Tone {
        hz: f64,
    },
    Silence,
    /// Plays a WAV file from the data directory.
    Play {
        file: String,
    },
}

/// Why a destination was refused; the message is shown to the API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

impl Endpoint {
    /// Telnyx's `sip_transport_protocol` (`UDP`, `TCP`, `TLS`) on a SIP URI
    /// that names no transport of its own; other destinations are left as
    /// they are (a trunk's own `transport` decides for numbers).
    pub fn with_sip_transport(self, protocol: &str) -> Result<Self, EndpointError> {
        let parameter = match protocol.to_ascii_uppercase().as_str() {
            "UDP" => "",
            "TCP" => ";transport=tcp",
            "TLS" => ";transport=tls",
            _ => return Err(EndpointError(format!("'{protocol}' is not UDP, TCP or TLS"))),
        };
        match self {
            Self::Sip(uri) if !uri.to_ascii_lowercase().contains(";transport=") => {
                // URI headers (`?...`) come after the parameters.
                let (base, headers) = uri.split_once('?').map_or((uri.as_str(), None), |(b, h)| (b, Some(h)));
                let headers = headers.map(|h| format!("?{h}")).unwrap_or_default();
                Ok(Self::Sip(format!("{base}{parameter}{headers}")))
            }
            other => Ok(other),
        }
    }

    pub fn parse(s: &str) -> Result<Self, EndpointError> {
        if let Some(rest) = s.strip_prefix("loop:") {
            return parse_loop(rest).map(Self::Loop);
        }
        if s.starts_with("sip:") || s.starts_with("sips:") {
            let user_host = s.split_once(':').map_or("", |(_, r)| r);
            let host = user_host.rsplit('@').next().unwrap_or("");
            if host.is_empty() || s.chars().any(char::is_whitespace) {
                return Err(EndpointError(format!("'{s}' is not a valid SIP URI")));
            }
            return Ok(Self::Sip(s.to_owned()));
        }
        if let Some(name) = s.strip_prefix("agent:") {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !valid {
                return Err(EndpointError(format!("'{s}' is not a valid agent name")));
            }
            return Ok(Self::Agent(name.to_owned()));
        }
        if is_e164(s) {
            return Ok(Self::E164(s.to_owned()));
        }
        Err(EndpointError(format!(
            "'{s}' must be an E.164 number (^\\+[1-9]\\d{{1,14}}$) or a sip:, agent: or loop: URI"
        )))
    }
}

/// What the user part of a `sip:` URI says about a telephone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneUser<'a> {
    /// Not a number (`alice`), or no user part: nothing to check.
    None,
    /// `+` and digits, as written.
    E164(&'a str),
    /// Digits without `+` (`011...`, `44207...`), or `user=phone` without `+`:
    /// a carrier may dial it anywhere, and its country cannot be told.
    Bare,
}

/// The telephone number a `sip:` URI's user part names, if it names one.
pub fn phone_number_in(uri: &str) -> PhoneUser<'_> {
    let rest = uri.split_once(':').map_or("", |(_, r)| r);
    let Some((user, _host)) = rest.rsplit_once('@') else { return PhoneUser::None };
    // `user;isub=...` and `user?headers` keep the number before them.
    let user = user.split([';', '?']).next().unwrap_or(user);
    let user_is_phone = uri.to_ascii_lowercase().contains(";user=phone");
    if is_e164(user) {
        return PhoneUser::E164(user);
    }
    let digits = user.trim_start_matches('+');
    let looks_like_a_number = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || "-.()*#".contains(c))
        && digits.chars().filter(char::is_ascii_digit).count() >= 3;
    if looks_like_a_number || user_is_phone {
        PhoneUser::Bare
    } else {
        PhoneUser::None
    }
}

/// `^\+[1-9]\d{1,14}$`
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0')
}

fn parse_loop(rest: &str) -> Result<LoopKind, EndpointError> {
    let (kind, query) = rest.split_once('?').unwrap_or((rest, ""));
    let params: HashMap<&str, &str> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
    match kind {
        "echo" => Ok(LoopKind::Echo),
        "silence" => Ok(LoopKind::Silence),
        "tone" => {
            let hz = match params.get("hz") {
                None => 1000.0,
                Some(v) => v
                    .parse::<f64>()
                    .map_err(|_| EndpointError(format!("loop:tone hz '{v}' is not a number")))?,
            };
            if !(50.0..=7000.0).contains(&hz) {
                return Err(EndpointError("loop:tone hz must be between 50 and 7000".into()));
            }
            Ok(LoopKind::Tone { hz })
        }
        "play" => {
            let file = params.get("file").copied().unwrap_or("");
            let safe = !file.is_empty()
                && file.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !file.starts_with('.');
            if !safe {
                return Err(EndpointError(
                    "loop:play needs file=NAME, a plain file name in the data directory".into(),
                ));
            }
            Ok(LoopKind::Play { file: file.to_owned() })
        }
        other => {
            Err(EndpointError(format!("unknown built-in leg 'loop:{other}' (echo, tone, silence, play)")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_follows_the_pattern() {
        for ok in ["+12", "+13125550100", "+441234567890", "+123456789012345"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in ["13125550100", "+0123", "+1", "+1234567890123456", "+1-312", ""] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn parses_every_kind() {
        assert_eq!(Endpoint::parse("loop:echo").unwrap(), Endpoint::Loop(LoopKind::Echo));
        assert_eq!(
            Endpoint::parse("loop:tone?hz=440").unwrap(),
            Endpoint::Loop(LoopKind::Tone { hz: 440.0 })
        );
        assert_eq!(Endpoint::parse("loop:tone").unwrap(), Endpoint::Loop(LoopKind::Tone { hz: 1000.0 }));
        assert_eq!(
            Endpoint::parse("loop:play?file=greeting.wav").unwrap(),
            Endpoint::Loop(LoopKind::Play { file: "greeting.wav".into() })
        );
        assert_eq!(
            Endpoint::parse("sip:alice@example.com").unwrap(),
            Endpoint::Sip("sip:alice@example.com".into())
        );
        assert_eq!(Endpoint::parse("agent:dana.k").unwrap(), Endpoint::Agent("dana.k".into()));
    }

    #[test]
    fn refuses_what_is_not_a_destination() {
        for bad in [
            "loop:nothing",
            "loop:tone?hz=abc",
            "loop:tone?hz=20000",
            "loop:play?file=../etc/passwd",
            "loop:play",
            "sip:",
            "agent:",
            "agent:a b",
            "hello",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_inside_sip_uris_are_found_and_bare_digits_are_called_so() {
        assert_eq!(phone_number_in("sip:+442071234567@evil.example"), PhoneUser::E164("+442071234567"));
        assert_eq!(phone_number_in("sip:+442071234567;isub=1@h"), PhoneUser::E164("+442071234567"));
        assert_eq!(phone_number_in("sips:011442071234567@h:5061"), PhoneUser::Bare);
        assert_eq!(phone_number_in("sip:442071234567@h;user=phone"), PhoneUser::Bare);
        assert_eq!(phone_number_in("sip:020-7123-4567@h"), PhoneUser::Bare);
        assert_eq!(phone_number_in("sip:alice@example.com"), PhoneUser::None);
        assert_eq!(phone_number_in("sip:example.com"), PhoneUser::None);
        assert_eq!(phone_number_in("sip:12@h"), PhoneUser::None, "an extension is not a number");
    }

    #[test]
    fn sip_transport_protocol_names_the_transport_of_a_uri_that_has_none() {
        let sip = |uri: &str| Endpoint::Sip(uri.into());
        assert_eq!(sip("sip:a@h:5061").with_sip_transport("TLS"), Ok(sip("sip:a@h:5061;transport=tls")));
        assert_eq!(sip("sip:a@h?X-Y=1").with_sip_transport("tcp"), Ok(sip("sip:a@h;transport=tcp?X-Y=1")));
        assert_eq!(sip("sip:a@h;transport=udp").with_sip_transport("TLS"), Ok(sip("sip:a@h;transport=udp")));
        assert_eq!(sip("sip:a@h").with_sip_transport("UDP"), Ok(sip("sip:a@h")));
        let number = Endpoint::E164("+15550001111".into());
        assert_eq!(number.clone().with_sip_transport("TLS"), Ok(number));
        assert!(sip("sip:a@h").with_sip_transport("SCTP").is_err());
    }
}
