//! One answer of the agent's, as the conversation machine (`conversation.rs`)
//! keeps it: the model's text not yet cut into sentences, the sentences
//! being synthesized, the play-out timeline, and the answer's latency
//! ([`Latency`]: each stage from the end of the caller's speech).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bond_speech::chat::ToolCall;

use super::conversation::Rules;
use super::playout::Playout;

/// The answer being written, synthesized and played.
#[derive(Debug)]
pub(super) struct Answer {
    /// Text not yet cut into a sentence.
    pub pending: String,
    /// The model is still writing.
    pub writing: bool,
    /// Sentences sent to synthesis, not yet ready: id and text, in order.
    pub synthesizing: VecDeque<(u64, String)>,
    pub playout: Playout,
    /// Stopped by caller speech, not yet resumed or confirmed.
    pub paused: bool,
    /// The caller's speech ended here (the turn this answers); `None` for a greeting.
    pub speech_end: Option<Instant>,
    /// When the answer was asked for (not for a greeting): the filler is due `silence_limit` later.
    pub asked: Option<Instant>,
    /// The filler was spoken (or is no longer needed).
    pub filled: bool,
    /// Some of the model's own text (not the filler) went to synthesis.
    pub model_spoke: bool,
    /// All the model has written for this answer, and how much of it the
    /// history holds already (said before a tool was called).
    pub text: String,
    pub recorded: String,
    /// Tools called, their results awaited; how many times the answer called some.
    pub tools: Vec<ToolCall>,
    pub tool_rounds: u32,
    pub latency: Latency,
}

impl Answer {
    pub fn new(asked: Option<Instant>, speech_end: Option<Instant>, transcript: Option<Duration>) -> Self {
        let writing = asked.is_some();
        Self {
            pending: String::new(),
            writing,
            synthesizing: VecDeque::new(),
            playout: Playout::default(),
            paused: false,
            speech_end,
            asked,
            filled: !writing,
            model_spoke: false,
            text: String::new(),
            recorded: String::new(),
            tools: Vec::new(),
            tool_rounds: 0,
            latency: Latency { transcript, ..Latency::default() },
        }
    }

    /// When the filler is due, if it may still be.
    pub fn filler_due(&self, rules: &Rules) -> Option<Instant> {
        let waiting = !rules.filler.is_empty()
            && !self.filled
            && self.writing
            && !self.is_audible()
            && self.playout.is_untouched();
        self.asked.filter(|_| waiting).map(|asked| asked + rules.silence_limit)
    }

    pub fn since_speech(&self, now: Instant) -> Option<Duration> {
        self.speech_end.map(|end| now.saturating_duration_since(end))
    }

    pub fn is_audible(&self) -> bool {
        !self.playout.is_empty() || !self.synthesizing.is_empty()
    }
}

/// One answer's latency, each from the end of the caller's speech.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub transcript: Option<Duration>,
    pub first_token: Option<Duration>,
    pub first_audio: Option<Duration>,
    pub playing: Option<Duration>,
}

impl Latency {
    /// Each stage by the name the events and metrics give it, in order.
    pub fn stages(&self) -> [(&'static str, Option<Duration>); 4] {
        [
            ("transcript", self.transcript),
            ("first_token", self.first_token),
            ("first_audio", self.first_audio),
            ("playing", self.playing),
        ]
    }
}
