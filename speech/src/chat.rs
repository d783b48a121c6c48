//! A language model behind an OpenAI-compatible chat-completions endpoint
//! (`POST {base_url}/chat/completions` with `stream: true`), read as it is
//! written: the answer's text arrives in pieces, tool calls are put together
//! from their deltas, and the token counts come in the last chunk
//! (`stream_options.include_usage`). The wire format is server-sent events,
//! one `data:` line of JSON per chunk and `data: [DONE]` at the end; the
//! parsing ([`Chunks`]) is pure and fed bytes, so it is tested without a server.
//!
//! [`ChatChain`] asks models in order: a model that fails before its first
//! piece of answer (an error status, no connection, nothing within the first
//! token timeout) rests behind its breaker and the next one is asked.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{json, Value};

use futures_util::future::BoxFuture;

use super::breaker::Fallback;
use super::tls::{http_client, TlsConfig};

/// The longest one answer may take, start to end.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// What a model's answer streams.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The next piece of the answer's text.
    Text(String),
    /// The model asks for a tool (complete: its arguments are the whole JSON text).
    ToolCall(ToolCall),
    /// The answer is over; the token counts if the server sent them.
    Done { usage: Option<Usage> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("{0}: {1}")]
    Failed(&'static str, String),
    #[error("{0}: no answer within {1} ms")]
    Slow(&'static str, u64),
    #[error("{0}: the stream is not chat completions: {1}")]
    Malformed(&'static str, String),
}

/// Server-sent events of a streamed chat completion, taken apart as bytes
/// arrive: text pieces as they come, tool calls once their deltas are whole.
#[derive(Debug, Default)]
pub struct Chunks {
    /// Bytes after the last complete line.
    partial: Vec<u8>,
    /// Tool calls being put together, by their `index`.
    tools: Vec<ToolCall>,
    usage: Option<Usage>,
    ready: VecDeque<ChatEvent>,
    done: bool,
}

impl Chunks {
    /// Feed bytes of the response body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            self.line(line.trim_end_matches(['\r', '\n']))?;
        }
        Ok(())
    }

    /// The body ended: whatever was still being put together is done.
    pub fn finish(&mut self) -> Result<(), String> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(String::from_utf8_lossy(&rest).trim_end())?;
        }
        if !self.done {
            return Err("the stream ended without [DONE]".into());
        }
        Ok(())
    }

    /// The next thing the answer said.
    pub fn next_event(&mut self) -> Option<ChatEvent> {
        self.ready.pop_front()
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        // Comments (`:`), `event:`/`id:` fields and the blank line between events carry nothing here.
        let Some(data) = line.strip_prefix("data:") else { return Ok(()) };
        let data = data.trim_start();
        if data == "[DONE]" {
            self.end();
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| format!("{e}: {data}"))?;
        if let Some(message) = chunk["error"]["message"].as_str() {
            return Err(message.to_owned());
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(Usage {
                prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
                completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
            });
        }
        let Some(choice) = chunk["choices"].get(0) else { return Ok(()) };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.ready.push_back(ChatEvent::Text(text.to_owned()));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(0) as usize;
            if index > 63 {
                return Err(format!("tool call index {index}"));
            }
            if self.tools.len() <= index {
                self.tools.resize(
                    index + 1,
                    ToolCall { id: String::new(), name: String::new(), arguments: String::new() },
                );
            }
            let tool = &mut self.tools[index];
            if let Some(id) = call["id"].as_str() {
                tool.id = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                tool.name.push_str(name);
            }
            if let Some(arguments) = call["function"]["arguments"].as_str() {
                tool.arguments.push_str(arguments);
            }
        }
        if choice["finish_reason"].is_string() {
            self.flush_tools();
        }
        Ok(())
    }

    fn flush_tools(&mut self) {
        let tools = std::mem::take(&mut self.tools);
        self.ready.extend(tools.into_iter().filter(|t| !t.name.is_empty()).map(ChatEvent::ToolCall));
    }

    fn end(&mut self) {
        if !self.done {
            self.flush_tools();
            self.ready.push_back(ChatEvent::Done { usage: self.usage });
            self.done = true;
        }
    }
}

/// One model behind one endpoint.
#[derive(Debug, Clone)]
pub struct ChatModel {
    http: reqwest::Client,
    name: &'static str,
    /// e.g. `https://api.openai.com/v1` (no trailing slash needed).
    base_url: String,
    api_key: String,
    model: String,
}

impl ChatModel {
    /// `name` is how events and logs call it (`"primary"`, `"fallback"`).
    pub fn new(name: &'static str, base_url: &str, api_key: &str, model: &str) -> Self {
        Self {
            http: http_client(ANSWER_TIMEOUT, None),
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            model: model.to_owned(),
        }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self { http: http_client(ANSWER_TIMEOUT, Some(&tls)), ..self }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Start an answer to `messages` (OpenAI's message objects), offering `tools`
    /// (function definitions); `model` overrides the configured one.
    async fn open(
        &self,
        messages: &[Value],
        tools: &[Value],
        model: Option<&str>,
    ) -> Result<ChatStream, ChatError> {
        let mut body = json!({
            "model": model.unwrap_or(&self.model),
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if !tools.is_empty() {
            body["tools"] = Value::from(tools.to_vec());
        }
        let failed = |e: String| ChatError::Failed(self.name, e);
        let request = self.http.post(format!("{}/chat/completions", self.base_url)).json(&body);
        let request = if self.api_key.is_empty() { request } else { request.bearer_auth(&self.api_key) };
        let response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            return Err(failed(format!("{status}: {message}")));
        }
        Ok(ChatStream { name: self.name, response: Some(response), chunks: Chunks::default() })
    }
}

/// An answer being read.
#[derive(Debug)]
pub struct ChatStream {
    name: &'static str,
    response: Option<reqwest::Response>,
    chunks: Chunks,
}

impl ChatStream {
    /// The model that answers.
    pub fn model(&self) -> &'static str {
        self.name
    }

    /// The next thing the answer says; `None` after [`ChatEvent::Done`] or an error.
    pub async fn next(&mut self) -> Option<Result<ChatEvent, ChatError>> {
        loop {
            if let Some(event) = self.chunks.next_event() {
                if matches!(event, ChatEvent::Done { .. }) {
                    self.response = None;
                }
                return Some(Ok(event));
            }
            let response = self.response.as_mut()?;
            let fed = match response.chunk().await {
                Ok(Some(bytes)) => self.chunks.feed(&bytes),
                Ok(None) => {
                    self.response = None;
                    self.chunks.finish()
                }
                Err(e) => {
                    self.response = None;
                    return Some(Err(ChatError::Failed(self.name, e.to_string())));
                }
            };
            if let Err(e) = fed {
                self.response = None;
                return Some(Err(ChatError::Malformed(self.name, e)));
            }
        }
    }
}

/// Models in order of preference, each behind its breaker.
#[derive(Debug)]
pub struct ChatChain {
    models: Fallback<ChatModel>,
    /// How long a model may take to start answering before the next is asked.
    first_token: Duration,
}

impl Default for ChatChain {
    fn default() -> Self {
        Self::new(Vec::new(), Duration::ZERO)
    }
}

impl ChatChain {
    pub fn new(models: Vec<ChatModel>, first_token: Duration) -> Self {
        Self { models: Fallback::new(models.into_iter().map(Box::new).collect()), first_token }
    }

    pub fn is_empty(&self) -> bool {
        self.models.members().next().is_none()
    }

    /// An answer from the first model that starts one within the first token
    /// timeout, with the failures of those passed over; or every failure (none:
    /// no model could be asked). A model that fails rests behind its breaker.
    pub async fn answer<'a>(
        &'a self,
        messages: &'a [Value],
        tools: &'a [Value],
        model: Option<&'a str>,
    ) -> Result<((ChatStream, ChatEvent), Vec<ChatError>), Vec<ChatError>> {
        let first_token = self.first_token;
        let ask = |member: &'a ChatModel| -> BoxFuture<'a, Result<(ChatStream, ChatEvent), ChatError>> {
            let ms = u64::try_from(first_token.as_millis()).unwrap_or(u64::MAX);
            Box::pin(async move {
                let started = async {
                    let mut stream = member.open(messages, tools, model).await?;
                    match stream.next().await {
                        Some(Ok(event)) => Ok((stream, event)),
                        Some(Err(e)) => Err(e),
                        None => Err(ChatError::Malformed(member.name, "an empty answer".into())),
                    }
                };
                tokio::time::timeout(first_token, started)
                    .await
                    .unwrap_or(Err(ChatError::Slow(member.name, ms)))
            })
        };
        self.models.first_noting(ChatModel::name, ask, |_| true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &mut Chunks) -> Vec<ChatEvent> {
        std::iter::from_fn(|| chunks.next_event()).collect()
    }

    #[test]
    fn text_pieces_come_out_as_they_arrive_even_split_mid_line() {
        let mut chunks = Chunks::default();
        let body = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n\
                    data: {\"choices\":[{\"delta\":{\"content\":\"lo.\"},\"finish_reason\":null}]}\n\n\
                    data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                    data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2}}\n\n\
                    data: [DONE]\n\n";
        let (a, b) = body.as_bytes().split_at(30);
        chunks.feed(a).unwrap();
        assert_eq!(events(&mut chunks), vec![]);
        chunks.feed(b).unwrap();
        chunks.finish().unwrap();
        assert_eq!(
            events(&mut chunks),
            vec![
                ChatEvent::Text("Hel".into()),
                ChatEvent::Text("lo.".into()),
                ChatEvent::Done { usage: Some(Usage { prompt_tokens: 12, completion_tokens: 2 }) },
            ]
        );
    }

    #[test]
    fn a_tool_call_is_put_together_from_its_deltas() {
        let mut chunks = Chunks::default();
        let body = r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"lookup","arguments":""}}]}}]}
data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"order\":"}}]}}]}
data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"42\"}"}}]}}]}
data: {"choices":[{"delta":{},"finish_reason":"tool_calls"}]}
data: [DONE]
"#;
        chunks.feed(body.as_bytes()).unwrap();
        chunks.finish().unwrap();
        assert_eq!(
            events(&mut chunks),
            vec![
                ChatEvent::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "lookup".into(),
                    arguments: r#"{"order":"42"}"#.into()
                }),
                ChatEvent::Done { usage: None },
            ]
        );
    }

    #[test]
    fn an_error_chunk_or_a_stream_cut_short_is_an_error() {
        let mut chunks = Chunks::default();
        let error = chunks.feed(b"data: {\"error\":{\"message\":\"overloaded\"}}\n");
        assert_eq!(error, Err("overloaded".into()));
        let mut cut = Chunks::default();
        cut.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n").unwrap();
        assert!(cut.finish().is_err(), "no [DONE]");
        assert!(Chunks::default().feed(b"data: {not json\n").is_err());
    }

    #[test]
    fn comments_and_other_fields_are_skipped() {
        let mut chunks = Chunks::default();
        chunks.feed(b": keep-alive\r\nevent: message\r\ndata: [DONE]\r\n").unwrap();
        assert_eq!(events(&mut chunks), vec![ChatEvent::Done { usage: None }]);
    }
}
