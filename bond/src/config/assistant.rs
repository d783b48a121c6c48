//! The `[assistant]` section: the language models voice agents
//! (`ai_assistant_start`) answer with, behind OpenAI-compatible
//! chat-completions endpoints: a primary and an optional fallback, asked in
//! that order.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssistantConfig {
    /// e.g. `https://api.openai.com/v1`, or a local model server; empty: no voice agents.
    pub llm_base_url: String,
    #[serde(skip_serializing)]
    pub llm_api_key: String,
    pub llm_model: String,
    /// Asked when the primary fails or is slow to start answering; empty: none.
    pub fallback_base_url: String,
    #[serde(skip_serializing)]
    pub fallback_api_key: String,
    pub fallback_model: String,
    /// How long a model may take to start answering before the next is asked.
    pub first_token_timeout_ms: u64,
    /// Hand the caller's words to whisper 240 ms into a pause, so the
    /// transcript is ready when the utterance ends (600 ms).
    pub early_transcripts: bool,
    /// How far into a pause the early look is taken (a multiple of 20 ms,
    /// under the 600 ms that ends an utterance).
    pub early_look_ms: u64,
    /// Ask the model as soon as an early transcript that reads finished is
    /// back, and use that answer if the caller stays quiet (off: each dropped
    /// one is a request the provider bills).
    pub early_answers: bool,
    /// The rate table `call.conversation.ended` prices usage with (`bond_cost`); all 0: no cost.
    pub price_currency: String,
    pub price_stt_per_minute: f64,
    pub price_llm_per_million_prompt_tokens: f64,
    pub price_llm_per_million_completion_tokens: f64,
    pub price_tts_per_million_characters: f64,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        Self {
            llm_base_url: String::new(),
            llm_api_key: String::new(),
            llm_model: "gpt-4o-mini".to_owned(),
            fallback_base_url: String::new(),
            fallback_api_key: String::new(),
            fallback_model: "gpt-4o-mini".to_owned(),
            first_token_timeout_ms: 4_000,
            early_transcripts: true,
            early_look_ms: bond_calls::DEFAULT_EARLY_LOOK.as_millis() as u64,
            early_answers: false,
            price_currency: "USD".to_owned(),
            price_stt_per_minute: 0.0,
            price_llm_per_million_prompt_tokens: 0.0,
            price_llm_per_million_completion_tokens: 0.0,
            price_tts_per_million_characters: 0.0,
        }
    }
}

/// Like the derived one, with the keys left out (`bond check-config` prints it).
impl std::fmt::Debug for AssistantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |key: &str| if key.is_empty() { "(unset)" } else { "(set)" };
        f.debug_struct("AssistantConfig")
            .field("llm_base_url", &self.llm_base_url)
            .field("llm_api_key", &secret(&self.llm_api_key))
            .field("llm_model", &self.llm_model)
            .field("fallback_base_url", &self.fallback_base_url)
            .field("fallback_api_key", &secret(&self.fallback_api_key))
            .field("fallback_model", &self.fallback_model)
            .field("first_token_timeout_ms", &self.first_token_timeout_ms)
            .field("early_transcripts", &self.early_transcripts)
            .field("early_look_ms", &self.early_look_ms)
            .field("early_answers", &self.early_answers)
            .field("prices", &self.prices())
            .finish()
    }
}

impl AssistantConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("assistant.llm_base_url", &self.llm_base_url),
            ("assistant.fallback_base_url", &self.fallback_base_url),
        ] {
            if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError::new(key, "must start with http:// or https://"));
            }
        }
        let prices = [
            ("assistant.price_stt_per_minute", self.price_stt_per_minute),
            ("assistant.price_llm_per_million_prompt_tokens", self.price_llm_per_million_prompt_tokens),
            (
                "assistant.price_llm_per_million_completion_tokens",
                self.price_llm_per_million_completion_tokens,
            ),
            ("assistant.price_tts_per_million_characters", self.price_tts_per_million_characters),
        ];
        if let Some((key, _)) = prices.iter().find(|(_, price)| !price.is_finite() || *price < 0.0) {
            return Err(ConfigError::new(*key, "must be a price of 0 or more"));
        }
        if !(40..=580).contains(&self.early_look_ms) || self.early_look_ms % 20 != 0 {
            return Err(ConfigError::new(
                "assistant.early_look_ms",
                "must be a multiple of 20 from 40 to 580",
            ));
        }
        if !(100..=60_000).contains(&self.first_token_timeout_ms) {
            return Err(ConfigError::new("assistant.first_token_timeout_ms", "must be 100 to 60000"));
        }
        Ok(())
    }

    /// How far into a pause voice agents' callers are transcribed early, if they are.
    pub fn early_look(&self) -> Option<std::time::Duration> {
        self.early_transcripts.then(|| std::time::Duration::from_millis(self.early_look_ms))
    }

    /// The rate table, for the call service.
    pub fn prices(&self) -> bond_calls::assistant::Prices {
        bond_calls::assistant::Prices {
            currency: self.price_currency.clone(),
            stt_per_minute: self.price_stt_per_minute,
            llm_per_million_prompt_tokens: self.price_llm_per_million_prompt_tokens,
            llm_per_million_completion_tokens: self.price_llm_per_million_completion_tokens,
            tts_per_million_characters: self.price_tts_per_million_characters,
        }
    }

    /// Secret keys that are set, for `to_toml`'s comment.
    pub(super) fn secrets(&self) -> [(&'static str, bool); 2] {
        [
            ("assistant.llm_api_key", !self.llm_api_key.is_empty()),
            ("assistant.fallback_api_key", !self.fallback_api_key.is_empty()),
        ]
    }
}
