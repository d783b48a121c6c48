//! AssemblyAI's Universal-Streaming v3 (`wss://streaming.assemblyai.com/v3/ws`,
//! as its documentation describes the message sequence): connect with the API
//! key in `Authorization` and `sample_rate`, `encoding=pcm_s16le`,
//! `speech_model` and `format_turns` in the query; the server says `Begin`; send
//! the audio as binary PCM. A call's stream keeps one connection
//! ([`crate::ws_session`]): after each utterance `{"type":"ForceEndpoint"}`,
//! answered by the ended `Turn` and its formatted twin; `{"type":"Terminate"}`
//! when the call's transcription ends. Without a stream, one utterance gets a
//! connection of its own, ended by `Terminate`. The `Turn` messages with
//! `end_of_turn: true` hold the text (their `transcript`, and the words'
//! confidences).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::stt::{SpeechToText, StreamPart, SttError, Transcript, STT_RATE_HZ};
use super::tls::TlsConfig;
use super::ws_session::{StreamProtocol, Streams, UtteranceReader};

const NAME: &str = "assemblyai";
/// AssemblyAI has no keep-alive message; a connection it closes for quiet
/// (after `inactivity_timeout`) is opened again at the next utterance.
const IDLE_CHECK: Duration = Duration::from_secs(3600);

/// Where and how to reach AssemblyAI.
#[derive(Debug, Clone)]
struct Config {
    /// `wss://streaming.assemblyai.com/v3/ws`, or a compatible server.
    url: String,
    api_key: String,
    tls: Option<TlsConfig>,
}

#[derive(Debug, Clone)]
pub struct AssemblyAi {
    config: Config,
    /// One connection per call stream.
    streams: Arc<Streams<Config>>,
}

impl AssemblyAi {
    pub fn new(url: &str, api_key: &str) -> Self {
        Self::with(Config { url: url.to_owned(), api_key: api_key.to_owned(), tls: None })
    }

    fn with(config: Config) -> Self {
        Self { streams: Arc::new(Streams::new(config.clone(), IDLE_CHECK)), config }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self::with(Config { tls: Some(tls), ..self.config })
    }
}

impl Config {
    fn stream_url(&self, language: &str) -> Result<url::Url, String> {
        let mut url = url::Url::parse(&self.url).map_err(|e| format!("{}: {e}", self.url))?;
        let english = language.to_ascii_lowercase().starts_with("en");
        let model = if english { "universal-streaming-english" } else { "universal-streaming-multilingual" };
        url.query_pairs_mut()
            .append_pair("sample_rate", &STT_RATE_HZ.to_string())
            .append_pair("encoding", "pcm_s16le")
            .append_pair("speech_model", model)
            .append_pair("format_turns", "true");
        Ok(url)
    }
}

impl StreamProtocol for Config {
    type Reader = Turns;
    const NAME: &'static str = NAME;

    fn endpoint(&self, language: &str, _streaming: bool) -> Result<(url::Url, String), String> {
        Ok((self.stream_url(language)?, self.api_key.clone()))
    }

    fn tls(&self) -> Option<TlsConfig> {
        self.tls.clone()
    }

    fn flush(&self) -> &'static str {
        r#"{"type":"ForceEndpoint"}"#
    }

    fn keep_alive(&self) -> Option<&'static str> {
        None
    }

    fn close(&self) -> &'static str {
        r#"{"type":"Terminate"}"#
    }
}

impl SpeechToText for AssemblyAi {
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

/// The ended turns of one utterance, by `turn_order` (a formatted turn
/// replaces its unformatted twin), and the turn still being spoken.
#[derive(Debug, Default)]
pub struct Turns {
    ended: Vec<(u64, String, f32)>,
    partial: String,
}

impl UtteranceReader for Turns {
    /// One server message; `true` once a formatted ended turn is in (what a
    /// `ForceEndpoint` is answered with, `format_turns` being on).
    fn read(&mut self, text: &str) -> Result<bool, String> {
        let message: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match message["type"].as_str() {
            Some("Turn") if message["end_of_turn"].as_bool() == Some(true) => {
                let order = message["turn_order"].as_u64().unwrap_or(0);
                let transcript = message["transcript"].as_str().unwrap_or_default().trim().to_owned();
                let words = message["words"].as_array().map(Vec::as_slice).unwrap_or_default();
                let confidences: Vec<f64> = words.iter().filter_map(|w| w["confidence"].as_f64()).collect();
                let confidence = match confidences.len() {
                    0 => message["end_of_turn_confidence"].as_f64().unwrap_or(0.0),
                    n => confidences.iter().sum::<f64>() / n as f64,
                } as f32;
                self.ended.retain(|(o, _, _)| *o != order);
                self.ended.push((order, transcript, confidence));
                self.partial.clear();
                Ok(message["turn_is_formatted"].as_bool() == Some(true))
            }
            Some("Turn") => {
                self.partial = message["transcript"].as_str().unwrap_or_default().trim().to_owned();
                Ok(false)
            }
            Some("Error") | Some("error") => {
                Err(message["error"].as_str().unwrap_or("an error message").to_owned())
            }
            _ => Ok(false),
        }
    }

    fn transcript(&self) -> Transcript {
        let mut ended = self.ended.clone();
        ended.sort_by_key(|(order, _, _)| *order);
        ended.retain(|(_, text, _)| !text.is_empty());
        let confidence = match ended.len() {
            0 => 0.0,
            n => ended.iter().map(|(_, _, c)| c).sum::<f32>() / n as f32,
        };
        let mut parts: Vec<String> = ended.into_iter().map(|(_, text, _)| text).collect();
        if !self.partial.is_empty() {
            parts.push(self.partial.clone());
        }
        Transcript { text: parts.join(" "), confidence, engine: NAME }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_turns_in_order_make_the_text_and_a_formatted_turn_replaces_its_draft() {
        let mut turns = Turns::default();
        let turn = |order: u64, text: &str, end: bool| {
            serde_json::json!({ "type": "Turn", "turn_order": order, "end_of_turn": end, "turn_is_formatted": false,
                "transcript": text, "end_of_turn_confidence": 0.8,
                "words": [{ "text": "x", "confidence": 0.6, "start": 0, "end": 1, "word_is_final": true }] })
            .to_string()
        };
        turns.read(r#"{"type":"Begin","id":"s1","expires_at":1}"#).unwrap();
        turns.read(&turn(1, "second", true)).unwrap();
        turns.read(&turn(0, "hi my", false)).unwrap();
        turns.read(&turn(0, "hi my name is", true)).unwrap();
        turns.read(&turn(0, "Hi, my name is.", true)).unwrap();
        turns
            .read(r#"{"type":"Termination","audio_duration_seconds":2,"session_duration_seconds":2}"#)
            .unwrap();
        let t = turns.transcript();
        assert_eq!(t.text, "Hi, my name is. second");
        assert!((t.confidence - 0.6).abs() < 1e-6);
    }

    #[test]
    fn the_model_follows_the_language() {
        let a = AssemblyAi::new("wss://streaming.assemblyai.com/v3/ws", "k");
        assert!(a
            .config
            .stream_url("en-US")
            .unwrap()
            .query()
            .unwrap()
            .contains("universal-streaming-english"));
        let query = a.config.stream_url("es").unwrap().query().unwrap().to_owned();
        assert!(
            query.contains("universal-streaming-multilingual") && query.contains("encoding=pcm_s16le"),
            "{query}"
        );
    }
}
