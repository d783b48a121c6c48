//! The agent's answer as it comes in: the language model's text and tool
//! calls, and the synthesized audio of each sentence (the runtime reports
//! both; the conversation decides what plays and when the answer is over).

use std::time::{Duration, Instant};

use bond_speech::chat::ToolCall;

use super::{Conversation, Message, Note, Output, Role};

/// How many times one answer may call tools before what it said is taken as the answer.
const MAX_TOOL_ROUNDS: u32 = 5;

impl Conversation {
    /// The next piece of the answer's text.
    pub fn answer_text(&mut self, now: Instant, piece: &str) {
        let Some(answer) = self.answer.as_mut().filter(|a| a.writing) else { return };
        if answer.latency.first_token.is_none() {
            answer.latency.first_token = answer.since_speech(now);
        }
        answer.pending.push_str(piece);
        answer.text.push_str(piece);
        self.cut_sentences(false);
    }

    /// The model's answer ended by calling `calls`: what it said so far is
    /// spoken, and the answer goes on once their results are in.
    pub fn answer_tools(&mut self, now: Instant, calls: Vec<ToolCall>) {
        let Some(answer) = self.answer.as_mut().filter(|a| a.writing && a.tools.is_empty()) else { return };
        if calls.is_empty() || answer.tool_rounds >= MAX_TOOL_ROUNDS {
            // A model that keeps calling tools is not answering: what it said is the answer.
            return self.answer_done(now);
        }
        answer.tool_rounds += 1;
        answer.tools.clone_from(&calls);
        self.cut_sentences(true);
        self.outputs.push_back(Output::CallTools(calls));
    }

    /// What the tools returned, in the order they were called: the call and
    /// the results go into the history, and the model is asked to go on.
    pub fn tool_results(&mut self, results: Vec<String>) {
        let Some(answer) = self.answer.as_mut().filter(|a| !a.tools.is_empty()) else { return };
        let calls = std::mem::take(&mut answer.tools);
        self.record_tools(calls, results);
        self.outputs.push_back(Output::Ask(self.history.clone()));
    }

    /// The model let the turn pass (`skip_turn`): its calls and `result` go
    /// into the history, and the answer ends with what it said, if anything,
    /// without asking the model again.
    pub fn answer_skipped(&mut self, now: Instant, calls: Vec<ToolCall>, result: &str) {
        if !self.answer.as_ref().is_some_and(|a| a.writing) {
            return;
        }
        let results = vec![result.to_owned(); calls.len()];
        self.record_tools(calls, results);
        self.answer_done(now);
    }

    /// Into the history: what the answer said since its last tools, the
    /// tools it `calls`, and their `results` in the same order.
    fn record_tools(&mut self, calls: Vec<ToolCall>, results: Vec<String>) {
        let Some(answer) = self.answer.as_mut() else { return };
        let said = answer.text[answer.recorded.len()..].trim().to_owned();
        answer.recorded.clone_from(&answer.text);
        let results: Vec<_> =
            calls.iter().zip(results).map(|(call, r)| Message::tool_result(call, r)).collect();
        self.history.push(Message { tool_calls: calls, ..Message::new(Role::Assistant, said) });
        self.history.extend(results);
    }

    /// The model finished writing.
    pub fn answer_done(&mut self, now: Instant) {
        let Some(answer) = self.answer.as_mut().filter(|a| a.writing) else { return };
        answer.writing = false;
        self.cut_sentences(true);
        self.poll(now);
    }

    /// The model failed. With nothing said yet, the apology is spoken instead.
    pub fn answer_failed(&mut self, now: Instant, error: &str) {
        let Some(answer) = self.answer.as_mut().filter(|a| a.writing) else { return };
        answer.writing = false;
        if !answer.model_spoke && answer.pending.trim().is_empty() {
            answer.pending = self.rules.apology.clone();
            self.outputs.push_back(Output::Note(Note::AnswerFailed { error: error.to_owned() }));
        }
        self.cut_sentences(true);
        self.poll(now);
    }

    /// A sentence's audio is ready, `length` long (all of it, or its first
    /// part when `complete` is false: [`audio_more`](Self::audio_more) brings
    /// the rest); it is played (or held while paused).
    pub fn audio_ready(&mut self, now: Instant, id: u64, length: Duration, complete: bool) {
        let Some(answer) = &mut self.answer else { return };
        let Some(at) = answer.synthesizing.iter().position(|(i, _)| *i == id) else { return };
        // The runtime synthesizes one sentence at a time, in order, so they are queued in order.
        let Some((id, text)) = answer.synthesizing.remove(at) else { return };
        // The filler (no text) is not the answer: it does not count in the answer's latency.
        let answering = !text.is_empty();
        if answering && answer.latency.first_audio.is_none() {
            answer.latency.first_audio = answer.since_speech(now);
        }
        if answer.paused {
            answer.playout.hold(id, text, length, complete);
            return;
        }
        let start = answer.playout.queue(now, id, text, length, complete);
        if answering && answer.latency.playing.is_none() {
            answer.latency.playing = answer.since_speech(start);
        }
        self.outputs.push_back(Output::Play { id, from: Duration::ZERO });
    }

    /// More of a streaming sentence's audio, `more` long: played on, unless paused.
    pub fn audio_more(&mut self, now: Instant, id: u64, more: Duration) {
        let Some(answer) = &mut self.answer else { return };
        if let Some(from) = answer.playout.extend(now, id, more) {
            self.outputs.push_back(Output::Play { id, from });
        }
    }

    /// A streaming sentence's audio is all there (or its stream broke off).
    pub fn audio_complete(&mut self, now: Instant, id: u64) {
        if let Some(answer) = &mut self.answer {
            answer.playout.complete(id);
        }
        self.poll(now);
    }

    /// A sentence could not be synthesized: it is skipped.
    pub fn audio_failed(&mut self, now: Instant, id: u64) {
        if let Some(answer) = &mut self.answer {
            answer.synthesizing.retain(|(i, _)| *i != id);
        }
        self.poll(now);
    }
}
