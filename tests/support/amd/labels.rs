//! Each clip's truth (who answered, when a person finished speaking, a
//! machine's beep) and the corpus's `labels.csv` that carries it.

/// Who or what answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    Human,
    Machine,
    Fax,
    Silence,
}

impl Label {
    pub const ALL: [Label; 4] = [Self::Human, Self::Machine, Self::Fax, Self::Silence];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Machine => "machine",
            Self::Fax => "fax",
            Self::Silence => "silence",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// When a clip's part was added to the corpus: each part after the detector
/// had been tuned on, and its errors read in, the parts before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The first part (synthesized and Asterisk's prompts): tuning and held-out speakers.
    First,
    /// The fresh part (DECtalk, hibari, two recorded voices), added 2026-11-30.
    Fresh,
    /// The late part (GnuSpeech with wordings of its own, a Colombian recorded voice), added 2026-12-01.
    Late,
}

impl Part {
    pub const ALL: [Part; 3] = [Self::First, Self::Fresh, Self::Late];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Fresh => "fresh",
            Self::Late => "late",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One clip's truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipInfo {
    pub file: String,
    pub label: Label,
    /// What kind of clip, e.g. `human/second-hello`.
    pub kind: String,
    /// Who spoke, `synth/voice` (`none` for tones and silence).
    pub speaker: String,
    /// In the part the detector was never tuned on.
    pub held_out: bool,
    /// The part it belongs to; every clip of a later part is held out.
    pub part: Part,
    /// What the line added, e.g. `pcmu+noise+loss2%+tv`.
    pub line: String,
    /// End of the first thing a person said (ms), for people.
    pub first_utterance_end_ms: Option<u32>,
    /// The beep after a greeting, for machines that have one.
    pub beep: Option<(u32, u32, f64)>,
}

const HEADER: &str =
    "file,label,kind,speaker,held_out,line,first_utterance_end_ms,beep_start_ms,beep_end_ms,beep_hz,part";

/// The clips' labels as CSV, with the columns of `HEADER`.
pub fn labels_csv(clips: &[ClipInfo]) -> String {
    let mut out = format!("{HEADER}\n");
    for c in clips {
        let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            c.file,
            c.label.as_str(),
            c.kind,
            c.speaker,
            c.held_out,
            c.line,
            opt(c.first_utterance_end_ms),
            opt(c.beep.map(|b| b.0)),
            opt(c.beep.map(|b| b.1)),
            c.beep.map(|b| format!("{:.0}", b.2)).unwrap_or_default(),
            c.part.as_str()
        ));
    }
    out
}

pub fn parse_labels(csv: &str) -> Result<Vec<ClipInfo>, String> {
    let mut lines = csv.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("labels.csv does not start with {HEADER} (remake the corpus)"));
    }
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 11 {
                return Err(format!("bad label line: {line}"));
            }
            let num = |s: &str| if s.is_empty() { None } else { s.parse::<u32>().ok() };
            Ok(ClipInfo {
                file: f[0].to_owned(),
                label: Label::parse(f[1]).ok_or_else(|| format!("bad label: {}", f[1]))?,
                kind: f[2].to_owned(),
                speaker: f[3].to_owned(),
                held_out: f[4] == "true",
                part: Part::parse(f[10]).ok_or_else(|| format!("bad part: {}", f[10]))?,
                line: f[5].to_owned(),
                first_utterance_end_ms: num(f[6]),
                beep: match (num(f[7]), num(f[8])) {
                    (Some(a), Some(b)) => Some((a, b, f[9].parse().unwrap_or(0.0))),
                    _ => None,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_back_as_written_with_each_clips_part() {
        let clip = |file: &str, part| ClipInfo {
            file: file.to_owned(),
            label: Label::Machine,
            kind: "machine/voicemail+beep".to_owned(),
            speaker: "asterisk-prompt/fr-armelle".to_owned(),
            held_out: true,
            part,
            line: "pcmu+noise".to_owned(),
            first_utterance_end_ms: None,
            beep: Some((11_728, 12_063, 979.0)),
        };
        let clips = vec![
            clip("clip-2900.wav", Part::Fresh),
            clip("clip-0001.wav", Part::First),
            clip("clip-3500.wav", Part::Late),
        ];
        assert_eq!(parse_labels(&labels_csv(&clips)).unwrap(), clips);
        let old = "file,label,kind,speaker,held_out,line,first_utterance_end_ms,beep_start_ms,beep_end_ms,beep_hz,fresh\n";
        assert!(parse_labels(old).unwrap_err().contains("remake the corpus"));
    }
}
