//! Ed25519 webhook signatures exactly as Telnyx makes them: the signed bytes are
//! `timestamp + "|" + raw_body`; headers `telnyx-signature-ed25519` (base64 of the
//! 64-byte signature) and `telnyx-timestamp` (Unix seconds).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;

use crate::clock::rfc3339_now;
use crate::db::{Database, DbError};

pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

/// Bond's webhook signing key: made on first start, kept in the database.
#[derive(Clone)]
pub struct WebhookSigner {
    key: SigningKey,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSigner").field("public_key", &self.public_key_base64()).finish()
    }
}

impl WebhookSigner {
    /// Load the key, or make and store one on first start.
    pub async fn load_or_create(db: &Database) -> Result<Self, DbError> {
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let stored =
            db.setting_or_insert("webhook_signing_key", &BASE64.encode(fresh), &rfc3339_now()).await?;
        let bytes: [u8; 32] =
            BASE64.decode(stored.as_bytes()).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
                DbError::Corrupt("settings.webhook_signing_key is not 32 base64 bytes".into())
            })?;
        Ok(Self { key: SigningKey::from_bytes(&bytes) })
    }

    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(&secret) }
    }

    /// Base64 of the raw 32-byte public key (what `GET /v2/webhook_public_key` serves).
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.key.verifying_key().to_bytes())
    }

    /// Ed25519 signature of `message` (agent tokens; their messages carry a
    /// prefix no webhook body has, so a signature cannot pass for the other).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    pub fn verify_bytes(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verifying_key().verify(message, &signature).is_ok()
    }

    /// Base64 signature of `timestamp|body`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        BASE64.encode(self.key.sign(&signed_bytes(timestamp, body)).to_bytes())
    }
}

fn signed_bytes(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}|").into_bytes();
    message.extend_from_slice(body);
    message
}

/// Check a Telnyx-style signature (for Bond's own tests of what it sends, and for
/// webhooks Bond receives from a carrier). `now` and the 300 s window are Telnyx's rule.
pub fn verify(public_key_b64: &str, signature_b64: &str, timestamp: i64, body: &[u8], now: i64) -> bool {
    if (now - timestamp).abs() > 300 {
        return false;
    }
    let Some(key) = BASE64
        .decode(public_key_b64)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    else {
        return false;
    };
    let Some(signature) = BASE64
        .decode(signature_b64)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| ed25519_dalek::Signature::from_bytes(&b))
    else {
        return false;
    };
    key.verify(&signed_bytes(timestamp, body), &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_or_age_fails() {
        let signer = WebhookSigner::from_secret([7; 32]);
        let public = signer.public_key_base64();
        assert_eq!(BASE64.decode(&public).unwrap().len(), 32);
        let body = br#"{"data":{"event_type":"call.answered"}}"#;
        let sig = signer.sign(1_700_000_000, body);
        assert!(verify(&public, &sig, 1_700_000_000, body, 1_700_000_010));
        assert!(!verify(&public, &sig, 1_700_000_000, b"{}", 1_700_000_010), "other body");
        assert!(!verify(&public, &sig, 1_700_000_001, body, 1_700_000_010), "other timestamp");
        assert!(!verify(&public, &sig, 1_700_000_000, body, 1_700_000_400), "too old");
        assert!(!verify("not base64!", &sig, 1_700_000_000, body, 1_700_000_000));
    }

    #[tokio::test]
    async fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        for url in crate::db::tests::test_urls(dir.path()) {
            let db = Database::connect(&url).await.unwrap();
            let a = WebhookSigner::load_or_create(&db).await.unwrap();
            let b = WebhookSigner::load_or_create(&db).await.unwrap();
            assert_eq!(a.public_key_base64(), b.public_key_base64());
        }
    }
}
