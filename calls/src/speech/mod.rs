//! Speech on a call: `transcription_start`/`_stop` (Telnyx) and
//! `translation_start`/`_stop` (Bond) share one fork of the call's leg. Each
//! track's audio is cut into utterances ([`Segmenter`]); an utterance goes to
//! the speech-to-text chain, its transcript becomes `call.transcription`; with
//! translation on, the call's party's words are translated (`call.translation`,
//! stored for supervisors) and, with `voice_to_voice`, spoken into the bridged
//! call over what it hears. A new utterance from the speaker cuts a translation
//! still being spoken to the other side (barge-in).
//!
//! Two tasks per call: one takes the fork's ticks and never waits on an engine
//! (utterances go through a bounded queue; what does not fit is dropped and
//! counted), the other delivers utterances in order. With `interim_results`,
//! every second of an utterance still being spoken is transcribed as well
//! (`is_final: false`): only the newest such snapshot waits, and finals go first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use crate::assistant;
use crate::error::CallError;
use crate::gather::Spoken;
use crate::payload::{fields, millis};
use crate::service::CallService;
use bond_speech::segmenter::{SegmentEvent, Segmenter, Utterance, ONSET_MS};
use bond_speech::{SpeechEngines, StreamPart};
use bond_store::clock::monotonic;
use bond_store::{CallRecord, NewSegment};

/// The fork's name on the call's leg.
const SPEECH_FORK: &str = "speech";
/// Utterances that may wait for the engines.
const UTTERANCE_QUEUE: usize = 16;
/// Previous segments handed to the translator as context.
const CONTEXT_SEGMENTS: usize = 3;

mod early;
pub use early::DEFAULT_LOOK as DEFAULT_EARLY_LOOK;
mod newest;
mod on_bridge;
mod settings;
mod voice;

use newest::{Newest, Voice};
use settings::Side;
pub use settings::{SpeechSettings, Tracks, TranscriptionRequest, TranslationRequest};

/// One utterance on its way to the engines.
struct Heard {
    side: Side,
    utterance: Utterance,
    /// When the speech ended (before the quiet that closed the utterance), for latencies.
    ended: Instant,
    /// When the utterance was handed over (the segmenter's quiet wait after `ended`).
    handed: Instant,
    settings: SpeechSettings,
    /// An early look at an utterance, before it ends (`early.rs`).
    early: bool,
}

impl Heard {
    /// An utterance at the engines' 16 kHz; `elapsed_ms` is how much audio its segmenter had then.
    fn new(
        side: Side,
        utterance: Utterance,
        elapsed_ms: u64,
        rate: SampleRate,
        settings: SpeechSettings,
    ) -> Option<Self> {
        // The fork delivers in real time: the speech ended as long ago as the quiet after it lasted.
        let handed = monotonic();
        let ended = handed - Duration::from_millis(elapsed_ms.saturating_sub(utterance.end_ms));
        let samples = resample_clip(&utterance.samples, rate.hz(), SampleRate::Hz16000)
            .map_err(|e| tracing::warn!(error = %e, "utterance not resampled"))
            .ok()?;
        Some(Self {
            side,
            utterance: Utterance { samples, ..utterance },
            ended,
            handed,
            settings,
            early: false,
        })
    }
}

impl CallService {
    /// The speech-to-text engines `transcription_engine` may name.
    pub fn speech_engine_names(&self) -> Vec<&'static str> {
        self.speech.as_ref().map(|s| s.stt.names()).unwrap_or_default()
    }

    pub async fn start_transcription(
        &self,
        call: &CallRecord,
        request: TranscriptionRequest,
    ) -> Result<(), CallError> {
        self.change_speech(call, |s| s.transcription = Some(request)).await
    }

    pub async fn stop_transcription(&self, call: &CallRecord) -> Result<(), CallError> {
        self.stop_speech(call, "transcription", |s| s.transcription.take().is_some()).await
    }

    /// A speech gather starts listening to the party (`gather/`).
    pub(crate) async fn listen_for_gather(
        &self,
        call: &CallRecord,
        language: String,
    ) -> Result<(), CallError> {
        self.change_speech(call, |s| s.gather = Some(language)).await
    }

    /// The gather ended: stop listening for it (the fork goes when nothing else listens).
    pub(crate) async fn stop_listening_for_gather(&self, call: &bond_store::CallId) {
        self.stop_listening(call, |s| s.gather.take().is_some()).await;
    }

    /// A voice agent starts listening to the party (`assistant/`).
    pub(crate) async fn listen_for_assistant(
        &self,
        call: &CallRecord,
        language: String,
    ) -> Result<(), CallError> {
        self.change_speech(call, |s| s.assistant = Some(language)).await
    }

    /// Stop what `stop` turns off (it says whether it was on); the fork goes when nothing else listens.
    pub(crate) async fn stop_listening(
        &self,
        call: &bond_store::CallId,
        stop: impl FnOnce(&mut SpeechSettings) -> bool,
    ) {
        let listened =
            |c: &crate::live::LiveCall| c.speech.as_ref().is_some_and(|s| s.send_if_modified(stop));
        if self.live.read(call, listened) != Some(true) {
            return;
        }
        if self.live.update(call, |c| c.speech.take_if(|s| s.borrow().is_idle())).is_some() {
            if let Some(leg) = self.registry.leg(call) {
                let _ = self.engine.stop_fork(leg, SPEECH_FORK).await;
            }
        }
    }

    pub async fn start_translation(
        &self,
        call: &CallRecord,
        request: TranslationRequest,
    ) -> Result<(), CallError> {
        self.change_speech(call, |s| s.translation = Some(request)).await
    }

    pub async fn stop_translation(&self, call: &CallRecord) -> Result<(), CallError> {
        self.stop_speech(call, "translation", |s| s.translation.take().is_some()).await
    }

    async fn change_speech(
        &self,
        call: &CallRecord,
        change: impl FnOnce(&mut SpeechSettings),
    ) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        if let Err(why) = &self.speech {
            return Err(CallError::invalid(
                "10015",
                format!("Speech is not available on this Bond: {why}."),
                "/call_control_id",
            ));
        }
        let id = &call.call_control_id;
        let started = self.live.update(id, |c| match &c.speech {
            // Already listening: change what it does.
            Some(running) => {
                running.send_modify(change);
                None
            }
            None => {
                let mut settings = SpeechSettings::default();
                change(&mut settings);
                let (tx, rx) = watch::channel(settings);
                c.speech = Some(tx);
                Some(rx)
            }
        });
        let Some(rx) = started else { return Ok(()) };
        let fork = match self.engine.start_fork(leg, SPEECH_FORK).await {
            Ok(fork) => fork,
            Err(e) => {
                self.live.update(id, |c| c.speech = None);
                return Err(CallError::from(e));
            }
        };
        tokio::spawn(self.clone().listen(call.clone(), fork, rx));
        Ok(())
    }

    async fn stop_speech(
        &self,
        call: &CallRecord,
        what: &str,
        stop: impl FnOnce(&mut SpeechSettings) -> bool,
    ) -> Result<(), CallError> {
        let leg = self.live_leg(call)?;
        let id = &call.call_control_id;
        let running = self.live.read(id, |c| c.speech.as_ref().is_some_and(|s| s.send_if_modified(stop)));
        if running != Some(true) {
            return Err(CallError::invalid(
                "90020",
                format!("The call has no {what} running."),
                "/call_control_id",
            ));
        }
        if self.live.update(id, |c| c.speech.take_if(|s| s.borrow().is_idle())).is_some() {
            // The listening task sees the fork end and delivers what it had.
            self.engine.stop_fork(leg, SPEECH_FORK).await?;
        }
        Ok(())
    }

    /// Take the fork's ticks until it ends; cut utterances and queue them.
    async fn listen(
        self,
        call: CallRecord,
        mut fork: bond_media_engine::runtime::Fork,
        settings: watch::Receiver<SpeechSettings>,
    ) {
        let (heard_tx, heard_rx) = mpsc::channel::<Heard>(UTTERANCE_QUEUE);
        let partial = Newest::default();
        let voice = Voice::default();
        let delivery =
            tokio::spawn(self.clone().deliver(call.clone(), heard_rx, partial.clone(), voice.clone()));
        let mut segmenters = [Segmenter::default(), Segmenter::default()];
        // When each side's speech began (segmenter time), for its length.
        let mut onsets = [0u64; 2];
        let mut rate = SampleRate::Hz8000;
        let mut dropped = 0u64;
        let id = &call.call_control_id;
        let mut offer = |side,
                         utterance: Utterance,
                         segmenter: &Segmenter,
                         onset: u64,
                         rate,
                         settings: &SpeechSettings| {
            // A snapshot of the same speech still waiting is stale now.
            partial.take_if(|p| p.side == side);
            let agent = side == Side::Inbound && settings.assistant.is_some();
            let length = utterance.end_ms.saturating_sub(onset);
            let heard = Heard::new(side, utterance, segmenter.elapsed_ms(), rate, settings.clone());
            if let Some(h) = heard.as_ref().filter(|_| agent) {
                let (at, length) = (h.handed, Duration::from_millis(length));
                self.assistant_hears(id, assistant::Input::SpeechEnded { at, ended: h.ended, length });
            }
            let queued = heard.is_some_and(|h| heard_tx.try_send(h).is_ok());
            if !queued {
                dropped += 1;
                metrics::counter!("bond_speech_utterances_dropped_total").increment(1);
                if agent {
                    // No transcript will come: the agent must not wait for one.
                    let transcript = assistant::Input::Transcript {
                        at: monotonic(),
                        text: String::new(),
                        failures: vec!["the recognizer fell behind: the utterance was dropped".into()],
                        answered: false,
                    };
                    self.assistant_hears(id, transcript);
                }
            }
        };
        while let Some(tick) = fork.ticks.recv().await {
            let now = settings.borrow().clone();
            rate = tick.inbound.rate();
            for (side, frame) in [(Side::Inbound, &tick.inbound), (Side::Outbound, &tick.outbound)] {
                if !now.wants(side) {
                    continue;
                }
                let segmenter = &mut segmenters[side as usize];
                match segmenter.push(frame.samples()) {
                    Some(SegmentEvent::Started { .. }) if side == Side::Inbound => {
                        onsets[side as usize] = segmenter.elapsed_ms().saturating_sub(ONSET_MS);
                        self.barge_in(&voice).await;
                        if now.gather.is_some() {
                            self.gather_speech(&call.call_control_id, None).await;
                        }
                        if now.assistant.is_some() {
                            self.assistant_hears(id, assistant::Input::SpeechStarted(monotonic()));
                        }
                    }
                    Some(SegmentEvent::Started { .. }) => {
                        onsets[side as usize] = segmenter.elapsed_ms().saturating_sub(ONSET_MS);
                    }
                    Some(SegmentEvent::Utterance(u)) => {
                        offer(side, u, segmenter, onsets[side as usize], rate, &now)
                    }
                    _ if now.wants_interim(side) => {
                        let so_far = segmenter.partial_due();
                        let elapsed = segmenter.elapsed_ms();
                        if let Some(h) = so_far.and_then(|u| Heard::new(side, u, elapsed, rate, now.clone()))
                        {
                            partial.put(h);
                        }
                    }
                    _ => {}
                }
                if let Some(frames) = self.early_look {
                    let look = segmenter.pause_due(frames);
                    let elapsed = segmenter.elapsed_ms();
                    if let Some(mut h) = look.and_then(|u| Heard::new(side, u, elapsed, rate, now.clone())) {
                        h.early = true;
                        // A full queue: no early look; the utterance still comes when it ends.
                        let _ = heard_tx.try_send(h);
                    }
                }
            }
        }
        let last = settings.borrow().clone();
        for side in [Side::Inbound, Side::Outbound] {
            let segmenter = &mut segmenters[side as usize];
            if let Some(SegmentEvent::Utterance(u)) = segmenter.flush() {
                offer(side, u, segmenter, onsets[side as usize], rate, &last);
            }
        }
        // The delivery task ends once the queue's sender is gone.
        drop(heard_tx);
        if dropped > 0 {
            tracing::warn!(call = %call.call_control_id, dropped, "utterances dropped: the speech engines fell behind");
        }
        let _ = delivery.await;
        // Forget the call's settings unless a new run took its place already.
        self.live
            .update(&call.call_control_id, |c| c.speech.take_if(|s| s.subscribe().same_channel(&settings)));
    }

    /// Hand utterances to the engines in order and report what comes back.
    async fn deliver(
        self,
        call: CallRecord,
        mut heard: mpsc::Receiver<Heard>,
        partial: Newest<Heard>,
        voice: Voice,
    ) {
        let Ok(engines) = self.speech.clone() else { return };
        // Each run's streams are its own: a run that ends late must not close its successor's.
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let streams = [Side::Inbound, Side::Outbound]
            .map(|side| format!("{}:{run}:{}", call.call_control_id, side.as_str()));
        let mut context: Vec<String> = Vec::new();
        let mut failing = false;
        // The latest early look at each side's utterance (`early.rs`).
        let mut looked: [Option<early::Early>; 2] = [None, None];
        loop {
            let mut h = tokio::select! {
                biased;
                next = heard.recv() => match next {
                    Some(h) => h,
                    None => break,
                },
                () = partial.ready() => {
                    if let Some(p) = partial.take_if(|_| true) {
                        self.interim(&call, &engines, &streams[p.side as usize], p).await;
                    }
                    continue;
                }
            };
            let language = h.settings.language(h.side);
            let first = h.settings.transcription.as_ref().and_then(|t| t.engine.clone());
            let audio = std::mem::take(&mut h.utterance.samples);
            let asked = monotonic();
            if h.early {
                if early::worth_it(engines.stt.first_engine(first.as_deref())) {
                    let answer =
                        engines.stt.transcribe_noting(None, audio, &language, first.as_deref(), asked).await;
                    // A look that failed is not the utterance's answer: it is asked again when it ends.
                    if let Ok(transcript) = &answer.0 {
                        if self.assistant_early_answers
                            && h.side == Side::Inbound
                            && h.settings.assistant.is_some()
                        {
                            let text = transcript.text.clone();
                            let early = assistant::Input::EarlyTranscript { ended: h.ended, text };
                            self.assistant_hears(&call.call_control_id, early);
                        }
                        looked[h.side as usize] = Some(early::Early::new(&h, answer));
                    }
                }
                continue;
            }
            let stream = &streams[h.side as usize];
            let part = StreamPart { stream, utterance: h.utterance.start_ms, last: true };
            // A look at this side is used now or never: the next utterance is other audio.
            let look = looked[h.side as usize].take().filter(|look| look.covers(&h));
            // With a look, what the utterance waited for the recognizer is the
            // rest of the look's run since it was handed over.
            let (transcript, failures, recognizer_ms) = match look {
                Some(look) => {
                    metrics::counter!("bond_speech_early_transcripts_used_total").increment(1);
                    (look.answer.0, look.answer.1, millis(h.handed.elapsed()))
                }
                None => {
                    let (transcript, failures) = engines
                        .stt
                        .transcribe_noting(Some(part), audio, &language, first.as_deref(), asked)
                        .await;
                    (transcript, failures, millis(asked.elapsed()))
                }
            };
            let stt_ms = millis(h.ended.elapsed());
            if h.side == Side::Inbound && h.settings.assistant.is_some() {
                // Every utterance gets its answer, empty when the recognizer failed.
                let text = transcript.as_ref().map(|t| t.text.clone()).unwrap_or_default();
                let failures = failures.iter().map(ToString::to_string).collect();
                let answered = transcript.is_ok();
                let heard = assistant::Input::Transcript { at: monotonic(), text, failures, answered };
                self.assistant_hears(&call.call_control_id, heard);
            }
            metrics::histogram!("bond_speech_stage_seconds", "stage" => "stt").record(stt_ms as f64 / 1000.0);
            let transcript = match transcript {
                Ok(t) => {
                    failing = false;
                    t
                }
                Err(e) => {
                    if !failing {
                        let fields = fields([
                            ("failure_reason", json!(e.to_string())),
                            ("transcription_track", json!(h.side.as_str())),
                        ]);
                        self.speech_event(&call, "call.transcription.failed", fields).await;
                    }
                    failing = true;
                    continue;
                }
            };
            if transcript.text.is_empty() {
                continue;
            }
            if h.side == Side::Inbound && h.settings.gather.is_some() {
                let spoken =
                    Spoken { transcript: transcript.text.clone(), confidence: transcript.confidence };
                self.gather_speech(&call.call_control_id, Some(spoken)).await;
            }
            let timing = |latency: Value| json!({ "speech_start_ms": h.utterance.start_ms, "speech_end_ms": h.utterance.end_ms, "latency_ms": latency });
            if h.settings.wants_transcript(h.side) {
                let mut data = json!({
                    "transcript": transcript.text,
                    "confidence": transcript.confidence,
                    "is_final": true,
                    "transcription_track": h.side.as_str(),
                    "engine": transcript.engine,
                });
                merge(&mut data, timing(json!(stt_ms)));
                self.speech_event(&call, "call.transcription", fields([("transcription_data", data)])).await;
            }
            let Some(translation) = h.settings.translation.as_ref().filter(|_| h.side == Side::Inbound)
            else {
                continue;
            };
            let mt_started = monotonic();
            let translated =
                engines.mt.translate(&transcript.text, &translation.from, &translation.to, &context).await;
            let mt_ms = millis(mt_started.elapsed());
            metrics::histogram!("bond_speech_stage_seconds", "stage" => "mt").record(mt_ms as f64 / 1000.0);
            let translated = match translated {
                Ok(text) => text,
                Err(e) => {
                    let fields = fields([
                        ("failure_reason", json!(e.to_string())),
                        ("original", json!(transcript.text)),
                    ]);
                    self.speech_event(&call, "call.translation.failed", fields).await;
                    continue;
                }
            };
            context.push(transcript.text.clone());
            if context.len() > CONTEXT_SEGMENTS {
                context.remove(0);
            }
            let segment = NewSegment {
                organization_id: call.organization_id.clone(),
                call_control_id: call.call_control_id.clone(),
                call_session_id: call.call_session_id.clone(),
                track: h.side.as_str().into(),
                language_from: translation.from.clone(),
                language_to: translation.to.clone(),
                original: transcript.text.clone(),
                translation: translated.clone(),
                speech_start_ms: h.utterance.start_ms as i64,
                speech_end_ms: h.utterance.end_ms as i64,
                latency_ms: millis(h.ended.elapsed()) as i64,
            };
            self.publish_segment(segment).await;
            // Speech end to the segment stored and handed to the supervisor streams; what is
            // neither the quiet wait, the recognizer nor the translator is Bond's own overhead.
            let total_ms = millis(h.ended.elapsed());
            let endpointing_ms = millis(h.handed.duration_since(h.ended));
            let mut data = json!({
                "original": transcript.text,
                "translation": translated,
                "translate_from": translation.from,
                "translate_to": translation.to,
                "transcription_track": h.side.as_str(),
                "voice_to_voice": translation.voice_to_voice,
            });
            merge(
                &mut data,
                timing(json!({
                    "endpointing": endpointing_ms,
                    "recognizer": recognizer_ms,
                    "transcription": stt_ms,
                    "translation": mt_ms,
                    "total": total_ms,
                    "overhead": total_ms.saturating_sub(endpointing_ms + recognizer_ms + mt_ms),
                })),
            );
            self.speech_event(&call, "call.translation", fields([("translation_data", data)])).await;
            if translation.voice_to_voice {
                self.speak_to_partner(&call, &translated, &translation.to, &voice, h.ended).await;
            }
        }
        // The call's transcription is over: its provider connections close.
        for stream in &streams {
            engines.stt.end_stream(stream);
        }
    }

    /// An interim transcript of what is being said so far (Telnyx: confidence 0
    /// until the final); a failure reports nothing, the final will.
    async fn interim(&self, call: &CallRecord, engines: &SpeechEngines, stream: &str, mut h: Heard) {
        let first = h.settings.transcription.as_ref().and_then(|t| t.engine.clone());
        let audio = std::mem::take(&mut h.utterance.samples);
        let asked = monotonic();
        let language = h.settings.language(h.side);
        let part = StreamPart { stream, utterance: h.utterance.start_ms, last: false };
        let heard =
            engines.stt.transcribe_noting(Some(part), audio, &language, first.as_deref(), asked).await.0;
        let Ok(transcript) = heard else {
            return;
        };
        let stt_ms = millis(asked.elapsed());
        metrics::histogram!("bond_speech_stage_seconds", "stage" => "stt_interim")
            .record(stt_ms as f64 / 1000.0);
        if transcript.text.is_empty() {
            return;
        }
        let data = json!({
            "transcript": transcript.text,
            "confidence": 0.0,
            "is_final": false,
            "transcription_track": h.side.as_str(),
            "engine": transcript.engine,
            "speech_start_ms": h.utterance.start_ms,
            "speech_end_ms": h.utterance.end_ms,
            "latency_ms": stt_ms,
        });
        self.speech_event(call, "call.transcription", fields([("transcription_data", data)])).await;
    }

    async fn speech_event(&self, call: &CallRecord, event_type: &str, fields: Map<String, Value>) {
        if let Err(e) = self.call_event(&call.call_control_id, event_type, fields).await {
            tracing::error!(call = %call.call_control_id, error = %e, "could not record {event_type}");
        }
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}
