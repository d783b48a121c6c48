//! Speech for `speak`: espeak-ng (Debian package `espeak-ng`), run as a
//! subprocess because it is GPL. The text goes in on stdin (never as an
//! argument), the WAV comes back through a temporary file.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// Longest text Bond speaks in one `speak` (Telnyx's limit).
pub const MAX_TEXT_CHARS: usize = 3_000;
const TIMEOUT: Duration = Duration::from_secs(20);

/// What to say and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speech {
    pub text: String,
    /// `payload_type: "ssml"`: espeak-ng reads the SSML markup.
    pub ssml: bool,
    /// A BCP 47 tag (`en-US`, `es`, `fr-FR`).
    pub language: String,
    /// `female` picks a female variant; anything else (`male`) gets
    /// espeak-ng's default for the language ([`Speech::in_place_of`] reads
    /// Telnyx's voice names).
    pub voice: String,
}

/// Why speech could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SpeakError {
    #[error("espeak-ng is not installed (Debian package espeak-ng)")]
    NotInstalled,
    #[error("espeak-ng has no voice for language '{0}'")]
    UnknownLanguage(String),
    #[error("espeak-ng failed: {0}")]
    Failed(String),
}

impl Speech {
    /// Speech by espeak-ng in place of Telnyx's `voice`: in the language the
    /// voice speaks when its name tells (`voices.rs`), else in `language`;
    /// male or female as the voice is.
    pub fn in_place_of(text: String, ssml: bool, language: &str, voice: &str) -> Self {
        let traits = crate::voices::traits(voice);
        Self {
            text,
            ssml,
            language: traits.language.unwrap_or_else(|| language.to_owned()),
            voice: if traits.male { "male" } else { "female" }.to_owned(),
        }
    }

    /// espeak-ng's `-v`: the language tag lowercased, plus a variant for `female`.
    fn voice_argument(&self) -> String {
        let language = self.language.to_ascii_lowercase();
        if self.voice.eq_ignore_ascii_case("female") {
            format!("{language}+f3")
        } else {
            language
        }
    }
}

/// Synthesize `speech`; returns the WAV bytes (espeak-ng speaks at 22,050 Hz).
pub async fn synthesize(speech: &Speech) -> Result<Vec<u8>, SpeakError> {
    let valid_tag = !speech.language.is_empty()
        && speech.language.len() <= 35
        && speech.language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_tag {
        return Err(SpeakError::UnknownLanguage(speech.language.clone()));
    }
    let out = std::env::temp_dir().join(format!("bond-speak-{}.wav", uuid::Uuid::new_v4().simple()));
    let result = tokio::time::timeout(TIMEOUT, run(speech, &out)).await;
    let wav = match result {
        Ok(Ok(())) => tokio::fs::read(&out).await.map_err(|e| SpeakError::Failed(e.to_string())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SpeakError::Failed(format!("no speech within {} s", TIMEOUT.as_secs()))),
    };
    let _ = tokio::fs::remove_file(&out).await;
    wav
}

async fn run(speech: &Speech, out: &std::path::Path) -> Result<(), SpeakError> {
    let mut command = tokio::process::Command::new("espeak-ng");
    command.arg("-v").arg(speech.voice_argument()).arg("-w").arg(out);
    if speech.ssml {
        command.arg("-m");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SpeakError::NotInstalled,
            _ => SpeakError::Failed(e.to_string()),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(speech.text.as_bytes()).await.map_err(|e| SpeakError::Failed(e.to_string()))?;
    }
    let output = child.wait_with_output().await.map_err(|e| SpeakError::Failed(e.to_string()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("voice does not exist") {
        return Err(SpeakError::UnknownLanguage(speech.language.clone()));
    }
    if !output.status.success() {
        return Err(SpeakError::Failed(stderr.trim().to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_voice_speaks_its_language_as_its_sex_and_a_basic_one_the_language_asked() {
        let speech = |language: &str, voice: &str| Speech::in_place_of("hi".into(), false, language, voice);
        assert_eq!(speech("en-US", "AWS.Polly.Miguel-Neural").voice_argument(), "es-us");
        assert_eq!(speech("en-US", "Polly.Lupe").voice_argument(), "es-us+f3");
        assert_eq!(speech("en-US", "Azure.fr-CA-SylvieNeural").voice_argument(), "fr-ca+f3");
        assert_eq!(speech("en-GB", "female").voice_argument(), "en-gb+f3");
        assert_eq!(speech("es", "male").voice_argument(), "es");
        assert_eq!(speech("fr", "ElevenLabs.m.v").voice_argument(), "fr+f3");
    }
}
