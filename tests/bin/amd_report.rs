//! `amd-report CORPUS_DIR [--direct [--words MODELS_DIR]] [--tuning] [--check] [--bond PATH [--models DIR]] [--concurrency N] [--out FILE]`:
//! run the answering-machine detector over a corpus made by `amd-corpus` and
//! write the accuracy report (Markdown) to FILE, or to stderr. The report's
//! targets are measured on the held-out speakers only; `--check` fails (exit 1)
//! when the held-out part scores below `report::FLOOR` (a regression guard
//! until the targets are met). `--tuning` runs and shows the tuning part alone.
//!
//! By default every clip goes through a real Bond: the `bond` binary (`--bond`,
//! else `bond` next to this program) is started on a scratch data directory,
//! each clip is dialed as `loop:play` with premium AMD, and the verdicts come
//! back as signed webhooks. Calls run in real time, N at a time (100 by
//! default: a debug build of this program falls seconds behind taking in
//! the webhooks of more on two cores).
//! `--models` gives that Bond the whisper.cpp models (as `scripts/run`
//! does), so it hears the greetings' words. `--direct` feeds
//! the detector in-process instead (seconds; for tuning). `--words` adds the
//! greeting's words, in the clip's language, as Bond hears them with its
//! embedded recognizer (`bond_tests::amd::words`): each answer reaches the
//! detector as long after it asked as the transcription took, one greeting at
//! a time on this machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bond_media_engine::amd::AmdConfig;
use bond_tests::amd::words::Words;
use bond_tests::amd::{corpus, eval, live, prompts, report};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

const USAGE: &str = "usage: amd-report CORPUS_DIR [--direct [--words MODELS_DIR]] [--tuning] [--check] [--bond PATH [--models DIR]] [--concurrency N] [--out FILE]";

async fn report(args: &[String]) -> Result<(String, Option<PathBuf>), String> {
    let dir = PathBuf::from(args.first().ok_or(USAGE)?);
    let labels = std::fs::read_to_string(dir.join("labels.csv")).map_err(|e| format!("labels.csv: {e}"))?;
    let mut clips = corpus::parse_labels(&labels)?;
    if args.iter().any(|a| a == "--tuning") {
        // Tuning never runs the detector on the held-out part.
        clips.retain(|c| !c.held_out);
    }
    let (outcomes, how) = if let Some(models) = arg(args, "--words") {
        let mut words = Words::open(&dir, Path::new(&models), 2)?;
        let mut outcomes = Vec::with_capacity(clips.len());
        for clip in &clips {
            let samples = corpus::read_wav(&dir.join(&clip.file))?;
            let config = AmdConfig {
                words_language: Some(prompts::language_of(&clip.speaker)),
                ..AmdConfig::default()
            };
            let mut transcribe =
                |greeting: &[i16], language| words.transcribe(&clip.file, greeting, language);
            outcomes.push(eval::detect_with_words(clip, &samples, config, &mut transcribe)?);
        }
        (outcomes, words_how(&words))
    } else if args.iter().any(|a| a == "--direct") {
        let outcomes = clips
            .iter()
            .map(|c| Ok(eval::detect(c, &corpus::read_wav(&dir.join(&c.file))?, AmdConfig::default())))
            .collect::<Result<Vec<_>, String>>()?;
        (outcomes, "The detector was fed the clips in-process (`amd-report --direct`).".to_owned())
    } else {
        let bond = match arg(args, "--bond") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("bond"),
        };
        let concurrency = arg(args, "--concurrency").and_then(|n| n.parse().ok()).unwrap_or(100);
        let models = arg(args, "--models").map(PathBuf::from);
        let run = live::run(&bond, &dir, &clips, concurrency, models.as_deref()).await?;
        let words = match models {
            None => "Bond had no speech models, so the greetings' words played no part.".to_owned(),
            Some(_) => format!(
                "Bond had its embedded speech models: it asked its recognizer about {} greetings, \
                 {} of which were not transcribed (the node was transcribing another, its recognizer was busy, \
                 or the answer took over 2 s), so timing decided those.",
                run.words_asked, run.words_failed
            ),
        };
        let how = format!(
            "Every clip was dialed through a running Bond as `loop:play` with \
             `answering_machine_detection: premium` in the clip's language, {concurrency} calls at a \
             time in real time (Bond's engine ran 99% of its timers within {late} ms of when they were \
             due; a call's last webhook came {lag_p50:.1} s (median) and at most {lag_max:.1} s after the time it reports, and {unfinished} \
             calls had not sent it after {wait} s); verdicts and times are those of the signed \
             `call.machine.premium.*` webhooks. {words}",
            late = run.timer_lateness_p99 * 1_000.0,
            lag_p50 = run.event_lag.0.as_secs_f64(),
            lag_max = run.event_lag.1.as_secs_f64(),
            unfinished = run.unfinished,
            wait = live::WAIT_FOR_EVENTS.as_secs(),
        );
        (run.outcomes, how)
    };
    let flag = |name: &str| args.iter().any(|a| a == name);
    if flag("--tuning") {
        return Ok((report::render_tuning(&outcomes), None));
    }
    let reproduce = format!(
        "cargo build --release -p bond --bin bond -p bond-tests --bins\n\
         target/release/amd-corpus {corpus} {count} {seed}\n\
         target/release/amd-report {corpus}{flags} --out docs/amd-report.md",
        corpus = dir.display(),
        flags = match (arg(args, "--words"), flag("--direct")) {
            (Some(models), _) => format!(" --direct --words {models}"),
            (None, true) => " --direct".to_owned(),
            (None, false) => String::new(),
        },
        count = clips
            .iter()
            .filter(|c| c.part == corpus::Part::First && !c.speaker.starts_with(prompts::SPEAKER_PREFIX))
            .count(),
        seed = std::fs::read_to_string(dir.join("seed")).map_err(|e| format!("seed: {e}"))?.trim(),
    );
    let text = report::render(&outcomes, &how, &reproduce);
    if flag("--check") {
        let missed = report::missed(&outcomes, report::FLOOR);
        if !missed.is_empty() {
            return Err(format!("held-out part below the floor: {}\n{text}", missed.join("; ")));
        }
    }
    Ok((text, arg(args, "--out").map(PathBuf::from)))
}

/// How the clips were run with words, and how long transcription took.
fn words_how(words: &Words) -> String {
    let mut how = "The detector was fed the clips in-process with the greetings' words \
        (`amd-report --direct --words`): each greeting it asked about was transcribed by the embedded \
        whisper.cpp models in the clip's language (tiny.en for English, base otherwise) on 2 threads, \
        one at a time, and the words reached the detector as long after it asked as that took."
        .to_owned();
    let mut languages: Vec<_> = words.times.iter().collect();
    languages.sort();
    for (language, ms) in languages {
        let (p50, p90) = (eval::percentile_u32(ms, 50.0), eval::percentile_u32(ms, 90.0));
        how.push_str(&format!(" {language}: {} greetings, p50 {p50} ms, p90 {p90} ms.", ms.len()));
    }
    how
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match report(&args).await {
        Ok((report, Some(path))) => match std::fs::write(&path, report) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("amd-report: {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        Ok((report, None)) => {
            eprint!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amd-report: {e}");
            ExitCode::FAILURE
        }
    }
}
