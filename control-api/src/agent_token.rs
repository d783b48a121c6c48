//! Agent tokens: short-lived credentials for an organization's agent, made by
//! `POST /v2/agent_tokens` and carried by the softphone (signaling WebSocket,
//! and `Authorization: Bearer` for the API with role `agent`).
//!
//! A token is `bat_<payload>.<signature>`, both base64url: the payload is JSON
//! `{"o": organization, "a": agent, "e": expiry (Unix s), "c": connection (optional:
//! the connection the agent's own calls are placed on), "j": the token's id}`,
//! signed with Bond's Ed25519 key over `bond-agent-token|<payload>`. Nothing is
//! stored when a token is made: it is valid until it expires, unless its id is
//! revoked (`DELETE /v2/agent_tokens/{id}`, checked by `auth::verify_agent_token`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use bond_store::webhooks::WebhookSigner;

pub const PREFIX: &str = "bat_";
const CONTEXT: &[u8] = b"bond-agent-token|";
/// Longest life a token may be given (a working day and a half).
pub const MAX_TTL_SECS: i64 = 36 * 3600;
pub const DEFAULT_TTL_SECS: i64 = 3600;

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentClaims {
    #[serde(rename = "o")]
    pub organization_id: String,
    #[serde(rename = "a")]
    pub agent: String,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
    /// Where the calls the agent places are made; without it the agent only takes calls.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// What revokes it (empty on tokens made before ids were given).
    #[serde(rename = "j", default)]
    pub id: String,
    /// An agent's (the default) or a supervisor's: the supervisors' page signs
    /// in with a short-lived supervisor token, never with an API key.
    #[serde(rename = "r", default, skip_serializing_if = "TokenRole::is_agent")]
    pub role: TokenRole,
}

/// Whom a token is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    #[default]
    Agent,
    Supervisor,
}

impl TokenRole {
    pub fn is_agent(&self) -> bool {
        *self == Self::Agent
    }
}

/// When a token expires, as RFC 3339.
pub fn expires_at(claims: &AgentClaims) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(claims.expires)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
}

pub fn issue(signer: &WebhookSigner, claims: &AgentClaims) -> String {
    let payload = B64URL.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signature = signer.sign_bytes(&signed(&payload));
    format!("{PREFIX}{payload}.{}", B64URL.encode(signature))
}

/// The claims of a token Bond signed that has not expired at `now`.
pub fn verify(signer: &WebhookSigner, token: &str, now: i64) -> Result<AgentClaims, &'static str> {
    let body = token.strip_prefix(PREFIX).ok_or("not an agent token")?;
    let (payload, signature) = body.split_once('.').ok_or("malformed agent token")?;
    let signature: [u8; 64] =
        B64URL.decode(signature).ok().and_then(|s| s.try_into().ok()).ok_or("malformed agent token")?;
    if !signer.verify_bytes(&signed(payload), &signature) {
        return Err("the agent token's signature is not valid");
    }
    let json = B64URL.decode(payload).map_err(|_| "malformed agent token")?;
    let claims: AgentClaims = serde_json::from_slice(&json).map_err(|_| "malformed agent token")?;
    if claims.expires <= now {
        return Err("the agent token has expired");
    }
    Ok(claims)
}

fn signed(payload: &str) -> Vec<u8> {
    let mut message = CONTEXT.to_vec();
    message.extend_from_slice(payload.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires: i64) -> AgentClaims {
        AgentClaims {
            organization_id: "org-1".into(),
            agent: "dana.k".into(),
            expires,
            connection_id: None,
            id: "t1".into(),
            role: TokenRole::Agent,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let signer = WebhookSigner::from_secret([7; 32]);
        let token = issue(&signer, &claims(1_000));
        assert!(token.starts_with(PREFIX));
        assert_eq!(verify(&signer, &token, 999), Ok(claims(1_000)));
        assert_eq!(verify(&signer, &token, 1_000), Err("the agent token has expired"));
    }

    #[test]
    fn forged_altered_and_foreign_tokens_are_refused() {
        let signer = WebhookSigner::from_secret([7; 32]);
        let other = WebhookSigner::from_secret([8; 32]);
        let token = issue(&signer, &claims(1_000));
        assert!(verify(&other, &token, 0).is_err());
        // Another agent's name under the same signature.
        let forged_payload = B64URL
            .encode(serde_json::to_vec(&AgentClaims { agent: "boss".into(), ..claims(1_000) }).unwrap());
        let signature = token.split_once('.').unwrap().1;
        assert!(verify(&signer, &format!("{PREFIX}{forged_payload}.{signature}"), 0).is_err());
        for bad in ["", "bat_", "bat_x.y", "KEY123", &token[..token.len() - 3], "bat_.AAAA"] {
            assert!(verify(&signer, bad, 0).is_err(), "{bad}");
        }
    }
}
