//! Deepgram's live transcription (`wss://api.deepgram.com/v1/listen`, as its
//! documentation describes it): connect with `Authorization: Token <key>` and
//! the audio's format in the query and send binary 16-bit PCM in 100 ms frames.
//! A call's stream keeps one connection ([`crate::ws_session`]): after each
//! utterance `{"type":"Finalize"}`, answered by final `Results` the last of
//! which says `from_finalize`; `{"type":"KeepAlive"}` while quiet; and
//! `{"type":"CloseStream"}` when the call's transcription ends. Without a
//! stream, one utterance gets a connection of its own, closed by `CloseStream`.
//! The final results' transcripts, in order, are the utterance's text.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::stt::{SpeechToText, StreamPart, SttError, Transcript, STT_RATE_HZ};
use super::tls::TlsConfig;
use super::ws_session::{StreamProtocol, Streams, UtteranceReader};

const NAME: &str = "deepgram";
/// Deepgram closes a connection that has had no audio for 10 s; `KeepAlive` holds it.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(5);

/// Where and how to reach Deepgram.
#[derive(Debug, Clone)]
struct Config {
    /// `wss://api.deepgram.com/v1/listen`, or a compatible server.
    url: String,
    api_key: String,
    model: String,
    tls: Option<TlsConfig>,
}

#[derive(Debug, Clone)]
pub struct Deepgram {
    config: Config,
    /// One connection per call stream.
    streams: Arc<Streams<Config>>,
}

impl Deepgram {
    pub fn new(url: &str, api_key: &str, model: &str) -> Self {
        let config =
            Config { url: url.to_owned(), api_key: api_key.to_owned(), model: model.to_owned(), tls: None };
        Self::with(config, KEEP_ALIVE_EVERY)
    }

    fn with(config: Config, keep_alive_every: Duration) -> Self {
        Self { streams: Arc::new(Streams::new(config.clone(), keep_alive_every)), config }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self::with(Config { tls: Some(tls), ..self.config }, KEEP_ALIVE_EVERY)
    }

    /// Send `KeepAlive` after this much quiet on a call's connection (5 s unless changed).
    pub fn keeping_alive_every(self, every: Duration) -> Self {
        Self::with(self.config, every)
    }
}

impl Config {
    /// `interim` asks for interim results too (a call's connection gives interim text).
    fn listen_url(&self, language: &str, interim: bool) -> Result<url::Url, String> {
        let mut url = url::Url::parse(&self.url).map_err(|e| format!("{}: {e}", self.url))?;
        url.query_pairs_mut()
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &STT_RATE_HZ.to_string())
            .append_pair("channels", "1")
            .append_pair("model", &self.model)
            .append_pair("language", language)
            .append_pair("punctuate", "true")
            .append_pair("interim_results", if interim { "true" } else { "false" });
        Ok(url)
    }

    fn authorization(&self) -> String {
        format!("Token {}", self.api_key)
    }
}

impl StreamProtocol for Config {
    type Reader = Heard;
    const NAME: &'static str = NAME;

    fn endpoint(&self, language: &str, streaming: bool) -> Result<(url::Url, String), String> {
        Ok((self.listen_url(language, streaming)?, self.authorization()))
    }

    fn tls(&self) -> Option<TlsConfig> {
        self.tls.clone()
    }

    fn flush(&self) -> &'static str {
        r#"{"type":"Finalize"}"#
    }

    fn keep_alive(&self) -> Option<&'static str> {
        Some(r#"{"type":"KeepAlive"}"#)
    }

    fn close(&self) -> &'static str {
        r#"{"type":"CloseStream"}"#
    }
}

impl SpeechToText for Deepgram {
    fn name(&self) -> &'static str {
        NAME
    }

    fn transcribe(
        &self,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        self.streams.alone(audio, language)
    }

    fn transcribe_stream(
        &self,
        part: StreamPart<'_>,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        self.streams.request(part, audio, language)
    }

    fn end_stream(&self, stream: &str) {
        self.streams.end(stream);
    }
}

/// The results of one utterance: the final ones, and the newest interim one after them.
#[derive(Debug, Default)]
pub struct Heard {
    parts: Vec<String>,
    confidences: Vec<f32>,
    interim: String,
}

impl UtteranceReader for Heard {
    /// One server message: `Results` (final ones count; the one answering
    /// `Finalize` says `from_finalize`), `Metadata`, or an error.
    fn read(&mut self, text: &str) -> Result<bool, String> {
        let message: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match message["type"].as_str() {
            Some("Results") => {
                let best = &message["channel"]["alternatives"][0];
                let transcript = best["transcript"].as_str().unwrap_or_default().trim();
                if message["is_final"].as_bool() == Some(true) {
                    if !transcript.is_empty() {
                        self.parts.push(transcript.to_owned());
                        self.confidences.push(best["confidence"].as_f64().unwrap_or(0.0) as f32);
                    }
                    self.interim.clear();
                } else {
                    self.interim = transcript.to_owned();
                }
                Ok(message["from_finalize"].as_bool() == Some(true))
            }
            Some("Error") => Err(message["description"].as_str().unwrap_or("an error message").to_owned()),
            _ => Ok(false),
        }
    }

    fn transcript(&self) -> Transcript {
        let confidence = match self.confidences.len() {
            0 => 0.0,
            n => self.confidences.iter().sum::<f32>() / n as f32,
        };
        let mut parts = self.parts.clone();
        if !self.interim.is_empty() {
            parts.push(self.interim.clone());
        }
        Transcript { text: parts.join(" "), confidence, engine: NAME }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_results_are_joined_and_interim_ones_and_metadata_ignored() {
        let mut heard = Heard::default();
        let result = |text: &str, fin: bool, confidence: f64| {
            serde_json::json!({ "type": "Results", "is_final": fin, "speech_final": fin,
                "channel": { "alternatives": [{ "transcript": text, "confidence": confidence }] } })
            .to_string()
        };
        heard.read(&result("hello", false, 0.5)).unwrap();
        heard.read(&result("hello there", true, 0.9)).unwrap();
        heard.read(&result("", true, 0.0)).unwrap();
        heard.read(&result("how are you", true, 0.7)).unwrap();
        heard.read(r#"{"type":"Metadata","request_id":"x"}"#).unwrap();
        let t = heard.transcript();
        assert_eq!(t.text, "hello there how are you");
        assert!((t.confidence - 0.8).abs() < 1e-6);
        let mut heard = Heard::default();
        assert!(heard
            .read(r#"{"type":"Error","description":"bad audio"}"#)
            .unwrap_err()
            .contains("bad audio"));
        assert!(heard.read("nope").is_err());
    }

    #[test]
    fn the_audio_format_and_language_go_in_the_query() {
        let deepgram = Deepgram::new("wss://api.deepgram.com/v1/listen", "k", "nova-2");
        let url = deepgram.config.listen_url("es", false).unwrap();
        let query = url.query().unwrap();
        for part in ["encoding=linear16", "sample_rate=16000", "channels=1", "model=nova-2", "language=es"] {
            assert!(query.contains(part), "{query}");
        }
    }
}
