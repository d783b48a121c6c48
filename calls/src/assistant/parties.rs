//! Who the agent listens to: the call's own party and the call legs joined to
//! the conversation (`ai_assistant_join`), and the turn they are taking
//! together. Each party's speech is cut and transcribed by a fork of its own,
//! so utterances of different parties overlap and their transcripts come in
//! each party's own order; the turn is over when nobody is speaking and no
//! transcript is pending. Once someone has joined, each transcript reaches the
//! model with its speaker's name, so it can tell who said what.

use std::collections::VecDeque;
use std::time::Instant;

use super::message::{Message, Role};

/// One party of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Party(pub u32);

impl Party {
    /// The party of the call the agent was started on.
    pub const CALLER: Self = Self(0);
}

/// The name the call's own party goes by once others have joined.
const CALLER_NAME: &str = "Caller";

/// The parties who joined, with the names the model knows them by.
#[derive(Debug, Default)]
pub struct Parties {
    joined: Vec<(Party, String)>,
}

impl Parties {
    /// `party` joined as `name`: what the model is told.
    pub fn join(&mut self, party: Party, name: &str) -> Message {
        self.joined.retain(|(p, _)| *p != party);
        self.joined.push((party, name.to_owned()));
        Message::new(
            Role::System,
            format!("{name} joined the call. Each line the people say now starts with who said it."),
        )
    }

    /// `party` left: what the model is told (nothing for a party not joined).
    pub fn leave(&mut self, party: Party) -> Option<Message> {
        let at = self.joined.iter().position(|(p, _)| *p == party)?;
        let (_, name) = self.joined.remove(at);
        Some(Message::new(Role::System, format!("{name} left the call.")))
    }

    /// `text` as the model reads it: with its speaker's name once anyone has joined.
    pub fn label(&self, party: Party, text: &str) -> String {
        if self.joined.is_empty() {
            return text.to_owned();
        }
        let name = self.joined.iter().find(|(p, _)| *p == party).map_or(CALLER_NAME, |(_, n)| n);
        format!("{name}: {text}")
    }
}

/// The parties' turn being gathered.
#[derive(Debug, Default)]
pub(super) struct CallerTurn {
    pub text: String,
    /// The parties speaking now.
    speaking: Vec<Party>,
    /// When the latest speech started.
    pub started: Option<Instant>,
    /// Utterances handed to the recognizers, oldest first: whose, and whether
    /// each was spoken over the agent and let it play on (its transcript may be a backchannel).
    pending: VecDeque<(Party, bool)>,
    /// When the latest utterance ended (speech, not the quiet after it).
    pub speech_end: Option<Instant>,
    /// When the latest utterance was cut (the segmenter's quiet wait over).
    pub quiet_since: Option<Instant>,
    pub transcribed: Option<Instant>,
}

impl CallerTurn {
    /// The turn's words with `more` after them.
    pub fn with(&self, more: &str) -> String {
        if self.text.is_empty() {
            more.to_owned()
        } else {
            format!("{} {more}", self.text)
        }
    }

    /// Anyone is speaking.
    pub fn speaking(&self) -> bool {
        !self.speaking.is_empty()
    }

    pub fn set_speaking(&mut self, party: Party, speaking: bool) {
        self.speaking.retain(|p| *p != party);
        if speaking {
            self.speaking.push(party);
        }
    }

    /// A transcript is still to come.
    pub fn pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn push_pending(&mut self, party: Party, spoken_over: bool) {
        self.pending.push_back((party, spoken_over));
    }

    /// The oldest utterance of `party` waiting for its transcript: whether it was spoken over the agent.
    pub fn take_pending(&mut self, party: Party) -> bool {
        let at = self.pending.iter().position(|(p, _)| *p == party);
        at.and_then(|at| self.pending.remove(at)).is_some_and(|(_, over)| over)
    }

    /// `party` left: it speaks no more, and none of its transcripts will come.
    pub fn forget(&mut self, party: Party) {
        self.speaking.retain(|p| *p != party);
        self.pending.retain(|(p, _)| *p != party);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_are_labelled_with_their_speaker_only_once_someone_joined() {
        let mut parties = Parties::default();
        assert_eq!(parties.label(Party::CALLER, "hello"), "hello");
        parties.join(Party(1), "Dana");
        assert_eq!(parties.label(Party::CALLER, "hello"), "Caller: hello");
        assert_eq!(parties.label(Party(1), "hi there"), "Dana: hi there");
        assert_eq!(parties.leave(Party(1)).unwrap().content, "Dana left the call.");
        assert_eq!(parties.label(Party::CALLER, "hello"), "hello");
        assert!(parties.leave(Party(1)).is_none());
    }

    #[test]
    fn a_transcript_matches_the_oldest_utterance_of_its_own_party() {
        let mut turn = CallerTurn::default();
        turn.push_pending(Party::CALLER, false);
        turn.push_pending(Party(1), true);
        turn.push_pending(Party::CALLER, true);
        assert!(turn.take_pending(Party(1)));
        assert!(!turn.take_pending(Party::CALLER));
        assert!(turn.pending());
        turn.forget(Party::CALLER);
        assert!(!turn.pending());
    }

    #[test]
    fn the_turn_is_spoken_while_any_party_speaks() {
        let mut turn = CallerTurn::default();
        turn.set_speaking(Party::CALLER, true);
        turn.set_speaking(Party(1), true);
        turn.set_speaking(Party::CALLER, false);
        assert!(turn.speaking());
        turn.forget(Party(1));
        assert!(!turn.speaking());
    }
}
