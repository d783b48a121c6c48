//! API keys and roles. A request carries `Authorization: Bearer <key>`; Bond
//! keeps only the SHA-256 of each key and finds the organization and role from it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

pub use bond_store::keys::{generate_key, hash_key, key_prefix, KeyOwner, Role};

use crate::http::ApiError;
use crate::revocation::Credential;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    pub organization_id: String,
    pub api_key_id: String,
    pub role: Role,
    /// For an agent token: the connection its calls are placed on (`None`:
    /// the agent only takes calls). `None` for API keys.
    pub token_connection: Option<Option<String>>,
}

impl From<KeyOwner> for Principal {
    fn from(owner: KeyOwner) -> Self {
        Self {
            organization_id: owner.organization_id,
            api_key_id: owner.api_key_id,
            role: owner.role,
            token_connection: None,
        }
    }
}

impl Principal {
    /// The caller a token speaks for: an agent token, role `agent` (audited as
    /// `agent:<name>`); a supervisor token, role `supervisor` (`supervisor:<name>`).
    pub fn agent(claims: &crate::agent_token::AgentClaims) -> Self {
        let organization_id = claims.organization_id.clone();
        match claims.role {
            crate::agent_token::TokenRole::Agent => Self {
                organization_id,
                api_key_id: format!("agent:{}", claims.agent),
                role: Role::Agent,
                token_connection: Some(claims.connection_id.clone()),
            },
            crate::agent_token::TokenRole::Supervisor => Self {
                organization_id,
                api_key_id: format!("supervisor:{}", claims.agent),
                role: Role::Supervisor,
                token_connection: None,
            },
        }
    }

    /// Whether this caller may see and act on `call`: supervisors and admins
    /// on every call of their organization; an agent (token or key) only on
    /// the calls it placed and, with a token, the calls it is a party to
    /// (`agent:<name>` as `to` or `from`).
    pub fn may_act_on(&self, call: &bond_store::CallRecord) -> bool {
        self.role >= Role::Supervisor
            || call.placed_by.as_deref() == Some(self.api_key_id.as_str())
            || (self.token_connection.is_some()
                && (call.to == self.api_key_id || call.from == self.api_key_id))
    }

    /// 403 unless [`Principal::may_act_on`] `call`.
    pub fn require_call(&self, call: &bond_store::CallRecord) -> Result<(), ApiError> {
        if self.may_act_on(call) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "10010",
            "Forbidden",
            "An agent acts on its own calls only.",
        ))
    }

    /// 403 unless the caller's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "10010",
                "Forbidden",
                format!("This action needs the {} role.", role.as_str()),
            ))
        }
    }
}

pub fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "10009", "Authentication failed", detail)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("The Authorization header is missing."))?;
        let key = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| unauthorized("Use 'Authorization: Bearer <API key>'."))?;
        let principal = Principal::for_key(state, key).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

impl Principal {
    /// Who an API key or an agent token is.
    pub async fn for_key(state: &AppState, key: &str) -> Result<Self, ApiError> {
        Ok(Self::signed_in(state, key).await?.0)
    }

    /// Who an API key or a token is, and the credential a socket that signed
    /// in with it watches for revocation.
    pub async fn signed_in(state: &AppState, key: &str) -> Result<(Self, Credential), ApiError> {
        if key.starts_with(crate::agent_token::PREFIX) {
            let claims = verify_agent_token(state, key).await?;
            return Ok((Principal::agent(&claims), Credential::of_token(&claims)));
        }
        let hash = hash_key(key);
        let principal: Principal = state
            .store
            .key_owner(&hash)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| unauthorized("The API key is not valid."))?
            .into();
        let credential = Credential::ApiKey {
            organization_id: principal.organization_id.clone(),
            id: principal.api_key_id.clone(),
            hash,
        };
        Ok((principal, credential))
    }
}

impl Credential {
    pub fn of_token(claims: &crate::agent_token::AgentClaims) -> Self {
        Credential::Token {
            organization_id: claims.organization_id.clone(),
            id: claims.id.clone(),
            expires: claims.expires,
        }
    }
}

/// The claims of an agent token Bond signed, not expired and not revoked.
pub async fn verify_agent_token(
    state: &AppState,
    token: &str,
) -> Result<crate::agent_token::AgentClaims, ApiError> {
    let claims = crate::agent_token::verify(&state.signer, token, bond_store::clock::unix_seconds())
        .map_err(unauthorized)?;
    if !claims.id.is_empty() {
        let revoked = state
            .store
            .agent_token_revoked(&claims.organization_id, &claims.id)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        if revoked {
            return Err(unauthorized("the agent token has been revoked"));
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with("KEY") && a.len() == 67);
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn roles_are_ordered() {
        let p = Principal {
            organization_id: "o".into(),
            api_key_id: "k".into(),
            role: Role::Supervisor,
            token_connection: None,
        };
        assert!(p.require(Role::Agent).is_ok());
        assert!(p.require(Role::Supervisor).is_ok());
        assert_eq!(p.require(Role::Admin).unwrap_err().status, StatusCode::FORBIDDEN);
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }
}
