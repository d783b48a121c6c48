//! What a Telnyx voice name says of the voice, for the embedded voice
//! (espeak-ng) that speaks in its place: the language it speaks, when the name
//! gives one, and whether it is male.
//!
//! - `male`, `female`: Telnyx's basic voices; the language is the request's.
//! - `Telnyx.KokoroTTS.<accent><sex>_<name>` (`af_heart`, `bm_george`): Kokoro
//!   names its voices by language (a American English, b British English,
//!   e Spanish, f French, h Hindi, i Italian, j Japanese, p Brazilian
//!   Portuguese, z Mandarin) and sex (f, m).
//! - `Polly.<Name>` or `AWS.Polly.<Name>`, with `-Neural`, `-Generative`,
//!   `-LongForm` or `-Standard` after it: Amazon Polly's voice list gives each
//!   voice's language and sex (Telnyx ignores `language` with these voices).
//! - `Azure.<language>-<region>-<Name>Neural` (or `MultilingualNeural`, or a
//!   `:DragonHD...` variant): the name gives the language (espeak-ng speaks the
//!   language if it does not know the region). The sex is not in it: a name
//!   on Azure's published list of male voices is male, any other female.

/// What a voice name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceTraits {
    /// A BCP 47 tag, when the name implies one.
    pub language: Option<String>,
    pub male: bool,
}

/// Amazon Polly's voices: name (accents dropped), language, male.
const POLLY: &[(&str, &str, bool)] = &[
    ("Danielle", "en-US", false),
    ("Gregory", "en-US", true),
    ("Ivy", "en-US", false),
    ("Joanna", "en-US", false),
    ("Joey", "en-US", true),
    ("Justin", "en-US", true),
    ("Kendra", "en-US", false),
    ("Kevin", "en-US", true),
    ("Kimberly", "en-US", false),
    ("Matthew", "en-US", true),
    ("Ruth", "en-US", false),
    ("Salli", "en-US", false),
    ("Stephen", "en-US", true),
    ("Patrick", "en-US", true),
    ("Amy", "en-GB", false),
    ("Arthur", "en-GB", true),
    ("Brian", "en-GB", true),
    ("Emma", "en-GB", false),
    ("Geraint", "en-GB", true),
    ("Nicole", "en-AU", false),
    ("Olivia", "en-AU", false),
    ("Russell", "en-AU", true),
    ("Aditi", "en-IN", false),
    ("Kajal", "en-IN", false),
    ("Raveena", "en-IN", false),
    ("Niamh", "en-IE", false),
    ("Aria", "en-NZ", false),
    ("Ayanda", "en-ZA", false),
    ("Conchita", "es-ES", false),
    ("Enrique", "es-ES", true),
    ("Lucia", "es-ES", false),
    ("Sergio", "es-ES", true),
    ("Andres", "es-MX", true),
    ("Mia", "es-MX", false),
    ("Lupe", "es-US", false),
    ("Miguel", "es-US", true),
    ("Pedro", "es-US", true),
    ("Penelope", "es-US", false),
    ("Celine", "fr-FR", false),
    ("Lea", "fr-FR", false),
    ("Mathieu", "fr-FR", true),
    ("Remi", "fr-FR", true),
    ("Chantal", "fr-CA", false),
    ("Gabrielle", "fr-CA", false),
    ("Liam", "fr-CA", true),
    ("Daniel", "de-DE", true),
    ("Hans", "de-DE", true),
    ("Marlene", "de-DE", false),
    ("Vicki", "de-DE", false),
    ("Hannah", "de-AT", false),
    ("Adriano", "it-IT", true),
    ("Bianca", "it-IT", false),
    ("Carla", "it-IT", false),
    ("Giorgio", "it-IT", true),
    ("Camila", "pt-BR", false),
    ("Ricardo", "pt-BR", true),
    ("Thiago", "pt-BR", true),
    ("Vitoria", "pt-BR", false),
    ("Cristiano", "pt-PT", true),
    ("Ines", "pt-PT", false),
    ("Kazuha", "ja-JP", false),
    ("Mizuki", "ja-JP", false),
    ("Takumi", "ja-JP", true),
    ("Tomoko", "ja-JP", false),
    ("Seoyeon", "ko-KR", false),
    ("Zhiyu", "cmn-CN", false),
    ("Hala", "ar-AE", false),
    ("Zayd", "ar-AE", true),
    ("Zeina", "ar", false),
    ("Laura", "nl-NL", false),
    ("Lotte", "nl-NL", false),
    ("Ruben", "nl-NL", true),
    ("Mads", "da-DK", true),
    ("Naja", "da-DK", false),
    ("Sofie", "da-DK", false),
    ("Ida", "nb-NO", false),
    ("Liv", "nb-NO", false),
    ("Ewa", "pl-PL", false),
    ("Jacek", "pl-PL", true),
    ("Jan", "pl-PL", true),
    ("Maja", "pl-PL", false),
    ("Ola", "pl-PL", false),
    ("Carmen", "ro-RO", false),
    ("Maxim", "ru-RU", true),
    ("Tatyana", "ru-RU", false),
    ("Astrid", "sv-SE", false),
    ("Elin", "sv-SE", false),
    ("Burcu", "tr-TR", false),
    ("Filiz", "tr-TR", false),
    ("Gwyneth", "cy-GB", false),
    ("Dora", "is-IS", false),
    ("Karl", "is-IS", true),
];

/// Azure's male neural voices, by name (the locale is in the voice name):
/// English, Spanish, French, German, Italian, Portuguese, Dutch and the
/// Nordic, Slavic and Asian locales' published voices.
#[rustfmt::skip]
const AZURE_MALE: &[&str] = &[
    // English
    "Adam", "Andrew", "Brandon", "Brian", "Christopher", "Davis", "Derek", "Dustin", "Eric", "Guy",
    "Jacob", "Jason", "Kai", "Lewis", "Roger", "Samuel", "Steffan", "Tony", "Alfie", "Elliot",
    "Ethan", "Noah", "Oliver", "Ollie", "Ryan", "Thomas", "Darren", "Duncan", "Ken", "Neil", "Tim",
    "William", "Liam", "Prabhat", "Connor", "Mitchell", "Luke", "Wayne", "James", "Sam", "Chilemba",
    "Abeo", "Elimu", "Asad",
    // Spanish
    "Alvaro", "Arnau", "Dario", "Elias", "Nil", "Saul", "Teo", "Tristan", "Jorge", "Cecilio",
    "Gerardo", "Liberto", "Luciano", "Pelayo", "Yago", "Alonso", "Tomas", "Gonzalo", "Lorenzo",
    "Alex", "Sebastian", "Manuel", "Emilio", "Luis", "Andres", "Carlos", "Federico", "Roberto",
    "Victor", "Mario", "Rodrigo", "Mateo", "Marcelo", "Juan", "Javier",
    // French, German, Italian, Portuguese, Dutch
    "Henri", "Alain", "Claude", "Jerome", "Maurice", "Yves", "Remy", "Lucien", "Antoine", "Jean",
    "Thierry", "Gerard", "Fabrice", "Conrad", "Bernd", "Christoph", "Kasper", "Killian", "Klaus",
    "Ralf", "Florian", "Jonas", "Jan", "Diego", "Benigno", "Calimero", "Cataldo", "Gianni",
    "Lisandro", "Rinaldo", "Giuseppe", "Alessio", "Marcello", "Antonio", "Donato", "Fabio",
    "Humberto", "Julio", "Nicolau", "Valerio", "Macerio", "Duarte", "Maarten", "Arnaud",
    // Nordic, Slavic, Asian and others
    "Mattias", "Jeppe", "Finn", "Harri", "Dmitry", "Marek", "Ahmet", "Hamed", "Madhur", "Aarav",
    "Kunal", "Rehaan", "Keita", "Daichi", "Naoki", "InJoon", "BongJin", "GookMin", "Hyunsu",
    "Yunxi", "Yunjian", "Yunyang", "Yunfeng", "Yunhao", "Yunze", "Yunye", "Yunjie", "Yunfan",
    "Avri", "Ardi", "Niwat", "NamMinh", "Osman", "Ostap", "Nils", "Kert",
    "Antonin", "Lukas", "Tamas", "Emil", "Nestoras", "Borislav", "Srecko", "Rok", "Leonas", "Gunnar",
];

/// Kokoro's language letters.
const KOKORO: &[(u8, &str)] = &[
    (b'a', "en-US"),
    (b'b', "en-GB"),
    (b'e', "es"),
    (b'f', "fr-FR"),
    (b'h', "hi"),
    (b'i', "it"),
    (b'j', "ja"),
    (b'p', "pt-BR"),
    (b'z', "cmn"),
];

/// What `voice` (Telnyx's `voice` field) says of the voice.
pub fn traits(voice: &str) -> VoiceTraits {
    let basic = VoiceTraits { language: None, male: voice.eq_ignore_ascii_case("male") };
    if let Some(name) = voice.strip_prefix("Telnyx.KokoroTTS.") {
        return match name.as_bytes() {
            [accent, sex, ..] => VoiceTraits {
                language: KOKORO.iter().find(|(a, _)| a == accent).map(|&(_, l)| l.to_owned()),
                male: *sex == b'm',
            },
            _ => basic,
        };
    }
    if let Some(name) = voice.strip_prefix("AWS.Polly.").or_else(|| voice.strip_prefix("Polly.")) {
        let name = name.split('-').next().unwrap_or(name);
        let plain: String = name.chars().map(unaccented).collect();
        return POLLY
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(&plain))
            .map_or(basic, |&(_, language, male)| VoiceTraits { language: Some(language.to_owned()), male });
    }
    if let Some(name) = voice.strip_prefix("Azure.") {
        let mut parts = name.splitn(3, '-');
        if let (Some(language), Some(region), Some(rest)) = (parts.next(), parts.next(), parts.next()) {
            let letters = |s: &str, n: std::ops::RangeInclusive<usize>| {
                n.contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric())
            };
            if letters(language, 2..=3) && letters(region, 2..=3) {
                let male = AZURE_MALE.iter().any(|m| m.eq_ignore_ascii_case(azure_name(rest)));
                return VoiceTraits { language: Some(format!("{language}-{region}")), male };
            }
        }
    }
    basic
}

/// An Azure voice's own name: `AndrewMultilingualNeural`, `Andrew:DragonHDLatestNeural` -> `Andrew`.
fn azure_name(rest: &str) -> &str {
    let name = rest.split(':').next().unwrap_or(rest);
    let name = name.strip_suffix("Neural").unwrap_or(name);
    name.strip_suffix("Multilingual").unwrap_or(name)
}

/// The letters Polly's names carry accents on, without them.
fn unaccented(c: char) -> char {
    match c {
        'é' | 'è' => 'e',
        'í' => 'i',
        'ó' => 'o',
        'á' => 'a',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(voice: &str, language: Option<&str>, male: bool) {
        let t = traits(voice);
        assert_eq!((t.language.as_deref(), t.male), (language, male), "{voice}");
    }

    #[test]
    fn basic_voices_keep_the_requests_language() {
        check("male", None, true);
        check("Male", None, true);
        check("female", None, false);
        check("", None, false);
    }

    #[test]
    fn a_kokoro_name_gives_the_language_and_the_sex() {
        check("Telnyx.KokoroTTS.am_adam", Some("en-US"), true);
        check("Telnyx.KokoroTTS.bm_george", Some("en-GB"), true);
        check("Telnyx.KokoroTTS.af_heart", Some("en-US"), false);
        check("Telnyx.KokoroTTS.ef_dora", Some("es"), false);
        check("Telnyx.KokoroTTS.af", Some("en-US"), false);
        check("Telnyx.KokoroTTS.x", None, false);
    }

    #[test]
    fn a_polly_voice_is_looked_up_with_or_without_its_engine_and_accents() {
        check("AWS.Polly.Matthew", Some("en-US"), true);
        check("AWS.Polly.Joanna-Neural", Some("en-US"), false);
        check("Polly.Lupe", Some("es-US"), false);
        check("Polly.Miguel-Standard", Some("es-US"), true);
        check("AWS.Polly.Léa-Neural", Some("fr-FR"), false);
        check("AWS.Polly.Rémi-Generative", Some("fr-FR"), true);
        check("AWS.Polly.NoSuchVoice", None, false);
    }

    #[test]
    fn an_azure_name_gives_its_language_and_a_male_voice_is_known_by_its_name() {
        check("Azure.es-MX-DaliaNeural", Some("es-MX"), false);
        check("Azure.es-MX-JorgeNeural", Some("es-MX"), true);
        check("Azure.en-US-AndrewMultilingualNeural", Some("en-US"), true);
        check("Azure.en-US-Andrew:DragonHDLatestNeural", Some("en-US"), true);
        check("Azure.en-US-Ava:DragonHDLatestNeural", Some("en-US"), false);
        check("Azure.de-DE-ConradNeural", Some("de-DE"), true);
        check("Azure.fr-BE-CharlineNeural", Some("fr-BE"), false);
        check("Azure.zh-CN-XiaoxiaoMultilingualNeural", Some("zh-CN"), false);
        check("Azure.Jenny", None, false);
        check("Azure.e s-MX-Dalia", None, false);
    }
}
