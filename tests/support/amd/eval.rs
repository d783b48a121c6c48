//! Scoring the answering-machine detector over a labelled corpus, and the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bond_codecs::{AudioFrame, SampleRate};
use bond_media_engine::amd::{AmdConfig, AmdDetector, AmdEvent, GreetingEnd, GreetingWatch};

use super::corpus::{ClipInfo, Label};

/// What the detector said about one clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub clip: ClipInfo,
    /// `human`, `machine`, `fax`, `silence` or `not_sure` (none: no verdict at all).
    pub verdict: Option<String>,
    pub verdict_ms: Option<u32>,
    /// For machines: `beep_detected` or `no_beep_detected`, and when.
    pub greeting: Option<(String, u32)>,
}

/// Map Telnyx premium results onto the corpus' labels.
pub fn verdict_name(premium_result: &str) -> &str {
    match premium_result {
        "human_residence" | "human_business" | "human" => "human",
        "fax_detected" => "fax",
        other => other,
    }
}

/// Run the detector directly over `samples` (8 kHz), as the premium mode does.
pub fn detect(clip: &ClipInfo, samples: &[i16], config: AmdConfig) -> Outcome {
    let config = AmdConfig { watch: GreetingWatch::EndOrBeep, ..config };
    let mut detector = AmdDetector::new(config, 8_000);
    let mut outcome = Outcome { clip: clip.clone(), verdict: None, verdict_ms: None, greeting: None };
    let silence = [0i16; 160];
    let frames = samples.chunks(160).chain(std::iter::repeat(&silence[..]));
    for chunk in frames.take(2_000) {
        let mut frame = AudioFrame::silent(SampleRate::Hz8000, 0);
        frame.samples_mut()[..chunk.len()].copy_from_slice(chunk);
        detector.push(&frame, None);
        while let Some(event) = detector.poll_event() {
            match event {
                AmdEvent::Detection { verdict, at_millis, .. } => {
                    outcome.verdict = Some(verdict.as_str().to_owned());
                    outcome.verdict_ms = Some(at_millis);
                }
                AmdEvent::GreetingEnded { end, at_millis } => {
                    let name = if matches!(end, GreetingEnd::Beep { .. }) {
                        "beep_detected"
                    } else {
                        "no_beep_detected"
                    };
                    outcome.greeting = Some((name.to_owned(), at_millis));
                }
            }
        }
        if detector.is_done() {
            break;
        }
    }
    outcome
}

/// Percentile `p` (0..=100) of `values`, nearest rank.
pub fn percentile(values: &[i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

/// The numbers the issue asks for.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub clips: usize,
    pub correct: usize,
    /// label -> predicted -> count
    pub confusion: BTreeMap<&'static str, BTreeMap<String, usize>>,
    pub humans: usize,
    pub humans_called_machine: usize,
    /// ms from the end of the person's first utterance to the verdict.
    pub human_latency_ms: Vec<i64>,
    /// ms from the answer to a machine verdict.
    pub machine_latency_ms: Vec<i64>,
    pub beeped: usize,
    pub beeps_found: usize,
    /// ms from the end of the beep to its report.
    pub beep_delay_ms: Vec<i64>,
    pub false_beeps: usize,
    pub errors: Vec<String>,
}

impl Scores {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.clips.max(1) as f64
    }

    pub fn humans_called_machine_share(&self) -> f64 {
        self.humans_called_machine as f64 / self.humans.max(1) as f64
    }

    pub fn beep_found_share(&self) -> f64 {
        self.beeps_found as f64 / self.beeped.max(1) as f64
    }
}

pub fn score(outcomes: &[Outcome]) -> Scores {
    let mut s = Scores { clips: outcomes.len(), ..Scores::default() };
    for o in outcomes {
        let truth = o.clip.label.as_str();
        let said = o.verdict.clone().unwrap_or_else(|| "none".to_owned());
        *s.confusion.entry(truth).or_default().entry(said.clone()).or_default() += 1;
        if said == truth {
            s.correct += 1;
        } else {
            s.errors.push(format!(
                "{} {} ({}) -> {said} at {:?} ms",
                o.clip.file, truth, o.clip.kind, o.verdict_ms
            ));
        }
        match o.clip.label {
            Label::Human => {
                s.humans += 1;
                if said == "machine" {
                    s.humans_called_machine += 1;
                }
                if let (true, Some(at), Some(end)) =
                    (said == "human", o.verdict_ms, o.clip.first_utterance_end_ms)
                {
                    s.human_latency_ms.push(i64::from(at) - i64::from(end));
                }
            }
            Label::Machine => {
                if let (true, Some(at)) = (said == "machine", o.verdict_ms) {
                    s.machine_latency_ms.push(i64::from(at));
                }
            }
            Label::Fax | Label::Silence => {}
        }
        let beep_reported = o.greeting.as_ref().filter(|(g, _)| g == "beep_detected").map(|(_, at)| *at);
        match (o.clip.beep, beep_reported) {
            (Some((_, end, _)), Some(at)) => {
                s.beeped += 1;
                s.beeps_found += 1;
                s.beep_delay_ms.push(i64::from(at) - i64::from(end));
            }
            (Some((start, end, hz)), None) => {
                s.beeped += 1;
                s.errors.push(format!(
                    "{} ({}): beep {hz} Hz {start}-{end} ms not found; verdict {said}, greeting {:?}",
                    o.clip.file, o.clip.kind, o.greeting
                ));
            }
            (None, Some(at)) => {
                s.false_beeps += 1;
                s.errors.push(format!(
                    "{} ({}): beep reported at {at} ms where there was none",
                    o.clip.file, o.clip.kind
                ));
            }
            (None, None) => {}
        }
    }
    s
}

fn ms(v: Option<i64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

/// The report as Markdown.
pub fn render(scores: &Scores, how: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Answering-machine detection: accuracy report\n");
    let _ = writeln!(out, "{how}\n");
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| measure | result | target |\n|---|---|---|");
    let _ = writeln!(out, "| clips | {} | >= 1,000 |", scores.clips);
    let _ = writeln!(out, "| accuracy | {:.1}% | >= 97% |", 100.0 * scores.accuracy());
    let _ = writeln!(
        out,
        "| people called machine | {:.2}% ({} of {}) | <= 1% |",
        100.0 * scores.humans_called_machine_share(),
        scores.humans_called_machine,
        scores.humans
    );
    let h = &scores.human_latency_ms;
    let m = &scores.machine_latency_ms;
    let b = &scores.beep_delay_ms;
    let _ = writeln!(
        out,
        "| person verdict after the first utterance ends, p50 / p90 | {} / {} ms | p50 <= 1,000 ms |",
        ms(percentile(h, 50.0)),
        ms(percentile(h, 90.0))
    );
    let _ = writeln!(
        out,
        "| machine verdict after answer, p50 / p90 | {} / {} ms | p50 <= 2,500 ms |",
        ms(percentile(m, 50.0)),
        ms(percentile(m, 90.0))
    );
    let _ = writeln!(
        out,
        "| beeps found | {:.1}% ({} of {}) | >= 98.5% |",
        100.0 * scores.beep_found_share(),
        scores.beeps_found,
        scores.beeped
    );
    let _ = writeln!(
        out,
        "| beep reported after it ends, p50 / p95 / max | {} / {} / {} ms | <= 100 ms |",
        ms(percentile(b, 50.0)),
        ms(percentile(b, 95.0)),
        ms(b.iter().copied().max())
    );
    let _ = writeln!(out, "| beeps reported where there was none | {} | |", scores.false_beeps);
    let _ = writeln!(out, "\n## Confusion matrix (rows: truth, columns: verdict)\n");
    let columns = ["human", "machine", "fax", "silence", "not_sure", "none"];
    let _ = writeln!(out, "| truth \\ verdict | {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(columns.len()));
    for label in Label::ALL {
        let row = scores.confusion.get(label.as_str());
        let cells: Vec<String> =
            columns.iter().map(|c| row.and_then(|r| r.get(*c)).copied().unwrap_or(0).to_string()).collect();
        let _ = writeln!(out, "| {} | {} |", label.as_str(), cells.join(" | "));
    }
    let _ = writeln!(out, "\n## The corpus\n");
    let _ = writeln!(
        out,
        "Made by `amd-corpus` (tests/support/amd/corpus.rs) from one seed: 40% people (\"Hello?\", \
         \"Yeah, hi\", a name, a second \"hello?\" after a pause of 1-2.5 s), 46% machines (voicemail \
         greetings of 1 to 6 sentences, 75% with a beep; carrier announcements with a beep; IVR menus; \
         \"Leave a message.\" then a beep), 6% fax (CNG, CED, ANSam), 8% silence, hiss and hum. Speech is \
         espeak-ng (7 English voices x 11 variants, 130-210 words/min, pitch 20-80), band-passed to \
         300-3400 Hz and resampled to 8 kHz by sox, at -34 to -10 dBm0; beeps are 300-2500 Hz (40% at \
         1 kHz), 70-1500 ms, -26 to -10 dBm0, 0.15-1.2 s after the greeting; lines get pink noise \
         (-62 to -42 dBm0) on about half the clips, mains hum on 15%, and G.711 mu-law or A-law on 80%."
    );
    let _ = writeln!(out, "\nReproduce (the same numbers, to the clip):\n");
    let _ = writeln!(out, "```sh\ncargo build --release -p bond --bin bond -p bond-tests --bins");
    let _ = writeln!(out, "target/release/amd-corpus target/amd-corpus 1000 2026");
    let _ = writeln!(out, "target/release/amd-report target/amd-corpus --out docs/amd-report.md\n```");
    let _ = writeln!(
        out,
        "\nThe detector's CPU cost per 20 ms frame is in BENCHMARKS.md (`cargo bench -p bond-benches --bench amd`). \
         These are synthetic voices: the detector is built on general rules (see docs/amd.md), not on this \
         generator, but real recordings will score lower than these numbers."
    );
    if !scores.errors.is_empty() {
        let _ = writeln!(out, "\n## Misjudged clips\n");
        for e in &scores.errors {
            let _ = writeln!(out, "- {e}");
        }
    }
    out
}
