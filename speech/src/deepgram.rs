//! Deepgram's live transcription (`wss://api.deepgram.com/v1/listen`, as its
//! documentation describes it) used one utterance at a time: connect with
//! `Authorization: Token <key>` and the audio's format in the query, send the
//! utterance as binary 16-bit PCM in 100 ms frames, send `{"type":"CloseStream"}`,
//! and read `Results` messages until the server closes; the final results'
//! transcripts, in order, are the utterance's text.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::stt::{SpeechToText, SttError, Transcript, STT_RATE_HZ};
use super::tls::TlsConfig;
use super::ws_stream::stream_utterance;

const NAME: &str = "deepgram";

#[derive(Debug, Clone)]
pub struct Deepgram {
    /// `wss://api.deepgram.com/v1/listen`, or a compatible server.
    url: String,
    api_key: String,
    model: String,
    tls: Option<TlsConfig>,
}

impl Deepgram {
    pub fn new(url: &str, api_key: &str, model: &str) -> Self {
        Self { url: url.to_owned(), api_key: api_key.to_owned(), model: model.to_owned(), tls: None }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self { tls: Some(tls), ..self }
    }

    fn listen_url(&self, language: &str) -> Result<url::Url, String> {
        let mut url = url::Url::parse(&self.url).map_err(|e| format!("{}: {e}", self.url))?;
        url.query_pairs_mut()
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &STT_RATE_HZ.to_string())
            .append_pair("channels", "1")
            .append_pair("model", &self.model)
            .append_pair("language", language)
            .append_pair("punctuate", "true")
            .append_pair("interim_results", "false");
        Ok(url)
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
        let url = self.listen_url(language);
        let key = format!("Token {}", self.api_key);
        let tls = self.tls.clone();
        Box::pin(async move {
            let url = url.map_err(|e| SttError::Failed(NAME, e))?;
            let mut heard = Heard::default();
            stream_utterance(NAME, url.as_str(), tls, &key, &audio, r#"{"type":"CloseStream"}"#, |t| {
                heard.read(t)
            })
            .await?;
            Ok(heard.transcript())
        })
    }
}

/// The final results of one stream.
#[derive(Debug, Default)]
struct Heard {
    parts: Vec<String>,
    confidences: Vec<f32>,
}

impl Heard {
    /// One server message: `Results` (final ones count), `Metadata`, or an error.
    fn read(&mut self, text: &str) -> Result<(), String> {
        let message: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match message["type"].as_str() {
            Some("Results") if message["is_final"].as_bool() == Some(true) => {
                let best = &message["channel"]["alternatives"][0];
                let transcript = best["transcript"].as_str().unwrap_or_default().trim();
                if !transcript.is_empty() {
                    self.parts.push(transcript.to_owned());
                    self.confidences.push(best["confidence"].as_f64().unwrap_or(0.0) as f32);
                }
                Ok(())
            }
            Some("Error") => Err(message["description"].as_str().unwrap_or("an error message").to_owned()),
            _ => Ok(()),
        }
    }

    fn transcript(self) -> Transcript {
        let confidence = match self.confidences.len() {
            0 => 0.0,
            n => self.confidences.iter().sum::<f32>() / n as f32,
        };
        Transcript { text: self.parts.join(" "), confidence, engine: NAME }
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
        let url = Deepgram::new("wss://api.deepgram.com/v1/listen", "k", "nova-2").listen_url("es").unwrap();
        let query = url.query().unwrap();
        for part in ["encoding=linear16", "sample_rate=16000", "channels=1", "model=nova-2", "language=es"] {
            assert!(query.contains(part), "{query}");
        }
    }
}
