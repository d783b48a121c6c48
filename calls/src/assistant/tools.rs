//! A voice agent's tools (`assistant.tools`, Telnyx's shapes): what the model
//! is offered, and what calling one does.
//!
//! - `webhook`: Bond sends the model's arguments to the application's URL
//!   (the JSON body of a POST, PUT or PATCH; the query of a GET or DELETE)
//!   with the tool's headers and `Bond-Call-Control-Id`, and the response body
//!   (at most 16 KiB) is the tool's result the model reads next. A URL is
//!   the tenant's to choose, so it goes through Bond's egress guard
//!   (`bond_store::egress`) as webhook URLs do. An error status, a timeout or
//!   no connection is a result too (`{"error": ...}`), so the model can say so.
//! - `hangup`: the agent says what it was saying, then hangs up.
//! - `transfer`: the agent says what it was saying, stops, and the call is
//!   transferred (Telnyx's `transfer` action) to the target the model named.
//! - `invite`: the target the model named is dialed and, once it answers,
//!   joins the conversation (`join.rs`); the model is told at once that it
//!   rings, and later that it joined or did not answer.
//! - `skip_turn`: the agent says nothing this turn (people on a call with more
//!   than one party talking to each other, not to it).

use std::time::Duration;

use bond_codecs::ringtone::Ringtone;
use bond_store::clock::monotonic;

use serde_json::{json, Value};

/// The most of a response body the model is given.
const MAX_RESULT_BYTES: usize = 16 * 1024;

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub enum Tool {
    Webhook(Box<Webhook>),
    /// The model ends the call (Telnyx `hangup`).
    Hangup {
        description: String,
    },
    /// The model hands the call to one of these parties (Telnyx `transfer`).
    Transfer(Box<TransferTool>),
    /// The model dials one of these parties into the conversation (Telnyx `invite`).
    Invite(Box<TransferTool>),
    /// The model lets the turn pass without answering (Telnyx `skip_turn`).
    SkipTurn {
        description: String,
    },
}

/// Telnyx's `transfer` tool: its targets, by the name the model picks them by
/// (a target's `name`, else its `to`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferTool {
    pub targets: Vec<(String, crate::transfer::Transfer)>,
    /// An invited call is screened (premium answering-machine detection),
    /// and what a voicemail that answers it gets (Telnyx's `voicemail_detection`).
    pub voicemail: Option<OnVoicemail>,
    /// What the caller hears while a transfer's target rings (Bond's own
    /// `ringtone` on a `transfer` tool, Telnyx's country codes; `us` when not given).
    pub ringtone: &'static Ringtone,
}

/// What an invite does when a voicemail answers (Telnyx's `on_voicemail_detected.action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnVoicemail {
    /// `stop_transfer`: hang up.
    Stop,
    /// `leave_message_and_stop_transfer`: speak this after the greeting, then hang up.
    LeaveMessage(String),
}

impl TransferTool {
    /// The function's parameters: one `target`, by name.
    fn parameters(&self, description: &str) -> Value {
        let names: Vec<&str> = self.targets.iter().map(|(n, _)| n.as_str()).collect();
        let target = json!({"type": "string", "enum": names, "description": description});
        json!({"type": "object", "properties": {"target": target}, "required": ["target"]})
    }

    /// The target the model's arguments (`{"target": name}`) name, or why none.
    pub fn pick(&self, arguments: &str) -> Result<&crate::transfer::Transfer, String> {
        self.pick_named(arguments).map(|(_, transfer)| transfer)
    }

    /// The target the model's arguments name, with its name as the tool lists it.
    pub fn pick_named(&self, arguments: &str) -> Result<(&str, &crate::transfer::Transfer), String> {
        let asked: Value = serde_json::from_str(arguments).unwrap_or(Value::Null);
        let name = asked["target"].as_str().unwrap_or_default();
        let found = self.targets.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.trim()));
        found.map(|(n, transfer)| (n.as_str(), transfer)).ok_or_else(|| {
            let names: Vec<&str> = self.targets.iter().map(|(n, _)| n.as_str()).collect();
            format!("there is no target '{name}'; the targets are {}", names.join(", "))
        })
    }
}

/// Telnyx's `webhook` tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub name: String,
    pub description: String,
    pub url: url::Url,
    pub method: reqwest::Method,
    pub headers: Vec<(String, String)>,
    /// A JSON Schema object: the arguments the model fills.
    pub parameters: Value,
    pub timeout: Duration,
}

/// What calling a tool came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The tool's result as the model reads it.
    pub content: String,
    /// `ok`, or why not (`error`, `timeout`).
    pub status: &'static str,
    /// The application's HTTP status, when it answered.
    pub http_status: Option<u16>,
    pub took: Duration,
}

impl Outcome {
    /// A tool that acts on the call itself (hang up, transfer): nothing for the model to read.
    pub fn done() -> Self {
        Self { content: String::new(), status: "ok", http_status: None, took: Duration::ZERO }
    }

    /// A tool whose arguments Bond keeps (`gather_partial`): the model reads that they were saved.
    pub fn saved() -> Self {
        Self { content: json!({ "saved": true }).to_string(), ..Self::done() }
    }

    /// `skip_turn`: the model reads that it let the turn pass.
    pub fn skipped() -> Self {
        Self { content: json!({ "skipped": true }).to_string(), ..Self::done() }
    }

    /// A tool that could not be called, as the model reads it.
    pub fn error(why: &str) -> Self {
        let content = json!({ "error": why }).to_string();
        Self { content, status: "error", http_status: None, took: Duration::ZERO }
    }
}

impl Tool {
    /// The name the model calls it by.
    pub fn name(&self) -> &str {
        match self {
            Self::Webhook(webhook) => &webhook.name,
            Self::Hangup { .. } => Self::HANGUP,
            Self::Transfer(_) => Self::TRANSFER,
            Self::SkipTurn { .. } => Self::SKIP_TURN,
            Self::Invite(_) => Self::INVITE,
        }
    }

    pub const HANGUP: &'static str = "hangup";
    pub const TRANSFER: &'static str = "transfer";
    pub const SKIP_TURN: &'static str = "skip_turn";
    pub const INVITE: &'static str = "invite";

    /// The function definition offered to the model (OpenAI's `tools` entry).
    pub fn definition(&self) -> Value {
        let (description, parameters) = match self {
            Self::Webhook(webhook) => (webhook.description.as_str(), webhook.parameters.clone()),
            Self::Hangup { description } | Self::SkipTurn { description } => {
                (description.as_str(), json!({"type": "object", "properties": {}}))
            }
            Self::Transfer(transfer) => (
                "Transfer the call to one of the targets, once the caller has agreed.",
                transfer.parameters("Who to transfer the call to."),
            ),
            Self::Invite(invite) => (
                "Invite one of the targets to join this call; they join when they answer.",
                invite.parameters("Who to invite."),
            ),
        };
        json!({
            "type": "function",
            "function": { "name": self.name(), "description": description, "parameters": parameters },
        })
    }
}

impl Webhook {
    /// Send `arguments` (the model's JSON text) to the application; its answer.
    pub async fn call(&self, client: &reqwest::Client, call_control_id: &str, arguments: &str) -> Outcome {
        let started = monotonic();
        let outcome = |content: String, status, http_status| Outcome {
            content,
            status,
            http_status,
            took: monotonic().saturating_duration_since(started),
        };
        let arguments: Value = match serde_json::from_str(arguments) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                let error = json!({"error": "the arguments were not a JSON object"}).to_string();
                return outcome(error, "error", None);
            }
        };
        let mut request = client
            .request(self.method.clone(), self.url.clone())
            .timeout(self.timeout)
            .header("Bond-Call-Control-Id", call_control_id);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request = if matches!(self.method, reqwest::Method::GET | reqwest::Method::DELETE) {
            request.query(&query_pairs(&arguments))
        } else {
            request.json(&arguments)
        };
        // No connection, a timeout, or a body cut short: the same result for the model.
        let unanswered = |e: reqwest::Error| {
            let status = if e.is_timeout() { "timeout" } else { "error" };
            outcome(json!({ "error": e.without_url().to_string() }).to_string(), status, None)
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return unanswered(e),
        };
        let http_status = response.status();
        let body = match read_capped(response).await {
            Ok(body) => body,
            Err(e) => return unanswered(e),
        };
        if http_status.is_success() {
            outcome(body, "ok", Some(http_status.as_u16()))
        } else {
            let error = json!({ "error": format!("the application answered {http_status}"), "body": body });
            outcome(error.to_string(), "error", Some(http_status.as_u16()))
        }
    }
}

/// The arguments as query pairs: strings as they are, anything else as JSON.
fn query_pairs(arguments: &Value) -> Vec<(String, String)> {
    let Value::Object(map) = arguments else { return Vec::new() };
    map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
}

/// The response body as text, cut at [`MAX_RESULT_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESULT_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_RESULT_BYTES {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
