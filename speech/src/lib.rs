//! Bond's speech pipeline. It owns utterance segmenting, the speech-to-text,
//! translation and text-to-speech engines, and the audio helpers they share
//! ([`audio`]: WAV files, espeak-ng); it must never import the control plane
//! (calls, the store, HTTP) or run on the media path.
//!
//! Speech on calls: utterances cut from a call's audio fork ([`segmenter`]),
//! speech-to-text engines behind one trait with fallback ([`stt`], embedded
//! [`whisper`], Deepgram's live API [`deepgram`], AssemblyAI's v3 [`assemblyai`]) and machine translation ([`mt`], embedded Apertium, and any
//! OpenAI-compatible endpoint, [`openai`]) and speech ([`tts`]: espeak-ng, and
//! an ElevenLabs-compatible API, [`elevenlabs`]). The call
//! side (which call, which events, speaking the translation into the other leg)
//! is `calls/src/speech.rs`. Nothing here runs on the media path: the fork's queue
//! drops what the consumer does not take.

pub mod assemblyai;
pub mod audio;
pub mod breaker;
pub mod chat;
pub mod deepgram;
pub mod elevenlabs;
pub mod mt;
pub mod openai;
pub mod segmenter;
pub mod stt;
pub mod tls;
pub mod tts;
pub mod voices;
#[cfg(feature = "whisper")]
pub mod whisper;
mod ws_session;
mod ws_stream;

use std::sync::Arc;

pub use chat::ChatChain;
pub use mt::{MtChain, MtError, Translator};
pub use stt::{SpeechToText, StreamPart, SttChain, SttError, Transcript};
pub use tts::{TextToSpeech, TtsChain, TtsError};

/// The engines a Bond instance runs with.
#[derive(Clone)]
pub struct SpeechEngines {
    pub stt: Arc<SttChain>,
    pub mt: Arc<MtChain>,
    pub tts: Arc<TtsChain>,
    /// The language models voice agents answer with (empty: none configured).
    pub llm: Arc<ChatChain>,
}

impl std::fmt::Debug for SpeechEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechEngines")
            .field("stt", &self.stt)
            .field("mt", &self.mt)
            .field("tts", &self.tts)
            .field("llm", &self.llm)
            .finish()
    }
}
