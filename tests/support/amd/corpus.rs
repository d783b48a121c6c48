//! A labelled corpus of call answers for the answering-machine detector.
//!
//! People answering (briefly, with a business greeting, a question back, over a
//! television), voicemail greetings short and long (with and without beeps),
//! carrier announcements, IVR menus, fax tones, silence and dead air. Speech
//! comes from seven synthesizers (see `synth`), each clip from one speaker; the
//! line adds background sound, noise, hum, a codec and packet loss (see
//! `line`). Everything is drawn from one seed, so a corpus can be rebuilt
//! exactly, but for Piper's phrases: its model draws noise of its own, so they
//! differ a little from run to run, as a person's do.

use std::f64::consts::TAU;
use std::path::Path;

use bond_codecs::level::{rms_for_dbm0, sine_amplitude_for_dbm0};
use bond_codecs::signals::SplitMix64;

pub use super::labels::{labels_csv, parse_labels, ClipInfo, Label, Part};
use super::line::{mix_background, over_line, random_line, Line};
use super::prompts::{make_prompt_clip, CORE_PROMPTS, FRESH_PROMPTS, LATE_PROMPTS};
use super::synth::{
    Speaker, Speaking, Synth, Voices, FRESH_SPEAKERS, LATE_SPEAKERS, RECORDED_SPEAKER, RECORDINGS, SPEAKERS,
};
use super::wording::{pick, Wording, WORDING};
use super::wording_late::LATE_WORDING;

pub const RATE: u32 = 8_000;

const ESPEAK_VOICES: [&str; 8] =
    ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us", "en-gb-x-gbclan", "en"];
const ESPEAK_VARIANTS: [&str; 11] =
    ["", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5"];

pub(super) fn uniform(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.next_f64()
}

pub(super) fn ms(rng: &mut SplitMix64, lo: u32, hi: u32) -> u32 {
    lo + (rng.next_u64() % u64::from(hi - lo + 1)) as u32
}

fn samples_for(ms: u32) -> usize {
    (RATE * ms / 1000) as usize
}

/// The synthesizers, speakers and wordings one part of the corpus draws from.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    synths: &'static [Synth],
    speakers: &'static [Speaker],
    wording: &'static Wording,
    pub(super) part: Part,
}

/// The first part: tuning and held-out speakers.
pub const FIRST: Pool =
    Pool { synths: &Synth::ALL, speakers: &SPEAKERS, wording: &WORDING, part: Part::First };
/// The fresh part, added after tuning, all held out.
pub const FRESH: Pool =
    Pool { synths: &Synth::FRESH, speakers: &FRESH_SPEAKERS, wording: &WORDING, part: Part::Fresh };
/// The late part, added after the fresh part's errors were read: a new
/// synthesizer saying new wordings, all held out.
pub const LATE: Pool =
    Pool { synths: &Synth::LATE, speakers: &LATE_SPEAKERS, wording: &LATE_WORDING, part: Part::Late };

/// A speaker of `pool`: a synthesizer first (each as likely), then one of its voices.
fn speaking(rng: &mut SplitMix64, pool: Pool, held_out: Option<bool>) -> Speaking {
    let choices: Vec<Speaker> = loop {
        let synth = pool.synths[(rng.next_u64() % pool.synths.len() as u64) as usize];
        let voices: Vec<Speaker> = pool
            .speakers
            .iter()
            .filter(|s| s.synth == synth && held_out.is_none_or(|h| s.held_out == h))
            .copied()
            .collect();
        if !voices.is_empty() {
            break voices;
        }
    };
    let speaker = choices[(rng.next_u64() % choices.len() as u64) as usize];
    Speaking {
        speaker,
        espeak_voice: format!("{}{}", pick(rng, &ESPEAK_VOICES), pick(rng, &ESPEAK_VARIANTS)),
        words_per_minute: ms(rng, 130, 210),
        pitch: ms(rng, 20, 80),
        tempo: uniform(rng, 0.85, 1.2),
    }
}

/// Scale `speech` so that its active level is `dbm0`.
pub(super) fn at_level(speech: &[i16], dbm0: f64) -> Vec<f64> {
    let active: Vec<f64> = speech
        .chunks(160)
        .map(|c| c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / c.len() as f64)
        .filter(|&p| p > 1e4)
        .collect();
    let power = if active.is_empty() { 1.0 } else { active.iter().sum::<f64>() / active.len() as f64 };
    let gain = rms_for_dbm0(dbm0) / power.sqrt();
    speech.iter().map(|&s| f64::from(s) * gain).collect()
}

/// A clip under construction: float samples at 8 kHz.
#[derive(Debug, Default)]
pub(super) struct Track {
    pub(super) samples: Vec<f64>,
}

impl Track {
    pub(super) fn now_ms(&self) -> u32 {
        (self.samples.len() as u64 * 1000 / u64::from(RATE)) as u32
    }

    pub(super) fn pause(&mut self, ms: u32) {
        self.samples.resize(self.samples.len() + samples_for(ms), 0.0);
    }

    pub(super) fn add(&mut self, audio: &[f64]) -> u32 {
        self.samples.extend_from_slice(audio);
        self.now_ms()
    }

    fn tone(&mut self, hz: f64, ms: u32, dbm0: f64) {
        let amp = sine_amplitude_for_dbm0(dbm0);
        let start = self.samples.len();
        let n = samples_for(ms);
        // 5 ms ramps, as real beeps have.
        let ramp = samples_for(5) as f64;
        for i in 0..n {
            let env = (i as f64 / ramp).min(1.0).min((n - i) as f64 / ramp);
            self.samples.push(amp * env * (TAU * hz * (start + i) as f64 / f64::from(RATE)).sin());
        }
    }
}

/// A clip's speech, with its speaker recorded in `info`.
fn say(voices: &Voices, how: &Speaking, text: &str, level: f64) -> Result<Vec<f64>, String> {
    Ok(at_level(&voices.say(how, text)?, level))
}

/// Someone (or something) talking behind the callee: a television, another
/// person, 12-25 dB below the callee, for the whole clip.
pub(super) fn background(
    voices: &Voices,
    rng: &mut SplitMix64,
    pool: Pool,
    held_out: bool,
    level: f64,
) -> Result<Vec<f64>, String> {
    let how = speaking(rng, pool, Some(held_out));
    let text = pick(rng, pool.wording.background);
    let mut speech = say(voices, &how, text, level - uniform(rng, 12.0, 25.0))?;
    speech.resize(speech.len() + samples_for(ms(rng, 100, 600)), 0.0);
    Ok(speech)
}

fn clip_rng(seed: u64, index: usize) -> SplitMix64 {
    SplitMix64::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn clip_file(index: usize) -> String {
    format!("clip-{index:04}.wav")
}

/// Build clip number `index` of a corpus drawn from `seed`: the `nth` of
/// `total` clips drawn from `pool`.
pub fn make_clip(
    voices: &Voices,
    seed: u64,
    index: usize,
    (pool, nth, total): (Pool, usize, usize),
) -> Result<(ClipInfo, Vec<i16>), String> {
    let mut rng = clip_rng(seed, index);
    let file = clip_file(index);
    // Shares: 40% people, 46% machines, 6% fax, 8% silence and dead air.
    let share = nth as f64 / total as f64;
    let how = speaking(&mut rng, pool, None);
    let mut info = ClipInfo {
        file,
        label: Label::Human,
        kind: String::new(),
        speaker: how.speaker.name(),
        held_out: how.speaker.held_out,
        part: pool.part,
        line: String::new(),
        first_utterance_end_ms: None,
        beep: None,
    };
    let mut track = Track::default();
    let mut line = random_line(&mut rng, false);
    let mut behind = None;
    let say_as = pool.wording;
    if share < 0.40 {
        let level = uniform(&mut rng, -34.0, -10.0);
        track.pause(ms(&mut rng, 100, 1_500));
        let (first, kind) = match rng.next_u64() % 10 {
            0 | 1 => (pick(&mut rng, say_as.hellos).to_owned(), "human/hello"),
            2 => (pick(&mut rng, say_as.hellos).to_owned(), "human/second-hello"),
            3 | 4 => ((say_as.name_phrase)(&mut rng), "human/name"),
            5 | 6 => ((say_as.business_answer)(&mut rng), "human/business"),
            7 | 8 => ((say_as.question_back)(&mut rng), "human/question"),
            _ => ((say_as.bad_line)(&mut rng), "human/bad-line"),
        };
        if pool.part == Part::First && rng.next_f64() < 0.1 {
            // A real person instead: a recorded phrase, and perhaps another after a wait.
            info.speaker = RECORDED_SPEAKER.to_owned();
            info.held_out = true;
            let phrase = at_level(&voices.recorded(pick(&mut rng, &RECORDINGS))?, level);
            info.first_utterance_end_ms = Some(track.add(&phrase));
            if rng.next_f64() < 0.3 {
                track.pause(ms(&mut rng, 1_000, 2_500));
                track.add(&at_level(&voices.recorded(pick(&mut rng, &RECORDINGS))?, level));
            }
            info.kind = "human/recorded".to_owned();
        } else {
            info.first_utterance_end_ms = Some(track.add(&say(voices, &how, &first, level)?));
            if kind == "human/second-hello" {
                track.pause(ms(&mut rng, 1_000, 2_500));
                track.add(&say(voices, &how, pick(&mut rng, say_as.hellos), level)?);
            }
            info.kind = kind.to_owned();
        }
        track.pause(6_000);
        if rng.next_f64() < 0.25 {
            behind = Some(background(voices, &mut rng, pool, how.speaker.held_out, level)?);
        }
        if rng.next_f64() < 0.3 {
            line.noise_dbm0 = Some(uniform(&mut rng, -62.0, -42.0));
        }
    } else if share < 0.86 {
        info.label = Label::Machine;
        let level = uniform(&mut rng, -30.0, -10.0);
        track.pause(ms(&mut rng, 100, 1_200));
        let (sentences, kind, beeps) = match rng.next_u64() % 10 {
            0 | 1 => ((say_as.carrier_announcement)(&mut rng), "machine/carrier", true),
            2 => ((say_as.ivr_menu)(&mut rng), "machine/ivr", false),
            3 | 4 => ((say_as.short_voicemail)(&mut rng), "machine/short", rng.next_f64() < 0.85),
            _ => ((say_as.greeting_sentences)(&mut rng), "machine/greeting", rng.next_f64() < 0.75),
        };
        for (i, sentence) in sentences.iter().enumerate() {
            if i > 0 {
                track.pause(ms(&mut rng, 80, 700));
            }
            track.add(&say(voices, &how, sentence, level)?);
        }
        info.kind = if beeps {
            track.pause(if kind == "machine/short" {
                ms(&mut rng, 150, 600)
            } else {
                ms(&mut rng, 200, 1_200)
            });
            let hz = if rng.next_f64() < 0.4 { 1_000.0 } else { uniform(&mut rng, 300.0, 2_500.0).round() };
            let len = if rng.next_f64() < 0.2 { ms(&mut rng, 70, 150) } else { ms(&mut rng, 150, 1_500) };
            let start = track.now_ms();
            track.tone(hz, len, uniform(&mut rng, -26.0, -10.0));
            info.beep = Some((start, track.now_ms(), hz));
            format!("{kind}+beep")
        } else {
            kind.to_owned()
        };
        track.pause(4_000);
    } else if share < 0.92 {
        info.label = Label::Fax;
        track.pause(ms(&mut rng, 0, 1_000));
        let level = uniform(&mut rng, -25.0, -10.0);
        info.kind = match rng.next_u64() % 3 {
            0 => {
                for _ in 0..4 {
                    track.tone(1_100.0, 500, level);
                    track.pause(3_000);
                }
                "fax/cng"
            }
            1 => {
                track.tone(2_100.0, ms(&mut rng, 2_600, 4_000), level);
                track.pause(3_000);
                "fax/ced"
            }
            _ => {
                ansam(&mut track, ms(&mut rng, 2_600, 4_000), level);
                track.pause(3_000);
                "fax/ansam"
            }
        }
        .to_owned();
    } else {
        info.label = Label::Silence;
        let kind = match rng.next_u64() % 3 {
            0 => "silence/digital",
            1 => "silence/hiss",
            _ => "silence/hum",
        };
        track.pause(10_000);
        line = random_line(&mut rng, kind != "silence/digital");
        if kind == "silence/digital" {
            line = Line { noise_dbm0: None, hum_dbm0: None, street_dbm0: None, ..line };
        } else if kind == "silence/hum" {
            line.hum_dbm0 = Some(uniform(&mut rng, -45.0, -30.0));
        }
        info.kind = kind.to_owned();
    }
    if matches!(info.label, Label::Fax | Label::Silence) {
        // No speaker: these go to either side of the split as the speakers do.
        info.speaker = "none".to_owned();
    }
    over_the_line(info, track.samples, line, behind, &mut rng)
}

/// The finished clip: `behind` (a television) mixed in, then all of it as
/// heard over `line`, which `info` records.
pub(super) fn over_the_line(
    mut info: ClipInfo,
    mut samples: Vec<f64>,
    line: Line,
    behind: Option<Vec<f64>>,
    rng: &mut SplitMix64,
) -> Result<(ClipInfo, Vec<i16>), String> {
    info.line = line.describe();
    if let Some(behind) = behind {
        mix_background(&mut samples, &behind, rng);
        info.line.push_str("+tv");
    }
    let samples = over_line(samples, line, rng.next_u64())?;
    Ok((info, samples))
}

/// ANSam (V.8): 2100 Hz, amplitude-modulated at 15 Hz (20%), phase reversed every 450 ms.
fn ansam(track: &mut Track, ms: u32, dbm0: f64) {
    let amp = sine_amplitude_for_dbm0(dbm0);
    for i in 0..samples_for(ms) {
        let t = i as f64 / f64::from(RATE);
        let flip = if ((t / 0.45) as u32) % 2 == 1 { -1.0 } else { 1.0 };
        let env = 1.0 + 0.2 * (TAU * 15.0 * t).sin();
        track.samples.push(flip * amp / 1.2 * env * (TAU * 2_100.0 * t).sin());
    }
}

/// Write `count` clips, then a fifth as many more of the recorded prompts
/// (`prompts`), then the fresh part and the late part, each a quarter as many
/// of its synthesized speakers and a tenth as many of its recorded ones; and
/// `labels.csv`, into `dir`, using all cores. Each part comes after the ones
/// before it, so that adding it left the clips before it as they were.
pub fn generate(dir: &Path, seed: u64, count: usize) -> Result<Vec<ClipInfo>, String> {
    let synthesized = count;
    let prompted = count + count / 5;
    let fresh_synthesized = prompted + count / 4;
    let fresh = fresh_synthesized + count / 10;
    let late_synthesized = fresh + count / 4;
    let count = late_synthesized + count / 10;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let voices = Voices::default();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results: Vec<Result<ClipInfo, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let voices = &voices;
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            let (info, samples) = if i < synthesized {
                                make_clip(voices, seed, i, (FIRST, i, synthesized))?
                            } else if i < prompted {
                                make_prompt_clip(voices, &mut clip_rng(seed, i), clip_file(i), CORE_PROMPTS)?
                            } else if i < fresh_synthesized {
                                make_clip(
                                    voices,
                                    seed,
                                    i,
                                    (FRESH, i - prompted, fresh_synthesized - prompted),
                                )?
                            } else if i < fresh {
                                make_prompt_clip(voices, &mut clip_rng(seed, i), clip_file(i), FRESH_PROMPTS)?
                            } else if i < late_synthesized {
                                make_clip(voices, seed, i, (LATE, i - fresh, late_synthesized - fresh))?
                            } else {
                                make_prompt_clip(voices, &mut clip_rng(seed, i), clip_file(i), LATE_PROMPTS)?
                            };
                            write_wav(&dir.join(&info.file), &samples)?;
                            Ok(info)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec![Err("worker panicked".into())]))
            .collect()
    });
    let mut clips = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    clips.sort_by(|a, b| a.file.cmp(&b.file));
    std::fs::write(dir.join("labels.csv"), labels_csv(&clips)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("seed"), format!("{seed}\n")).map_err(|e| e.to_string())?;
    Ok(clips)
}

pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    for &s in samples {
        w.write_sample(s).map_err(|e| e.to_string())?;
    }
    w.finalize().map_err(|e| e.to_string())
}

pub fn read_wav(path: &Path) -> Result<Vec<i16>, String> {
    let reader = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    reader.into_samples::<i16>().collect::<Result<_, _>>().map_err(|e| e.to_string())
}
