//! A voice agent's conversation rules, from `ai_assistant_start` or
//! `gather_using_ai` (checked in `action/assistant_fields.rs`), with Bond's
//! defaults: interruptions, the waits of a turn, and what the agent says
//! when a stage fails or the caller goes quiet.

use std::time::Duration;

/// The conversation's settings (`ai_assistant_start`, checked).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Whether the caller may cut in (Telnyx `interruption_settings.enable`).
    pub interruptions: bool,
    /// Speech shorter than this (a cough, a click, "mm-hm") does not take the turn.
    pub min_interruption: Duration,
    /// How long to wait for more after words that stop mid-number or mid-clause.
    pub unfinished_wait: Duration,
    /// Spoken when the language model fails and nothing else is said.
    pub apology: String,
    /// Spoken when the caller's turn could not be transcribed at all (empty: nothing is).
    pub not_heard: String,
    /// Spoken (once per answer) when nothing has played `silence_limit` after the caller's turn
    /// ended (empty: nothing is).
    pub filler: String,
    pub silence_limit: Duration,
    /// After the agent's answer, how long the caller may say nothing before
    /// the agent checks they are still there (`user_response_timeout_ms`).
    pub user_response_timeout: Option<Duration>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            interruptions: true,
            min_interruption: Duration::from_millis(500),
            unfinished_wait: Duration::from_millis(1500),
            apology: "Sorry, I am having trouble answering right now.".into(),
            not_heard: "Sorry, I did not catch that. Could you say it again?".into(),
            filler: "One moment, please.".into(),
            silence_limit: Duration::from_millis(2500),
            user_response_timeout: None,
        }
    }
}
