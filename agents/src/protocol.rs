//! The signalling protocol: JSON text frames, each with a `type`
//! (docs/agents.md has the walk-through).

use bond_store::CallId;
use serde::{Deserialize, Serialize};

/// What an agent's browser sends on the signalling socket.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Register {
        token: String,
    },
    /// Place a call: the browser's offer for the agent's own leg.
    Call {
        sdp: String,
        to: Option<String>,
    },
    Accept {
        call_control_id: CallId,
        sdp: String,
    },
    /// A candidate the browser gathered after its offer for `call_control_id`
    /// (trickle ICE, RFC 8838): the `candidate` of an `RTCIceCandidate`, as
    /// `candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host`.
    Candidate {
        call_control_id: CallId,
        candidate: String,
    },
    Reject {
        call_control_id: CallId,
    },
    Hangup {
        call_control_id: CallId,
    },
    Mute {
        call_control_id: CallId,
        muted: bool,
    },
    Hold {
        call_control_id: CallId,
        held: bool,
    },
    Dtmf {
        call_control_id: CallId,
        digits: String,
    },
    /// Ready (`true`) or not (`false`) to be offered calls waiting in queues.
    Availability {
        available: bool,
    },
    Ping,
}

/// What Bond tells an agent's browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Registered {
        agent: String,
        expires: i64,
        connection_id: Option<String>,
        /// TURN servers to gather relayed candidates from (`turn.urls`), with
        /// the agent's credentials; empty when none is configured.
        ice_servers: Vec<crate::turn::IceServer>,
    },
    /// Fresh TURN credentials, sent every half of their life: the peers the
    /// browser makes from now on use these.
    IceServers {
        ice_servers: Vec<crate::turn::IceServer>,
    },
    IncomingCall {
        call_control_id: CallId,
        from: String,
        to: String,
    },
    Answer {
        call_control_id: CallId,
        sdp: String,
    },
    /// The agent's own leg for a call it places (answer to `call`).
    Outgoing {
        call_control_id: CallId,
        sdp: String,
    },
    /// The call the agent placed was answered and joined to its leg.
    Answered {
        call_control_id: CallId,
    },
    Hangup {
        call_control_id: CallId,
        cause: String,
    },
    Error {
        code: String,
        detail: String,
    },
    /// Whether queues may offer the agent calls: the answer to `availability`,
    /// or Bond's own change (an offer the agent let ring out makes it unavailable).
    Availability {
        available: bool,
    },
    Pong,
}

impl AgentMessage {
    /// An `error` frame: `code` says which request failed, `detail` why.
    pub fn error(code: &str, detail: impl Into<String>) -> Self {
        Self::Error { code: code.to_owned(), detail: detail.into() }
    }

    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| serde_json::Value::Null.to_string())
    }
}
