//! What the conversation machine (`conversation.rs`) asks its runtime to do,
//! and what it notes for the events.

use std::time::Duration;

use bond_speech::chat::ToolCall;

use super::answer::Latency;
use super::message::Message;
use super::turn::EndOfTurn;

/// What the runtime is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Ask the language model to answer the conversation so far.
    Ask(Vec<Message>),
    /// Ask the model ahead of the turn's end, and keep what it writes: an
    /// `Ask` with the same messages takes it, any other `Ask` drops it.
    Prepare(Vec<Message>),
    /// The caller spoke on: the answer asked ahead is not wanted.
    DropPrepared,
    /// Stop reading the answer being written (a newer turn replaced it).
    CancelAnswer,
    /// Synthesize this sentence; report back with [`Conversation::audio_ready`].
    Synthesize {
        id: u64,
        text: String,
    },
    /// Play the sentence's audio from this far into it, after what is queued.
    Play {
        id: u64,
        from: Duration,
    },
    /// Stop the agent's audio on the call, and drop what was queued.
    StopAudio,
    /// Call these tools, in order; report back with [`Conversation::tool_results`].
    CallTools(Vec<ToolCall>),
    Note(Note),
}

/// What happened, for the events.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// The caller's turn ended: their words and why it was judged over.
    CallerTurn { text: String, end: EndOfTurn, waited: Duration },
    /// The agent's answer ended: played whole, or cut off (`heard` is what was played).
    AgentTurn { said: String, heard: String, interrupted: bool, latency: Latency },
    /// Caller speech that did not take the turn (a backchannel or noise while the agent spoke).
    Ignored { text: String },
    /// The language model failed with nothing said; the apology is spoken.
    AnswerFailed { error: String },
    /// The caller said nothing for `waited` after the agent's answer: the agent checks on them.
    CallerSilent { waited: Duration },
}
