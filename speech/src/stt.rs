//! Speech-to-text engines behind one trait, and the chain that falls back from
//! one to the next: an engine that fails or takes too long is skipped for a
//! while (a [`Breaker`]), and when every engine fails the caller gets the
//! reasons, never a wait.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::breaker::Breaker;

/// Audio for the recognizers: 16 kHz mono.
pub const STT_RATE_HZ: u32 = 16_000;
/// Longest wait for one utterance's transcript.
const DEADLINE: Duration = Duration::from_secs(10);

/// What an engine heard in one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// 0..1: the mean probability of the words' tokens.
    pub confidence: f32,
    /// The engine that produced it.
    pub engine: &'static str,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SttError {
    #[error("{0} is not available: {1}")]
    Unavailable(&'static str, String),
    #[error("{0} is busy: its queue is full")]
    Busy(&'static str),
    #[error("{0} failed: {1}")]
    Failed(&'static str, String),
    #[error("{0} took longer than {1} ms")]
    Stalled(&'static str, u64),
    #[error("every engine failed: {0}")]
    AllFailed(String),
}

/// One recognizer of whole utterances. `transcribe` must not block the caller:
/// slow work runs on the engine's own threads or sockets.
pub trait SpeechToText: Send + Sync {
    fn name(&self) -> &'static str;
    /// `language` is a BCP 47 tag (`en`, `es-MX`).
    fn transcribe(&self, audio: Vec<i16>, language: &str)
        -> BoxFuture<'static, Result<Transcript, SttError>>;

    /// Part of an utterance on a call's stream (see [`StreamPart`]). Streaming
    /// providers keep one connection per stream and send each sample once; the
    /// others transcribe what they are given.
    fn transcribe_stream(
        &self,
        part: StreamPart<'_>,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let _ = part;
        self.transcribe(audio, language)
    }

    /// `stream` has ended: whatever it held open is closed.
    fn end_stream(&self, stream: &str) {
        let _ = stream;
    }

    /// Nothing is waiting for it or being worked on (an engine that queues
    /// says; the others are always idle).
    fn is_idle(&self) -> bool {
        true
    }

    /// Bond is stopping: end the engine's own threads, finishing what they
    /// are doing and answering what waits with an error. Blocks until then.
    fn stop(&self) {}
}

/// Where an utterance's audio belongs: its stream (one side of one call), the
/// utterance (its start, the same for its interim snapshots and its end), and
/// whether this is all of it (`last`) or what was said so far.
#[derive(Debug, Clone, Copy)]
pub struct StreamPart<'a> {
    pub stream: &'a str,
    pub utterance: u64,
    pub last: bool,
}

/// Engines in order of preference.
pub struct SttChain {
    engines: Vec<(Box<dyn SpeechToText>, Breaker)>,
    deadline: Duration,
}

impl std::fmt::Debug for SttChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl SttChain {
    pub fn new(engines: Vec<Box<dyn SpeechToText>>) -> Self {
        Self { engines: engines.into_iter().map(|e| (e, Breaker::default())).collect(), deadline: DEADLINE }
    }

    /// Stop every engine's threads (see [`SpeechToText::stop`]).
    pub fn stop(&self) {
        for (engine, _) in &self.engines {
            engine.stop();
        }
    }

    /// How long one engine may take before the next is asked (10 s unless changed).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.engines.iter().map(|(e, _)| e.name()).collect()
    }

    /// The engine asked first (from `first`, if named) and whether it is idle.
    pub fn first_engine(&self, first: Option<&str>) -> Option<(&'static str, bool)> {
        self.order(first).first().map(|(engine, _)| (engine.name(), engine.is_idle()))
    }

    /// Transcribe with the first engine (from `first`, if named) that is not
    /// resting and answers in time; `now` is when the utterance is handed over.
    pub async fn transcribe(
        &self,
        audio: Vec<i16>,
        language: &str,
        first: Option<&str>,
        now: Instant,
    ) -> Result<Transcript, SttError> {
        self.transcribe_noting(None, audio, language, first, now).await.0
    }

    /// As [`Self::transcribe`], for part of a call's stream (see
    /// [`SpeechToText::transcribe_stream`]) when `part` is given, with why
    /// each engine asked before the one that answered failed (each engine
    /// asked, when none did; engines resting after an earlier failure were
    /// not asked and are not in it).
    pub async fn transcribe_noting(
        &self,
        part: Option<StreamPart<'_>>,
        audio: Vec<i16>,
        language: &str,
        first: Option<&str>,
        now: Instant,
    ) -> (Result<Transcript, SttError>, Vec<SttError>) {
        let mut reasons = Vec::new();
        let mut failures = Vec::new();
        for (engine, breaker) in self.order(first) {
            if breaker.is_resting(now) {
                reasons.push(format!("{} is resting after a failure", engine.name()));
                continue;
            }
            let asked = match part {
                Some(part) => engine.transcribe_stream(part, audio.clone(), language),
                None => engine.transcribe(audio.clone(), language),
            };
            let result = match tokio::time::timeout(self.deadline, asked).await {
                Ok(result) => result,
                Err(_) => Err(SttError::Stalled(engine.name(), self.deadline.as_millis() as u64)),
            };
            match result {
                Ok(transcript) => {
                    breaker.succeeded();
                    return (Ok(transcript), failures);
                }
                // A full queue is back-pressure, not a broken engine.
                Err(e @ SttError::Busy(_)) => {
                    reasons.push(e.to_string());
                    failures.push(e);
                }
                Err(e) => {
                    tracing::warn!(engine = engine.name(), error = %e, "speech-to-text engine failed; trying the next");
                    breaker.failed(now);
                    reasons.push(e.to_string());
                    failures.push(e);
                }
            }
        }
        (Err(SttError::AllFailed(reasons.join("; "))), failures)
    }

    /// `stream` has ended: every engine closes what it held open for it.
    pub fn end_stream(&self, stream: &str) {
        for (engine, _) in &self.engines {
            engine.end_stream(stream);
        }
    }

    fn order(&self, first: Option<&str>) -> Vec<&(Box<dyn SpeechToText>, Breaker)> {
        let mut order: Vec<_> = self.engines.iter().collect();
        if let Some(name) = first {
            order.sort_by_key(|(e, _)| !e.name().eq_ignore_ascii_case(name));
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// An engine that answers as told and counts its calls.
    struct Scripted {
        name: &'static str,
        answer: Result<&'static str, SttError>,
        stall: bool,
        calls: Arc<AtomicUsize>,
    }

    impl SpeechToText for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }
        fn transcribe(&self, _: Vec<i16>, _: &str) -> BoxFuture<'static, Result<Transcript, SttError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let (answer, name, stall) = (self.answer.clone(), self.name, self.stall);
            Box::pin(async move {
                if stall {
                    std::future::pending::<()>().await;
                }
                answer.map(|text| Transcript { text: text.into(), confidence: 0.9, engine: name })
            })
        }
    }

    fn engine(
        name: &'static str,
        answer: Result<&'static str, SttError>,
    ) -> (Box<dyn SpeechToText>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        (Box::new(Scripted { name, answer, stall: false, calls: calls.clone() }), calls)
    }

    #[tokio::test]
    async fn a_failing_engine_hands_over_to_the_next_and_rests_before_it_is_tried_again() {
        let (broken, broken_calls) = engine("first", Err(SttError::Failed("first", "crashed".into())));
        let (good, _) = engine("second", Ok("hello"));
        let chain = SttChain::new(vec![broken, good]);
        let t0 = crate::breaker::monotonic();
        let heard = chain.transcribe(vec![0; 160], "en", None, t0).await.unwrap();
        assert_eq!((heard.text.as_str(), heard.engine), ("hello", "second"));
        chain.transcribe(vec![0; 160], "en", None, t0 + Duration::from_secs(5)).await.unwrap();
        assert_eq!(broken_calls.load(Ordering::SeqCst), 1, "resting for 30 s");
        chain.transcribe(vec![0; 160], "en", None, t0 + Duration::from_secs(31)).await.unwrap();
        assert_eq!(broken_calls.load(Ordering::SeqCst), 2, "tried again after the rest");
    }

    #[tokio::test]
    async fn when_every_engine_fails_the_reasons_come_back() {
        let (a, _) = engine("a", Err(SttError::Unavailable("a", "no model".into())));
        let (b, _) = engine("b", Err(SttError::Busy("b")));
        let chain = SttChain::new(vec![a, b]);
        let err = chain.transcribe(vec![], "en", None, crate::breaker::monotonic()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "every engine failed: a is not available: no model; b is busy: its queue is full"
        );
    }

    #[tokio::test]
    async fn the_failures_before_an_answer_are_noted_and_a_resting_engine_is_not_one() {
        let (broken, _) = engine("first", Err(SttError::Failed("first", "crashed".into())));
        let (good, _) = engine("second", Ok("hello"));
        let chain = SttChain::new(vec![broken, good]);
        let t0 = crate::breaker::monotonic();
        let (heard, failures) = chain.transcribe_noting(None, vec![0; 160], "en", None, t0).await;
        assert_eq!(heard.unwrap().engine, "second");
        assert_eq!(failures, vec![SttError::Failed("first", "crashed".into())]);
        let (_, failures) = chain.transcribe_noting(None, vec![0; 160], "en", None, t0).await;
        assert_eq!(failures, vec![], "resting, not asked: no failure this time");
    }

    #[tokio::test]
    async fn the_engine_asked_for_goes_first() {
        let (a, a_calls) = engine("a", Ok("from a"));
        let (b, _) = engine("b", Ok("from b"));
        let chain = SttChain::new(vec![a, b]);
        let heard = chain.transcribe(vec![], "en", Some("B"), crate::breaker::monotonic()).await.unwrap();
        assert_eq!(heard.engine, "b");
        assert_eq!(a_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_engine_that_stalls_is_given_up_on_and_the_next_answers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let stalled = Box::new(Scripted { name: "slow", answer: Ok("late"), stall: true, calls });
        let (good, _) = engine("fast", Ok("on time"));
        let chain = SttChain::new(vec![stalled, good]).with_deadline(Duration::from_millis(50));
        let heard = chain.transcribe(vec![], "en", None, crate::breaker::monotonic()).await.unwrap();
        assert_eq!(heard.engine, "fast");
    }
}
