//! `gather_using_audio` and `gather_using_speak`: a prompt, then a [`Gather`],
//! tried again when nothing or something invalid was pressed. Like the
//! gather itself it has no I/O and no clock: it is told when a prompt ended
//! and what was pressed when, and answers with [`Step`]s for the caller to
//! carry out (play a prompt, stop one) or the end.
//!
//! - A prompt plays; a digit while it plays stops it (barge-in) and is the
//!   gather's first. When it ends, the gather waits `timeout_millis` for a
//!   first digit.
//! - `valid` ends it. `timeout` or `invalid` with tries left plays the prompt
//!   again (after the invalid prompt, for `invalid`, if there is one); with
//!   none left, that is how it ends. `maximum_tries` counts the prompt's plays.

use std::time::{Duration, Instant};

use super::machine::{Gather, GatherSpec, GatherStatus, Gathered, Spoken};

/// Which prompt to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    Main,
    /// Played after invalid input, before the main prompt again.
    Invalid,
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Play(Prompt),
    /// Stop the prompt playing now (a digit came while it played).
    StopPrompt,
    Ended(Gathered),
}

/// How a prompted gather runs, checked (see `fields.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptedSpec {
    /// The digits' rules; its `initial_timeout` is the wait after each prompt.
    pub gather: GatherSpec,
    /// Plays of the main prompt, at least 1.
    pub maximum_tries: u32,
    pub has_invalid_prompt: bool,
}

impl PromptedSpec {
    /// Telnyx's defaults: three tries, 60 s after each prompt.
    pub fn new(gather: GatherSpec) -> Self {
        let gather = GatherSpec { initial_timeout: Duration::from_millis(60_000), ..gather };
        Self { gather, maximum_tries: 3, has_invalid_prompt: false }
    }
}

#[derive(Debug, Clone)]
enum Phase {
    Prompting(Prompt),
    Gathering(Box<Gather>),
}

/// A prompted gather running on a call.
#[derive(Debug, Clone)]
pub struct Prompted {
    spec: PromptedSpec,
    tries_left: u32,
    phase: Phase,
}

impl Prompted {
    /// Start: the first step is always to play the main prompt.
    pub fn start(spec: PromptedSpec) -> (Self, Step) {
        let tries_left = spec.maximum_tries.max(1) - 1;
        (Self { spec, tries_left, phase: Phase::Prompting(Prompt::Main) }, Step::Play(Prompt::Main))
    }

    /// The prompt playing has ended at `now` (played out, or stopped by Bond).
    pub fn prompt_ended(&mut self, now: Instant) -> Option<Step> {
        match self.phase {
            Phase::Prompting(Prompt::Invalid) => {
                self.phase = Phase::Prompting(Prompt::Main);
                Some(Step::Play(Prompt::Main))
            }
            Phase::Prompting(Prompt::Main) => {
                self.phase = Phase::Gathering(Box::new(Gather::new(self.spec.gather.clone(), now)));
                None
            }
            Phase::Gathering(_) => None,
        }
    }

    /// A digit pressed at `now`; the steps it leads to, in order.
    pub fn digit(&mut self, now: Instant, digit: char) -> Vec<Step> {
        let mut steps = Vec::new();
        if let Some(outcome) = self.gather_now(now, &mut steps).digit(now, digit) {
            steps.push(self.after(outcome));
        }
        steps
    }

    /// The party started speaking (`spoken` is `None`) or said `spoken`, in a
    /// speech gather: like a digit, it stops the prompt.
    pub fn speech(&mut self, now: Instant, spoken: Option<Spoken>) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.spec.gather.speech.is_none() {
            return steps;
        }
        let gather = self.gather_now(now, &mut steps);
        let outcome = match spoken {
            None => gather.speech_started(now),
            Some(spoken) => gather.speech(now, spoken),
        };
        if let Some(outcome) = outcome {
            steps.push(self.after(outcome));
        }
        steps
    }

    /// The gather, begun at `now` if a prompt still plays (which is then stopped).
    fn gather_now(&mut self, now: Instant, steps: &mut Vec<Step>) -> &mut Gather {
        if let Phase::Prompting(_) = self.phase {
            steps.push(Step::StopPrompt);
            self.phase = Phase::Gathering(Box::new(Gather::new(self.spec.gather.clone(), now)));
        }
        match &mut self.phase {
            Phase::Gathering(gather) => gather,
            Phase::Prompting(_) => unreachable!("set just above"),
        }
    }

    /// When [`Prompted::poll`] should be called next; `None` while a prompt plays.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Gathering(gather) => Some(gather.deadline()),
            Phase::Prompting(_) => None,
        }
    }

    /// `Some` when a timer has run out by `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Step> {
        let Phase::Gathering(gather) = &mut self.phase else { return None };
        let outcome = gather.poll(now)?;
        Some(self.after(outcome))
    }

    /// End it now with `status` and the digits so far.
    pub fn stop(self, status: GatherStatus) -> Gathered {
        match self.phase {
            Phase::Gathering(gather) => gather.stop(status),
            Phase::Prompting(_) => Gathered { digits: String::new(), status, speech: None },
        }
    }

    /// A gather ended `outcome`: the end, or another try.
    fn after(&mut self, outcome: Gathered) -> Step {
        let again = matches!(outcome.status, GatherStatus::Invalid | GatherStatus::Timeout);
        if !again || self.tries_left == 0 {
            return Step::Ended(outcome);
        }
        self.tries_left -= 1;
        let prompt = match outcome.status {
            GatherStatus::Invalid if self.spec.has_invalid_prompt => Prompt::Invalid,
            _ => Prompt::Main,
        };
        self.phase = Phase::Prompting(prompt);
        Step::Play(prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bond_store::clock::monotonic;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn spec(tries: u32, invalid_prompt: bool) -> PromptedSpec {
        let gather = GatherSpec {
            minimum_digits: 2,
            maximum_digits: 3,
            valid_digits: "123#".into(),
            ..Default::default()
        };
        let mut spec = PromptedSpec::new(gather);
        spec.gather.initial_timeout = ms(2000);
        spec.maximum_tries = tries;
        spec.has_invalid_prompt = invalid_prompt;
        spec
    }

    fn ended(digits: &str, status: GatherStatus) -> Step {
        Step::Ended(Gathered { digits: digits.into(), status, speech: None })
    }

    #[test]
    fn speaking_over_the_prompt_stops_it_and_what_is_said_ends_the_gather() {
        let t0 = monotonic();
        let mut listening = spec(1, false);
        listening.gather.speech = Some("en".into());
        let (mut gather, _) = Prompted::start(listening);
        assert_eq!(gather.speech(t0 + ms(1000), None), vec![Step::StopPrompt]);
        assert_eq!(gather.poll(t0 + ms(4000)), None, "the words are awaited past the first-digit wait");
        let yes = Spoken { transcript: "Yes.".into(), confidence: 0.8 };
        let said = Gathered { digits: String::new(), status: GatherStatus::Valid, speech: Some(yes.clone()) };
        assert_eq!(gather.speech(t0 + ms(4500), Some(yes.clone())), vec![Step::Ended(said)]);

        let (mut deaf, _) = Prompted::start(spec(1, false));
        assert_eq!(deaf.speech(t0, Some(yes)), vec![], "a digit-only gather does not listen");
    }

    #[test]
    fn the_prompt_plays_then_the_wait_for_a_first_digit_starts_when_it_ends() {
        let t0 = monotonic();
        let (mut gather, first) = Prompted::start(spec(1, false));
        assert_eq!(first, Step::Play(Prompt::Main));
        assert_eq!(gather.deadline(), None, "no timer while the prompt plays");
        assert_eq!(gather.poll(t0 + ms(60_000)), None);
        assert_eq!(gather.prompt_ended(t0 + ms(3000)), None);
        assert_eq!(gather.deadline(), Some(t0 + ms(5000)));
        assert_eq!(gather.digit(t0 + ms(3500), '1'), vec![]);
        assert_eq!(gather.digit(t0 + ms(3800), '2'), vec![]);
        assert_eq!(gather.digit(t0 + ms(4000), '#'), vec![ended("12", GatherStatus::Valid)]);
    }

    #[test]
    fn a_digit_during_the_prompt_stops_it_and_counts() {
        let t0 = monotonic();
        let (mut gather, _) = Prompted::start(spec(1, false));
        assert_eq!(gather.digit(t0 + ms(500), '1'), vec![Step::StopPrompt]);
        assert_eq!(gather.prompt_ended(t0 + ms(520)), None, "the stopped prompt's end changes nothing");
        assert_eq!(gather.digit(t0 + ms(900), '2'), vec![]);
        assert_eq!(gather.digit(t0 + ms(1200), '3'), vec![ended("123", GatherStatus::Valid)]);
    }

    #[test]
    fn silence_replays_the_prompt_until_the_tries_run_out() {
        let t0 = monotonic();
        let (mut gather, _) = Prompted::start(spec(2, false));
        gather.prompt_ended(t0 + ms(1000));
        assert_eq!(gather.poll(t0 + ms(3000)), Some(Step::Play(Prompt::Main)), "second try");
        gather.prompt_ended(t0 + ms(4000));
        assert_eq!(gather.poll(t0 + ms(6000)), Some(ended("", GatherStatus::Timeout)));
    }

    #[test]
    fn invalid_input_plays_the_invalid_prompt_then_the_main_one() {
        let t0 = monotonic();
        let (mut gather, _) = Prompted::start(spec(2, true));
        gather.prompt_ended(t0);
        assert_eq!(gather.digit(t0 + ms(100), '9'), vec![Step::Play(Prompt::Invalid)]);
        assert_eq!(gather.prompt_ended(t0 + ms(1000)), Some(Step::Play(Prompt::Main)));
        gather.prompt_ended(t0 + ms(2000));
        assert_eq!(
            gather.digit(t0 + ms(2100), '9'),
            vec![ended("9", GatherStatus::Invalid)],
            "no tries left"
        );
    }

    #[test]
    fn without_an_invalid_prompt_invalid_input_replays_the_main_one() {
        let t0 = monotonic();
        let (mut gather, _) = Prompted::start(spec(3, false));
        gather.prompt_ended(t0);
        assert_eq!(gather.digit(t0 + ms(100), '9'), vec![Step::Play(Prompt::Main)]);
    }

    #[test]
    fn stopping_while_a_prompt_plays_reports_no_digits() {
        let (gather, _) = Prompted::start(spec(3, false));
        assert_eq!(
            gather.stop(GatherStatus::Cancelled),
            Gathered { digits: String::new(), status: GatherStatus::Cancelled, speech: None }
        );
    }
}
