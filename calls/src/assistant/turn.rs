//! What the caller's words say about their turn: whether a transcript reads
//! finished (the agent may answer after the usual pause) or stops mid-number or
//! mid-clause (the caller is still going: wait longer), and whether an
//! utterance was only a backchannel ("mm-hm", "yeah") or a noise, which never
//! takes the turn from the agent. Pure text rules, no clock.

/// Why the caller's turn is taken to be over (`end_of_turn.reason` in the events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOfTurn {
    /// The words read finished and the caller stayed quiet.
    Complete,
    /// The words stopped on a number; the caller stayed quiet for the longer wait.
    AfterNumber,
    /// The words stopped mid-clause ("and", "my", a comma); the longer wait passed.
    AfterUnfinishedClause,
}

impl EndOfTurn {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::AfterNumber => "silence_after_number",
            Self::AfterUnfinishedClause => "silence_after_unfinished_clause",
        }
    }
}

/// How a transcript ends: finished, or what kind of unfinished.
pub fn reading(transcript: &str) -> EndOfTurn {
    let text = transcript.trim();
    let last = words(text).pop().unwrap_or_default();
    // A number comes first: "four one five," is a number still being read,
    // however the recognizer punctuated the pause after it.
    if last.chars().any(|c| c.is_ascii_digit()) || NUMBER_WORDS.contains(&last.as_str()) {
        EndOfTurn::AfterNumber
    } else if text.ends_with([',', '-', ':', ';'])
        || text.ends_with("...")
        || text.ends_with('…')
        || CONTINUING.contains(&last.as_str())
    {
        EndOfTurn::AfterUnfinishedClause
    } else {
        EndOfTurn::Complete
    }
}

/// Whether an utterance says nothing that takes the turn: no words (a cough,
/// a click, a recognizer's "(coughs)"), or only backchannel words.
pub fn is_backchannel(transcript: &str) -> bool {
    // Recognizers write non-speech as "(coughs)", "[noise]", "*clears throat*".
    let spoken: String = strip_bracketed(transcript);
    words(&spoken).iter().all(|w| BACKCHANNEL.contains(&w.as_str()))
}

/// Whether a transcript holds any spoken word (not only punctuation or "(coughs)").
pub fn has_words(transcript: &str) -> bool {
    !words(&strip_bracketed(transcript)).is_empty()
}

/// Lower-case words, punctuation off both ends ("mm-hm." -> "mm-hm").
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn strip_bracketed(text: &str) -> String {
    let (mut depth, mut starred) = (0u32, false);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '*' => starred = !starred,
            _ if depth == 0 && !starred => out.push(c),
            _ => {}
        }
    }
    out
}

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "oh",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "double",
    "triple",
    "point",
    "dash",
];

/// Words a finished sentence does not end on.
const CONTINUING: &[&str] = &[
    "and", "or", "but", "so", "because", "if", "then", "that", "which", "who", "the", "a", "an", "to", "of",
    "in", "on", "at", "for", "with", "from", "is", "are", "was", "my", "your", "our", "their", "his", "her",
    "its", "um", "uh", "er", "erm", "like", "about", "than", "as", "into", "by",
];

const BACKCHANNEL: &[&str] = &[
    "mm", "mmm", "hm", "hmm", "mhm", "mm-hm", "mm-hmm", "uh-huh", "uh", "um", "yeah", "yep", "yes", "ok",
    "okay", "right", "sure", "aha", "ah", "oh", "huh", "i", "see", "got", "it",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_sentence_reads_complete() {
        assert_eq!(reading("I'd like to check my order."), EndOfTurn::Complete);
        assert_eq!(reading("Can you help me?"), EndOfTurn::Complete);
        assert_eq!(reading(""), EndOfTurn::Complete);
    }

    #[test]
    fn a_number_read_out_reads_unfinished() {
        assert_eq!(reading("My number is 555."), EndOfTurn::AfterNumber);
        assert_eq!(reading("It's four one five,"), EndOfTurn::AfterNumber);
        assert_eq!(reading("1, 2, 3..."), EndOfTurn::AfterNumber);
        assert_eq!(reading("four one five"), EndOfTurn::AfterNumber);
        assert_eq!(reading("the order is 12-34"), EndOfTurn::AfterNumber);
    }

    #[test]
    fn a_clause_cut_off_reads_unfinished() {
        assert_eq!(reading("I wanted to ask about"), EndOfTurn::AfterUnfinishedClause);
        assert_eq!(reading("My name is John and"), EndOfTurn::AfterUnfinishedClause);
        assert_eq!(reading("Well, um..."), EndOfTurn::AfterUnfinishedClause);
    }

    #[test]
    fn backchannels_and_noises_do_not_take_the_turn() {
        for heard in
            ["Mm-hm.", "yeah", "Okay, okay.", "(coughs)", "[noise]", " ", "*clears throat*", "Uh-huh, I see."]
        {
            assert!(is_backchannel(heard), "{heard}");
        }
        for said in ["Wait, stop.", "No.", "Yeah, but what about my refund?", "(coughs) Sorry, which one?"] {
            assert!(!is_backchannel(said), "{said}");
        }
    }
}
