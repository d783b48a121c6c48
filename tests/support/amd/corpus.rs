//! A labelled corpus of call answers for the answering-machine detector.
//!
//! People answering, voicemail greetings (with and without beeps), carrier
//! announcements, IVR menus, fax tones, silence and dead air. Speech comes from
//! espeak-ng (run as a program) in many voices, speeds and pitches, band-passed
//! and resampled to 8 kHz by sox; then levels, line noise, hum and G.711 coding
//! vary per clip. Everything is drawn from one seed, so a corpus can be rebuilt
//! exactly.

use std::collections::HashMap;
use std::f64::consts::TAU;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use bond_codecs::g711;
use bond_codecs::level::{rms_for_dbm0, sine_amplitude_for_dbm0};
use bond_codecs::signals::SplitMix64;

pub use super::labels::{labels_csv, parse_labels, ClipInfo, Label};

pub const RATE: u32 = 8_000;

/// Speech synthesis through espeak-ng and sox, cached per phrase.
#[derive(Debug, Default)]
pub struct Voice {
    cache: Mutex<HashMap<String, Vec<i16>>>,
}

/// How one phrase is spoken.
#[derive(Debug, Clone)]
pub struct Speaking {
    pub voice: String,
    pub words_per_minute: u32,
    pub pitch: u32,
}

impl Voice {
    /// `text` spoken at 8 kHz, telephone band, silence trimmed from both ends.
    pub fn say(&self, how: &Speaking, text: &str) -> Result<Vec<i16>, String> {
        let key = format!("{}|{}|{}|{text}", how.voice, how.words_per_minute, how.pitch);
        if let Some(hit) = self.cache.lock().map_err(|e| e.to_string())?.get(&key) {
            return Ok(hit.clone());
        }
        let wav = Command::new("espeak-ng")
            .args(["-v", &how.voice, "-s", &how.words_per_minute.to_string(), "-p", &how.pitch.to_string()])
            .args(["--stdout", text])
            .output()
            .map_err(|e| format!("espeak-ng: {e} (install the espeak-ng package)"))?;
        if !wav.status.success() {
            return Err(format!("espeak-ng failed: {}", String::from_utf8_lossy(&wav.stderr)));
        }
        let mut sox = Command::new("sox")
            .args([
                "-q",
                "-G",
                "-t",
                "wav",
                "-",
                "-t",
                "raw",
                "-r",
                "8000",
                "-e",
                "signed-integer",
                "-b",
                "16",
            ])
            .args(["-c", "1", "-L", "-", "sinc", "300-3400"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("sox: {e} (install the sox package)"))?;
        let mut stdin = sox.stdin.take().ok_or("sox has no stdin")?;
        let input = wav.stdout;
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = sox.wait_with_output().map_err(|e| format!("sox: {e}"))?;
        writer.join().map_err(|_| "sox writer panicked")?.map_err(|e| format!("sox: {e}"))?;
        let samples: Vec<i16> =
            out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        let samples = trim(&samples);
        self.cache.lock().map_err(|e| e.to_string())?.insert(key, samples.clone());
        Ok(samples)
    }
}

/// Drop leading and trailing near-silence (5 ms resolution).
fn trim(samples: &[i16]) -> Vec<i16> {
    let loud = |c: &[i16]| c.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0) > 300;
    let chunks: Vec<&[i16]> = samples.chunks(40).collect();
    let first = chunks.iter().position(|c| loud(c)).unwrap_or(0);
    let last = chunks.iter().rposition(|c| loud(c)).map_or(0, |i| i + 1);
    chunks[first..last.max(first)].concat()
}

const NAMES: [&str; 12] =
    ["Dana", "Mike", "Sarah", "Carlos", "Priya", "Tom", "Jennifer", "Ahmed", "Olga", "Kevin", "Maria", "Lee"];
const COMPANIES: [&str; 6] = [
    "Acme Plumbing",
    "Northside Dental",
    "Blue Sky Travel",
    "Greenfield Insurance",
    "Metro Cable",
    "City Hall",
];
const VOICES: [&str; 8] =
    ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us", "en-gb-x-gbclan", "en"];
const VARIANTS: [&str; 11] = ["", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5"];

const HELLOS: [&str; 16] = [
    "Hello?",
    "Hello.",
    "Hi.",
    "Yeah?",
    "Yes?",
    "Yeah, hi.",
    "Hey.",
    "Hello, who's this?",
    "Hi there.",
    "Yes, hello?",
    "Good morning.",
    "Speaking.",
    "Yep, hello?",
    "Hello, yes?",
    "Hiya.",
    "Uh, hello?",
];

fn name_phrase(rng: &mut SplitMix64) -> String {
    let name = pick(rng, &NAMES);
    match rng.next_u64() % 6 {
        0 => format!("This is {name} speaking."),
        1 => format!("{name} speaking."),
        2 => format!("Hi, {name} here."),
        3 => format!("Hello, this is {name}."),
        4 => format!("{name}."),
        _ => format!("Hi, it's {name}."),
    }
}

fn greeting_sentences(rng: &mut SplitMix64) -> Vec<String> {
    let name = pick(rng, &NAMES);
    let company = pick(rng, &COMPANIES);
    let openers = [
        format!("Hi, you've reached {name}."),
        format!("Hello, this is {name}."),
        format!("You have reached the voicemail of {name} at {company}."),
        format!("Hey, it's {name}."),
        format!("Thank you for calling {company}."),
        format!("Hi, this is {name}, and you've reached my phone."),
    ];
    let middle = [
        "I can't come to the phone right now.",
        "Sorry I missed your call.",
        "I'm either on the other line or away from my desk.",
        "Our office is currently closed.",
        "If this is urgent, please call my mobile.",
        "Leave your name, number and a short message.",
        "I'll get back to you as soon as I can.",
        "Our hours are nine to five, Monday through Friday.",
        "Thanks for calling.",
    ];
    let closers = [
        "Please leave a message after the tone.",
        "Leave a message and I'll call you back.",
        "Have a great day!",
        "Talk to you soon. Bye.",
        "Please leave a message.",
    ];
    let mut out = vec![openers[(rng.next_u64() % openers.len() as u64) as usize].clone()];
    let extra = rng.next_u64() % 5;
    for _ in 0..extra {
        out.push(pick(rng, &middle).to_owned());
    }
    out.push(pick(rng, &closers).to_owned());
    out
}

fn carrier_announcement(rng: &mut SplitMix64) -> Vec<String> {
    let digits: String = (0..10)
        .map(|i| {
            let d = (rng.next_u64() % 10).to_string();
            if i == 3 || i == 6 {
                format!(", {d}")
            } else {
                format!(" {d}")
            }
        })
        .collect();
    let first = match rng.next_u64() % 3 {
        0 => format!("The number{digits} is not available."),
        1 => "The person you are trying to reach is not available.".to_owned(),
        _ => "The subscriber you have dialed is not available at the moment.".to_owned(),
    };
    vec![
        first,
        "At the tone, please record your message.".to_owned(),
        "When you have finished recording, you may hang up or press 1 for more options.".to_owned(),
    ]
}

fn ivr_menu(rng: &mut SplitMix64) -> Vec<String> {
    let company = pick(rng, &COMPANIES);
    vec![
        format!("Thank you for calling {company}."),
        "Your call is important to us.".to_owned(),
        "For sales, press 1.".to_owned(),
        "For billing, press 2.".to_owned(),
        "For all other inquiries, please stay on the line.".to_owned(),
    ]
}

fn pick<'a, T: ?Sized>(rng: &mut SplitMix64, items: &'a [&'a T]) -> &'a T {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

fn uniform(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.next_f64()
}

fn ms(rng: &mut SplitMix64, lo: u32, hi: u32) -> u32 {
    lo + (rng.next_u64() % u64::from(hi - lo + 1)) as u32
}

fn samples_for(ms: u32) -> usize {
    (RATE * ms / 1000) as usize
}

fn speaking(rng: &mut SplitMix64) -> Speaking {
    Speaking {
        voice: format!("{}{}", pick(rng, &VOICES), pick(rng, &VARIANTS)),
        words_per_minute: ms(rng, 130, 210),
        pitch: ms(rng, 20, 80),
    }
}

/// Scale `speech` so that its active level is `dbm0`.
fn at_level(speech: &[i16], dbm0: f64) -> Vec<f64> {
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
struct Track {
    samples: Vec<f64>,
}

impl Track {
    fn now_ms(&self) -> u32 {
        (self.samples.len() as u64 * 1000 / u64::from(RATE)) as u32
    }

    fn pause(&mut self, ms: u32) {
        self.samples.resize(self.samples.len() + samples_for(ms), 0.0);
    }

    fn add(&mut self, audio: &[f64]) -> u32 {
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

#[derive(Debug, Clone, Copy)]
enum Law {
    Mu,
    A,
}

/// Line conditions applied to a finished clip.
#[derive(Debug, Clone, Copy)]
struct Line {
    noise_dbm0: Option<f64>,
    hum_dbm0: Option<f64>,
    mains_hz: f64,
    law: Option<Law>,
}

fn random_line(rng: &mut SplitMix64, noisy: bool) -> Line {
    let noise = if noisy || rng.next_f64() < 0.5 { Some(uniform(rng, -62.0, -42.0)) } else { None };
    Line {
        noise_dbm0: noise,
        hum_dbm0: (rng.next_f64() < 0.15).then(|| uniform(rng, -55.0, -40.0)),
        mains_hz: if rng.next_f64() < 0.5 { 50.0 } else { 60.0 },
        law: match rng.next_u64() % 5 {
            0 => None,
            1 | 2 => Some(Law::A),
            _ => Some(Law::Mu),
        },
    }
}

fn finish(track: Track, line: Line, seed: u64) -> Vec<i16> {
    let mut rng = SplitMix64::new(seed);
    let mut out = track.samples;
    // Pink-ish noise: white noise through a one-pole low-pass, at the asked level.
    if let Some(dbm0) = line.noise_dbm0 {
        let rms = rms_for_dbm0(dbm0);
        let mut state = 0.0;
        let raw: Vec<f64> = (0..out.len())
            .map(|_| {
                state = 0.7 * state + rng.next_gaussian();
                state
            })
            .collect();
        let power = raw.iter().map(|v| v * v).sum::<f64>() / raw.len().max(1) as f64;
        let gain = rms / power.sqrt().max(1e-9);
        out.iter_mut().zip(&raw).for_each(|(o, r)| *o += r * gain);
    }
    if let Some(dbm0) = line.hum_dbm0 {
        // Mains hum with its odd harmonics; the telephone band passes the higher ones.
        let amp = sine_amplitude_for_dbm0(dbm0);
        for (i, o) in out.iter_mut().enumerate() {
            let t = i as f64 / f64::from(RATE);
            *o += [1.0, 3.0, 5.0, 7.0]
                .iter()
                .map(|&k| amp / k * (TAU * line.mains_hz * k * t).sin())
                .sum::<f64>();
        }
    }
    out.iter()
        .map(|&v| {
            let s = v.round().clamp(-32768.0, 32767.0) as i16;
            match line.law {
                Some(Law::Mu) => g711::ulaw_decode(g711::ulaw_encode(s)),
                Some(Law::A) => g711::alaw_decode(g711::alaw_encode(s)),
                None => s,
            }
        })
        .collect()
}

/// Build clip number `index` of a corpus drawn from `seed`.
pub fn make_clip(
    voice: &Voice,
    seed: u64,
    index: usize,
    total: usize,
) -> Result<(ClipInfo, Vec<i16>), String> {
    let mut rng = SplitMix64::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let file = format!("clip-{index:04}.wav");
    // Shares: 40% people, 46% machines, 6% fax, 8% silence and dead air.
    let share = index as f64 / total as f64;
    let mut track = Track::default();
    let mut first_utterance_end_ms = None;
    let mut beep = None;
    let (label, kind, noisy) = if share < 0.40 {
        let how = speaking(&mut rng);
        let level = uniform(&mut rng, -34.0, -10.0);
        track.pause(ms(&mut rng, 100, 1_500));
        let kind = match rng.next_u64() % 4 {
            0 => {
                let end = track.add(&at_level(&voice.say(&how, pick(&mut rng, &HELLOS))?, level));
                first_utterance_end_ms = Some(end);
                track.pause(ms(&mut rng, 1_000, 2_500));
                track.add(&at_level(&voice.say(&how, pick(&mut rng, &HELLOS))?, level));
                "human/second-hello"
            }
            1 => {
                let end = track.add(&at_level(&voice.say(&how, &name_phrase(&mut rng))?, level));
                first_utterance_end_ms = Some(end);
                "human/name"
            }
            _ => {
                let end = track.add(&at_level(&voice.say(&how, pick(&mut rng, &HELLOS))?, level));
                first_utterance_end_ms = Some(end);
                "human/hello"
            }
        };
        track.pause(6_000);
        (Label::Human, kind, rng.next_f64() < 0.3)
    } else if share < 0.86 {
        let how = speaking(&mut rng);
        let level = uniform(&mut rng, -30.0, -10.0);
        track.pause(ms(&mut rng, 100, 1_200));
        let (sentences, kind, beeps) = match rng.next_u64() % 10 {
            0 | 1 => (carrier_announcement(&mut rng), "machine/carrier", true),
            2 => (ivr_menu(&mut rng), "machine/ivr", false),
            3 => (vec!["Leave a message.".to_owned()], "machine/short", true),
            _ => (greeting_sentences(&mut rng), "machine/greeting", rng.next_f64() < 0.75),
        };
        for (i, sentence) in sentences.iter().enumerate() {
            if i > 0 {
                track.pause(ms(&mut rng, 80, 700));
            }
            track.add(&at_level(&voice.say(&how, sentence)?, level));
        }
        let kind = if beeps {
            track.pause(if kind == "machine/short" {
                ms(&mut rng, 150, 600)
            } else {
                ms(&mut rng, 200, 1_200)
            });
            let hz = if rng.next_f64() < 0.4 { 1_000.0 } else { uniform(&mut rng, 300.0, 2_500.0).round() };
            let len = if rng.next_f64() < 0.2 { ms(&mut rng, 70, 150) } else { ms(&mut rng, 150, 1_500) };
            let start = track.now_ms();
            track.tone(hz, len, uniform(&mut rng, -26.0, -10.0));
            beep = Some((start, track.now_ms(), hz));
            format!("{kind}+beep")
        } else {
            kind.to_owned()
        };
        track.pause(4_000);
        return Ok((
            ClipInfo { file, label: Label::Machine, kind, first_utterance_end_ms, beep },
            finish(track, random_line(&mut rng, false), rng.next_u64()),
        ));
    } else if share < 0.92 {
        track.pause(ms(&mut rng, 0, 1_000));
        let level = uniform(&mut rng, -25.0, -10.0);
        let kind = match rng.next_u64() % 3 {
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
        };
        (Label::Fax, kind, false)
    } else {
        let kind = match rng.next_u64() % 3 {
            0 => "silence/digital",
            1 => "silence/hiss",
            _ => "silence/hum",
        };
        track.pause(10_000);
        let mut line = random_line(&mut rng, kind != "silence/digital");
        if kind == "silence/digital" {
            line = Line { noise_dbm0: None, hum_dbm0: None, ..line };
        } else if kind == "silence/hum" {
            line.hum_dbm0 = Some(uniform(&mut rng, -45.0, -30.0));
        }
        return Ok((
            ClipInfo { file, label: Label::Silence, kind: kind.to_owned(), first_utterance_end_ms, beep },
            finish(track, line, rng.next_u64()),
        ));
    };
    let line = random_line(&mut rng, noisy);
    Ok((
        ClipInfo { file, label, kind: kind.to_owned(), first_utterance_end_ms, beep },
        finish(track, line, rng.next_u64()),
    ))
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

/// Write `count` clips and `labels.csv` into `dir`, using all cores.
pub fn generate(dir: &Path, seed: u64, count: usize) -> Result<Vec<ClipInfo>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let voice = Voice::default();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results: Vec<Result<ClipInfo, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let voice = &voice;
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            let (info, samples) = make_clip(voice, seed, i, count)?;
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
