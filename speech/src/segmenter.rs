//! Cuts one speaker's audio into utterances for a segment-at-a-time speech
//! recognizer: a frame is speech when it stands 12 dB over an adaptive noise
//! floor (and above -50 dBFS); an utterance starts after 60 ms of speech, takes
//! 200 ms of audio from before it along, and ends after 600 ms of quiet or at
//! 15 s. While speech goes on, every second of it can be had so far (interim
//! results). Pure and clock-free: time is the count of 20 ms frames fed in.

use bond_codecs::level::rms_dbfs;

/// Frames of speech that start an utterance.
const ONSET_FRAMES: u32 = 3;
/// Frames of quiet that end one.
const HANGOVER_FRAMES: u32 = 30;
/// Frames of audio before the onset kept in front of an utterance.
const PRE_ROLL_FRAMES: usize = 10;
/// Longest utterance, in frames (15 s): longer speech is cut there.
const MAX_FRAMES: usize = 750;
/// Below this a frame is never speech, however quiet the line.
const ABSOLUTE_FLOOR_DBFS: f64 = -50.0;
/// How far above the noise floor speech stands.
const MARGIN_DB: f64 = 12.0;
/// Noise floor: follows quieter frames at once, louder ones slowly (per frame).
const FLOOR_RISE_DB: f64 = 0.05;
const FRAME_MS: u64 = 20;
/// How long speech lasts before [`SegmentEvent::Started`] says so.
pub const ONSET_MS: u64 = ONSET_FRAMES as u64 * FRAME_MS;
/// Frames between two interim snapshots of an utterance (1 s).
const PARTIAL_EVERY_FRAMES: usize = 50;

/// What feeding a frame produced.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentEvent {
    /// Speech began (the utterance's first frame, in ms since the first frame fed).
    Started { start_ms: u64 },
    /// An utterance ended: its samples (at the rate fed) and where it lies in time.
    Utterance(Utterance),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub samples: Vec<i16>,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug)]
pub struct Segmenter {
    frames_fed: u64,
    floor_db: f64,
    /// Recent frames while nobody speaks (the pre-roll), oldest first.
    recent: std::collections::VecDeque<Vec<i16>>,
    /// The utterance being collected, once speech started.
    current: Option<Current>,
    /// Consecutive speech frames before an utterance starts.
    onset: u32,
}

#[derive(Debug)]
struct Current {
    samples: Vec<i16>,
    start_ms: u64,
    frames: usize,
    quiet: u32,
}

impl Default for Segmenter {
    fn default() -> Self {
        Self {
            frames_fed: 0,
            floor_db: ABSOLUTE_FLOOR_DBFS,
            recent: std::collections::VecDeque::with_capacity(PRE_ROLL_FRAMES + 1),
            current: None,
            onset: 0,
        }
    }
}

impl Segmenter {
    /// Feed one 20 ms frame.
    pub fn push(&mut self, frame: &[i16]) -> Option<SegmentEvent> {
        let now_ms = self.frames_fed * FRAME_MS;
        self.frames_fed += 1;
        let level = rms_dbfs(frame);
        let speech = level > ABSOLUTE_FLOOR_DBFS && level > self.floor_db + MARGIN_DB;
        if !speech {
            self.floor_db =
                if level < self.floor_db { level.max(-100.0) } else { self.floor_db + FLOOR_RISE_DB };
        }
        match &mut self.current {
            Some(current) => {
                current.samples.extend_from_slice(frame);
                current.frames += 1;
                current.quiet = if speech { 0 } else { current.quiet + 1 };
                if current.quiet >= HANGOVER_FRAMES || current.frames >= MAX_FRAMES {
                    return self.finish(now_ms + FRAME_MS);
                }
                None
            }
            None => {
                self.recent.push_back(frame.to_vec());
                if self.recent.len() > PRE_ROLL_FRAMES {
                    self.recent.pop_front();
                }
                self.onset = if speech { self.onset + 1 } else { 0 };
                if self.onset < ONSET_FRAMES {
                    return None;
                }
                self.onset = 0;
                let frames = self.recent.len();
                let samples: Vec<i16> = self.recent.drain(..).flatten().collect();
                let start_ms = (now_ms + FRAME_MS).saturating_sub(frames as u64 * FRAME_MS);
                self.current = Some(Current { samples, start_ms, frames, quiet: 0 });
                Some(SegmentEvent::Started { start_ms })
            }
        }
    }

    /// The utterance so far, when the frame just fed completed another second
    /// of it and the speaker is still talking (for an interim result).
    pub fn partial_due(&self) -> Option<Utterance> {
        let current =
            self.current.as_ref().filter(|c| c.quiet == 0 && c.frames % PARTIAL_EVERY_FRAMES == 0)?;
        let end_ms = self.frames_fed * FRAME_MS;
        Some(Utterance { samples: current.samples.clone(), start_ms: current.start_ms, end_ms })
    }

    /// The utterance so far, its trailing quiet left off, when the frame just
    /// fed made `frames` (fewer than the 30 that end it) of quiet after
    /// speech: an early look at what [`SegmentEvent::Utterance`] will hold if
    /// no more speech comes before it ends (same samples, same `end_ms`).
    pub fn pause_due(&self, frames: u32) -> Option<Utterance> {
        let current = self.current.as_ref().filter(|c| c.quiet == frames && frames < HANGOVER_FRAMES)?;
        let samples = current.samples[..spoken(current)].to_vec();
        let end_ms = (self.frames_fed - u64::from(current.quiet)) * FRAME_MS;
        Some(Utterance { samples, start_ms: current.start_ms, end_ms })
    }

    /// Audio fed so far, in ms.
    pub fn elapsed_ms(&self) -> u64 {
        self.frames_fed * FRAME_MS
    }

    /// The speaker stopped (the stream ended): what was being said, if anything.
    pub fn flush(&mut self) -> Option<SegmentEvent> {
        let end_ms = self.frames_fed * FRAME_MS;
        self.finish(end_ms)
    }

    fn finish(&mut self, end_ms: u64) -> Option<SegmentEvent> {
        let current = self.current.take()?;
        let spoken = spoken(&current);
        let mut samples = current.samples;
        samples.truncate(spoken);
        let end_ms = end_ms - u64::from(current.quiet) * FRAME_MS;
        Some(SegmentEvent::Utterance(Utterance { samples, start_ms: current.start_ms, end_ms }))
    }
}

/// How many of `current`'s samples were said: the trailing quiet is not.
fn spoken(current: &Current) -> usize {
    let quiet_samples = current.samples.len() / current.frames * current.quiet as usize;
    current.samples.len() - quiet_samples.min(current.samples.len())
}

#[cfg(test)]
mod tests {
    use bond_codecs::level::sine_amplitude_for_dbm0;

    use super::*;

    const N: usize = 160;

    fn tone(frames: usize, dbm0: f64) -> Vec<Vec<i16>> {
        let amplitude = sine_amplitude_for_dbm0(dbm0);
        (0..frames)
            .map(|f| {
                (0..N)
                    .map(|i| {
                        let t = (f * N + i) as f64 / 8000.0;
                        (amplitude * (2.0 * std::f64::consts::PI * 300.0 * t).sin()) as i16
                    })
                    .collect()
            })
            .collect()
    }

    fn quiet(frames: usize) -> Vec<Vec<i16>> {
        (0..frames).map(|f| (0..N).map(|i| ((f * 7 + i * 13) % 9) as i16 - 4).collect()).collect()
    }

    fn feed(segmenter: &mut Segmenter, frames: &[Vec<i16>]) -> Vec<SegmentEvent> {
        frames.iter().filter_map(|f| segmenter.push(f)).collect()
    }

    #[test]
    fn speech_between_quiet_stretches_is_one_utterance_with_its_times() {
        let mut s = Segmenter::default();
        let mut events = feed(&mut s, &quiet(50));
        events.extend(feed(&mut s, &tone(100, -20.0)));
        events.extend(feed(&mut s, &quiet(40)));
        let [SegmentEvent::Started { start_ms }, SegmentEvent::Utterance(u)] = events.as_slice() else {
            panic!("{events:?}")
        };
        // Speech began at frame 50 (1,000 ms); the utterance keeps 200 ms before its onset.
        assert!((800..=1000).contains(start_ms), "{start_ms}");
        assert_eq!(u.start_ms, *start_ms);
        assert!((2980..=3060).contains(&u.end_ms), "speech ended at 3,000 ms: {}", u.end_ms);
        assert_eq!(u.samples.len() as u64, (u.end_ms - u.start_ms) * 8);
    }

    #[test]
    fn a_short_pause_inside_a_sentence_does_not_split_it() {
        let mut s = Segmenter::default();
        let mut frames = quiet(20);
        frames.extend(tone(40, -20.0));
        frames.extend(quiet(15));
        frames.extend(tone(40, -20.0));
        frames.extend(quiet(40));
        let utterances =
            feed(&mut s, &frames).into_iter().filter(|e| matches!(e, SegmentEvent::Utterance(_)));
        assert_eq!(utterances.count(), 1);
    }

    #[test]
    fn steady_line_noise_and_a_click_are_not_speech() {
        let mut s = Segmenter::default();
        let mut frames = quiet(50);
        frames.extend(tone(2, -10.0));
        frames.extend(quiet(50));
        assert_eq!(feed(&mut s, &frames), vec![]);
        let mut s = Segmenter::default();
        assert_eq!(feed(&mut s, &tone(10, -60.0)), vec![], "below -50 dBFS");
    }

    #[test]
    fn a_long_utterance_can_be_had_so_far_every_second_while_speech_goes_on() {
        let mut s = Segmenter::default();
        let mut partials = Vec::new();
        for frame in quiet(20).iter().chain(&tone(160, -20.0)).chain(&quiet(40)) {
            s.push(frame);
            partials.extend(s.partial_due());
        }
        // Speech from 400 ms; the utterance starts at the onset (460 ms) less 200 ms of pre-roll.
        let ends: Vec<u64> = partials.iter().map(|p| p.end_ms).collect();
        assert_eq!(ends, vec![1260, 2260, 3260], "one a second while speaking, none in the quiet after");
        assert!(partials.iter().all(|p| p.start_ms == 260 && p.samples.len() as u64 == (p.end_ms - 260) * 8));
    }

    #[test]
    fn an_early_look_at_a_pause_is_the_utterance_that_ends_there_unless_speech_resumes() {
        let mut s = Segmenter::default();
        let (mut early, mut ended) = (Vec::new(), Vec::new());
        // A pause of 15 frames (too short to end it), then the end.
        let frames = quiet(20).into_iter().chain(tone(40, -20.0)).chain(quiet(15)).chain(tone(40, -20.0));
        for frame in frames.chain(quiet(40)) {
            if let Some(SegmentEvent::Utterance(u)) = s.push(&frame) {
                ended.push(u);
            }
            early.extend(s.pause_due(12));
        }
        assert_eq!(ended.len(), 1);
        assert_eq!(early.len(), 2, "one look in the short pause, one before the end");
        assert_eq!(early[1], ended[0], "the same samples and times, 360 ms sooner");
        assert!(early[0].end_ms < ended[0].end_ms, "speech came after the first look");
        assert_eq!(s.pause_due(30), None, "30 frames end the utterance: no look then");
    }

    #[test]
    fn endless_speech_is_cut_at_fifteen_seconds_and_the_rest_flushed_at_the_end() {
        let mut s = Segmenter::default();
        let events = feed(&mut s, &tone(1000, -20.0));
        let cut: Vec<_> = events.iter().filter(|e| matches!(e, SegmentEvent::Utterance(_))).collect();
        assert_eq!(cut.len(), 1);
        let SegmentEvent::Utterance(first) = cut[0] else { unreachable!() };
        assert_eq!(first.end_ms - first.start_ms, 15_000);
        // The rest starts again after the onset and ends with the stream.
        let Some(SegmentEvent::Utterance(rest)) = s.flush() else { panic!("no rest") };
        assert_eq!(rest.end_ms, 20_000);
        assert!(rest.start_ms >= first.end_ms);
        assert_eq!(s.flush(), None);
    }
}
