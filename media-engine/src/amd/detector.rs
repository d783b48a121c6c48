//! The decision: who answered, and when a machine's greeting ended.
//!
//! People answer, sometimes at length, and then wait; machines talk on. So:
//! - the callee's voice is followed, and speech far below it (a television
//!   behind them) counts as quiet ([`Foreground`]);
//! - words are runs of speech frames separated by `between_words_silence_millis`;
//! - a greeting followed by `after_greeting_silence_millis` of quiet (700 ms more
//!   after a long one, in case a machine goes on) is a person;
//! - more than `greeting_duration_millis` of speech, more than
//!   `maximum_number_of_words` words, or one word longer than
//!   `maximum_word_length_millis`, before such a pause, is a machine;
//! - a beep is a machine; a fax tone (CNG 1100 Hz, CED/ANSam 2100 Hz) is a fax;
//! - nothing said for `initial_silence_millis` is silence; no verdict by
//!   `total_analysis_time_millis` is not sure.
//!
//! While Bond itself is talking to the callee (a prompt, a bridged party), what
//! comes back no louder than what was sent is taken for echo, not for the callee.
//!
//! With a `words_language`, what the greeting says counts too: when a pause of
//! `WORDS_ASK_PAUSE_MS` follows a greeting, the greeting so far is handed out
//! to be transcribed, and a voicemail's, carrier's or menu's phrase in what
//! comes back makes a machine. Words are evidence for a machine only: no
//! answer in time, or no phrase, leaves the verdict to timing.

use std::collections::VecDeque;

use bond_codecs::dtmf::DtmfDetector;
use bond_codecs::AudioFrame;

use super::activity::{Activity, Foreground, FrameLevel, Heard};
use super::echo::EchoGuard;
use super::phrases;
use super::tone::{ToneSegment, ToneTracker};
use super::words::{Words, FRAME_MS};
use super::{AmdConfig, AmdEvent, GreetingEnd, GreetingWatch, Verdict};

/// A frame with this many tonal 5 ms blocks is a tone, not speech.
const TONAL_BLOCKS: u32 = 2;
/// Beeps: steady single tones this long, at these frequencies.
const BEEP_MS: std::ops::RangeInclusive<u32> = 60..=1_600;
const BEEP_HZ: std::ops::RangeInclusive<f64> = 280.0..=2_600.0;
/// Fax calling tone (CNG): 1100 Hz for 0.5 s; answer tone (CED, ANSam): 2100 Hz.
const CNG_HZ: std::ops::RangeInclusive<f64> = 1_060.0..=1_140.0;
const CNG_MS: std::ops::RangeInclusive<u32> = 350..=800;
const CED_HZ: std::ops::RangeInclusive<f64> = 2_060.0..=2_140.0;
const CED_MIN_MS: u32 = 500;
/// Frames of speech history kept to check what surrounds a tone (2.56 s).
const HISTORY_FRAMES: u32 = 128;
/// A beep stands apart from speech: none in the 80 ms before it, none right after it.
/// The tone's edges are known to a block or two, so a margin is left around them.
const BEEP_QUIET_BEFORE_MS: u32 = 80;
const BEEP_EDGE_MARGIN_MS: u32 = 15;
/// How far a beep stands above the audio just before it (dB).
const BEEP_OVER_BACKGROUND_DB: f64 = 10.0;
/// Watching a machine's greeting for its end, a beep may follow the last word
/// closely and be no louder than it (Asterisk's Italian voices beep 35-75 ms
/// after it, or straight out of its soft end): with no speech in the 40 ms
/// before it, rising out of what came before (the frame before it
/// `BEEP_OVER_BACKGROUND_DB` below it), and lasting longer than a vowel held
/// as a tone. A machine already decided, such a beep can hang up no person.
const CLOSE_BEEP_QUIET_BEFORE_MS: u32 = 40;
const CLOSE_BEEP_MIN_MS: u32 = 150;
/// A chime's beep rings on faintly after the tone tracker has lost it: the
/// greeting ends at the first frame no longer this far above the noise floor
/// (dB), and at most this long after the beep was heard (ms).
const RINGING_OVER_FLOOR_DB: f64 = 9.0;
const RINGING_MAX_MS: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Deciding who answered.
    Listening,
    /// A machine: watching for the greeting's end.
    Watching,
    Done,
}

/// A greeting longer than this is long for a person (a business answer, a
/// question back): such a pause may still be a machine between sentences, so
/// the person verdict waits `LONG_GREETING_EXTRA_WAIT_MS` longer for the
/// greeting to go on, or for a beep.
const LONG_GREETING_MS: u32 = 2_000;
const LONG_GREETING_EXTRA_WAIT_MS: u32 = 700;

/// Words: the greeting is handed out once a pause this long follows it, when
/// it has lasted `WORDS_MIN_GREETING_MS` (a bare "hello" holds no phrase),
/// with the audio from `WORDS_PRE_ROLL_FRAMES` before its first word; no more
/// than `WORDS_MAX_MS` of it is kept.
const WORDS_ASK_PAUSE_MS: u32 = 200;
const WORDS_MIN_GREETING_MS: u32 = 600;
const WORDS_PRE_ROLL_FRAMES: usize = 10;
const WORDS_MAX_MS: u32 = 8_000;

/// The quiet after a greeting of `greeting_ms` that makes it a person's.
fn after_greeting_silence(c: AmdConfig, greeting_ms: u32) -> u32 {
    if greeting_ms > LONG_GREETING_MS {
        c.after_greeting_silence_millis + LONG_GREETING_EXTRA_WAIT_MS
    } else {
        c.after_greeting_silence_millis
    }
}

/// Answering-machine detector for one leg. See the module docs.
#[derive(Debug)]
pub struct AmdDetector {
    config: AmdConfig,
    tones: ToneTracker,
    /// Keypresses can pass for a tone; a segment that overlaps one is no beep.
    dtmf: DtmfDetector,
    dtmf_heard_ms: Option<u32>,
    activity: Activity,
    voice: Foreground,
    echo: EchoGuard,
    words: Words,
    /// Which recent frames held speech (a word's fading end aside), and their
    /// levels, by frame number.
    speech_history: [bool; HISTORY_FRAMES as usize],
    level_history: [f64; HISTORY_FRAMES as usize],
    frames: u32,
    /// Time during which the callee could not be heard over Bond; it does not
    /// count toward the initial silence or the analysis time.
    masked_ms: u32,
    phase: Phase,
    events: VecDeque<AmdEvent>,
    words_asked: WordsAsked,
    /// A beep that rings out, heard (its pitch, and when), whose faint end
    /// the greeting's end waits for.
    ringing_beep: Option<(f64, u32)>,
}

/// The greeting's audio kept for a recognizer, and what was asked of it.
#[derive(Debug, Default)]
struct WordsAsked {
    /// From a little before the first word (or the latest frames, before it).
    audio: Vec<i16>,
    /// The end of the greeting last handed out (`Words::last_speech_ms`).
    asked_for: Option<u32>,
    /// The latest greeting handed out and not yet taken.
    wanted: Option<Vec<i16>>,
}

impl AmdDetector {
    pub fn new(config: AmdConfig, rate_hz: u32) -> Self {
        Self {
            config,
            tones: ToneTracker::new(rate_hz),
            dtmf: DtmfDetector::new(rate_hz),
            dtmf_heard_ms: None,
            activity: Activity::new(config.silence_threshold),
            voice: Foreground::default(),
            echo: EchoGuard::default(),
            words: Words::default(),
            speech_history: [false; HISTORY_FRAMES as usize],
            level_history: [0.0; HISTORY_FRAMES as usize],
            frames: 0,
            masked_ms: 0,
            phase: Phase::Listening,
            events: VecDeque::with_capacity(2),
            words_asked: WordsAsked::default(),
            ringing_beep: None,
        }
    }

    /// Detection has finished; nothing more will be reported.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.events.is_empty()
    }

    pub fn poll_event(&mut self) -> Option<AmdEvent> {
        self.events.pop_front()
    }

    /// The greeting so far (samples at the detector's rate) and its language
    /// (`words_language`), to be transcribed and handed back to [`Self::heard_words`].
    pub fn poll_words_wanted(&mut self) -> Option<(Vec<i16>, &'static str)> {
        self.words_asked.wanted.take().zip(self.config.words_language)
    }

    /// What a recognizer heard in a greeting handed out by
    /// [`Self::poll_words_wanted`] (empty if it failed); a machine's phrase in
    /// it decides a machine, if no verdict came yet.
    pub fn heard_words(&mut self, text: &str) {
        let Some(language) = self.config.words_language else { return };
        if self.phase == Phase::Listening && phrases::machine_phrase(text, language).is_some() {
            self.decide(Verdict::Machine, self.frames * FRAME_MS, "a machine's words");
        }
    }

    /// One 20 ms tick: what the callee said, and what Bond sent the callee (if anything).
    pub fn push(&mut self, heard: &AudioFrame, sent: Option<&AudioFrame>) {
        if self.phase == Phase::Done {
            return;
        }
        self.frames += 1;
        let now = self.frames * FRAME_MS;
        self.tones.push(heard.samples());
        self.dtmf.push(heard.samples());
        while self.dtmf.poll_event().is_some() {}
        if self.dtmf.is_active() {
            self.dtmf_heard_ms = Some(now);
        }
        if self.phase == Phase::Listening && self.words.first_onset.is_none() {
            if let Some((hz, ms)) = self.tones.sounding() {
                if CED_HZ.contains(&hz) && ms >= CED_MIN_MS {
                    self.decide(Verdict::Fax, now, "fax answer tone (2100 Hz)");
                }
            }
        }
        let level = FrameLevel::of(heard.samples());
        let sounding = level.power_db >= self.activity.floor_db() + RINGING_OVER_FLOOR_DB;
        self.echo.push(sent.map(|f| FrameLevel::of(f.samples())));
        if self.echo.masks(level, self.activity.floor_db()) {
            self.masked_ms += FRAME_MS;
        } else {
            let tonal = self.tones.tonal_blocks_in_frame() >= TONAL_BLOCKS;
            let speech = self.activity.push(level, tonal);
            // A tone (a beep, or a nasal hummed as one) neither ends the
            // callee's stretch of speech nor starts one: it holds the voice, as
            // it holds the words' clocks.
            let heard = if tonal { Heard::Quiet } else { self.voice.hear(speech, level.power_db) };
            let speech = match heard {
                Heard::NewVoice => {
                    // A voice well above everything before it (a person over their
                    // television): the greeting is theirs, from now.
                    self.words = Words::default();
                    true
                }
                Heard::Foreground | Heard::Fading => true,
                Heard::Background | Heard::Quiet => false,
            };
            // A beep may follow a word's soft end closely (Asterisk's voices
            // beep 40-70 ms after their last word); its level check still
            // tells it from a held vowel.
            self.speech_history[(self.frames % HISTORY_FRAMES) as usize] = speech && heard != Heard::Fading;
            self.level_history[(self.frames % HISTORY_FRAMES) as usize] = level.power_db;
            if self.activity.steadied() {
                self.words.retract_since(now.saturating_sub(Activity::STEADY_MS));
            }
            self.words.push(speech, tonal, now, self.config.between_words_silence_millis);
        }
        while let Some(segment) = self.tones.poll_segment() {
            self.on_tone(segment, now);
        }
        if self.phase == Phase::Listening && self.config.words_language.is_some() {
            self.keep_for_words(heard.samples());
        }
        match self.phase {
            Phase::Listening => self.listen(now),
            Phase::Watching => self.watch(now),
            Phase::Done => {}
        }
        if let Some((hz, heard_at)) = self.ringing_beep {
            if !sounding || now >= heard_at + RINGING_MAX_MS {
                self.end_greeting(GreetingEnd::Beep { hz }, now);
            }
        }
    }

    fn listen(&mut self, now: u32) {
        let c = self.config;
        let w = self.words;
        let heard_ms = now - self.masked_ms;
        if w.first_onset.is_none() {
            if heard_ms >= c.initial_silence_millis {
                self.decide(Verdict::Silence, now, "nothing said");
            }
        } else if w.current_ms() > c.maximum_word_length_millis {
            self.decide(Verdict::Machine, now, "one word too long");
        } else if w.greeting_ms() > c.greeting_duration_millis {
            self.decide(Verdict::Machine, now, "long greeting");
        } else if w.count + u32::from(w.current.is_some()) > c.maximum_number_of_words {
            self.decide(Verdict::Machine, now, "too many words");
        } else if w.current.is_none()
            && w.quiet_ms() >= after_greeting_silence(c, w.greeting_ms())
            && !self.tones.is_busy()
        {
            self.decide(Verdict::Human, now, "greeting, then silence");
        }
        if self.phase == Phase::Listening && heard_ms >= c.total_analysis_time_millis {
            self.decide(Verdict::NotSure, now, "no decision in the analysis time");
        }
    }

    /// Keep the greeting's audio, and hand it out when a pause follows it.
    fn keep_for_words(&mut self, samples: &[i16]) {
        let w = self.words;
        let asked = &mut self.words_asked;
        if w.first_onset.is_none() {
            let keep = WORDS_PRE_ROLL_FRAMES * samples.len();
            let excess = (asked.audio.len() + samples.len()).saturating_sub(keep);
            asked.audio.drain(..excess.min(asked.audio.len()));
        }
        if asked.audio.len() < (WORDS_MAX_MS / FRAME_MS) as usize * samples.len() {
            asked.audio.extend_from_slice(samples);
        }
        let pause = w.current.is_none() && w.quiet_ms() >= WORDS_ASK_PAUSE_MS;
        if pause && w.greeting_ms() >= WORDS_MIN_GREETING_MS && asked.asked_for != Some(w.last_speech_ms) {
            asked.asked_for = Some(w.last_speech_ms);
            asked.wanted = Some(asked.audio.clone());
        }
    }

    fn watch(&mut self, now: u32) {
        let c = self.config;
        if c.watch == GreetingWatch::EndOrBeep
            && self.ringing_beep.is_none()
            && !self.tones.is_busy()
            && self.words.current.is_none()
            && self.words.quiet_ms() >= c.greeting_silence_duration_millis
        {
            self.end_greeting(GreetingEnd::Ended, now);
        } else if now >= c.greeting_total_analysis_time_millis {
            if c.watch == GreetingWatch::EndOrBeep {
                self.end_greeting(GreetingEnd::NotSure, now);
            } else {
                self.phase = Phase::Done;
            }
        }
    }

    fn on_tone(&mut self, tone: ToneSegment, now: u32) {
        // Fax machines do not talk: a fax tone counts only before any speech.
        let before_speech = self.words.first_onset.is_none();
        if self.phase == Phase::Listening
            && before_speech
            && CNG_HZ.contains(&tone.hz)
            && CNG_MS.contains(&tone.duration_ms())
        {
            self.decide(Verdict::Fax, now, "fax calling tone (1100 Hz)");
            return;
        }
        let keypress = self.dtmf_heard_ms.is_some_and(|at| at + 2 * FRAME_MS >= tone.start_ms);
        let beep = tone.steady
            && tone.isolated
            && !keypress
            && self.stands_apart(tone, now)
            && BEEP_MS.contains(&tone.duration_ms())
            && BEEP_HZ.contains(&tone.hz);
        if !beep {
            return;
        }
        if self.phase == Phase::Listening {
            self.decide(Verdict::Machine, now, "beep");
        }
        if self.phase == Phase::Watching {
            if tone.rings_out {
                self.ringing_beep = Some((tone.hz, now));
            } else {
                self.end_greeting(GreetingEnd::Beep { hz: tone.hz }, now);
            }
        }
    }

    /// A beep stands apart: no speech right before or after it, and it is well
    /// above what came just before it (a hum or a held vowel is not). At the end
    /// of a machine's greeting it may also follow the last word closely, as
    /// loud as the word, if it rises out of the frame before it and lasts
    /// (`CLOSE_BEEP_*`).
    fn stands_apart(&self, tone: ToneSegment, now: u32) -> bool {
        let oldest = now.saturating_sub((HISTORY_FRAMES - 1) * FRAME_MS);
        let start = tone.start_ms.saturating_sub(BEEP_EDGE_MARGIN_MS);
        if start < BEEP_QUIET_BEFORE_MS + FRAME_MS {
            // Nothing was heard before it to compare with (a hum from the answer on).
            return false;
        }
        // Frame `n` covers ((n-1)*20, n*20] ms; take the frames wholly inside a range.
        let frames =
            |from: u32, to: u32| (from.max(oldest + FRAME_MS).div_ceil(FRAME_MS) + 1)..=(to / FRAME_MS);
        let slot = |n: u32| (n % HISTORY_FRAMES) as usize;
        let spoke_in =
            |mut frames: std::ops::RangeInclusive<u32>| frames.any(|n| self.speech_history[slot(n)]);
        if spoke_in(frames(tone.end_ms + BEEP_EDGE_MARGIN_MS, now)) {
            return false;
        }
        let before = frames(start.saturating_sub(BEEP_QUIET_BEFORE_MS), start);
        let louder_before = before.clone().map(|n| self.level_history[slot(n)]).fold(0.0, f64::max);
        if !spoke_in(before) && tone.level_db >= louder_before + BEEP_OVER_BACKGROUND_DB {
            return true;
        }
        // Frame `start / FRAME_MS` is the last wholly before the tone.
        self.phase == Phase::Watching
            && tone.duration_ms() >= CLOSE_BEEP_MIN_MS
            && !spoke_in(frames(start.saturating_sub(CLOSE_BEEP_QUIET_BEFORE_MS), start))
            && self.level_history[slot(start / FRAME_MS)] <= tone.level_db - BEEP_OVER_BACKGROUND_DB
    }

    fn decide(&mut self, verdict: Verdict, now: u32, reason: &'static str) {
        self.events.push_back(AmdEvent::Detection { verdict, at_millis: now, reason });
        self.phase = if verdict == Verdict::Machine && self.config.watch != GreetingWatch::None {
            Phase::Watching
        } else {
            Phase::Done
        };
        self.words_asked = WordsAsked::default();
    }

    fn end_greeting(&mut self, end: GreetingEnd, now: u32) {
        self.events.push_back(AmdEvent::GreetingEnded { end, at_millis: now });
        self.ringing_beep = None;
        self.phase = Phase::Done;
    }
}

#[cfg(test)]
#[path = "detector_tests.rs"]
mod tests;
