//! Text-to-speech behind one trait, for speaking translations into a call:
//! espeak-ng (embedded, Debian, a subprocess: `audio/espeak.rs`) and an
//! ElevenLabs-compatible HTTP API (`elevenlabs.rs`). A `TtsChain` asks them in
//! order; one that fails rests (a [`Breaker`]) while the next answers.

use futures_util::future::BoxFuture;

use super::breaker::Fallback;
use crate::audio::espeak::{self, Speech};
use crate::audio::wav;

/// Speech as 16 kHz mono samples.
pub const TTS_RATE: bond_codecs::SampleRate = bond_codecs::SampleRate::Hz16000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0} failed: {1}")]
pub struct TtsError(pub &'static str, pub String);

pub trait TextToSpeech: Send + Sync {
    fn name(&self) -> &'static str;
    /// `text` spoken in `language` (BCP 47), as samples at [`TTS_RATE`].
    fn speak(&self, text: &str, language: &str) -> BoxFuture<'static, Result<Vec<i16>, TtsError>>;
}

/// espeak-ng's female variant of the language's voice.
#[derive(Debug, Default)]
pub struct Espeak;

impl TextToSpeech for Espeak {
    fn name(&self) -> &'static str {
        "espeak-ng"
    }

    fn speak(&self, text: &str, language: &str) -> BoxFuture<'static, Result<Vec<i16>, TtsError>> {
        let speech = Speech {
            text: text.to_owned(),
            ssml: false,
            language: language.to_owned(),
            voice: "female".into(),
        };
        Box::pin(async move {
            let failed = |e: String| TtsError("espeak-ng", e);
            let bytes = espeak::synthesize(&speech).await.map_err(|e| failed(e.to_string()))?;
            wav::decode(&bytes, TTS_RATE).map_err(failed)
        })
    }
}

/// Voices in order, each behind its breaker.
pub struct TtsChain(Fallback<dyn TextToSpeech>);

impl std::fmt::Debug for TtsChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.members().map(|v| v.name())).finish()
    }
}

impl TtsChain {
    pub fn new(voices: Vec<Box<dyn TextToSpeech>>) -> Self {
        Self(Fallback::new(voices))
    }

    pub async fn speak(&self, text: &str, language: &str) -> Result<Vec<i16>, TtsError> {
        let none = TtsError("speech", "no voice is available".into());
        self.0.first(|v| v.name(), |v| v.speak(text, language), |_| true, none).await
    }
}
