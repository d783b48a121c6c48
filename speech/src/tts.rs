//! Text-to-speech behind one trait, for speaking translations into a call:
//! espeak-ng (embedded, Debian, a subprocess: `audio/espeak.rs`) and an
//! ElevenLabs-compatible HTTP API (`elevenlabs.rs`). A `TtsChain` asks them in
//! order; one that fails rests (a [`Breaker`]) while the next answers.
//!
//! An engine that streams (ElevenLabs) hands its speech over in parts as it
//! comes ([`SpeechParts`]): a voice agent plays the first part while the rest
//! is still being synthesized. The chain falls back only before the first
//! part; a stream that fails later ends the sentence where it broke off.

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::breaker::Fallback;
use crate::audio::espeak::{self, Speech};
use crate::audio::wav;

/// Speech as 16 kHz mono samples.
pub const TTS_RATE: bond_codecs::SampleRate = bond_codecs::SampleRate::Hz16000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0} failed: {1}")]
pub struct TtsError(pub &'static str, pub String);

/// Speech as an engine hands it over: the first part, then the rest as it
/// comes (nothing more for an engine that synthesizes the whole at once).
pub struct SpeechParts {
    pub first: Vec<i16>,
    pub rest: BoxStream<'static, Result<Vec<i16>, TtsError>>,
}

impl std::fmt::Debug for SpeechParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechParts").field("first", &self.first.len()).finish_non_exhaustive()
    }
}

impl SpeechParts {
    /// Speech synthesized whole.
    pub fn whole(samples: Vec<i16>) -> Self {
        Self { first: samples, rest: stream::empty().boxed() }
    }

    /// Every part, joined.
    pub async fn collect(mut self) -> Result<Vec<i16>, TtsError> {
        let mut all = self.first;
        while let Some(part) = self.rest.next().await {
            all.extend(part?);
        }
        Ok(all)
    }
}

pub trait TextToSpeech: Send + Sync {
    fn name(&self) -> &'static str;
    /// `text` spoken in `language` (BCP 47) with Telnyx's `voice` ("" for the
    /// engine's own; an engine takes what names one of its voices and otherwise
    /// speaks with its own), as samples at [`TTS_RATE`].
    fn speak(
        &self,
        text: &str,
        language: &str,
        voice: &str,
    ) -> BoxFuture<'static, Result<Vec<i16>, TtsError>>;

    /// As [`speak`](Self::speak), in parts as they are synthesized; the
    /// future is ready with the first part. By default: the whole, as one.
    fn speak_parts(
        &self,
        text: &str,
        language: &str,
        voice: &str,
    ) -> BoxFuture<'static, Result<SpeechParts, TtsError>> {
        let whole = self.speak(text, language, voice);
        Box::pin(async move { whole.await.map(SpeechParts::whole) })
    }
}

/// espeak-ng in place of the voice named: its language and sex when the
/// name tells them (`voices.rs`), else the language asked for and espeak-ng's
/// female variant.
#[derive(Debug, Default)]
pub struct Espeak;

impl TextToSpeech for Espeak {
    fn name(&self) -> &'static str {
        "espeak-ng"
    }

    fn speak(
        &self,
        text: &str,
        language: &str,
        voice: &str,
    ) -> BoxFuture<'static, Result<Vec<i16>, TtsError>> {
        let speech = Speech::in_place_of(text.to_owned(), false, language, voice);
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

    pub async fn speak(&self, text: &str, language: &str, voice: &str) -> Result<Vec<i16>, TtsError> {
        let none = TtsError("speech", "no voice is available".into());
        self.0.first(|v| v.name(), |v| v.speak(text, language, voice), |_| true, none).await
    }

    /// As [`speak`](Self::speak), in parts: ready with the first part of the
    /// first voice that gives one, with how each voice asked before it failed
    /// (all of them, when none did).
    pub async fn speak_parts_noting(
        &self,
        text: &str,
        language: &str,
        voice: &str,
    ) -> Result<(SpeechParts, Vec<TtsError>), Vec<TtsError>> {
        let spoken =
            self.0.first_noting(|v| v.name(), |v| v.speak_parts(text, language, voice), |_| true).await;
        none_resting(spoken)
    }
}

/// No voice asked at all (every one resting) is a failure of its own.
fn none_resting<R>(
    spoken: Result<(R, Vec<TtsError>), Vec<TtsError>>,
) -> Result<(R, Vec<TtsError>), Vec<TtsError>> {
    match spoken {
        Err(failures) if failures.is_empty() => {
            Err(vec![TtsError("speech", "no voice is available (all resting after failures)".into())])
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voice that speaks one sample, or fails as told.
    struct Scripted(&'static str, bool);

    impl TextToSpeech for Scripted {
        fn name(&self) -> &'static str {
            self.0
        }
        fn speak(&self, _: &str, _: &str, _: &str) -> BoxFuture<'static, Result<Vec<i16>, TtsError>> {
            let (name, works) = (self.0, self.1);
            Box::pin(async move {
                if works {
                    Ok(vec![1])
                } else {
                    Err(TtsError(name, "down".into()))
                }
            })
        }
    }

    #[tokio::test]
    async fn the_voices_that_failed_before_one_spoke_are_noted_and_none_left_is_a_failure() {
        let chain =
            TtsChain::new(vec![Box::new(Scripted("cloud", false)), Box::new(Scripted("local", true))]);
        let (parts, failures) = chain.speak_parts_noting("hi", "en", "").await.unwrap();
        assert_eq!((parts.first, failures), (vec![1], vec![TtsError("cloud", "down".into())]));
        // The cloud voice rests after its failure: the local one speaks, nothing failed.
        assert_eq!(chain.speak_parts_noting("hi", "en", "").await.unwrap().1, vec![]);

        let broken = TtsChain::new(vec![Box::new(Scripted("only", false))]);
        assert_eq!(
            broken.speak_parts_noting("hi", "en", "").await.unwrap_err(),
            vec![TtsError("only", "down".into())]
        );
        let resting = broken.speak_parts_noting("hi", "en", "").await.unwrap_err();
        assert!(resting[0].to_string().contains("resting"), "{resting:?}");
    }
}
