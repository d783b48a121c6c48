//! Speech from an ElevenLabs-compatible API, as ElevenLabs documents its
//! streaming endpoint: `POST {base}/v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000`
//! with the key in `xi-api-key` and `{"text", "model_id", "language_code"}`; the
//! answer is raw 16-bit little-endian PCM at 16 kHz.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::tls::{http_client, TlsConfig};
use super::tts::{TextToSpeech, TtsError};

const NAME: &str = "elevenlabs";
const TIMEOUT: Duration = Duration::from_secs(15);
/// Longest answer taken: 2 minutes of 16 kHz speech.
const MAX_BYTES: usize = 16_000 * 2 * 120;

#[derive(Debug, Clone)]
pub struct ElevenLabs {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    voice_id: String,
    model_id: String,
}

impl ElevenLabs {
    pub fn new(base_url: &str, api_key: &str, voice_id: &str, model_id: &str) -> Self {
        Self {
            http: http_client(TIMEOUT, None),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            voice_id: voice_id.to_owned(),
            model_id: model_id.to_owned(),
        }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self { http: http_client(TIMEOUT, Some(&tls)), ..self }
    }
}

impl TextToSpeech for ElevenLabs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn speak(
        &self,
        text: &str,
        language: &str,
        voice: &str,
    ) -> BoxFuture<'static, Result<Vec<i16>, TtsError>> {
        // Telnyx names an ElevenLabs voice `ElevenLabs.<model_id>.<voice_id>`; any other is not ours.
        let named = voice.strip_prefix("ElevenLabs.").and_then(|v| v.split_once('.'));
        let (model_id, voice_id) = named
            .filter(|(model, voice)| id_like(model) && id_like(voice))
            .unwrap_or((&self.model_id, &self.voice_id));
        let url = format!("{}/v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000", self.base_url);
        let language = language.split('-').next().unwrap_or(language).to_ascii_lowercase();
        let body = json!({ "text": text, "model_id": model_id, "language_code": language });
        let request = self.http.post(url).header("xi-api-key", &self.api_key).json(&body);
        Box::pin(async move {
            let failed = |e: String| TtsError(NAME, e);
            let response = request.send().await.map_err(|e| failed(e.to_string()))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| failed(e.to_string()))?;
            if !status.is_success() {
                return Err(failed(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                )));
            }
            if bytes.len() > MAX_BYTES {
                return Err(failed(format!("{} bytes of speech is more than 2 minutes", bytes.len())));
            }
            Ok(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
        })
    }
}

/// A model or voice id as ElevenLabs writes them (it goes into the URL's path).
fn id_like(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
