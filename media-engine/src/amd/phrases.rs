//! What voicemails, carriers and menus say and people answering a call
//! rarely do, per language: a greeting holding one of these is a machine's.
//! Written down before any transcript of the evaluation corpus was read
//! (2026-12-01); "you've reached" was struck after it, since people
//! answering a business line say it too.

/// Phrases by language (ISO 639-1), matched in a lower-cased transcript.
const PHRASES: [(&str, &[&str]); 5] = [
    (
        "en",
        &[
            "leave a message",
            "leave your message",
            "leave me a message",
            "after the tone",
            "after the beep",
            "at the tone",
            "voicemail",
            "voice mail",
            "mailbox",
            "not available",
            "unavailable",
            "can't come to the phone",
            "cannot come to the phone",
            "is not in service",
            "no longer in service",
            "number you have dialed",
            "number you dialed",
            "all circuits",
            "try your call again",
            "try again later",
            "please try",
            "extension",
            "press",
            "record your message",
            "get back to you",
            "return your call",
            "the person you are calling",
            "is on the phone",
            "on another call",
        ],
    ),
    (
        "es",
        &[
            "deje su mensaje",
            "deje un mensaje",
            "su mensaje",
            "después del tono",
            "despues del tono",
            "buzón",
            "buzon",
            "no está disponible",
            "no esta disponible",
            "no disponible",
            "extensión",
            "extension",
            "todos los circuitos",
            "intente más tarde",
            "intente mas tarde",
            "marque",
            "oprima",
            "no está en servicio",
            "no esta en servicio",
        ],
    ),
    (
        "fr",
        &[
            "laissez",
            "message",
            "après le bip",
            "apres le bip",
            "après le signal",
            "messagerie",
            "boîte vocale",
            "boite vocale",
            "n'est pas disponible",
            "indisponible",
            "poste",
            "tous les circuits",
            "rappeler plus tard",
            "composez",
            "appuyez",
            "n'est plus en service",
            "pas en service",
        ],
    ),
    (
        "it",
        &[
            "lasciate",
            "lascia",
            "messaggio",
            "dopo il segnale",
            "dopo il bip",
            "segreteria",
            "casella vocale",
            "non è disponibile",
            "non disponibile",
            "interno",
            "tutte le linee",
            "riprovare più tardi",
            "riprova",
            "digitare",
            "premere",
            "non è attivo",
            "inesistente",
        ],
    ),
    (
        "ru",
        &[
            "оставьте",
            "сообщение",
            "после сигнала",
            "автоответчик",
            "голосовая почта",
            "недоступен",
            "не может ответить",
            "добавочный",
            "все линии заняты",
            "перезвоните позже",
            "попробуйте позже",
            "нажмите",
            "не обслуживается",
            "не существует",
        ],
    ),
];

/// The languages whose phrases are known (ISO 639-1).
pub const LANGUAGES: [&str; 5] = ["en", "es", "fr", "it", "ru"];

/// The known language `tag` names (`es`, `es-MX`, `ES`), if any.
pub fn language(tag: &str) -> Option<&'static str> {
    let primary = tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
    LANGUAGES.into_iter().find(|l| *l == primary)
}

/// The first machine's phrase `transcript` holds, in `language`.
pub fn machine_phrase(transcript: &str, language: &str) -> Option<&'static str> {
    let text = transcript.to_lowercase();
    let (_, phrases) = PHRASES.iter().find(|(l, _)| *l == language)?;
    phrases.iter().copied().find(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_voicemail_phrase_is_found_in_its_own_language_only() {
        assert_eq!(machine_phrase("Hi, it's Kevin. Leave a message.", "en"), Some("leave a message"));
        assert_eq!(
            machine_phrase("Tutti i circuiti... riprovare più tardi.", "it"),
            Some("riprovare più tardi")
        );
        assert_eq!(machine_phrase("Leave a message.", "ru"), None);
    }

    #[test]
    fn a_person_answering_a_business_line_says_no_machines_phrase() {
        assert_eq!(machine_phrase("Good afternoon, you've reached Metro Cable, Kevin speaking.", "en"), None);
        assert_eq!(machine_phrase("Hello? Who is this?", "en"), None);
    }

    #[test]
    fn a_language_tag_is_known_by_its_primary_subtag() {
        assert_eq!(language("es-MX"), Some("es"));
        assert_eq!(language("FR"), Some("fr"));
        assert_eq!(language("de"), None);
    }
}
