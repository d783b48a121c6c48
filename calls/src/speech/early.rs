//! Early transcripts. An utterance ends after 600 ms of quiet; an agent's
//! caller waits that long, then for the recognizer, and so does a translated
//! call's listener. So 240 ms into the quiet the utterance so far (its
//! trailing quiet left off) is handed to the recognizer as an early look; if
//! the quiet lasts, the utterance that ends is the same audio
//! (`Segmenter::pause_due`) and its transcript is already there. If the
//! speaker speaks on, the look was wasted and the utterance is transcribed
//! when it ends, as without it. Each side of a call is looked at on its own.
//! How far into the pause is `assistant.early_look_ms` (named for the agents,
//! which came first; it serves every transcribed call); the look's transcript
//! also goes to the agent (`Input::EarlyTranscript`) when early answers are on.
//!
//! Only when whisper (embedded, segment at a time) is the first recognizer
//! and has nothing else to do: a streaming cloud recognizer keeps one stream
//! per track and hears it as it comes, and under load a look would only
//! delay other calls' utterances.

use bond_speech::stt::{SttError, Transcript};

use super::settings::Side;
use super::Heard;

/// How long into the quiet the early look is taken, by default
/// (`assistant.early_look_ms`): 12 frames of 20 ms.
pub const DEFAULT_LOOK: std::time::Duration = std::time::Duration::from_millis(240);

/// The recognizer's answer for an early look, and what it covered.
pub(super) struct Early {
    side: Side,
    start_ms: u64,
    end_ms: u64,
    pub answer: (Result<Transcript, SttError>, Vec<SttError>),
}

impl Early {
    pub fn new(look: &Heard, answer: (Result<Transcript, SttError>, Vec<SttError>)) -> Self {
        let (start_ms, end_ms) = (look.utterance.start_ms, look.utterance.end_ms);
        Self { side: look.side, start_ms, end_ms, answer }
    }

    /// Whether `utterance` is the audio this look transcribed (nobody spoke since).
    pub fn covers(&self, utterance: &Heard) -> bool {
        self.side == utterance.side
            && self.start_ms == utterance.utterance.start_ms
            && self.end_ms == utterance.utterance.end_ms
    }
}

/// Whether an early look is worth taking now: the recognizer asked first
/// (`engine`, and whether it is `idle`) is whisper and has nothing else to
/// do. With other utterances queued for it, a look would only delay them.
pub(super) fn worth_it(first: Option<(&str, bool)>) -> bool {
    first.is_some_and(|(engine, idle)| idle && engine.eq_ignore_ascii_case("whisper"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_looks_are_taken_only_when_whisper_is_asked_first_and_idle() {
        assert!(worth_it(Some(("whisper", true))));
        assert!(!worth_it(Some(("whisper", false))), "utterances wait for it");
        assert!(!worth_it(Some(("deepgram", true))));
        assert!(!worth_it(None));
    }
}
