//! Translation through any OpenAI-compatible chat-completions endpoint
//! (`POST {base_url}/chat/completions`, Bearer key): OpenAI itself or a local
//! model server. The call's previous segments go along as context, so names and
//! references stay consistent from one utterance to the next.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::mt::{MtError, Translator, MAX_TEXT_CHARS};
use super::tls::{http_client, TlsConfig};

const NAME: &str = "openai";
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ChatTranslator {
    http: reqwest::Client,
    /// e.g. `https://api.openai.com/v1` (no trailing slash needed).
    base_url: String,
    api_key: String,
    model: String,
}

impl ChatTranslator {
    pub fn new(base_url: &str, api_key: &str, model: &str) -> Self {
        let http = http_client(TIMEOUT, None);
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            model: model.to_owned(),
        }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self { http: http_client(TIMEOUT, Some(&tls)), ..self }
    }

    fn request(&self, text: &str, from: &str, to: &str, context: &[String]) -> Value {
        let mut system = format!(
            "You translate a live phone call from {from} to {to}. Reply with the translation of the \
             user's message only: no notes, no quotes."
        );
        if !context.is_empty() {
            system.push_str(" Earlier in the call the same speaker said: ");
            system.push_str(&context.join(" "));
        }
        json!({
            "model": self.model,
            "temperature": 0,
            "messages": [
                { "role": "system", "content": system },
                { "role": "user", "content": text },
            ],
        })
    }
}

impl Translator for ChatTranslator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn translate(
        &self,
        text: &str,
        from: &str,
        to: &str,
        context: &[String],
    ) -> BoxFuture<'static, Result<String, MtError>> {
        let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
        let request = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&self.request(&text, from, to, context));
        Box::pin(async move {
            let failed = |e: String| MtError::Failed(NAME, e);
            let response = request.send().await.map_err(|e| failed(e.to_string()))?;
            let status = response.status();
            let body: Value = response.json().await.map_err(|e| failed(format!("{status}: {e}")))?;
            if !status.is_success() {
                let message = body["error"]["message"].as_str().unwrap_or("no message");
                return Err(failed(format!("{status}: {message}")));
            }
            match body["choices"][0]["message"]["content"].as_str().map(str::trim) {
                Some(out) if !out.is_empty() => Ok(out.to_owned()),
                _ => Err(failed("the answer has no choices[0].message.content".into())),
            }
        })
    }
}
