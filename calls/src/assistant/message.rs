//! The conversation's history as the model sees it: OpenAI's chat messages,
//! with the tools an answer called and what each returned.

use bond_speech::chat::ToolCall;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result (`tool_call_id` names the call it answers).
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The tools an assistant message called (OpenAI's `tool_calls`).
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers (OpenAI's `tool_call_id`).
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    /// What `call` returned.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(call.id.clone()), ..Self::new(Role::Tool, content) }
    }

    /// The message in OpenAI's shape: an assistant's calls without words have no content.
    fn wire(&self) -> Value {
        let mut message = json!({ "role": self.role.as_str(), "content": self.content });
        if !self.tool_calls.is_empty() {
            if self.content.is_empty() {
                message["content"] = Value::Null;
            }
            let calls: Vec<Value> = self
                .tool_calls
                .iter()
                .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        if let Some(id) = &self.tool_call_id {
            message["tool_call_id"] = json!(id);
        }
        message
    }
}

/// `messages` in OpenAI's shape, for the model and the events.
pub(super) fn history(messages: &[Message]) -> Value {
    messages.iter().map(Message::wire).collect()
}
