//! Speech activity per 20 ms frame, against a noise floor that follows the line.
//!
//! A frame is speech when it stands well above the floor *and* above an absolute
//! threshold. The floor falls at once to a quieter frame and rises slowly (about
//! 5 dB/s), so steady hiss or hum of any level becomes the floor within a second
//! or two while a word (which lasts well under a second) cannot drag it up. A level
//! that holds steady for half a second (hum, hiss; speech never does) becomes the floor at once.

/// How far above the floor speech must be (dB).
const SPEECH_OVER_FLOOR_DB: f64 = 9.0;
/// How fast the floor climbs toward louder frames (dB per 20 ms frame).
const FLOOR_RISE_DB: f64 = 0.1;
/// How fast it falls toward quieter frames (share of the distance per frame).
const FLOOR_FALL: f64 = 0.5;
/// The first frame sets the floor, but no higher than about -40 dBm0: louder than
/// that is a callee already talking, not line noise.
const FLOOR_START_MAX_DB: f64 = 44.0;
/// Frames of steady level that make the floor jump to them, and how steady (dB).
const STEADY_FRAMES: usize = 25;
const STEADY_SPREAD_DB: f64 = 3.0;
/// Frames of digital silence a steady stretch may hold (lost packets).
const MAX_LOST_FRAMES: usize = 3;
/// The floor never drops below this (digital silence would make any click speech).
const FLOOR_MIN_DB: f64 = 10.0;

/// One frame's measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameLevel {
    /// Mean power, in dB over one unit squared on the 16-bit scale.
    pub power_db: f64,
    /// Mean absolute sample value (Asterisk's `silenceThreshold` scale).
    pub mean_abs: f64,
}

impl FrameLevel {
    pub fn of(samples: &[i16]) -> Self {
        if samples.is_empty() {
            return Self { power_db: 0.0, mean_abs: 0.0 };
        }
        let (mut power, mut abs) = (0.0_f64, 0.0_f64);
        for &s in samples {
            let s = f64::from(s);
            power += s * s;
            abs += s.abs();
        }
        let n = samples.len() as f64;
        Self { power_db: 10.0 * (power / n).max(1.0).log10(), mean_abs: abs / n }
    }
}

/// Speech / not-speech per frame, with an adaptive noise floor.
#[derive(Debug, Clone)]
pub struct Activity {
    floor_db: Option<f64>,
    recent_db: [f64; STEADY_FRAMES],
    frames: usize,
    /// The floor jumped to a steady level on the latest frame.
    steadied: bool,
    /// Mean absolute amplitude under which a frame is never speech.
    silence_threshold: f64,
}

impl Activity {
    pub fn new(silence_threshold: u16) -> Self {
        Self {
            floor_db: None,
            recent_db: [0.0; STEADY_FRAMES],
            frames: 0,
            steadied: false,
            silence_threshold: f64::from(silence_threshold),
        }
    }

    /// The current noise floor (dB, same scale as [`FrameLevel::power_db`]).
    pub fn floor_db(&self) -> f64 {
        self.floor_db.unwrap_or(FLOOR_MIN_DB)
    }

    /// The latest frame showed the last half second to be steady noise, not speech:
    /// what was taken for speech in it was not.
    pub fn steadied(&self) -> bool {
        self.steadied
    }

    /// How long the steadiness check looks back (ms).
    pub const STEADY_MS: u32 = STEADY_FRAMES as u32 * 20;

    /// Classify a frame and update the floor. `tonal` frames (a beep) are not speech.
    pub fn push(&mut self, level: FrameLevel, tonal: bool) -> bool {
        self.recent_db[self.frames % STEADY_FRAMES] = level.power_db;
        self.frames += 1;
        let mut floor = *self.floor_db.get_or_insert(level.power_db.clamp(FLOOR_MIN_DB, FLOOR_START_MAX_DB));
        if self.frames >= STEADY_FRAMES {
            // Frames of digital silence (lost packets played as silence) do not
            // break a steady stretch.
            let heard = self.recent_db.iter().copied().filter(|&db| db > FLOOR_MIN_DB);
            let lo = heard.clone().fold(f64::INFINITY, f64::min);
            let hi = heard.clone().fold(f64::NEG_INFINITY, f64::max);
            let enough = heard.count() + MAX_LOST_FRAMES >= STEADY_FRAMES;
            self.steadied = enough && hi - lo <= STEADY_SPREAD_DB && lo > floor;
            if self.steadied {
                floor = lo;
            }
        }
        let speech = !tonal
            && level.mean_abs >= self.silence_threshold
            && level.power_db >= floor + SPEECH_OVER_FLOOR_DB;
        let next = if level.power_db < floor {
            floor + (level.power_db - floor) * FLOOR_FALL
        } else {
            floor + (level.power_db - floor).min(FLOOR_RISE_DB)
        };
        self.floor_db = Some(next.max(FLOOR_MIN_DB));
        speech
    }
}

/// Speech this far below the loudest speech heard is someone else: a television
/// or people in the room behind the callee (dB), once quieter speech was heard
/// before the loudest (someone was already talking when the callee spoke up).
const BACKGROUND_BELOW_DB: f64 = 14.0;
/// Otherwise the loudest speech came first, and what follows it may be the same
/// voice gone quieter (a machine's later sentences after a loud "Hi!"): only
/// speech this far below is taken for a voice behind (dB).
const QUIETER_LATER_BELOW_DB: f64 = 16.0;
/// A stretch of speech this much louder than every stretch before it shows that
/// quieter speech came first (dB).
const LOUDER_THAN_BEFORE_DB: f64 = 3.0;
/// Speech this far above the loudest heard before is a new, nearer voice (dB).
const NEW_VOICE_ABOVE_DB: f64 = 10.0;
/// Speech this close to the loudest is surely the callee (dB), and the next
/// `FADING_FRAMES` speech frames of the same stretch are theirs too however
/// soft: a syllable's fading end or a nasal after a vowel falls 20 dB or more
/// within a word, but it follows the vowel without a break.
const SURELY_CALLEE_DB: f64 = 10.0;
const FADING_FRAMES: u8 = 3;

/// What a speech frame is, against the loudest voice heard so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Quiet,
    /// Speech from the voice the detector is following.
    Foreground,
    /// The soft end of one of its words: part of the greeting, but not speech
    /// a beep must stand apart from.
    Fading,
    /// Speech well below it: someone behind the callee.
    Background,
    /// Speech well above anything before: the callee, over what was heard so far.
    NewVoice,
}

/// Tells the callee's voice from voices behind them by level: the callee is
/// near the microphone, a television or a room is not. How far below counts as
/// behind depends on what came first: a voice that was talking before the
/// callee spoke up is behind them from 14 dB below, while speech that only
/// follows the loudest may be the same voice gone quieter, and is behind from
/// 16 dB. A word's soft end is not a voice behind: the few frames that follow
/// a frame near the loudest without a break stay the callee's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Foreground {
    /// The loudest speech frame so far (dB, as [`FrameLevel::power_db`]).
    peak_db: Option<f64>,
    /// The loudest frame of the stretches of speech before the current one (a
    /// stretch ends at a quiet frame): `peak_db` as it stood at the last quiet frame.
    before_db: Option<f64>,
    /// Some stretch rose above all before it: quieter speech was heard first.
    quieter_first: bool,
    /// Soft frames of this stretch still taken for the callee's after their
    /// latest sure frame.
    fading_left: u8,
}

impl Foreground {
    pub fn hear(&mut self, speech: bool, power_db: f64) -> Heard {
        if !speech {
            self.before_db = self.peak_db;
            self.fading_left = 0;
            return Heard::Quiet;
        }
        if self.before_db.is_some_and(|before| power_db >= before + LOUDER_THAN_BEFORE_DB) {
            self.quieter_first = true;
        }
        let background_below = if self.quieter_first { BACKGROUND_BELOW_DB } else { QUIETER_LATER_BELOW_DB };
        if self.peak_db.is_none_or(|peak| power_db >= peak - SURELY_CALLEE_DB) {
            self.fading_left = FADING_FRAMES;
        }
        match self.peak_db {
            None => {
                self.peak_db = Some(power_db);
                Heard::Foreground
            }
            Some(peak) if power_db >= peak + NEW_VOICE_ABOVE_DB => {
                self.peak_db = Some(power_db);
                Heard::NewVoice
            }
            Some(peak) => {
                self.peak_db = Some(peak.max(power_db));
                if power_db >= peak - background_below {
                    Heard::Foreground
                } else if self.fading_left > 0 {
                    self.fading_left -= 1;
                    Heard::Fading
                } else {
                    Heard::Background
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bond_codecs::level::rms_for_dbm0;
    use bond_codecs::signals::white_noise;

    use super::*;

    fn run(activity: &mut Activity, samples: &[i16]) -> Vec<bool> {
        samples.chunks(160).map(|f| activity.push(FrameLevel::of(f), false)).collect()
    }

    #[test]
    fn a_voice_gone_quieter_after_its_loudest_word_is_still_the_callee() {
        let mut voice = Foreground::default();
        assert_eq!(voice.hear(true, -10.0), Heard::Foreground);
        assert_eq!(voice.hear(false, -70.0), Heard::Quiet);
        assert_eq!(voice.hear(true, -25.0), Heard::Foreground);
        assert_eq!(voice.hear(true, -27.0), Heard::Background);
    }

    #[test]
    fn the_fading_end_of_the_callees_word_is_theirs_but_not_what_follows_it() {
        let mut voice = Foreground::default();
        assert_eq!(voice.hear(true, -10.0), Heard::Foreground);
        for _ in 0..FADING_FRAMES {
            assert_eq!(voice.hear(true, -35.0), Heard::Fading);
        }
        assert_eq!(voice.hear(true, -35.0), Heard::Background);
        // A stretch that starts soft is not the callee's fading word.
        assert_eq!(voice.hear(false, -70.0), Heard::Quiet);
        assert_eq!(voice.hear(true, -35.0), Heard::Background);
    }

    #[test]
    fn quieter_speech_heard_before_the_callee_is_behind_them_from_14_db() {
        let mut voice = Foreground::default();
        assert_eq!(voice.hear(true, -28.0), Heard::Foreground);
        assert_eq!(voice.hear(false, -70.0), Heard::Quiet);
        assert_eq!(voice.hear(true, -10.0), Heard::NewVoice);
        assert_eq!(voice.hear(false, -70.0), Heard::Quiet);
        assert_eq!(voice.hear(true, -25.0), Heard::Background);
    }

    #[test]
    fn steady_noise_of_any_level_becomes_the_floor() {
        for dbm0 in [-60.0, -45.0, -30.0] {
            let mut activity = Activity::new(64);
            let frames = run(&mut activity, &white_noise(7, 8_000 * 5, rms_for_dbm0(dbm0)));
            let late_speech = frames[50..].iter().filter(|&&s| s).count();
            assert_eq!(late_speech, 0, "noise at {dbm0} dBm0 counted as speech");
        }
    }

    #[test]
    fn hiss_with_lost_packets_played_as_silence_still_becomes_the_floor() {
        let mut samples = white_noise(5, 8_000 * 5, rms_for_dbm0(-35.0));
        // One packet in 25 lost, played as 20 ms of digital silence.
        for frame in samples.chunks_mut(160).step_by(25) {
            frame.fill(0);
        }
        let frames = run(&mut Activity::new(64), &samples);
        let late_speech = frames[75..].iter().filter(|&&s| s).count();
        assert_eq!(late_speech, 0, "hiss broken by lost packets counted as speech");
    }

    #[test]
    fn a_loud_burst_over_noise_is_speech_and_a_quiet_one_under_the_threshold_is_not() {
        let mut activity = Activity::new(128);
        let mut samples = white_noise(1, 8_000, rms_for_dbm0(-55.0));
        samples.extend(white_noise(2, 1_600, rms_for_dbm0(-20.0)));
        let frames = run(&mut activity, &samples);
        assert!(frames[50..].iter().all(|&s| s), "{frames:?}");
        // Held for half a second, the same burst is hiss: it becomes the floor.
        samples.extend(white_noise(3, 8_000, rms_for_dbm0(-20.0)));
        let frames = run(&mut Activity::new(128), &samples);
        assert!(!frames[100..].iter().any(|&s| s), "{frames:?}");
        let mut activity = Activity::new(2_000);
        assert!(!run(&mut activity, &samples)[50..].iter().any(|&s| s));
    }
}
