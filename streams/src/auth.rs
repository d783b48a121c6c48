//! Who may open a media stream on a connection: Telnyx streams show the
//! connection's stream token; Twilio streams sign the URL with its auth token.
//! Both live in the connection's `bond.media_streams` settings.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use bond_store::Connection;

/// The connection's media-stream secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSecrets {
    pub telnyx_stream_token: Option<String>,
    pub twilio_auth_token: Option<String>,
    /// L16 byte order: big-endian unless `"little"`.
    pub l16_little_endian: bool,
}

impl StreamSecrets {
    pub fn of(connection: &Connection) -> Self {
        let s = &connection
            .settings
            .get("bond")
            .and_then(|b| b.get("media_streams"))
            .cloned()
            .unwrap_or_default();
        let text = |k: &str| s.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty()).map(str::to_owned);
        Self {
            telnyx_stream_token: text("telnyx_stream_token"),
            twilio_auth_token: text("twilio_auth_token"),
            l16_little_endian: text("l16_byte_order").as_deref() == Some("little"),
        }
    }
}

/// Equal without telling how much of it matched.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Twilio's `X-Twilio-Signature`: base64 of HMAC-SHA1 over the full URL (a
/// WebSocket upgrade has no POST parameters to append), keyed by the auth token.
pub fn twilio_signature(auth_token: &str, url: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_signatures_match_the_published_example() {
        // Twilio's documentation example ("Validating Requests are coming from Twilio"):
        // auth token 12345, the URL with its POST parameters appended in name order.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDE\
                   Caller+12349013030Digits1234From+12349013030To+18005551212";
        assert_eq!(twilio_signature("12345", url), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
