//! Real voices in a second, later-added held-out part: the prompts of the
//! telephone exchange Asterisk, recorded by five people in five languages and
//! shipped by Debian (`asterisk-core-sounds-{en,es,fr,it,ru}-wav`). Two more
//! people, from Debian's older prompt packages (`asterisk-prompt-fr-armelle`,
//! `asterisk-prompt-it-menardi-wav`), belong to the fresh part
//! ([`FRESH_PROMPTS`]); they recorded no "hello", so they are machines only.
//! A third, a Colombian voice (`asterisk-prompt-es-co`), belongs to the late
//! part ([`LATE_PROMPTS`]); its package conflicts with `asterisk-core-sounds-es`,
//! whose transcripts the translation report reads, so `scripts/test` unpacks
//! it under `target/` instead of installing it.
//!
//! Machines are put together as the exchange plays them: its voicemail's
//! "The person at extension 4 1 2 7 is unavailable. Please leave your message
//! after the tone…" and its own beep, the busy variant, the carriers'
//! "all circuits are busy" intercepts and a directory or menu greeting. People
//! are the same voices saying "hello", perhaps again after a wait. These clips
//! are built from their recordings, never synthesized, so none of the
//! detector's tuning saw these speakers, their languages or their wordings.

use std::path::{Path, PathBuf};

use bond_codecs::signals::SplitMix64;
use bond_media_engine::amd::phrases;

use super::corpus::{at_level, background, ms, over_the_line, uniform, Track, FIRST};
use super::labels::{ClipInfo, Label, Part};
use super::line::random_line;
use super::synth::{recording, Voices};

/// Where Debian's packages put the prompts.
const SOUNDS_DIR: &str = "/usr/share/asterisk/sounds";

/// How the prompts' speakers are named in `labels.csv` (`asterisk/<voice>`).
pub const SPEAKER_PREFIX: &str = "asterisk/";
/// How the fresh part's prompt speakers are named (`asterisk-prompt/<package>`).
pub const FRESH_SPEAKER_PREFIX: &str = "asterisk-prompt/";

/// A set of recorded voices: their directories (under [`SOUNDS_DIR`], or
/// absolute) and names in `labels.csv`, the ones that recorded a "hello", and
/// the corpus's part they belong to.
#[derive(Debug, Clone, Copy)]
pub struct PromptSet {
    voices: &'static [(&'static str, &'static str)],
    hello_voices: &'static [(&'static str, &'static str)],
    prefix: &'static str,
    part: Part,
}

const ALLISON: (&str, &str) = ("en_US_f_Allison", "en_US_f_Allison");
const JUNE: (&str, &str) = ("fr_CA_f_June", "fr_CA_f_June");
const CARLO: (&str, &str) = ("it_IT_m_Carlo", "it_IT_m_Carlo");
const IVRVOICE: (&str, &str) = ("ru_RU_f_IvrvoiceRU", "ru_RU_f_IvrvoiceRU");

/// The five voices of the core sounds (the Spanish Allison recorded no "hello").
pub const CORE_PROMPTS: PromptSet = PromptSet {
    voices: &[ALLISON, ("es_MX_f_Allison", "es_MX_f_Allison"), JUNE, CARLO, IVRVOICE],
    hello_voices: &[ALLISON, JUNE, CARLO, IVRVOICE],
    prefix: SPEAKER_PREFIX,
    part: Part::First,
};

/// The fresh part's two voices, machines only. Their directories are their
/// packages' own, never a link Debian's alternatives point at another set.
pub const FRESH_PROMPTS: PromptSet = PromptSet {
    voices: &[("fr", "fr-armelle"), ("it_IT_f_Menardi", "it-menardi")],
    hello_voices: &[],
    prefix: FRESH_SPEAKER_PREFIX,
    part: Part::Fresh,
};

/// The late part's voice, machines only: the Colombian set, unpacked from its
/// package by `scripts/test`.
pub const LATE_PROMPTS: PromptSet = PromptSet {
    voices: &[(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/asterisk-prompt-es-co/usr/share/asterisk/sounds/es"),
        "es-co",
    )],
    hello_voices: &[],
    prefix: FRESH_SPEAKER_PREFIX,
    part: Part::Late,
};

/// Announcements that end a call attempt, each recorded by some of the voices.
const INTERCEPTS: [&[&str]; 5] = [
    &["all-circuits-busy-now", "please-try-call-later"],
    &["cannot-complete-as-dialed", "check-number-dial-again"],
    &["number-not-answering"],
    &["ss-noservice"],
    &["tt-allbusy"],
];

/// Greetings of menus and queues.
const MENUS: [&[&str]; 3] = [
    &["dir-welcome", "queue-periodic-announce"],
    &["queue-periodic-announce"],
    &["vm-nobodyavail", "vm-intro"],
];

/// The prompt's file: WAV, or GSM in the older packages.
fn path(voice: &str, prompt: &str) -> PathBuf {
    let dir = Path::new(SOUNDS_DIR).join(voice);
    let wav = dir.join(format!("{prompt}.wav"));
    let gsm = dir.join(format!("{prompt}.gsm"));
    if !wav.exists() && gsm.exists() {
        gsm
    } else {
        wav
    }
}

fn has(voice: &str, prompt: &str) -> bool {
    path(voice, prompt).exists()
}

/// One prompt in the telephone band; `trimmed` drops its own silence at both
/// ends (a person's "hello"), otherwise it plays as the exchange plays it.
fn prompt(voice: &str, name: &str, trimmed: bool) -> Result<Vec<i16>, String> {
    recording(&path(voice, name).to_string_lossy(), trimmed).map_err(|e| {
        format!("{e} (install the asterisk-core-sounds-*-wav and asterisk-prompt-* packages, as scripts/test does)")
    })
}

/// Plays `prompts` back to back at `level`, as the exchange does.
fn play(track: &mut Track, voice: &str, prompts: &[String], level: f64) -> Result<(), String> {
    for name in prompts {
        track.add(&at_level(&prompt(voice, name, false)?, level));
    }
    Ok(())
}

/// An extension's digits, as the voicemail reads them out.
fn extension(rng: &mut SplitMix64) -> Vec<String> {
    let digits = 3 + rng.next_u64() % 2;
    (0..digits).map(|_| format!("digits/{}", rng.next_u64() % 10)).collect()
}

/// Build clip `file` of the recorded-prompt part, drawn from `rng`.
pub fn make_prompt_clip(
    voices: &Voices,
    rng: &mut SplitMix64,
    file: String,
    set: PromptSet,
) -> Result<(ClipInfo, Vec<i16>), String> {
    let mut track = Track::default();
    let mut line = random_line(rng, false);
    let human = rng.next_f64() < 0.4 && !set.hello_voices.is_empty();
    let (voice, name) = if human { pick_voice(rng, set.hello_voices) } else { pick_voice(rng, set.voices) };
    let dir = Path::new(SOUNDS_DIR).join(voice);
    if set.part != Part::First && !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Err(format!(
            "{}: not a directory of its own (install or unpack asterisk-prompt-{name}, as scripts/test does)",
            dir.display()
        ));
    }
    let mut info = ClipInfo {
        file,
        label: if human { Label::Human } else { Label::Machine },
        kind: String::new(),
        speaker: format!("{}{name}", set.prefix),
        held_out: true,
        part: set.part,
        line: String::new(),
        first_utterance_end_ms: None,
        beep: None,
    };
    if human {
        let level = uniform(rng, -34.0, -10.0);
        track.pause(ms(rng, 100, 1_500));
        let hello = at_level(&prompt(voice, "hello", true)?, level);
        info.first_utterance_end_ms = Some(track.add(&hello));
        info.kind = if rng.next_f64() < 0.3 {
            track.pause(ms(rng, 1_000, 2_500));
            track.add(&hello);
            "human/second-hello".to_owned()
        } else {
            "human/hello".to_owned()
        };
        track.pause(6_000);
        let behind =
            if rng.next_f64() < 0.25 { Some(background(voices, rng, FIRST, true, level)?) } else { None };
        return over_the_line(info, track.samples, line, behind, rng);
    }
    let level = uniform(rng, -30.0, -10.0);
    track.pause(ms(rng, 100, 1_200));
    let (prompts, kind, beeps): (Vec<String>, &str, bool) = match rng.next_u64() % 10 {
        0..=4 => {
            let status = if rng.next_f64() < 0.7 { "vm-isunavail" } else { "vm-isonphone" };
            let mut p = vec!["vm-theperson".to_owned()];
            p.extend(extension(rng));
            p.extend([status.to_owned(), "vm-intro".to_owned()]);
            (p, "machine/voicemail", rng.next_f64() < 0.9)
        }
        5..=7 => (pick_list(rng, voice, &INTERCEPTS)?, "machine/carrier", false),
        _ => {
            let p = pick_list(rng, voice, &MENUS)?;
            let beeps = p.last().is_some_and(|n| n == "vm-intro");
            (p, if beeps { "machine/voicemail" } else { "machine/ivr" }, beeps)
        }
    };
    play(&mut track, voice, &prompts, level)?;
    info.kind = if beeps {
        // The exchange's own beep; Allison's where the voice's set has none.
        let beeper = if has(voice, "beep") { voice } else { ALLISON.0 };
        let beep = at_level(&prompt(beeper, "beep", true)?, uniform(rng, -26.0, -10.0));
        let start = track.now_ms();
        let end = track.add(&beep);
        info.beep = Some((start, end, dominant_hz(&beep)));
        format!("{kind}+beep")
    } else {
        kind.to_owned()
    };
    track.pause(4_000);
    if rng.next_f64() < 0.3 {
        line.noise_dbm0 = Some(uniform(rng, -62.0, -42.0));
    }
    over_the_line(info, track.samples, line, None, rng)
}

/// The language a clip's speaker talks in (ISO 639-1): the recorded prompt
/// sets are named for theirs (`en_US_f_Allison`, `fr-armelle`); every
/// synthesized voice of the corpus speaks English.
pub fn language_of(speaker: &str) -> &'static str {
    let Some(name) =
        speaker.strip_prefix(SPEAKER_PREFIX).or_else(|| speaker.strip_prefix(FRESH_SPEAKER_PREFIX))
    else {
        return "en";
    };
    phrases::LANGUAGES.into_iter().find(|l| name.starts_with(l)).unwrap_or("en")
}

fn pick_voice(rng: &mut SplitMix64, voices: &[(&'static str, &'static str)]) -> (&'static str, &'static str) {
    voices[(rng.next_u64() % voices.len() as u64) as usize]
}

/// One of the prompt lists `voice` recorded every prompt of.
fn pick_list(rng: &mut SplitMix64, voice: &str, lists: &[&[&str]]) -> Result<Vec<String>, String> {
    let options: Vec<&[&str]> = lists.iter().copied().filter(|p| p.iter().all(|n| has(voice, n))).collect();
    if options.is_empty() {
        return Err(format!(
            "{}: no prompts (install the asterisk-core-sounds-*-wav packages)",
            Path::new(SOUNDS_DIR).join(voice).display()
        ));
    }
    Ok(options[(rng.next_u64() % options.len() as u64) as usize].iter().map(|s| (*s).to_owned()).collect())
}

/// The beep's pitch from its zero crossings (for the label; the score uses its times).
fn dominant_hz(samples: &[f64]) -> f64 {
    let crossings = samples.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    (crossings as f64 / 2.0 / (samples.len().max(1) as f64 / 8_000.0)).round()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_voice_speaks_its_sets_language_and_a_synthesized_one_english() {
        assert_eq!(language_of("asterisk/es_MX_f_Allison"), "es");
        assert_eq!(language_of("asterisk-prompt/it-menardi"), "it");
        assert_eq!(language_of("asterisk-prompt/es-co"), "es");
        assert_eq!(language_of("piper/joe"), "en");
    }
}
