//! Answering-machine detection: a tap on what a leg's party says.
//!
//! [`AmdDetector`] is fed 20 ms frames (what the callee sends, and what Bond
//! sends the callee at the same time) and emits at most two events: the verdict
//! ([`AmdEvent::Detection`]) and, for machines, the end of the greeting
//! ([`AmdEvent::GreetingEnded`]). Times are counted in frames, so a decision in
//! simulated time is exact and repeatable. How it decides is in
//! `docs/amd.md`; the pieces are [`activity`] (speech against an adaptive
//! noise floor), [`tone`] (steady single tones: beeps, fax) and, when the
//! runtime has a recognizer, the greeting's words ([`phrases`]): at each pause
//! the detector hands out the greeting so far
//! ([`AmdDetector::poll_words_wanted`]) and takes back what was said
//! ([`AmdDetector::heard_words`]).

pub mod activity;
mod detector;
mod echo;
pub mod phrases;
pub mod tone;
mod words;

pub use detector::AmdDetector;

/// What to watch for after a machine verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GreetingWatch {
    /// Nothing: the verdict ends detection (Telnyx `detect`).
    #[default]
    None,
    /// Report a beep if one comes (`detect_beep`, `detect_words`).
    Beep,
    /// Report the greeting's end: a beep, a long silence, or not sure (`greeting_end`, `premium`).
    EndOrBeep,
}

/// Detection settings; field names follow Telnyx `answering_machine_detection_config`.
/// Times are in milliseconds from the start of detection (the answer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmdConfig {
    /// Give up (`not_sure`) when no verdict came by then.
    pub total_analysis_time_millis: u32,
    /// Nothing said for this long: `silence`.
    pub initial_silence_millis: u32,
    /// Speech for longer than this without a pause of `after_greeting_silence_millis`: a machine.
    pub greeting_duration_millis: u32,
    /// A pause this long after a short greeting: a person waiting for an answer.
    pub after_greeting_silence_millis: u32,
    /// A pause this long separates two words.
    pub between_words_silence_millis: u32,
    /// More words than this before a pause: a machine.
    pub maximum_number_of_words: u32,
    /// One unbroken word longer than this: a machine.
    pub maximum_word_length_millis: u32,
    /// Frames whose mean absolute sample value (16-bit scale) is below this are never speech.
    pub silence_threshold: u16,
    /// After a machine verdict, watch for the greeting's end until this time.
    pub greeting_total_analysis_time_millis: u32,
    /// Silence this long after the last word ends the greeting (no beep).
    pub greeting_silence_duration_millis: u32,
    pub watch: GreetingWatch,
    /// The callee's language (one of [`phrases::LANGUAGES`]): the greeting is
    /// handed out at each pause to be transcribed, and a machine's phrase in it
    /// makes a machine. `None`: timing and tones alone.
    pub words_language: Option<&'static str>,
}

impl Default for AmdConfig {
    fn default() -> Self {
        Self {
            total_analysis_time_millis: 8_000,
            initial_silence_millis: 3_500,
            greeting_duration_millis: 5_000,
            after_greeting_silence_millis: 900,
            between_words_silence_millis: 100,
            maximum_number_of_words: 30,
            maximum_word_length_millis: 5_000,
            silence_threshold: 96,
            greeting_total_analysis_time_millis: 30_000,
            greeting_silence_duration_millis: 2_000,
            watch: GreetingWatch::None,
            words_language: None,
        }
    }
}

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Human,
    Machine,
    /// A fax machine's CNG or CED/ANSam tone.
    Fax,
    /// Nothing was said.
    Silence,
    NotSure,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Machine => "machine",
            Self::Fax => "fax",
            Self::Silence => "silence",
            Self::NotSure => "not_sure",
        }
    }
}

/// How a machine's greeting ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GreetingEnd {
    /// A beep at `hz`.
    Beep { hz: f64 },
    /// A long silence, no beep.
    Ended,
    /// Neither before `greeting_total_analysis_time_millis`.
    NotSure,
}

/// What the detector reports. `at_millis` counts from the start of detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AmdEvent {
    Detection {
        verdict: Verdict,
        at_millis: u32,
        /// Why, in a few words (for logs and tuning).
        reason: &'static str,
    },
    GreetingEnded {
        end: GreetingEnd,
        at_millis: u32,
    },
}
