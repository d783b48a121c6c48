//! The agent's speech, for the call's task (`run.rs`): each sentence is
//! synthesized by a task of its own, one at a time and in order; a streaming
//! voice's parts are brought to the leg's rate as they come
//! (`speech_parts.rs`) and handed to the conversation machine, which says
//! when to play what; a sentence no longer wanted stops being synthesized.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bond_codecs::CodecError;
use bond_media_engine::leg::Clip;
use bond_speech::tts::{TtsError, TTS_RATE};
use bond_store::clock::monotonic;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::super::report::lock;
use super::super::speech_parts::Resampling;
use super::Task;

/// What the synthesis of a sentence reports, in order.
pub(super) enum Spoken {
    /// Its first part (all of it, from a voice that does not stream), or why
    /// there is none; and how the voices asked before failed.
    First { id: u64, text: String, audio: Result<Vec<i16>, String>, failures: Vec<String> },
    /// More of its speech, as a streaming voice gives it.
    More { id: u64, audio: Vec<i16> },
    /// Its speech is all there; or why the stream broke off.
    Done { id: u64, broke: Option<String> },
}

impl Task {
    /// Synthesize a sentence in a task of its own, reporting its speech as it comes.
    pub(super) fn synthesize(&self, id: u64, text: String, tx: mpsc::Sender<Spoken>) -> JoinHandle<()> {
        let (tts, language, voice) =
            (self.engines.tts.clone(), self.start.language.clone(), self.start.voice.clone());
        tokio::spawn(async move {
            let named = |failures: Vec<TtsError>| -> Vec<String> {
                failures.iter().map(ToString::to_string).collect()
            };
            let mut rest = match tts.speak_parts_noting(&text, &language, &voice).await {
                Ok((parts, failures)) => {
                    let first = Spoken::First { id, text, audio: Ok(parts.first), failures: named(failures) };
                    if tx.send(first).await.is_err() {
                        return;
                    }
                    parts.rest
                }
                Err(failures) => {
                    let audio = Err(failures.last().map(ToString::to_string).unwrap_or_default());
                    let _ = tx.send(Spoken::First { id, text, audio, failures: named(failures) }).await;
                    return;
                }
            };
            let mut broke = None;
            while let Some(part) = rest.next().await {
                match part {
                    Ok(audio) => {
                        if tx.send(Spoken::More { id, audio }).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        broke = Some(e.to_string());
                        break;
                    }
                }
            }
            let _ = tx.send(Spoken::Done { id, broke }).await;
        })
    }

    /// What the synthesis reported; what a dropped synthesis sent before it
    /// stopped is let go.
    pub(super) async fn spoken(&mut self, spoken: Spoken) {
        let id = match &spoken {
            Spoken::First { id, .. } | Spoken::More { id, .. } | Spoken::Done { id, .. } => *id,
        };
        if self.speaking.as_ref().is_none_or(|(speaking, _)| *speaking != id) {
            return;
        }
        let now = monotonic();
        match spoken {
            Spoken::First { id, text, audio, failures } => {
                if audio.is_err() {
                    self.speaking = None;
                }
                self.stage_failed("tts", &failures, audio.is_ok()).await;
                self.synthesized(id, &text, audio);
            }
            Spoken::More { id, audio } => {
                let Some((_, resampling)) = self.resampling.as_mut() else { return };
                let samples = resampling.push(&audio);
                self.more_audio(now, id, samples);
            }
            Spoken::Done { id, broke } => {
                self.speaking = None;
                if let Some(why) = broke {
                    tracing::warn!(call = %self.call.call_control_id, error = %why, "a sentence's speech broke off");
                }
                if let Some((_, mut resampling)) = self.resampling.take() {
                    let samples = resampling.finish();
                    self.more_audio(now, id, samples);
                }
                self.conversation.audio_complete(now, id);
            }
        }
    }

    /// A sentence's first part of speech (or why there is none).
    fn synthesized(&mut self, id: u64, text: &str, audio: Result<Vec<i16>, String>) {
        let now = monotonic();
        let resampled = audio.and_then(|a| {
            if a.is_empty() {
                return Err("no speech".to_owned());
            }
            let mut resampling = Resampling::new(TTS_RATE, self.rate).map_err(|e| e.to_string())?;
            let samples = resampling.push(&a).map_err(|e| e.to_string())?;
            self.resampling = Some((id, resampling));
            Ok(samples)
        });
        match resampled {
            Ok(samples) => {
                lock(&self.report).usage.tts_characters += text.chars().count() as u64;
                let length = self.length_of(&samples);
                self.audio.insert(id, samples);
                self.conversation.audio_ready(now, id, length, false);
            }
            Err(e) => {
                tracing::warn!(call = %self.call.call_control_id, error = %e, "a sentence was not synthesized");
                self.conversation.audio_failed(now, id);
            }
        }
    }

    /// More of a sentence's speech, resampled to the leg's rate.
    fn more_audio(&mut self, now: Instant, id: u64, samples: Result<Vec<i16>, CodecError>) {
        let samples = match samples {
            Ok(samples) => samples,
            Err(e) => {
                tracing::warn!(call = %self.call.call_control_id, error = %e, "speech not resampled");
                return;
            }
        };
        let Some(audio) = self.audio.get_mut(&id).filter(|_| !samples.is_empty()) else { return };
        audio.extend_from_slice(&samples);
        let length = self.length_of(&samples);
        self.conversation.audio_more(now, id, length);
    }

    fn length_of(&self, samples: &[i16]) -> Duration {
        Duration::from_nanos(samples.len() as u64 * 1_000_000_000 / u64::from(self.rate.hz()))
    }

    /// The answer's sentences not yet synthesized, or still streaming in, will not be played.
    pub(super) fn drop_speech(&mut self) {
        self.to_speak.clear();
        if let Some((_, task)) = self.speaking.take() {
            task.abort();
        }
        self.resampling = None;
    }

    /// Whether the agent's audio goes on top of what the legs hear (the
    /// overlay track) rather than in place of it: with parties joined, the
    /// people go on hearing each other while the agent speaks.
    fn over_the_bridge(&self) -> bool {
        !self.joined.is_empty()
    }

    pub(super) async fn play(&mut self, id: u64, from: Duration) {
        let Some(audio) = self.audio.get(&id) else { return };
        let skip = (from.as_nanos() * u128::from(self.rate.hz()) / 1_000_000_000) as usize;
        let samples: Arc<[i16]> = Arc::from(audio.get(skip..).unwrap_or_default());
        if samples.is_empty() {
            return;
        }
        let over = self.over_the_bridge();
        for leg in self.legs().collect::<Vec<_>>() {
            let clip = Clip {
                id: self.service.next_id(),
                rate: self.rate,
                samples: samples.clone(),
                plays: Some(1),
                duck: false,
            };
            if let Err(e) = self.service.engine.play(leg, clip, over).await {
                tracing::debug!(call = %self.call.call_control_id, error = %e, "the agent's audio was not played");
            }
        }
    }
}
