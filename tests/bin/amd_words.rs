//! `amd-words CORPUS_DIR MODELS_DIR [--threads N]`: how much the words of a
//! greeting would add to the answering-machine detector, measured (issue 44).
//!
//! Each held-out clip is run through the detector (in-process, as
//! `amd-report --direct`). Where it called the callee a person, the audio up
//! to the start of the pause that decided it is what a recognizer would have
//! had in hand; elsewhere the first `greeting_duration_millis` (5 s). That
//! audio is transcribed by the embedded whisper.cpp models in `MODELS_DIR`
//! (`ggml-tiny.en-q8_0.bin` for English, `ggml-base-q8_0.bin` for the other
//! languages, as Bond ships them; `scripts/test` makes them in
//! `target/models`), one clip at a time, and
//! searched for a machine's phrase (`bond_tests::amd::phrases`). Prints, per
//! part of the corpus, how many people and how many machines said one, the
//! accuracy if such a phrase made a machine, and the transcription times.
//! It reads the clock, as a measuring tool does.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use bond_media_engine::amd::AmdConfig;
use bond_speech::whisper::Whisper;
use bond_speech::SpeechToText;
use bond_tests::amd::corpus::{self, ClipInfo, Label};
use bond_tests::amd::{eval, phrases, prompts};

const USAGE: &str = "usage: amd-words CORPUS_DIR MODELS_DIR [--threads N]";
/// The corpus's sample rate.
const RATE_HZ: u32 = 8_000;

#[derive(Default)]
struct Tally {
    people: (u32, u32),
    machines_called_people: (u32, u32),
    machines_called_machines: (u32, u32),
    right: u32,
    right_with_words: u32,
    clips: u32,
}

fn part(clip: &ClipInfo) -> &'static str {
    match (clip.held_out, clip.fresh) {
        (false, _) => "tuning",
        (true, false) => "held-out, first part and prompts",
        (true, true) => "held-out, fresh part",
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, models, rest @ ..] = args.as_slice() else { return Err(USAGE.into()) };
    let threads = match rest {
        [flag, n] if flag == "--threads" => n.parse().map_err(|_| USAGE)?,
        [] => 2,
        _ => return Err(USAGE.into()),
    };
    let (dir, models) = (PathBuf::from(dir), Path::new(models));
    let labels = std::fs::read_to_string(dir.join("labels.csv")).map_err(|e| format!("labels.csv: {e}"))?;
    let clips = corpus::parse_labels(&labels)?;
    let whisper = Whisper::new(
        &models.join("ggml-tiny.en-q8_0.bin"),
        Some(&models.join("ggml-base-q8_0.bin")),
        threads,
        1,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| e.to_string())?;
    let config = AmdConfig::default();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for clip in clips.iter().filter(|c| matches!(c.label, Label::Human | Label::Machine)) {
        let samples = corpus::read_wav(&dir.join(&clip.file))?;
        let outcome = eval::detect(clip, &samples, config);
        let verdict = outcome.verdict.as_deref().unwrap_or("none");
        // A person verdict at `t` means the deciding pause began at `t` less the
        // shortest pause that makes a person, or earlier; otherwise the greeting
        // as long as it may run before it is a machine's.
        let heard_ms = match (verdict, outcome.verdict_ms) {
            ("human", Some(at)) => at.saturating_sub(config.after_greeting_silence_millis),
            _ => config.greeting_duration_millis,
        };
        let heard = &samples[..samples.len().min((heard_ms * RATE_HZ / 1000) as usize)];
        let audio = resample_clip(heard, RATE_HZ, SampleRate::Hz16000).map_err(|e| e.to_string())?;
        let language = prompts::language_of(&clip.speaker);
        let started = Instant::now();
        let transcript = runtime.block_on(whisper.transcribe(audio, language)).map_err(|e| e.to_string())?;
        times.entry(language).or_default().push(started.elapsed().as_secs_f64() * 1000.0);
        let said = phrases::machine_phrase(&transcript.text, language).is_some();
        let tally = tallies.entry(part(clip)).or_default();
        let right = verdict == clip.label.as_str();
        let with_words = if said { clip.label == Label::Machine } else { right };
        tally.clips += 1;
        tally.right += u32::from(right);
        tally.right_with_words += u32::from(with_words);
        let count = match (clip.label, verdict) {
            (Label::Human, _) => &mut tally.people,
            (_, "human") => &mut tally.machines_called_people,
            _ => &mut tally.machines_called_machines,
        };
        count.0 += u32::from(said);
        count.1 += 1;
    }
    whisper.stop();
    println!("| part | people saying a machine's phrase | machines called people saying one | machines called machines saying one | people and machines right | right if the phrase made a machine |");
    println!("|---|---|---|---|---|---|");
    for (name, t) in &tallies {
        let share = |(n, of): (u32, u32)| format!("{n} of {of}");
        let pct = |n: u32| format!("{:.1}%", 100.0 * f64::from(n) / f64::from(t.clips.max(1)));
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            share(t.people),
            share(t.machines_called_people),
            share(t.machines_called_machines),
            pct(t.right),
            pct(t.right_with_words)
        );
    }
    for (language, mut ms) in times {
        ms.sort_by(f64::total_cmp);
        let at = |share: usize| ms[(ms.len() * share / 10).min(ms.len() - 1)];
        println!("transcription, {language}: {} clips, p50 {:.0} ms, p90 {:.0} ms", ms.len(), at(5), at(9));
    }
    Ok(())
}
