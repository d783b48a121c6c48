//! `gather`, `gather_using_audio`, `gather_using_speak` and `gather_stop`
//! (Telnyx Call Control): collect the digits a call's party presses, after a
//! prompt for the last two. The rules are I/O-free machines ([`Gather`],
//! `machine.rs`; a prompt and its tries around it, `prompted.rs`). This side
//! keeps one per call in its `LiveCall`, feeds it the engine's digits
//! (`events.rs`), its prompts' ends (`playback.rs`) and the time, carries out
//! what it asks (play a prompt, stop one), wakes it at its deadline, and writes
//! `call.gather.ended` when it ends: by itself, stopped, replaced by a new
//! gather (`cancelled`), or with the call (`call_hangup`, in the transaction
//! that writes `call.hangup`, just before it). Prompts send no playback or
//! speak events of their own.

mod machine;
mod prompted;

use std::time::Instant;

use bond_media_engine::leg::Clip;
use bond_media_engine::LegId;
use bond_store::clock::monotonic;
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord};
use serde_json::{Map, Value};

use super::error::CallError;
use super::live::LiveCall;
use super::payload;
use super::playback::AudioSource;
use super::service::CallService;
pub use machine::{Gather, GatherSpec, GatherStatus, Gathered, Spoken};
pub use prompted::PromptedSpec;
use prompted::{Prompt, Prompted, Step};

/// `gather_using_audio` or `gather_using_speak`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherUsing {
    pub spec: PromptedSpec,
    pub prompt: AudioSource,
    /// Played after invalid input (`invalid_audio_url`, `invalid_payload`).
    pub invalid: Option<AudioSource>,
}

/// A call's running gather. `timer` names the timer task that may wake it (a
/// task woken for an earlier phase or gather finds another and leaves).
#[derive(Debug)]
pub(crate) struct Running {
    timer: u64,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Plain(Gather),
    Prompted(Box<PromptedRun>),
}

#[derive(Debug)]
struct PromptedRun {
    machine: Prompted,
    leg: LegId,
    main: Clip,
    invalid: Option<Clip>,
    /// The prompt clip playing, whose end the machine waits for.
    playing: Option<u64>,
}

impl Kind {
    fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Plain(gather) => Some(gather.deadline()),
            Self::Prompted(run) => run.machine.deadline(),
        }
    }

    fn digit(&mut self, now: Instant, digit: char) -> Vec<Step> {
        match self {
            Self::Plain(gather) => gather.digit(now, digit).map(Step::Ended).into_iter().collect(),
            Self::Prompted(run) => run.machine.digit(now, digit),
        }
    }

    /// The party started speaking, or said `spoken` (speech gathers).
    fn speech(&mut self, now: Instant, spoken: Option<Spoken>) -> Vec<Step> {
        match self {
            Self::Plain(gather) => {
                let ended = match spoken {
                    None => gather.speech_started(now),
                    Some(spoken) => gather.speech(now, spoken),
                };
                ended.map(Step::Ended).into_iter().collect()
            }
            Self::Prompted(run) => run.machine.speech(now, spoken),
        }
    }

    fn poll(&mut self, now: Instant) -> Vec<Step> {
        match self {
            Self::Plain(gather) => gather.poll(now).map(Step::Ended).into_iter().collect(),
            Self::Prompted(run) => run.machine.poll(now).into_iter().collect(),
        }
    }

    fn stop(self, status: GatherStatus) -> (Gathered, Option<LegId>) {
        match self {
            Self::Plain(gather) => (gather.stop(status), None),
            Self::Prompted(run) => {
                let playing = run.playing.map(|_| run.leg);
                (run.machine.stop(status), playing)
            }
        }
    }
}

/// What a step asks of the engine and the store, done outside the call's entry.
enum Effect {
    Play(LegId, Clip),
    StopPrompt(LegId),
    Ended(Gathered),
    /// Start timer task `timer` (the gather now has a deadline).
    Wake(u64),
}

/// Which running gather an input is for.
#[derive(Clone, Copy)]
enum For {
    Any,
    Timer(u64),
    PromptClip(u64),
}

impl For {
    fn matches(self, running: &Running) -> bool {
        match (self, &running.kind) {
            (Self::Any, _) => true,
            (Self::Timer(timer), _) => running.timer == timer,
            (Self::PromptClip(clip), Kind::Prompted(run)) => run.playing == Some(clip),
            (Self::PromptClip(_), Kind::Plain(_)) => false,
        }
    }
}

impl CallService {
    /// `gather`: collect digits from now on.
    pub async fn start_gather(&self, call: &CallRecord, spec: GatherSpec) -> Result<(), CallError> {
        self.answered_leg(call, "a gather").await?;
        if let Some(language) = &spec.speech {
            self.listen_for_gather(call, language.clone()).await?;
        }
        let timer = self.next_id();
        let listens = spec.speech.is_some();
        let running = Running { timer, kind: Kind::Plain(Gather::new(spec, monotonic())) };
        self.end_gather_now(&call.call_control_id, Some((running, listens)), GatherStatus::Cancelled).await?;
        self.wake_gather(call.call_control_id.clone(), timer);
        Ok(())
    }

    /// `gather_using_audio` and `gather_using_speak`: the prompt (fetched or
    /// spoken now: a bad one is a 422, not an event later), then the gather.
    pub async fn start_prompted_gather(
        &self,
        call: &CallRecord,
        using: GatherUsing,
    ) -> Result<(), CallError> {
        let leg = self.answered_leg(call, "a gather").await?;
        let main = self.load_clip(leg, using.prompt, Some(1)).await?;
        if let Some(language) = &using.spec.gather.speech {
            self.listen_for_gather(call, language.clone()).await?;
        }
        let invalid = match using.invalid {
            Some(source) => Some(self.load_clip(leg, source, Some(1)).await?),
            None => None,
        };
        let listens = using.spec.gather.speech.is_some();
        let (machine, first) = Prompted::start(using.spec);
        let run = PromptedRun { machine, leg, main, invalid, playing: None };
        let mut running = Running { timer: 0, kind: Kind::Prompted(Box::new(run)) };
        let effects = self.effects(&mut running, vec![first], false);
        self.end_gather_now(&call.call_control_id, Some((running, listens)), GatherStatus::Cancelled).await?;
        self.carry_out(&call.call_control_id, effects).await;
        Ok(())
    }

    /// `gather_stop`: end the running gather `cancelled`; none running is not an error.
    pub async fn stop_gather(&self, call: &CallRecord) -> Result<(), CallError> {
        self.live_leg(call)?;
        Ok(self.end_gather_now(&call.call_control_id, None, GatherStatus::Cancelled).await?)
    }

    /// End the call's running gather, if any, `status`, and make `next` (a
    /// gather, and whether it listens for speech) the call's gather. The swap
    /// is made holding the call's row, so the end is reported once and before
    /// `call.hangup` ([`event_holding_call`](Self::event_holding_call)).
    async fn end_gather_now(
        &self,
        call: &CallId,
        next: Option<(Running, bool)>,
        status: GatherStatus,
    ) -> Result<(), DbError> {
        let next_listens = next.as_ref().is_some_and(|(_, listens)| *listens);
        let mut prompting = None;
        let mut ended = false;
        let report = |now: &CallRecord| {
            // The call's end came first and ended its gather: start none on it.
            let next = next.filter(|_| now.ended_at.is_none());
            let earlier = self.live.update(call, |c| match next {
                Some((running, _)) => c.gather.replace(running),
                None => c.gather.take(),
            });
            let (gathered, playing) = earlier?.kind.stop(status);
            (prompting, ended) = (playing, true);
            Some(("call.gather.ended", ended_fields(&gathered)))
        };
        let written = self.event_holding_call(call, report).await;
        if let Some(leg) = prompting {
            let _ = self.engine.stop_playback(leg, false, false).await;
        }
        // A gather that listens replacing one that did listens on (it set its language first).
        if ended && !next_listens {
            self.stop_listening_for_gather(call).await;
        }
        written
    }

    /// A digit the call's party pressed, for its gather if one runs.
    pub(super) async fn gather_digit(&self, call: &CallId, digit: char) {
        self.advance(call, For::Any, |kind| kind.digit(monotonic(), digit)).await;
    }

    /// The party started speaking (`spoken` is `None`), or said `spoken`: for its speech gather, if one runs.
    pub(super) async fn gather_speech(&self, call: &CallId, spoken: Option<Spoken>) {
        self.advance(call, For::Any, |kind| kind.speech(monotonic(), spoken)).await;
    }

    /// The engine ended clip `clip`: a gather's prompt, if one waits for it.
    pub(super) async fn gather_prompt_ended(&self, clip: u64) {
        let waiting = |c: &LiveCall| c.gather.as_ref().is_some_and(|r| For::PromptClip(clip).matches(r));
        for call in self.live.find(waiting) {
            self.advance(&call, For::PromptClip(clip), |kind| match kind {
                Kind::Prompted(run) => {
                    run.playing = None;
                    run.machine.prompt_ended(monotonic()).into_iter().collect()
                }
                Kind::Plain(_) => Vec::new(),
            })
            .await;
        }
    }

    /// Feed the call's gather (`which`) one input and carry out what it asks.
    /// The input is fed holding the call's row, so a gather ending as the call
    /// hangs up is reported once, before `call.hangup`.
    async fn advance(&self, call: &CallId, which: For, input: impl FnOnce(&mut Kind) -> Vec<Step>) {
        let runs = |c: &LiveCall| c.gather.as_ref().is_some_and(|r| which.matches(r));
        if self.live.read(call, runs) != Some(true) {
            return;
        }
        let mut input = Some(input);
        let mut effects = Vec::new();
        let report = |_: &CallRecord| {
            effects = self.feed(call, which, input.take()?);
            let ended = effects.iter().find_map(|e| match e {
                Effect::Ended(gathered) => Some(ended_fields(gathered)),
                _ => None,
            })?;
            Some(("call.gather.ended", ended))
        };
        let written = self.event_holding_call(call, report).await;
        if let Some(input) = input {
            // The store failed before the row was had: the gather goes on (its
            // timer would otherwise wake it again at once), its end unrecorded.
            effects = self.feed(call, which, input);
        }
        if let Err(e) = written {
            tracing::error!(%call, error = %e, "could not record the end of a gather");
        }
        self.carry_out(call, effects).await;
    }

    /// Feed the gather the input and make its steps effects; one that ends is taken off the call.
    fn feed(&self, call: &CallId, which: For, input: impl FnOnce(&mut Kind) -> Vec<Step>) -> Vec<Effect> {
        self.live
            .update(call, |c| {
                let running = c.gather.as_mut().filter(|r| which.matches(r))?;
                let timed_before = running.kind.deadline().is_some();
                let steps = input(&mut running.kind);
                let effects = self.effects(running, steps, timed_before);
                if effects.iter().any(|e| matches!(e, Effect::Ended(_))) {
                    c.gather = None;
                }
                Some(effects)
            })
            .unwrap_or_default()
    }

    /// The machine's `steps` as effects, prompts' clips made and noted as
    /// playing; a timer when the gather has a deadline it had not before.
    fn effects(&self, running: &mut Running, steps: Vec<Step>, timed_before: bool) -> Vec<Effect> {
        let mut effects = Vec::new();
        for step in steps {
            match (step, &mut running.kind) {
                (Step::Ended(ended), _) => effects.push(Effect::Ended(ended)),
                (Step::Play(prompt), Kind::Prompted(run)) => {
                    let template = match prompt {
                        Prompt::Invalid => run.invalid.as_ref().unwrap_or(&run.main),
                        Prompt::Main => &run.main,
                    };
                    let clip = Clip { id: self.next_id(), ..template.clone() };
                    run.playing = Some(clip.id);
                    effects.push(Effect::Play(run.leg, clip));
                }
                (Step::StopPrompt, Kind::Prompted(run)) => {
                    run.playing = None;
                    effects.push(Effect::StopPrompt(run.leg));
                }
                (Step::Play(_) | Step::StopPrompt, Kind::Plain(_)) => {}
            }
        }
        let ended = effects.iter().any(|e| matches!(e, Effect::Ended(_)));
        if !timed_before && !ended && running.kind.deadline().is_some() {
            // The gathering phase has begun (a prompt ended or was cut short): time it.
            running.timer = self.next_id();
            effects.push(Effect::Wake(running.timer));
        }
        effects
    }

    async fn carry_out(&self, call: &CallId, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Play(leg, clip) => {
                    if let Err(e) = self.engine.play(leg, clip, false).await {
                        tracing::info!(%call, error = %e, "a gather's prompt could not be played");
                    }
                }
                Effect::StopPrompt(leg) => {
                    let _ = self.engine.stop_playback(leg, false, false).await;
                }
                // Written by `advance`; now stop listening for it.
                Effect::Ended(_) => self.stop_listening_for_gather(call).await,
                Effect::Wake(timer) => self.wake_gather(call.clone(), timer),
            }
        }
    }

    /// Sleep to the gather's deadline and poll it, while timer `timer` is its own.
    fn wake_gather(&self, call: CallId, timer: u64) {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let ours = |c: &LiveCall| {
                    c.gather.as_ref().filter(|r| For::Timer(timer).matches(r)).and_then(|r| r.kind.deadline())
                };
                let Some(deadline) = service.live.read(&call, ours).flatten() else { return };
                tokio::time::sleep_until(deadline.into()).await;
                service.advance(&call, For::Timer(timer), |kind| kind.poll(monotonic())).await;
            }
        });
    }

    /// The call is ending: its gather ends `call_hangup`, written in `tx`.
    pub(super) async fn end_gather(&self, tx: &mut bond_store::Tx, call: &CallRecord) -> Result<(), DbError> {
        let Some(running) = self.live.update(&call.call_control_id, |c| c.gather.take()) else {
            return Ok(());
        };
        let mut body = payload::base(call);
        body.extend(ended_fields(&running.kind.stop(GatherStatus::CallHangup).0));
        self.enqueue(tx, call, "call.gather.ended", Value::Object(body)).await
    }
}

fn ended_fields(ended: &Gathered) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("digits".into(), ended.digits.clone().into());
    fields.insert("status".into(), ended.status.as_str().into());
    if let Some(spoken) = &ended.speech {
        let speech = serde_json::json!({ "transcript": spoken.transcript, "confidence": spoken.confidence });
        fields.insert("bond_speech".into(), speech);
    }
    fields
}
