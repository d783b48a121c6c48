//! Words and the greeting: runs of speech frames separated by pauses.

pub(super) const FRAME_MS: u32 = 20;
/// Speech frames in a row that make a word (60 ms; clicks are shorter).
const MIN_WORD_FRAMES: u32 = 3;

/// Words heard so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Words {
    pub(super) count: u32,
    /// End of the latest speech frame of a word, and the latest word's start.
    pub(super) last_speech_ms: u32,
    pub(super) latest_start: u32,
    /// The word being spoken: its start, and the end of its latest speech frame.
    pub(super) current: Option<(u32, u32)>,
    pub(super) first_onset: Option<u32>,
    pub(super) speech_run: u32,
    /// Quiet frames since the last word ended (or since the start).
    pub(super) quiet_run: u32,
}

impl Words {
    /// Account for one frame ending at `end_ms`.
    pub(super) fn push(&mut self, speech: bool, tonal: bool, end_ms: u32, between_words_ms: u32) {
        if tonal {
            // A tone is neither speech nor silence: it holds both clocks.
            return;
        }
        if speech {
            self.speech_run += 1;
            if self.current.is_none() && self.speech_run >= MIN_WORD_FRAMES {
                let start = end_ms - self.speech_run * FRAME_MS;
                self.current = Some((start, end_ms));
                self.latest_start = start;
                self.first_onset.get_or_insert(start);
            }
            if let Some((_, last)) = self.current.as_mut() {
                *last = end_ms;
                self.last_speech_ms = end_ms;
                self.quiet_run = 0;
            }
        } else {
            self.speech_run = 0;
            self.quiet_run += 1;
            if self.current.is_some() && self.quiet_run * FRAME_MS >= between_words_ms {
                self.count += 1;
                self.current = None;
            }
        }
    }

    /// Words that began at or after `since_ms` were steady noise: forget them.
    pub(super) fn retract_since(&mut self, since_ms: u32) {
        if self.current.is_some_and(|(start, _)| start >= since_ms) {
            self.current = None;
            self.speech_run = 0;
        } else if self.current.is_none() && self.count > 0 && self.latest_start >= since_ms {
            self.count -= 1;
        } else {
            return;
        }
        if self.count == 0 && self.current.is_none() {
            self.first_onset = None;
        }
    }

    pub(super) fn current_ms(&self) -> u32 {
        self.current.map_or(0, |(start, last)| last - start)
    }

    /// From the first word's start to the latest speech.
    pub(super) fn greeting_ms(&self) -> u32 {
        self.first_onset.map_or(0, |onset| self.last_speech_ms - onset)
    }

    pub(super) fn quiet_ms(&self) -> u32 {
        self.quiet_run * FRAME_MS
    }
}
