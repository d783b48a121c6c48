//! One voice agent's conversation with the caller, as a state machine with no
//! I/O and no clock (str0m's model): it is handed what happens, with the time,
//! and polled for what to do. The runtime (`super`) carries the outputs out:
//! ask the language model, synthesize a sentence, play or stop audio, write
//! events.
//!
//! The rules:
//! - **Turns.** The caller's utterances (cut by the segmenter after 600 ms of
//!   quiet) are transcribed; when no more speech or transcript is pending, the
//!   turn ends at once if the words read finished, or after the longer
//!   `unfinished_wait` if they stop on a number or mid-clause (`turn.rs`).
//! - **Answers.** The model's text is cut into sentences as it streams; each
//!   is synthesized and queued on the call (`playout.rs`), so the first
//!   sentence plays while the rest is still being written.
//! - **Interruptions.** Speech from the caller while the agent's audio plays
//!   stops it at once (the segmenter's 60 ms onset). If the speech is shorter
//!   than `min_interruption` the agent plays on from where it stopped; its
//!   transcript, if it is only a backchannel or a noise, is dropped. Longer
//!   speech, or real words, take the turn: the answer is cancelled and only
//!   the words the caller heard go into the history.
//! - **Thinking.** Speech before the answer's audio starts means the caller
//!   was not done: the answer is cancelled and their words are joined to the
//!   new ones.
//! - **Not heard.** When no recognizer could transcribe the caller's turn
//!   (all failed, or the utterance was dropped because they fell behind) and
//!   nothing of it was heard, the agent says `not_heard` rather than leave
//!   the caller in silence.
//! - **A silent caller.** With `user_response_timeout` set, a caller who
//!   says nothing that long after the agent's answer ends is checked on: the
//!   model is asked to see whether they are still there (an instruction for
//!   that answer, not kept in the history), at most twice in a row.
//! - **Early answers.** An early transcript of the utterance still being cut
//!   (the caller paused) that would end the turn as it reads is answered
//!   ahead: the model is asked what the turn's `Ask` would ask, and the
//!   runtime keeps what it writes until that `Ask` comes with the same
//!   messages (and uses it) or does not (and drops it). Speech resuming drops
//!   it at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::answer::Answer;
pub use super::answer::Latency;
pub use super::message::{Message, Role};
use super::parties::CallerTurn;
pub use super::parties::{Parties, Party};
use super::sentences::{beyond, sentence_end};
use super::turn::{has_words, is_backchannel, reading, EndOfTurn};

pub use super::output::{Note, Output};
pub use super::rules::Rules;

/// Checks on a silent caller in a row; then the agent waits without asking again.
const MAX_SILENCE_CHECKS: u32 = 2;

#[derive(Debug)]
pub struct Conversation {
    rules: Rules,
    history: Vec<Message>,
    caller: CallerTurn,
    parties: Parties,
    answer: Option<Answer>,
    outputs: VecDeque<Output>,
    next_id: u64,
    /// An answer was asked ahead (`Output::Prepare`) and not yet taken or dropped.
    prepared: bool,
    /// When the agent's last answer ended with the caller quiet, and how many
    /// checks on the caller have been made since they last spoke.
    answered_at: Option<Instant>,
    silence_checks: u32,
    /// Answer once the answer under way ends, after what happened meanwhile
    /// ([`tell`](Self::tell)).
    respond_next: Option<Vec<Message>>,
}

impl Conversation {
    /// A conversation under `instructions` (the system message); the
    /// `greeting`, if any, is spoken first.
    pub fn new(rules: Rules, instructions: &str, greeting: Option<&str>) -> Self {
        let mut conversation = Self {
            rules,
            history: vec![Message::new(Role::System, instructions)],
            caller: CallerTurn::default(),
            parties: Parties::default(),
            answer: None,
            outputs: VecDeque::new(),
            next_id: 1,
            prepared: false,
            answered_at: None,
            silence_checks: 0,
            respond_next: None,
        };
        if let Some(greeting) = greeting.map(str::trim).filter(|g| !g.is_empty()) {
            let mut answer = Answer::new(None, None, None);
            answer.pending = greeting.to_owned();
            conversation.answer = Some(answer);
            conversation.cut_sentences(true);
        }
        conversation
    }

    pub fn history(&self) -> &[Message] {
        &self.history
    }

    /// Messages the application adds (`add_ai_assistant_messages`).
    pub fn add_messages(&mut self, messages: impl IntoIterator<Item = Message>) {
        self.history.extend(messages);
    }

    /// Answer now, without waiting for the caller (messages added with `trigger_response`).
    /// While an answer is under way, the added messages wait for the next one.
    pub fn respond_now(&mut self, now: Instant) {
        if self.answer.is_some() {
            return;
        }
        if self.caller.text.is_empty() {
            self.answer = Some(Answer::new(Some(now), Some(now), None));
            self.outputs.push_back(Output::Ask(self.history.clone()));
        } else {
            self.end_caller_turn(now);
        }
    }

    /// Answer as soon as nothing else is: now, or once the answer under way
    /// has played out (an invited party joined while the agent spoke).
    pub fn respond_when_free(&mut self, now: Instant) {
        self.tell(now, Vec::new());
    }

    /// Bond tells the agent what happened (an invited call refused): it goes
    /// into the history after what the agent is saying now, and the agent
    /// answers once that has played out (at once if it is not speaking).
    pub fn tell(&mut self, now: Instant, messages: Vec<Message>) {
        if self.answer.is_some() {
            self.respond_next.get_or_insert_with(Vec::new).extend(messages);
        } else {
            self.history.extend(messages);
            self.respond_now(now);
        }
    }

    /// Say `text` after whatever the agent is saying now (it is not the model's
    /// answer: `gather_ended_speech`).
    pub fn say(&mut self, text: &str) {
        match &mut self.answer {
            Some(answer) => {
                answer.pending.push(' ');
                answer.pending.push_str(text);
                if !answer.writing {
                    self.cut_sentences(true);
                }
            }
            None => {
                let mut answer = Answer::new(None, None, None);
                answer.pending = text.to_owned();
                self.answer = Some(answer);
                self.cut_sentences(true);
            }
        }
    }

    /// Nothing is being answered, synthesized or played.
    pub fn is_idle(&self) -> bool {
        self.answer.is_none()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// `party` joined the conversation as `name`; the model is told.
    pub fn joined(&mut self, party: Party, name: &str) {
        let told = self.parties.join(party, name);
        self.history.push(told);
    }

    /// `party` left the conversation: it is not waited for, and the model is told.
    pub fn left(&mut self, now: Instant, party: Party) {
        self.caller.forget(party);
        if let Some(told) = self.parties.leave(party) {
            self.history.push(told);
        }
        self.poll(now);
    }

    /// A party started speaking.
    pub fn speech_started(&mut self, party: Party, now: Instant) {
        self.caller.set_speaking(party, true);
        self.caller.started = Some(now);
        self.answered_at = None;
        self.silence_checks = 0;
        if std::mem::take(&mut self.prepared) {
            self.outputs.push_back(Output::DropPrepared);
        }
        let Some(answer) = &mut self.answer else { return };
        if answer.paused || !self.rules.interruptions {
            return;
        }
        answer.playout.advance(now);
        if answer.playout.is_untouched() && answer.asked.is_some() {
            // Nothing played yet: the caller was not done; their words stay in the turn.
            self.withdraw_answer();
        } else if !answer.playout.is_untouched() {
            answer.playout.pause(now);
            answer.paused = true;
            self.outputs.push_back(Output::StopAudio);
        }
    }

    /// A party's utterance ended (`ended`: when the speech itself did) and goes to the recognizer.
    pub fn speech_ended(&mut self, party: Party, now: Instant, ended: Instant, length: Duration) {
        self.caller.set_speaking(party, false);
        self.caller.speech_end = Some(ended);
        self.caller.quiet_since = Some(now);
        let mut spoken_over = false;
        if let Some(answer) = self.answer.as_mut().filter(|a| a.paused) {
            if length < self.rules.min_interruption {
                answer.paused = false;
                spoken_over = true;
                let again = answer.playout.resume(now);
                self.outputs.extend(again.into_iter().map(|(id, from)| Output::Play { id, from }));
            } else {
                self.interrupt(now);
            }
        }
        self.caller.push_pending(party, spoken_over);
    }

    /// The recognizer's transcript of `party`'s oldest utterance waiting for one.
    pub fn transcript(&mut self, party: Party, now: Instant, text: &str) {
        let spoken_over = self.caller.take_pending(party);
        let text = text.trim();
        if !has_words(text) || (spoken_over && is_backchannel(text)) {
            if !text.is_empty() {
                self.outputs.push_back(Output::Note(Note::Ignored { text: text.to_owned() }));
            }
            self.poll(now);
            return;
        }
        if spoken_over {
            // Real words said over the agent: they take the turn after all.
            if let Some(answer) = &mut self.answer {
                answer.playout.pause(now);
                self.outputs.push_back(Output::StopAudio);
            }
            self.interrupt(now);
        }
        self.caller.text = self.caller.with(&self.parties.label(party, text));
        self.caller.transcribed = Some(now);
    }

    /// An early transcript of the utterance being cut, whose speech ended at
    /// `ended` (the caller paused in it): if nothing else is under way and the
    /// turn would end on these words as they read, its answer is asked for now
    /// (`Output::Prepare`). Speech since `ended` means the look is stale.
    pub fn early_transcript(&mut self, party: Party, ended: Instant, text: &str) {
        let text = text.trim();
        let stale = self.caller.started.is_some_and(|started| started > ended);
        if stale || self.answer.is_some() || self.caller.pending() || !has_words(text) {
            return;
        }
        // Joined as `transcript` will join them, so the turn's `Ask` can match.
        let words = self.caller.with(&self.parties.label(party, text));
        if reading(&words) != EndOfTurn::Complete {
            return; // the turn would wait longer for more: no hurry
        }
        let mut messages = self.history.clone();
        messages.push(Message::new(Role::User, words));
        self.prepared = true;
        self.outputs.push_back(Output::Prepare(messages));
    }

    /// No recognizer transcribed the oldest utterance waiting for one. If it
    /// was the whole of the caller's turn so far (not speech over the agent,
    /// no words before it, nothing more coming), the agent says it did not
    /// catch that; otherwise the turn goes on with what was heard.
    pub fn transcript_failed(&mut self, party: Party, now: Instant) {
        let spoken_over = self.caller.take_pending(party);
        let whole_turn_lost = !spoken_over
            && self.answer.is_none()
            && self.caller.text.is_empty()
            && !self.caller.pending()
            && !self.caller.speaking();
        if !whole_turn_lost || self.rules.not_heard.is_empty() {
            return self.poll(now);
        }
        self.caller = CallerTurn::default();
        let not_heard = self.rules.not_heard.clone();
        self.say(&not_heard);
    }

    /// When [`poll`](Self::poll) has something to do next.
    pub fn deadline(&self) -> Option<Instant> {
        if let Some(answer) = &self.answer {
            let filler = answer.filler_due(&self.rules);
            return [answer.playout.until(), filler].into_iter().flatten().min();
        }
        let Some(quiet) = self.caller.quiet_since else {
            return self.silence_check_due();
        };
        if self.caller.text.is_empty() || self.caller.speaking() || self.caller.pending() {
            return None;
        }
        Some(match reading(&self.caller.text) {
            EndOfTurn::Complete => quiet.max(self.caller.transcribed.unwrap_or(quiet)),
            _ => quiet + self.rules.unfinished_wait,
        })
    }

    /// Let time pass: an answer played out ends, a caller's turn that is over is answered.
    pub fn poll(&mut self, now: Instant) {
        if let Some(answer) = &mut self.answer {
            answer.playout.advance(now);
            if answer.filler_due(&self.rules).is_some_and(|due| due <= now) {
                // Nothing to say yet: the caller hears that the agent is there. Not in the history.
                answer.filled = true;
                let id = self.next_id;
                self.next_id += 1;
                answer.synthesizing.push_back((id, String::new()));
                self.outputs.push_back(Output::Synthesize { id, text: self.rules.filler.clone() });
                return;
            }
            let over = !answer.writing && !answer.paused && !answer.is_audible() && answer.pending.is_empty();
            if over {
                let answer = self.answer.take();
                self.finish(answer, now, false);
                self.answered_at = Some(now).filter(|_| !self.caller.speaking());
                if let Some(told) = self.respond_next.take() {
                    self.history.extend(told);
                    if !self.caller.speaking() {
                        self.respond_now(now);
                    }
                }
            }
            return;
        }
        if self.silence_check_due().is_some_and(|d| d <= now) {
            self.check_on_caller(now);
        } else if self.deadline().is_some_and(|d| d <= now) {
            self.end_caller_turn(now);
        }
    }

    /// When the agent checks on a caller who said nothing since its answer ended.
    fn silence_check_due(&self) -> Option<Instant> {
        // Any speech since the answer ended cleared `answered_at`.
        let idle = self.answer.is_none() && self.silence_checks < MAX_SILENCE_CHECKS;
        let timeout = self.rules.user_response_timeout.filter(|_| idle)?;
        self.answered_at.map(|at| at + timeout)
    }

    /// The caller has said nothing since the agent's answer: the model is asked
    /// to check they are still there (the instruction is for this answer only).
    fn check_on_caller(&mut self, now: Instant) {
        let waited = self.answered_at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.answered_at = None;
        self.silence_checks += 1;
        let mut messages = self.history.clone();
        let note = format!(
            "The caller has said nothing for {} seconds since your last words. Briefly check whether they are still there.",
            waited.as_secs()
        );
        messages.push(Message::new(Role::System, note));
        self.outputs.push_back(Output::Note(Note::CallerSilent { waited }));
        self.answer = Some(Answer::new(Some(now), None, None));
        self.outputs.push_back(Output::Ask(messages));
    }

    /// The conversation ends (stopped, or the call ended): an answer under way is cut where it is.
    pub fn end(&mut self, now: Instant) {
        if self.answer.is_some() {
            self.interrupt(now);
        }
    }

    fn end_caller_turn(&mut self, now: Instant) {
        // The turn's answer is the one owed, after what the agent was told.
        self.history.extend(self.respond_next.take().unwrap_or_default());
        // The runtime takes the answer asked ahead if it asked for these messages.
        self.prepared = false;
        let turn = std::mem::take(&mut self.caller);
        let end = reading(&turn.text);
        let quiet = turn.quiet_since.unwrap_or(now);
        let transcript = turn.speech_end.zip(turn.transcribed).map(|(e, t)| t.saturating_duration_since(e));
        self.outputs.push_back(Output::Note(Note::CallerTurn {
            text: turn.text.clone(),
            end,
            waited: now.saturating_duration_since(quiet),
        }));
        self.history.push(Message::new(Role::User, turn.text));
        self.answer = Some(Answer::new(Some(now), turn.speech_end.or(Some(quiet)), transcript));
        self.outputs.push_back(Output::Ask(self.history.clone()));
    }

    /// Undo a turn's end: its answer had not begun to play when the caller went on.
    fn withdraw_answer(&mut self) {
        self.answer = None;
        self.outputs.push_back(Output::CancelAnswer);
        if self.history.last().is_some_and(|m| m.role == Role::User) {
            let said = self.history.pop().map(|m| m.content).unwrap_or_default();
            let more = std::mem::take(&mut self.caller.text);
            self.caller.text = [said, more].join(" ").trim().to_owned();
        }
    }

    /// The caller took the turn: the answer stops where it is.
    fn interrupt(&mut self, now: Instant) {
        let answer = self.answer.take();
        if answer.as_ref().is_some_and(|a| a.writing) {
            self.outputs.push_back(Output::CancelAnswer);
        }
        self.finish(answer, now, true);
    }

    fn finish(&mut self, answer: Option<Answer>, now: Instant, interrupted: bool) {
        let Some(mut answer) = answer else { return };
        if interrupted && !answer.paused {
            answer.playout.pause(now);
        }
        let heard = answer.playout.heard(now);
        let mut said = answer.playout.whole();
        for (_, text) in answer.synthesizing.iter().filter(|(_, text)| !text.is_empty()) {
            said = [said.as_str(), text].join(" ").trim().to_owned();
        }
        let unrecorded = beyond(&heard, &answer.recorded);
        if !unrecorded.is_empty() {
            self.history.push(Message::new(Role::Assistant, unrecorded));
        }
        if said.is_empty() && heard.is_empty() {
            return; // the model only called a function
        }
        let latency = answer.latency;
        self.outputs.push_back(Output::Note(Note::AgentTurn { said, heard, interrupted, latency }));
    }

    /// Cut whole sentences off the pending text (`all`: the rest too) and send them to synthesis.
    fn cut_sentences(&mut self, all: bool) {
        let Some(answer) = &mut self.answer else { return };
        while let Some(end) =
            sentence_end(&answer.pending).or(if all { Some(answer.pending.len()) } else { None })
        {
            let sentence: String = answer.pending.drain(..end).collect();
            let text = sentence.trim();
            if text.is_empty() {
                if answer.pending.is_empty() {
                    break;
                }
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            answer.model_spoke = true;
            answer.synthesizing.push_back((id, text.to_owned()));
            self.outputs.push_back(Output::Synthesize { id, text: text.to_owned() });
        }
    }
}

#[path = "conversation_answering.rs"]
mod answering;

#[cfg(test)]
#[path = "conversation_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "conversation_stream_tests.rs"]
mod stream_tests;

#[cfg(test)]
#[path = "conversation_party_tests.rs"]
mod party_tests;
