//! Scoring the answering-machine detector over a labelled corpus, and the report.

use std::collections::BTreeMap;

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

/// Transcribes a greeting (8 kHz, in the given language): the text, and how
/// many milliseconds the answer took.
pub type Transcribe<'a> = dyn FnMut(&[i16], &'static str) -> Result<(String, u32), String> + 'a;

/// Run the detector directly over `samples` (8 kHz), as the premium mode does.
pub fn detect(clip: &ClipInfo, samples: &[i16], config: AmdConfig) -> Outcome {
    let no_words = detect_with_words(clip, samples, config, &mut |_, _| Ok((String::new(), u32::MAX)));
    no_words.unwrap_or_else(|e: String| unreachable!("no transcriber, no error: {e}"))
}

/// As [`detect`], handing each greeting the detector asks about to
/// `transcribe` and its answer back as many frames later as it took (rounded
/// up to a frame), as a runtime would.
pub fn detect_with_words(
    clip: &ClipInfo,
    samples: &[i16],
    config: AmdConfig,
    transcribe: &mut Transcribe<'_>,
) -> Result<Outcome, String> {
    let config = AmdConfig { watch: GreetingWatch::EndOrBeep, ..config };
    let mut detector = AmdDetector::new(config, 8_000);
    let mut outcome = Outcome { clip: clip.clone(), verdict: None, verdict_ms: None, greeting: None };
    let silence = [0i16; 160];
    let frames = samples.chunks(160).chain(std::iter::repeat(&silence[..]));
    // Answers on their way: when they arrive (ms) and what they say.
    let mut due: Vec<(u64, String)> = Vec::new();
    for (n, chunk) in frames.take(2_000).enumerate() {
        let now = n as u64 * 20;
        due.retain(|(at, text)| {
            if *at <= now {
                detector.heard_words(text);
            }
            *at > now
        });
        let mut frame = AudioFrame::silent(SampleRate::Hz8000, 0);
        frame.samples_mut()[..chunk.len()].copy_from_slice(chunk);
        detector.push(&frame, None);
        if let Some((greeting, language)) = detector.poll_words_wanted() {
            let (text, took_ms) = transcribe(&greeting, language)?;
            due.push(((now + 20).saturating_add(u64::from(took_ms).div_ceil(20) * 20), text));
        }
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
    Ok(outcome)
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

/// Percentile `p` of `values`, nearest rank; 0 when there are none.
pub fn percentile_u32(values: &[u32], p: f64) -> i64 {
    percentile(&values.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), p).unwrap_or(0)
}

/// A beep counts as found when it is reported this soon after it ends.
pub const BEEP_REPORT_WITHIN_MS: i64 = 100;

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
                "{} {} ({}, {}, {}) -> {said} at {:?} ms",
                o.clip.file, truth, o.clip.kind, o.clip.speaker, o.clip.line, o.verdict_ms
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
                let delay = i64::from(at) - i64::from(end);
                s.beep_delay_ms.push(delay);
                if (0..=BEEP_REPORT_WITHIN_MS).contains(&delay) {
                    s.beeps_found += 1;
                } else {
                    s.errors.push(format!(
                        "{} ({}): beep reported {delay} ms after its end",
                        o.clip.file, o.clip.kind
                    ));
                }
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
