//! One `gather`, as a state machine with no I/O and no clock: it is handed the
//! time with every input and says when it wants to be asked again, so every
//! rule below is tested in simulated time.
//!
//! Digits arrive one by one. The gather ends:
//! - with the terminating digit (not kept): `valid` with at least
//!   `minimum_digits`, else `invalid`;
//! - at `maximum_digits`: `valid`;
//! - with a digit outside `valid_digits` (kept, so the application sees it): `invalid`;
//! - when a timer runs out (`initial_timeout_millis` before the first digit,
//!   `inter_digit_timeout_millis` after each, `timeout_millis` in all): `valid`
//!   with at least `minimum_digits`, else `timeout`;
//! - when stopped (`gather_stop`, a new gather, the call's end) with the
//!   status it is stopped with;
//! - listening for speech too (Bond's `bond_input: "dtmf speech"`): with the
//!   first thing the party says, transcribed: `valid`. Once the party starts
//!   speaking only `timeout_millis` runs (the transcript comes after the words).

use std::time::{Duration, Instant};

/// A `gather`'s settings, checked (see `fields.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherSpec {
    pub minimum_digits: usize,
    pub maximum_digits: usize,
    /// The whole gather (Telnyx `timeout_millis`).
    pub timeout: Duration,
    /// Before the first digit (`initial_timeout_millis`).
    pub initial_timeout: Duration,
    /// After each digit (`inter_digit_timeout_millis`).
    pub inter_digit_timeout: Duration,
    pub terminating_digit: Option<char>,
    pub valid_digits: String,
    /// Telnyx `gather_id`; not echoed in `call.gather.ended`, which has no such field.
    pub gather_id: Option<String>,
    /// Bond's speech gather: also listen, in this language (BCP 47).
    pub speech: Option<String>,
}

impl Default for GatherSpec {
    /// Telnyx's defaults.
    fn default() -> Self {
        Self {
            minimum_digits: 1,
            maximum_digits: 128,
            timeout: Duration::from_millis(60_000),
            initial_timeout: Duration::from_millis(5_000),
            inter_digit_timeout: Duration::from_millis(5_000),
            terminating_digit: Some('#'),
            valid_digits: "0123456789#*".into(),
            gather_id: None,
            speech: None,
        }
    }
}

/// How a gather ended: `call.gather.ended`'s `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatherStatus {
    Valid,
    Invalid,
    CallHangup,
    Cancelled,
    Timeout,
}

impl GatherStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::CallHangup => "call_hangup",
            Self::Cancelled => "cancelled",
            Self::Timeout => "timeout",
        }
    }
}

/// A finished gather: what `call.gather.ended` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered {
    pub digits: String,
    pub status: GatherStatus,
    /// What the party said, in a speech gather that ended on it.
    pub speech: Option<Spoken>,
}

/// A transcribed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Spoken {
    pub transcript: String,
    pub confidence: f32,
}

/// A gather running on a call.
#[derive(Debug, Clone)]
pub struct Gather {
    spec: GatherSpec,
    digits: String,
    started: Instant,
    last_digit: Option<Instant>,
    /// The party has started speaking (a speech gather).
    hearing: bool,
}

impl Gather {
    pub fn new(spec: GatherSpec, now: Instant) -> Self {
        Self { spec, digits: String::new(), started: now, last_digit: None, hearing: false }
    }

    /// A digit heard at `now`; `Some` when it ends the gather.
    pub fn digit(&mut self, now: Instant, digit: char) -> Option<Gathered> {
        if let Some(ended) = self.poll(now) {
            return Some(ended); // a timer ran out before this digit
        }
        self.last_digit = Some(now);
        if self.spec.terminating_digit == Some(digit) {
            let enough = self.digits.len() >= self.spec.minimum_digits;
            return Some(self.end(if enough { GatherStatus::Valid } else { GatherStatus::Invalid }));
        }
        self.digits.push(digit);
        if !self.spec.valid_digits.contains(digit) {
            return Some(self.end(GatherStatus::Invalid));
        }
        (self.digits.len() >= self.spec.maximum_digits).then(|| self.end(GatherStatus::Valid))
    }

    /// The party started speaking at `now`: a speech gather now waits for
    /// the words, up to its overall timeout. `Some` if a timer ran out first.
    pub fn speech_started(&mut self, now: Instant) -> Option<Gathered> {
        self.spec.speech.as_ref()?;
        let timed_out = self.poll(now);
        self.hearing = timed_out.is_none();
        timed_out
    }

    /// What the party said, transcribed: ends a speech gather `valid`.
    pub fn speech(&mut self, now: Instant, spoken: Spoken) -> Option<Gathered> {
        self.spec.speech.as_ref()?;
        if let Some(ended) = self.poll(now) {
            return Some(ended);
        }
        let mut ended = self.end(GatherStatus::Valid);
        ended.speech = Some(spoken);
        Some(ended)
    }

    /// When the gather wants [`Gather::poll`] called next: its nearest timer.
    pub fn deadline(&self) -> Instant {
        let overall = self.started + self.spec.timeout;
        if self.hearing {
            return overall;
        }
        let waiting = match self.last_digit {
            Some(at) => at + self.spec.inter_digit_timeout,
            None => self.started + self.spec.initial_timeout,
        };
        overall.min(waiting)
    }

    /// `Some` when a timer has run out by `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Gathered> {
        if now < self.deadline() {
            return None;
        }
        let enough = self.digits.len() >= self.spec.minimum_digits;
        Some(self.end(if enough { GatherStatus::Valid } else { GatherStatus::Timeout }))
    }

    /// End it now with `status` and the digits so far.
    pub fn stop(mut self, status: GatherStatus) -> Gathered {
        self.end(status)
    }

    fn end(&mut self, status: GatherStatus) -> Gathered {
        Gathered { digits: std::mem::take(&mut self.digits), status, speech: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bond_store::clock::monotonic;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn spec() -> GatherSpec {
        GatherSpec { minimum_digits: 2, maximum_digits: 4, ..GatherSpec::default() }
    }

    /// Feed `keys` one every `gap`, from `t0`; the outcome and when it came.
    fn feed(gather: &mut Gather, t0: Instant, gap: Duration, keys: &str) -> Option<(Gathered, Instant)> {
        keys.chars().enumerate().find_map(|(i, key)| {
            let at = t0 + gap * (i as u32 + 1);
            gather.digit(at, key).map(|g| (g, at))
        })
    }

    fn ended(digits: &str, status: GatherStatus) -> Gathered {
        Gathered { digits: digits.into(), status, speech: None }
    }

    fn yes() -> Spoken {
        Spoken { transcript: "Yes, please.".into(), confidence: 0.9 }
    }

    #[test]
    fn a_speech_gather_ends_valid_with_what_was_said_and_waits_for_words_once_speech_began() {
        let t0 = monotonic();
        let listening = GatherSpec { speech: Some("en".into()), ..spec() };
        let mut gather = Gather::new(listening.clone(), t0);
        assert_eq!(gather.speech_started(t0 + ms(4000)), None);
        // Past the initial timeout, the words are still awaited (up to `timeout_millis`).
        assert_eq!(gather.poll(t0 + ms(6000)), None);
        assert_eq!(gather.deadline(), t0 + listening.timeout);
        let got = gather.speech(t0 + ms(7000), yes()).unwrap();
        assert_eq!(got, Gathered { digits: String::new(), status: GatherStatus::Valid, speech: Some(yes()) });

        let mut silent = Gather::new(listening, t0);
        assert_eq!(silent.poll(t0 + ms(5000)), Some(ended("", GatherStatus::Timeout)), "nobody spoke");
    }

    #[test]
    fn a_digit_gather_does_not_listen() {
        let t0 = monotonic();
        let mut gather = Gather::new(spec(), t0);
        assert_eq!(gather.speech_started(t0 + ms(100)), None);
        assert_eq!(gather.speech(t0 + ms(200), yes()), None);
        assert_eq!(gather.deadline(), t0 + spec().initial_timeout);
    }

    #[test]
    fn the_terminating_digit_ends_it_and_is_not_kept() {
        let t0 = monotonic();
        let mut gather = Gather::new(spec(), t0);
        let (got, _) = feed(&mut gather, t0, ms(300), "12#").unwrap();
        assert_eq!(got, ended("12", GatherStatus::Valid));
    }

    #[test]
    fn a_terminating_digit_before_the_minimum_is_invalid() {
        let t0 = monotonic();
        let mut gather = Gather::new(spec(), t0);
        assert_eq!(feed(&mut gather, t0, ms(300), "1#").unwrap().0, ended("1", GatherStatus::Invalid));
    }

    #[test]
    fn the_maximum_ends_it_at_once() {
        let t0 = monotonic();
        let mut gather = Gather::new(spec(), t0);
        let (got, at) = feed(&mut gather, t0, ms(300), "123456").unwrap();
        assert_eq!(got, ended("1234", GatherStatus::Valid));
        assert_eq!(at, t0 + ms(1200), "on the fourth digit");
    }

    #[test]
    fn a_digit_outside_the_valid_ones_ends_it_invalid_and_is_shown() {
        let t0 = monotonic();
        let spec = GatherSpec { valid_digits: "123#".into(), ..spec() };
        let mut gather = Gather::new(spec, t0);
        assert_eq!(feed(&mut gather, t0, ms(300), "19").unwrap().0, ended("19", GatherStatus::Invalid));
    }

    #[test]
    fn no_first_digit_within_the_initial_timeout_is_a_timeout() {
        let t0 = monotonic();
        let mut gather = Gather::new(spec(), t0);
        assert_eq!(gather.deadline(), t0 + ms(5000));
        assert_eq!(gather.poll(t0 + ms(4999)), None);
        assert_eq!(gather.poll(t0 + ms(5000)), Some(ended("", GatherStatus::Timeout)));
    }

    #[test]
    fn a_pause_after_enough_digits_ends_it_valid_and_before_enough_a_timeout() {
        let t0 = monotonic();
        let mut gather = Gather::new(spec(), t0);
        assert!(feed(&mut gather, t0, ms(1000), "12").is_none());
        assert_eq!(gather.deadline(), t0 + ms(2000) + ms(5000), "the inter-digit timer restarts");
        assert_eq!(gather.poll(t0 + ms(7000)), Some(ended("12", GatherStatus::Valid)));

        let mut short = Gather::new(spec(), t0);
        assert!(feed(&mut short, t0, ms(1000), "1").is_none());
        assert_eq!(short.poll(t0 + ms(6000)), Some(ended("1", GatherStatus::Timeout)));
    }

    #[test]
    fn the_overall_timeout_holds_however_steadily_digits_come() {
        let t0 = monotonic();
        let spec = GatherSpec { maximum_digits: 128, timeout: ms(3000), ..spec() };
        let mut gather = Gather::new(spec, t0);
        // A digit every 700 ms never lets the inter-digit timer run out.
        let (got, at) = feed(&mut gather, t0, ms(700), "123456789").unwrap();
        assert_eq!(got, ended("1234", GatherStatus::Valid), "the fifth digit came after 3 s");
        assert_eq!(at, t0 + ms(3500));
    }

    #[test]
    fn stopping_reports_the_digits_so_far_with_the_reason() {
        let t0 = monotonic();
        let mut gather = Gather::new(spec(), t0);
        feed(&mut gather, t0, ms(100), "9");
        assert_eq!(gather.stop(GatherStatus::CallHangup), ended("9", GatherStatus::CallHangup));
    }
}
