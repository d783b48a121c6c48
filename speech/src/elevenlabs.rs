//! Speech from an ElevenLabs-compatible API, as ElevenLabs documents its
//! streaming endpoint: `POST {base}/v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000`
//! with the key in `xi-api-key` and `{"text", "model_id", "language_code"}`; the
//! answer is raw 16-bit little-endian PCM at 16 kHz, taken in parts as it
//! arrives (`TextToSpeech::speak_parts`).

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use serde_json::json;

use super::tls::{streaming_http_client, TlsConfig};
use super::tts::{SpeechParts, TextToSpeech, TtsError};

const NAME: &str = "elevenlabs";
/// How long the server may keep Bond waiting: for its answer to start, and
/// between two chunks of it.
const IDLE: Duration = Duration::from_secs(15);
/// Longest answer taken: 2 minutes of 16 kHz speech.
const MAX_BYTES: usize = 16_000 * 2 * 120;
/// How long a whole answer may take: [`MAX_BYTES`] streamed at the speed it plays, and a minute more.
const TOTAL: Duration = Duration::from_secs(180);
/// The first part handed over: 100 ms of speech (less if that is all there is).
const FIRST_PART_BYTES: usize = 16_000 * 2 / 10;

#[derive(Debug, Clone)]
pub struct ElevenLabs {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    voice_id: String,
    model_id: String,
    idle: Duration,
    total: Duration,
    tls: Option<TlsConfig>,
}

impl ElevenLabs {
    pub fn new(base_url: &str, api_key: &str, voice_id: &str, model_id: &str) -> Self {
        Self {
            http: streaming_http_client(IDLE, TOTAL, None),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            voice_id: voice_id.to_owned(),
            model_id: model_id.to_owned(),
            idle: IDLE,
            total: TOTAL,
            tls: None,
        }
    }

    /// Verify the server's certificate against `tls` (see [`crate::tls`]).
    pub fn trusting(self, tls: TlsConfig) -> Self {
        Self { tls: Some(tls), ..self }.connected()
    }

    /// Wait at most `idle` for the server (its answer's start, each chunk) and
    /// `total` for a whole answer, rather than 15 s and 3 minutes.
    pub fn with_timeouts(self, idle: Duration, total: Duration) -> Self {
        Self { idle, total, ..self }.connected()
    }

    fn connected(self) -> Self {
        Self { http: streaming_http_client(self.idle, self.total, self.tls.as_ref()), ..self }
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
        let parts = self.speak_parts(text, language, voice);
        Box::pin(async move { parts.await?.collect().await })
    }

    /// The answer's body as it arrives: the first part once it holds
    /// [`FIRST_PART_BYTES`] (or the whole answer, if shorter), then each
    /// further chunk the connection gives.
    fn speak_parts(
        &self,
        text: &str,
        language: &str,
        voice: &str,
    ) -> BoxFuture<'static, Result<SpeechParts, TtsError>> {
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
            let response = request.send().await.map_err(failed)?;
            let status = response.status();
            if !status.is_success() {
                let bytes = response.bytes().await.map_err(failed)?;
                let said = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
                return Err(TtsError(NAME, format!("{status}: {said}")));
            }
            let mut body = Body { response, odd: None, taken: 0 };
            let mut first = Vec::new();
            while first.len() * 2 < FIRST_PART_BYTES {
                match body.next_part().await? {
                    Some(part) => first.extend(part),
                    None => break,
                }
            }
            let rest = stream::unfold(body, |mut body| async move {
                body.next_part().await.transpose().map(|part| (part, body))
            });
            Ok(SpeechParts { first, rest: rest.boxed() })
        })
    }
}

/// A streamed answer's body, read as samples.
struct Body {
    response: reqwest::Response,
    /// A chunk's last byte when it ended inside a sample.
    odd: Option<u8>,
    taken: usize,
}

impl Body {
    /// The samples of the next chunk; `None` at the end.
    async fn next_part(&mut self) -> Result<Option<Vec<i16>>, TtsError> {
        loop {
            let Some(chunk) = self.response.chunk().await.map_err(failed)? else { return Ok(None) };
            self.taken += chunk.len();
            if self.taken > MAX_BYTES {
                return Err(TtsError(NAME, format!("more than {MAX_BYTES} bytes of speech (2 minutes)")));
            }
            let bytes: Vec<u8> = self.odd.take().into_iter().chain(chunk.iter().copied()).collect();
            let whole = bytes.len() / 2 * 2;
            self.odd = bytes.get(whole).copied();
            if whole > 0 {
                return Ok(Some(
                    bytes[..whole].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
                ));
            }
        }
    }
}

fn failed(e: reqwest::Error) -> TtsError {
    TtsError(NAME, e.to_string())
}

/// A model or voice id as ElevenLabs writes them (it goes into the URL's path).
fn id_like(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
