//! AssemblyAI's Universal-Streaming v3 (`wss://streaming.assemblyai.com/v3/ws`,
//! as its documentation describes the message sequence) used one utterance at a
//! time: connect with the API key in `Authorization` and `sample_rate`,
//! `encoding=pcm_s16le`, `speech_model` and `format_turns` in the query; the
//! server says `Begin`; send the audio as binary PCM, then `{"type":"Terminate"}`;
//! the `Turn` messages with `end_of_turn: true` hold the text (their `transcript`,
//! and the words' confidences), until `Termination` and the close.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::stt::{SpeechToText, SttError, Transcript, STT_RATE_HZ};
use super::tls::TlsConfig;
use super::ws_stream::stream_utterance;

const NAME: &str = "assemblyai";

#[derive(Debug, Clone)]
pub struct AssemblyAi {
    /// `wss://streaming.assemblyai.com/v3/ws`, or a compatible server.
    url: String,
    api_key: String,
    tls: Option<TlsConfig>,
}

impl AssemblyAi {
    pub fn new(url: &str, api_key: &str) -> Self {
        Self { url: url.to_owned(), api_key: api_key.to_owned(), tls: None }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self { tls: Some(tls), ..self }
    }

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

impl SpeechToText for AssemblyAi {
    fn name(&self) -> &'static str {
        NAME
    }

    fn transcribe(
        &self,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let url = self.stream_url(language);
        let key = self.api_key.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let url = url.map_err(|e| SttError::Failed(NAME, e))?;
            let mut turns = Turns::default();
            stream_utterance(NAME, url.as_str(), tls, &key, &audio, r#"{"type":"Terminate"}"#, |t| {
                turns.read(t)
            })
            .await?;
            Ok(turns.transcript())
        })
    }
}

/// The ended turns of one session, by `turn_order` (a formatted turn replaces its unformatted twin).
#[derive(Debug, Default)]
struct Turns {
    ended: Vec<(u64, String, f32)>,
}

impl Turns {
    fn read(&mut self, text: &str) -> Result<(), String> {
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
                Ok(())
            }
            Some("Error") | Some("error") => {
                Err(message["error"].as_str().unwrap_or("an error message").to_owned())
            }
            _ => Ok(()),
        }
    }

    fn transcript(mut self) -> Transcript {
        self.ended.sort_by_key(|(order, _, _)| *order);
        self.ended.retain(|(_, text, _)| !text.is_empty());
        let confidence = match self.ended.len() {
            0 => 0.0,
            n => self.ended.iter().map(|(_, _, c)| c).sum::<f32>() / n as f32,
        };
        let text = self.ended.into_iter().map(|(_, text, _)| text).collect::<Vec<_>>().join(" ");
        Transcript { text, confidence, engine: NAME }
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
        assert!(a.stream_url("en-US").unwrap().query().unwrap().contains("universal-streaming-english"));
        let query = a.stream_url("es").unwrap().query().unwrap().to_owned();
        assert!(
            query.contains("universal-streaming-multilingual") && query.contains("encoding=pcm_s16le"),
            "{query}"
        );
    }
}
