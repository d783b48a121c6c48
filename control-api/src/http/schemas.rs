//! Answer shapes for `/openapi.json`: Telnyx's `{"data": ...}` envelope around
//! Bond's records, and the small answers that have no record of their own.
//! They describe what the handlers build; nothing is serialized through them.

use utoipa::ToSchema;

/// `{"data": <T>}`.
#[derive(Debug, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// A page of a list: `{"data": [<T>], "meta": ...}`.
#[derive(Debug, ToSchema)]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

/// Telnyx's page description.
#[derive(Debug, ToSchema)]
pub struct PageMeta {
    pub page_number: i64,
    pub page_size: i64,
    pub total_pages: i64,
    pub total_results: i64,
}

/// What every call-control action answers (and replays for its `command_id`).
#[derive(Debug, ToSchema)]
pub struct ActionResult {
    /// `ok`.
    pub result: String,
    /// The voice agent's conversation (`ai_assistant_start`, `ai_assistant_join`).
    pub conversation_id: Option<String>,
}

/// What `POST /v2/calls` answers.
#[derive(Debug, ToSchema)]
pub struct DialAnswer {
    pub call_control_id: bond_store::CallId,
    pub call_leg_id: String,
    pub call_session_id: String,
    pub is_alive: bool,
    /// `call`.
    pub record_type: String,
    pub client_state: Option<String>,
    pub start_time: String,
}

/// An agent or supervisor token, shown once.
#[derive(Debug, ToSchema)]
pub struct IssuedToken {
    /// `agent_token` or `supervisor_token`.
    pub record_type: String,
    /// What `DELETE /v2/agent_tokens/{id}` revokes.
    pub id: String,
    /// `bat_...`: the sign-in and `Bearer` credential.
    pub token: String,
    /// The agent's name (agent tokens).
    pub agent: Option<String>,
    /// The supervisor's name (supervisor tokens).
    pub name: Option<String>,
    pub connection_id: Option<String>,
    pub expires_at: String,
}

/// A revoked key or token.
#[derive(Debug, ToSchema)]
pub struct Revoked {
    pub record_type: String,
    pub id: String,
    pub revoked: bool,
}

/// The organization's webhook signing key.
#[derive(Debug, ToSchema)]
pub struct PublicKey {
    /// Base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
}
