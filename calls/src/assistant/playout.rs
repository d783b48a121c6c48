//! The agent's answer as the caller hears it: its sentences' audio queued on
//! the call one after another, as a timeline. Each sentence starts when the
//! one before it ends (or when its audio is ready, if later), so at any time
//! the timeline tells what has been played: when the caller cuts in, the
//! sentence playing is paused at a known point, and the words heard so far
//! (whole sentences, then the share of the cut one's words that had played)
//! are what goes into the conversation. Pure, clock-free: times are handed in.
//!
//! A sentence whose speech streams in grows as its parts arrive
//! ([`extend`](Playout::extend)) and is not over until it is complete, even
//! when a part comes after the audio before it ran out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Sentence {
    id: u64,
    text: String,
    length: Duration,
    /// Where in its audio it plays from (after a pause).
    from: Duration,
    /// When it starts playing from `from`; `None` while paused.
    start: Option<Instant>,
    /// All its audio has arrived.
    complete: bool,
}

/// About how long speech of one character lasts, to guess the length of a
/// sentence still streaming in (about 14 characters a second).
const PER_CHARACTER: Duration = Duration::from_millis(70);

impl Sentence {
    fn end(&self) -> Option<Instant> {
        self.start.map(|s| s + self.length.saturating_sub(self.from))
    }

    /// Its length when complete, or a guess from its text while parts are
    /// still coming (never less than what has arrived).
    fn whole_length(&self) -> Duration {
        if self.complete {
            return self.length;
        }
        let chars = u32::try_from(self.text.chars().count()).unwrap_or(u32::MAX);
        self.length.max(PER_CHARACTER.saturating_mul(chars))
    }
}

#[derive(Debug, Default)]
pub struct Playout {
    /// Queued or playing, in order.
    queue: VecDeque<Sentence>,
    /// Sentences played to their end.
    played: Vec<String>,
    /// When the queue's audio runs out.
    until: Option<Instant>,
}

impl Playout {
    /// A sentence's audio (all of it, or its first part: `complete` false)
    /// was handed to the call at `now`; it plays after those queued, from the
    /// time returned.
    pub fn queue(
        &mut self,
        now: Instant,
        id: u64,
        text: String,
        length: Duration,
        complete: bool,
    ) -> Instant {
        let start = self.until.filter(|u| *u > now).unwrap_or(now);
        self.until = Some(start + length);
        let sentence = Sentence { id, text, length, from: Duration::ZERO, start: Some(start), complete };
        self.queue.push_back(sentence);
        start
    }

    /// Add a sentence that waits for [`resume`](Self::resume) (the audio is paused).
    pub fn hold(&mut self, id: u64, text: String, length: Duration, complete: bool) {
        self.queue.push_back(Sentence { id, text, length, from: Duration::ZERO, start: None, complete });
    }

    /// More of a streaming sentence's audio arrived at `now`: where in the
    /// sentence it starts, to hand it to the call, when the sentence is
    /// playing (`None` while paused, or for a sentence not queued). A part
    /// that comes after the audio before it ran out plays from `now`.
    pub fn extend(&mut self, now: Instant, id: u64, more: Duration) -> Option<Duration> {
        let at = self.queue.iter().position(|s| s.id == id)?;
        let sentence = &mut self.queue[at];
        let from = sentence.length;
        sentence.length += more;
        let end = sentence.end().map(|end| end - more)?;
        // Starved: the sentence waited, silent, from its audio's end until now.
        let gap = now.saturating_duration_since(end);
        let shift = gap + more;
        if let Some(start) = sentence.start.as_mut() {
            *start += gap;
        }
        for later in self.queue.range_mut(at + 1..) {
            if let Some(start) = later.start.as_mut() {
                *start += shift;
            }
        }
        self.until = self.until.map(|until| until + shift);
        Some(from)
    }

    /// A streaming sentence's last part has arrived.
    pub fn complete(&mut self, id: u64) {
        if let Some(sentence) = self.queue.iter_mut().find(|s| s.id == id) {
            sentence.complete = true;
        }
    }

    /// Move the sentences that finished by `now` to the played ones (one
    /// still streaming in is not finished, however far it has played).
    pub fn advance(&mut self, now: Instant) {
        while let Some(first) = self.queue.front() {
            match first.end() {
                Some(end) if end <= now && first.complete => {
                    let done = self.queue.pop_front().map(|s| s.text).unwrap_or_default();
                    self.played.push(done);
                }
                _ => break,
            }
        }
    }

    /// Nothing queued, playing or paused.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Nothing was ever queued (no audio of this answer has reached the call).
    pub fn is_untouched(&self) -> bool {
        self.queue.is_empty() && self.played.is_empty()
    }

    /// When the queued audio ends (`None` while paused, empty, or waiting
    /// for a streaming sentence's parts: their arrival says more).
    pub fn until(&self) -> Option<Instant> {
        if self.queue.iter().any(|s| s.start.is_none() || !s.complete) {
            return None;
        }
        self.until.filter(|_| !self.queue.is_empty())
    }

    /// Stop the timeline at `now`: the sentence playing keeps its position.
    pub fn pause(&mut self, now: Instant) {
        self.advance(now);
        for sentence in &mut self.queue {
            if let Some(start) = sentence.start.take() {
                if start < now {
                    sentence.from = (sentence.from + (now - start)).min(sentence.length);
                }
            }
        }
        self.until = None;
    }

    /// Play on from where it paused: what to hand the call again, in order
    /// (each sentence's id and where in its audio to start).
    pub fn resume(&mut self, now: Instant) -> Vec<(u64, Duration)> {
        let mut at = now;
        let mut again = Vec::with_capacity(self.queue.len());
        for sentence in &mut self.queue {
            sentence.start = Some(at);
            at += sentence.length.saturating_sub(sentence.from);
            again.push((sentence.id, sentence.from));
        }
        self.until = Some(at);
        again
    }

    /// The words the caller heard: whole sentences played, then the part of
    /// the one cut off (its share of words as its share of audio played).
    pub fn heard(&self, now: Instant) -> String {
        let mut heard = self.played.clone();
        for sentence in &self.queue {
            if sentence.complete && sentence.end().is_some_and(|end| end <= now) {
                heard.push(sentence.text.clone());
                continue;
            }
            let position = match sentence.start {
                Some(start) if start < now => (sentence.from + (now - start)).min(sentence.length),
                _ => sentence.from,
            };
            let share = position.as_secs_f64() / sentence.whole_length().as_secs_f64().max(1e-3);
            let words: Vec<&str> = sentence.text.split_whitespace().collect();
            let count = ((words.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
            if count > 0 {
                heard.push(words[..count].join(" "));
            }
            break;
        }
        heard.retain(|text| !text.is_empty());
        heard.join(" ")
    }

    /// Everything queued, as text (what the answer would have said).
    pub fn whole(&self) -> String {
        let rest = self.queue.iter().map(|s| s.text.as_str());
        let all = self.played.iter().map(String::as_str).chain(rest);
        all.filter(|text| !text.is_empty()).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bond_store::clock::monotonic;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn sentences_play_back_to_back_and_are_heard_whole_once_played() {
        let t0 = monotonic();
        let mut playout = Playout::default();
        playout.queue(t0, 1, "Hello there.".into(), ms(1000), true);
        playout.queue(t0 + ms(300), 2, "How can I help?".into(), ms(1000), true);
        assert_eq!(playout.until(), Some(t0 + ms(2000)), "the second starts when the first ends");
        playout.advance(t0 + ms(1100));
        assert_eq!(playout.heard(t0 + ms(1100)), "Hello there.", "a tenth of the second: no word yet");
        playout.advance(t0 + ms(2000));
        assert!(playout.is_empty());
        assert_eq!(playout.heard(t0 + ms(2000)), "Hello there. How can I help?");
    }

    #[test]
    fn a_sentence_ready_after_a_gap_starts_when_it_is_handed_over() {
        let t0 = monotonic();
        let mut playout = Playout::default();
        playout.queue(t0, 1, "One.".into(), ms(500), true);
        playout.queue(t0 + ms(800), 2, "Two.".into(), ms(500), true);
        assert_eq!(playout.heard(t0 + ms(790)), "One.", "a gap between them");
        assert_eq!(playout.until(), Some(t0 + ms(1300)));
    }

    #[test]
    fn a_pause_keeps_the_position_and_resume_plays_on_from_it() {
        let t0 = monotonic();
        let mut playout = Playout::default();
        playout.queue(t0, 1, "one two three four".into(), ms(1000), true);
        playout.queue(t0, 2, "Five six.".into(), ms(1000), true);
        playout.pause(t0 + ms(500));
        assert_eq!(playout.heard(t0 + ms(900)), "one two", "half the audio: half the words, paused");
        let again = playout.resume(t0 + ms(1500));
        assert_eq!(again, vec![(1, ms(500)), (2, ms(0))]);
        assert_eq!(playout.until(), Some(t0 + ms(3000)));
        assert_eq!(playout.heard(t0 + ms(2250)), "one two three four Five");
    }

    #[test]
    fn sentences_held_while_paused_wait_for_the_resume() {
        let t0 = monotonic();
        let mut playout = Playout::default();
        playout.queue(t0, 1, "First.".into(), ms(400), true);
        playout.pause(t0 + ms(100));
        playout.hold(2, "Second.".into(), ms(400), true);
        assert_eq!(playout.until(), None);
        assert_eq!(playout.resume(t0 + ms(1000)), vec![(1, ms(100)), (2, ms(0))]);
        assert_eq!(playout.whole(), "First. Second.");
    }

    #[test]
    fn a_streaming_sentence_plays_on_as_its_parts_arrive_and_ends_only_once_complete() {
        let t0 = monotonic();
        let mut playout = Playout::default();
        playout.queue(t0, 1, "one two three four five six seven eight".into(), ms(200), false);
        assert_eq!(playout.until(), None, "its end is not known yet");
        // The next part comes while the first still plays: it follows on at 200 ms.
        assert_eq!(playout.extend(t0 + ms(100), 1, ms(300)), Some(ms(200)));
        // The third comes 100 ms after the audio ran out (at 500 ms): it plays from 600 ms.
        assert_eq!(playout.extend(t0 + ms(600), 1, ms(400)), Some(ms(500)));
        playout.advance(t0 + ms(2000));
        assert!(!playout.is_empty(), "not over before its last part, though all has played");
        playout.complete(1);
        assert_eq!(playout.until(), Some(t0 + ms(1000)), "900 ms of audio and the 100 ms wait between");
        playout.advance(t0 + ms(1000));
        assert!(playout.is_empty());
        assert_eq!(playout.heard(t0 + ms(1000)), "one two three four five six seven eight");
    }

    #[test]
    fn a_streaming_sentence_cut_off_is_heard_in_proportion_to_its_guessed_length() {
        let t0 = monotonic();
        let mut playout = Playout::default();
        // 39 characters: about 2.7 s of speech; 500 ms of it has arrived and 400 ms played.
        let text = "one two three four five six seven eight";
        playout.queue(t0, 1, text.into(), ms(500), false);
        playout.pause(t0 + ms(400));
        assert_eq!(playout.heard(t0 + ms(400)), "one", "a seventh of it, not four fifths");
        // Parts that come while paused wait for the resume, then play on.
        assert_eq!(playout.extend(t0 + ms(500), 1, ms(300)), None);
        assert_eq!(playout.resume(t0 + ms(900)), vec![(1, ms(400))]);
        assert_eq!(playout.extend(t0 + ms(1000), 1, ms(200)), Some(ms(800)));
    }
}
