//! The answer's text as sentences: where the model's text is cut for
//! synthesis, and what of what the caller heard the history lacks.

/// What of `heard` is not in `recorded` (what the history holds of the
/// answer already), whitespace aside.
pub(super) fn beyond(heard: &str, recorded: &str) -> String {
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let (heard, recorded) = (words(heard), words(recorded));
    match heard.strip_prefix(&recorded) {
        Some(rest) => rest.trim().to_owned(),
        None if recorded.starts_with(&heard) => String::new(),
        None => heard,
    }
}

/// Where the first sentence of `text` ends (after its `.`, `!` or `?` and the
/// space that follows), if one is complete.
pub(super) fn sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (1..bytes.len()).find(|&i| {
        matches!(bytes[i - 1], b'.' | b'!' | b'?' | b'\n')
            && bytes[i].is_ascii_whitespace()
            && !ends_with_abbreviation(&text[..i])
    })
}

/// "Dr.", "Mr.", "e.g." and single initials do not end a sentence.
fn ends_with_abbreviation(text: &str) -> bool {
    let last = text.split_whitespace().last().unwrap_or("");
    let word = last.trim_end_matches('.');
    matches!(word.to_lowercase().as_str(), "dr" | "mr" | "mrs" | "ms" | "st" | "e.g" | "i.e" | "vs")
        || (word.len() == 1 && word.chars().all(char::is_alphabetic) && last.ends_with('.'))
}
