//! Why a call-control request was refused or failed. The core says what went
//! wrong; the HTTP layer (`http::error`) decides the status and Telnyx's
//! error body, so nothing here knows about HTTP.

use bond_media_engine::runtime::RuntimeError;
use bond_store::db::DbError;

/// A refused or failed call-control request.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A field of the request is wrong: Telnyx's error code, what is wrong,
    /// and a JSON pointer to the field.
    #[error("{detail}")]
    Invalid { code: &'static str, detail: String, pointer: String },
    /// The call is no longer alive (Telnyx 90018).
    #[error("the call has already ended")]
    Ended,
    /// The call's legs live on another node (`node_id`, whose API answers at
    /// `http_url`); actions are not forwarded between nodes yet.
    #[error("call is carried by node {node_id}: send its actions to {http_url}")]
    OnAnotherNode { node_id: String, http_url: String },
    /// The node carrying the other call cannot be reached now (it may have
    /// died and not been reaped yet): retry shortly.
    #[error("node {node_id} is not answering")]
    NodeUnavailable { node_id: String },
    /// The carrier the call goes through refused it or could not be reached.
    #[error("the carrier refused the call: {detail}")]
    Carrier { detail: String, pointer: String },
    /// No such resource of the organization (a conference).
    #[error("{0}")]
    NotFound(String),
    /// No such call-control action (Telnyx's known but unbuilt ones are `Invalid`, 10015).
    #[error("unknown call-control action '{0}'")]
    UnknownAction(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] DbError),
    /// The media engine failed.
    #[error("the media engine failed: {0}")]
    Engine(#[from] RuntimeError),
    /// Another failure inside Bond.
    #[error("{0}")]
    Internal(String),
}

impl CallError {
    /// A wrong field: `code` is Telnyx's (10002 invalid value, 10015 not
    /// available, ...), `pointer` the field (`/to`).
    pub fn invalid(code: &'static str, detail: impl Into<String>, pointer: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into(), pointer: pointer.into() }
    }
}

/// The call book's refusals, in Telnyx's words.
impl From<bond_call_core::Refusal> for CallError {
    fn from(refusal: bond_call_core::Refusal) -> Self {
        use bond_call_core::Refusal;
        match refusal {
            Refusal::SameCall => Self::invalid(
                "10002",
                "A call cannot be bridged with itself.",
                "/call_control_id_to_bridge_with",
            ),
            Refusal::Ended(_) => Self::Ended,
            Refusal::AlreadyBridged(call) => {
                Self::invalid("90034", format!("Call {call} is already bridged."), "/call_control_id")
            }
        }
    }
}
