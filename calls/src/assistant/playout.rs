//! The agent's answer as the caller hears it: its sentences' audio queued on
//! the call one after another, as a timeline. Each sentence starts when the
//! one before it ends (or when its audio is ready, if later), so at any time
//! the timeline tells what has been played: when the caller cuts in, the
//! sentence playing is paused at a known point, and the words heard so far
//! (whole sentences, then the share of the cut one's words that had played)
//! are what goes into the conversation. Pure, clock-free: times are handed in.

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
}

impl Sentence {
    fn end(&self) -> Option<Instant> {
        self.start.map(|s| s + self.length.saturating_sub(self.from))
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
    /// A sentence's audio was handed to the call at `now`; it plays after those
    /// queued, from the time returned.
    pub fn queue(&mut self, now: Instant, id: u64, text: String, length: Duration) -> Instant {
        let start = self.until.filter(|u| *u > now).unwrap_or(now);
        self.until = Some(start + length);
        self.queue.push_back(Sentence { id, text, length, from: Duration::ZERO, start: Some(start) });
        start
    }

    /// Add a sentence that waits for [`resume`](Self::resume) (the audio is paused).
    pub fn hold(&mut self, id: u64, text: String, length: Duration) {
        self.queue.push_back(Sentence { id, text, length, from: Duration::ZERO, start: None });
    }

    /// Move the sentences that finished by `now` to the played ones.
    pub fn advance(&mut self, now: Instant) {
        while let Some(first) = self.queue.front() {
            match first.end() {
                Some(end) if end <= now => {
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

    /// When the queued audio ends (`None` while paused or empty).
    pub fn until(&self) -> Option<Instant> {
        if self.queue.iter().any(|s| s.start.is_none()) {
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
            if sentence.end().is_some_and(|end| end <= now) {
                heard.push(sentence.text.clone());
                continue;
            }
            let position = match sentence.start {
                Some(start) if start < now => sentence.from + (now - start),
                _ => sentence.from,
            };
            let share = position.as_secs_f64() / sentence.length.as_secs_f64().max(1e-3);
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
        playout.queue(t0, 1, "Hello there.".into(), ms(1000));
        playout.queue(t0 + ms(300), 2, "How can I help?".into(), ms(1000));
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
        playout.queue(t0, 1, "One.".into(), ms(500));
        playout.queue(t0 + ms(800), 2, "Two.".into(), ms(500));
        assert_eq!(playout.heard(t0 + ms(790)), "One.", "a gap between them");
        assert_eq!(playout.until(), Some(t0 + ms(1300)));
    }

    #[test]
    fn a_pause_keeps_the_position_and_resume_plays_on_from_it() {
        let t0 = monotonic();
        let mut playout = Playout::default();
        playout.queue(t0, 1, "one two three four".into(), ms(1000));
        playout.queue(t0, 2, "Five six.".into(), ms(1000));
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
        playout.queue(t0, 1, "First.".into(), ms(400));
        playout.pause(t0 + ms(100));
        playout.hold(2, "Second.".into(), ms(400));
        assert_eq!(playout.until(), None);
        assert_eq!(playout.resume(t0 + ms(1000)), vec![(1, ms(100)), (2, ms(0))]);
        assert_eq!(playout.whole(), "First. Second.");
    }
}
