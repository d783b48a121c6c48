//! The task that runs one call's agent: it feeds the conversation machine what
//! happens (the party's speech and transcripts, the model's answer as it
//! streams, each sentence's audio once synthesized, the time) and carries out
//! what the machine asks. The model is read by a task of its own per answer
//! (a newer turn aborts it); sentences are synthesized one at a time, in
//! order, so they reach the call in order. Nothing here waits on the media
//! path: audio goes to the engine as whole clips, and the speech fork feeds the
//! agent through a bounded queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bond_codecs::ringtone::Ringtone;
use bond_codecs::SampleRate;
use bond_media_engine::LegId;
use bond_speech::chat::ToolCall;
use bond_speech::SpeechEngines;
use bond_store::clock::monotonic;
use bond_store::CallRecord;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::conversation::{Conversation, Latency, Message, Note, Output, Party};
use super::join::{OnHangup, Participant};
use super::reading::{Answered, Model, Prepared};
use super::report::{history, lock, Report};
use super::speech_parts::Resampling;
use super::tools::{Outcome, Tool};
use super::{AiGather, AssistantStart, Input};
use crate::payload::{fields, millis};
use crate::service::CallService;
use speaking::Spoken;

/// The task's speech: a child module, so it shares the task's fields.
#[path = "speaking.rs"]
mod speaking;

/// What the model's last tool does to the call once the agent has said its last.
enum Last {
    HangUp,
    Transfer(Box<crate::transfer::Transfer>, &'static Ringtone),
}

pub(super) struct Task {
    service: CallService,
    call: CallRecord,
    leg: LegId,
    /// The call legs that joined the conversation, by party.
    joined: Vec<(Party, Participant)>,
    engines: SpeechEngines,
    start: AssistantStart,
    report: Arc<Mutex<Report>>,
    conversation: Conversation,
    /// The answer being read: its number (older reports are dropped) and task.
    answer: (u64, Option<JoinHandle<()>>),
    /// The answer asked ahead of the turn's end, and what it wrote so far.
    prepared: Option<Prepared>,
    /// What the model is asked with.
    model: Model,
    /// The last number given to an answer.
    numbered: u64,
    /// Sentences waiting for synthesis, and the one being synthesized.
    to_speak: VecDeque<(u64, String)>,
    speaking: Option<(u64, JoinHandle<()>)>,
    /// Each sentence's audio at the leg's rate, by the machine's id, and the
    /// resampling of the one streaming in.
    audio: HashMap<u64, Vec<i16>>,
    resampling: Option<(u64, Resampling)>,
    rate: SampleRate,
    /// `gather_using_ai` has its result, or the model hung up or transferred
    /// the call: the agent ends once it has said its last.
    closing: bool,
    /// What happens to the call then (the `hangup` or `transfer` tool).
    last: Option<Last>,
    /// Tools the answer being read called, for when it is done.
    called: Vec<ToolCall>,
    /// For webhook tools: Bond's client for URLs tenants give it.
    http: Option<reqwest::Client>,
}

impl Task {
    pub fn new(
        service: CallService,
        call: CallRecord,
        leg: LegId,
        engines: SpeechEngines,
        start: AssistantStart,
        report: Arc<Mutex<Report>>,
    ) -> Self {
        let mut conversation =
            Conversation::new(start.rules.clone(), &start.instructions, start.greeting.as_deref());
        conversation.add_messages(start.history.iter().cloned());
        let model = Model::new(engines.llm.clone(), &start, report.clone());
        Self {
            service,
            call,
            leg,
            joined: Vec::new(),
            engines,
            start,
            report,
            conversation,
            answer: (0, None),
            prepared: None,
            model,
            numbered: 0,
            to_speak: VecDeque::new(),
            speaking: None,
            audio: HashMap::new(),
            resampling: None,
            rate: SampleRate::Hz8000,
            closing: false,
            last: None,
            called: Vec::new(),
            http: bond_store::egress::client(reqwest::Client::builder()).build().ok(),
        }
    }

    pub async fn run(mut self, mut inputs: mpsc::Receiver<(Party, Input)>) {
        if let Ok(Some(rate)) = self.service.engine.leg_rate(self.leg).await {
            self.rate = rate;
        }
        let (answers_tx, mut answers) = mpsc::channel::<(u64, Answered)>(64);
        let (spoken_tx, mut spoken) = mpsc::channel::<Spoken>(1);
        let mut reason = "call_hangup";
        loop {
            self.carry_out(&answers_tx).await;
            if self.closing && self.conversation.is_idle() {
                reason = match self.last {
                    Some(Last::HangUp) => "assistant_hangup",
                    Some(Last::Transfer(..)) => "assistant_transfer",
                    None => "gather_ended",
                };
                break;
            }
            if self.speaking.is_none() {
                if let Some((id, text)) = self.to_speak.pop_front() {
                    let task = self.synthesize(id, text, spoken_tx.clone());
                    self.speaking = Some((id, task));
                }
            }
            let deadline = self.conversation.deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                input = inputs.recv() => match input {
                    Some((_, Input::Stop)) => {
                        reason = "assistant_stopped";
                        break;
                    }
                    Some((_, Input::Transferred)) => {
                        reason = "assistant_transfer";
                        break;
                    }
                    Some((party, Input::Left)) => {
                        if self.left(party).await == Some(OnHangup::EndConversation) {
                            reason = "participant_hangup";
                            break;
                        }
                    }
                    Some((party, input)) => self.heard(party, input).await,
                    None => break,
                },
                Some((number, answered)) = answers.recv() => {
                    if number == self.answer.0 {
                        self.answered(answered).await;
                    } else if let Some(prepared) = self.prepared.as_mut().filter(|p| p.number == number) {
                        prepared.held.push(answered);
                    }
                }
                Some(spoken) = spoken.recv() => self.spoken(spoken).await,
                () = sleep_until(deadline) => self.conversation.poll(monotonic()),
            }
        }
        self.conversation.end(monotonic());
        self.carry_out(&answers_tx).await;
        if let Some(task) = self.answer.1.take() {
            task.abort();
        }
        self.drop_prepared();
        let ended = lock(&self.report).end(reason, &self.service.assistant_prices);
        if let Some(fields) = ended {
            if let Err(e) = self.service.conversation_ended(&self.call.call_control_id, fields).await {
                tracing::error!(call = %self.call.call_control_id, error = %e, "could not record call.conversation.ended");
            }
        }
        let joined: Vec<_> = self.joined.iter().map(|(_, p)| p.call.clone()).collect();
        self.service.assistant_gone(&self.call.call_control_id, &self.report, &joined).await;
        let done = match self.last.take() {
            Some(Last::HangUp) => self.service.hangup(&self.call).await,
            // A transfer that fails leaves the call up, its agent gone (`call.hangup` of the new leg says why).
            Some(Last::Transfer(transfer, tone)) => {
                self.service.transfer(&self.call, *transfer, Some(tone)).await
            }
            None => Ok(()),
        };
        if let Err(e) = done {
            tracing::info!(call = %self.call.call_control_id, error = %e, "the agent's last action failed");
        }
    }

    async fn heard(&mut self, party: Party, input: Input) {
        if let Input::Joined(participant) = input {
            return self.participant_joined(party, participant).await;
        }
        if self.closing {
            return; // the agent is saying its last: nothing the caller says now starts a turn
        }
        match input {
            Input::SpeechStarted(at) => self.conversation.speech_started(party, at),
            Input::SpeechEnded { at, ended, length } => {
                lock(&self.report).usage.stt_audio += length;
                self.conversation.speech_ended(party, at, ended, length);
            }
            Input::Transcript { at, text, failures, answered } => {
                self.stage_failed("stt", &failures, answered).await;
                if answered {
                    self.conversation.transcript(party, at, &text);
                } else {
                    self.conversation.transcript_failed(party, at);
                }
            }
            Input::EarlyTranscript { ended, text } => self.conversation.early_transcript(party, ended, &text),
            Input::Add { messages, respond } => {
                self.conversation.add_messages(messages);
                if respond {
                    self.conversation.respond_now(monotonic());
                }
            }
            Input::Told(messages) => self.conversation.tell(monotonic(), messages),
            Input::Stop | Input::Transferred | Input::Joined(_) | Input::Left => {}
        }
    }

    /// A call leg joined: the agent hears it and speaks to it from now on.
    async fn participant_joined(&mut self, party: Party, participant: Participant) {
        self.conversation.joined(party, &participant.name);
        if participant.invited {
            // The agent invited them: it goes on at once, as it would after their hello.
            self.conversation.respond_when_free(monotonic());
        }
        let fields = participant.fields();
        self.joined.push((party, participant));
        self.event("call.ai_assistant.participant_joined", fields).await;
    }

    /// A joined call ended: what its hangup does to the conversation (`None`: it was not joined).
    async fn left(&mut self, party: Party) -> Option<OnHangup> {
        let at = self.joined.iter().position(|(p, _)| *p == party)?;
        let (_, participant) = self.joined.remove(at);
        self.conversation.left(monotonic(), party);
        self.event("call.ai_assistant.participant_left", participant.fields()).await;
        Some(participant.on_hangup)
    }

    /// The legs the agent speaks on: its call's, and each joined call's.
    fn legs(&self) -> impl Iterator<Item = LegId> + '_ {
        std::iter::once(self.leg).chain(self.joined.iter().map(|(_, p)| p.leg))
    }

    async fn answered(&mut self, answered: Answered) {
        let now = monotonic();
        match answered {
            Answered::Text(piece) => self.conversation.answer_text(now, &piece),
            Answered::Done(usage) => {
                if let Some(usage) = usage {
                    lock(&self.report).usage.add_tokens(usage);
                }
                let called = std::mem::take(&mut self.called);
                let last = called.iter().find_map(|c| self.last_for(c).map(|last| (c, last)));
                let skips = !called.is_empty() && called.iter().all(|c| c.name == Tool::SKIP_TURN);
                if let Some((call, last)) = last {
                    // The agent's last words, then the call is hung up or transferred: nothing else it called runs.
                    self.tool_event(std::iter::once((call, &Outcome::done()))).await;
                    self.closing = true;
                    self.last = Some(last);
                    self.conversation.answer_done(now);
                } else if skips && self.start.tools.iter().any(|t| t.name() == Tool::SKIP_TURN) {
                    let skipped = Outcome::skipped();
                    self.tool_event(called.iter().map(|c| (c, &skipped))).await;
                    self.conversation.answer_skipped(now, called, &skipped.content);
                } else {
                    self.conversation.answer_tools(now, called);
                }
            }
            Answered::Tools(calls) => self.called.extend(calls),
            Answered::ToolResults(results) => {
                let partial = self.partial_offered();
                let (saved, used): (Vec<_>, Vec<_>) =
                    results.iter().partition(|(c, _)| partial && c.name == AiGather::PARTIAL);
                for (call, _) in saved {
                    self.partial_results(&call.arguments).await;
                }
                self.tool_event(used.into_iter().map(|(c, o)| (c, o))).await;
                self.conversation.tool_results(results.into_iter().map(|(_, o)| o.content).collect());
            }
            Answered::ModelFailed { error, next } => {
                let fields =
                    fields([("stage", json!("llm")), ("error", json!(error)), ("fallback", json!(next))]);
                self.event("call.ai_assistant.failed", fields).await;
            }
            Answered::Failed(error) => self.conversation.answer_failed(now, &error),
            Answered::Gathered(arguments) => self.gathered(&arguments).await,
        }
    }

    /// `gather_using_ai` has its result: `call.ai_gather.ended`, then the closing words.
    async fn gathered(&mut self, arguments: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        let result = serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({ "raw": arguments }));
        let fields = fields([
            ("result", result),
            ("status", json!("valid")),
            ("message_history", history(self.conversation.history())),
        ]);
        self.event("call.ai_gather.ended", fields).await;
        if let Some(speech) = self.start.gather.as_ref().and_then(|g| g.ended_speech.clone()) {
            self.conversation.say(&speech);
        }
    }

    /// `gather_partial` is one of the model's functions (`send_partial_results`).
    fn partial_offered(&self) -> bool {
        self.start.gather.as_ref().is_some_and(|g| g.partial)
    }

    /// The model saved what it has so far (`send_partial_results`): `call.ai_gather.partial_results`.
    async fn partial_results(&mut self, arguments: &str) {
        let so_far = serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({ "raw": arguments }));
        let fields =
            fields([("partial_results", so_far), ("message_history", history(self.conversation.history()))]);
        self.event("call.ai_gather.partial_results", fields).await;
    }

    /// Do what the machine asked, until it asks nothing more.
    async fn carry_out(&mut self, answers: &mpsc::Sender<(u64, Answered)>) {
        while let Some(output) = self.conversation.poll_output() {
            match output {
                Output::Ask(messages) => self.ask(messages, answers.clone()).await,
                Output::Prepare(messages) => self.prepare(messages, answers.clone()),
                Output::DropPrepared => self.drop_prepared(),
                Output::CancelAnswer => self.cancel_answer(),
                Output::Synthesize { id, text } => self.to_speak.push_back((id, text)),
                Output::Play { id, from } => self.play(id, from).await,
                // A pause: what waits for synthesis is still wanted if the agent plays on.
                Output::StopAudio => {
                    // Both tracks: a party may have joined or left since the audio started.
                    for leg in self.legs().collect::<Vec<_>>() {
                        for over in [false, true] {
                            let _ = self.service.engine.stop_playback(leg, over, true).await;
                        }
                    }
                }
                Output::CallTools(calls) => self.call_tools(calls, answers.clone()),
                Output::Note(note) => self.note(note).await,
            }
        }
    }

    /// What calling `call` does to the call once the agent has said its last,
    /// if it is a `hangup` or a `transfer` to a target the tool has.
    fn last_for(&self, call: &ToolCall) -> Option<Last> {
        match self.start.tools.iter().find(|t| t.name() == call.name)? {
            Tool::Hangup { .. } => Some(Last::HangUp),
            // A screened transfer rings while the agent goes on (`call_tools`).
            Tool::Transfer(transfer) if transfer.voicemail.is_none() => {
                let target = transfer.pick(&call.arguments).ok()?;
                Some(Last::Transfer(Box::new(target.clone()), transfer.ringtone))
            }
            Tool::Transfer(_) | Tool::Webhook(_) | Tool::SkipTurn { .. } | Tool::Invite(_) => None,
        }
    }

    /// Call the answer's tools, one after the other, and report what they came
    /// to as part of the answer (a newer turn drops it).
    fn call_tools(&mut self, calls: Vec<ToolCall>, answers: mpsc::Sender<(u64, Answered)>) {
        let number = self.answer.0;
        let (tools, http) = (self.start.tools.clone(), self.http.clone());
        let (call_id, partial) = (self.call.call_control_id.to_string(), self.partial_offered());
        let (service, host) = (self.service.clone(), self.call.clone());
        let task = tokio::spawn(async move {
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                let outcome = match (tools.iter().find(|t| t.name() == call.name), &http) {
                    // Reported by the agent's task (`partial_results`); the model is told it is saved.
                    _ if partial && call.name == AiGather::PARTIAL => Outcome::saved(),
                    (Some(Tool::Webhook(hook)), Some(http)) => {
                        hook.call(http, &call_id, &call.arguments).await
                    }
                    (Some(Tool::Webhook(_)), None) => Outcome::error("Bond could not make an HTTP client"),
                    (Some(Tool::Invite(invite)), _) => match invite.pick_named(&call.arguments) {
                        Ok((name, target)) => {
                            service.invite(&host, name, target, invite.voicemail.clone(), None).await
                        }
                        Err(why) => Outcome::error(&why),
                    },
                    // Called beside other tools: the model is asked again after them.
                    (Some(Tool::SkipTurn { .. }), _) => Outcome::skipped(),
                    // A screened transfer rings like an invite; only a plain transfer to a
                    // target it does not have gets here (one it has ends the agent,
                    // `last_for`): the model may pick again.
                    (Some(Tool::Transfer(transfer)), _) => {
                        match (transfer.pick_named(&call.arguments), &transfer.voicemail) {
                            (Ok((name, target)), Some(on)) => {
                                let ringtone = Some(transfer.ringtone);
                                service.invite(&host, name, target, Some(on.clone()), ringtone).await
                            }
                            (picked, _) => Outcome::error(&picked.err().unwrap_or_default()),
                        }
                    }
                    // The model named a tool it was not offered: its mistake.
                    _ => Outcome::error(&format!("there is no tool {}", call.name)),
                };
                results.push((call, outcome));
            }
            let _ = answers.send((number, Answered::ToolResults(results))).await;
        });
        self.answer.1 = Some(task);
    }

    /// `call.ai_assistant.failed` for each engine of `stage` that failed, in
    /// order; `fallback`: another was asked after it (`recovered`: one answered).
    async fn stage_failed(&self, stage: &str, failures: &[String], recovered: bool) {
        for (i, error) in failures.iter().enumerate() {
            let fallback = recovered || i + 1 < failures.len();
            let fields =
                fields([("stage", json!(stage)), ("error", json!(error)), ("fallback", json!(fallback))]);
            self.event("call.ai_assistant.failed", fields).await;
        }
    }

    /// `call.ai_assistant.tool_call` for each tool called (Bond's own event).
    async fn tool_event<'a>(&self, used: impl Iterator<Item = (&'a ToolCall, &'a Outcome)>) {
        for (call, outcome) in used {
            let arguments =
                serde_json::from_str::<Value>(&call.arguments).unwrap_or_else(|_| json!(call.arguments));
            let fields = fields([
                ("name", json!(call.name)),
                ("tool_call_id", json!(call.id)),
                ("arguments", arguments),
                ("status", json!(outcome.status)),
                ("http_status", json!(outcome.http_status)),
                ("latency_ms", json!(millis(outcome.took))),
            ]);
            self.event("call.ai_assistant.tool_call", fields).await;
        }
    }

    /// Ask the model to answer `messages`, or take the answer asked ahead for them.
    async fn ask(&mut self, messages: Vec<Message>, answers: mpsc::Sender<(u64, Answered)>) {
        // A new reading, of the same answer (after its tools) or a new one: what was said stays.
        self.cancel_reading();
        match self.prepared.take_if(|p| p.messages == messages) {
            Some(prepared) => {
                metrics::counter!("bond_assistant_early_answers_total", "outcome" => "used").increment(1);
                lock(&self.report).early_answers_used += 1;
                self.answer = (prepared.number, Some(prepared.task));
                for answered in prepared.held {
                    self.answered(answered).await;
                }
            }
            None => {
                self.drop_prepared();
                self.answer.1 = Some(self.model.read(self.answer.0, &messages, answers));
            }
        }
    }

    /// Ask the model ahead of the turn's end (one such answer at a time).
    fn prepare(&mut self, messages: Vec<Message>, answers: mpsc::Sender<(u64, Answered)>) {
        if self.prepared.as_ref().is_some_and(|p| p.messages == messages) {
            return;
        }
        self.drop_prepared();
        let number = self.next_number();
        let task = self.model.read(number, &messages, answers);
        self.prepared = Some(Prepared { messages, number, task, held: Vec::new() });
    }

    /// The answer asked ahead is not wanted: its reading stops; the tokens it
    /// was billed for are counted if the model got as far as saying them.
    fn drop_prepared(&mut self) {
        let Some(prepared) = self.prepared.take() else { return };
        metrics::counter!("bond_assistant_early_answers_total", "outcome" => "dropped").increment(1);
        let usage = prepared.drop_reading();
        let mut report = lock(&self.report);
        report.early_answers_dropped += 1;
        if let Some(usage) = usage {
            report.usage.add_tokens(usage);
        }
    }

    fn next_number(&mut self) -> u64 {
        self.numbered += 1;
        self.numbered
    }

    /// The answer is not wanted: neither what the model writes nor what is left to say.
    fn cancel_answer(&mut self) {
        self.cancel_reading();
        self.drop_speech();
    }

    fn cancel_reading(&mut self) {
        self.answer.0 = self.next_number();
        self.called.clear();
        if let Some(task) = self.answer.1.take() {
            task.abort();
        }
    }

    async fn note(&mut self, note: Note) {
        let (event_type, body) = match note {
            Note::CallerTurn { text, end, waited } => {
                lock(&self.report).caller_turns += 1;
                let end = json!({ "reason": end.as_str(), "waited_ms": millis(waited) });
                (
                    "call.ai_assistant.turn",
                    fields([("role", json!("user")), ("content", json!(text)), ("end_of_turn", end)]),
                )
            }
            Note::AgentTurn { said, heard, interrupted, latency } => {
                // The answer is over: its sentences still waiting would never be played.
                self.audio.clear();
                self.drop_speech();
                {
                    let mut report = lock(&self.report);
                    report.answered(latency);
                    report.interruptions += u32::from(interrupted);
                }
                record(&latency);
                let turn = [
                    ("role", json!("assistant")),
                    ("content", json!(heard)),
                    ("said", json!(said)),
                    ("interrupted", json!(interrupted)),
                    ("latency_ms", latency_ms(&latency)),
                ];
                ("call.ai_assistant.turn", fields(turn))
            }
            Note::Ignored { text } => {
                ("call.ai_assistant.backchannel", fields([("transcript", json!(text))]))
            }
            Note::CallerSilent { waited } => {
                ("call.ai_assistant.caller_silent", fields([("waited_ms", json!(millis(waited)))]))
            }
            Note::AnswerFailed { error } => {
                let failed = [("stage", json!("llm")), ("error", json!(error)), ("fallback", json!(false))];
                ("call.ai_assistant.failed", fields(failed))
            }
        };
        let turn_ended = event_type == "call.ai_assistant.turn";
        self.event(event_type, body).await;
        lock(&self.report).history = self.conversation.history().to_vec();
        if turn_ended && self.start.send_history_updates {
            let fields = fields([("message_history", history(self.conversation.history()))]);
            self.event("call.ai_gather.message_history_updated", fields).await;
        }
    }

    async fn event(&self, event_type: &str, mut fields: Map<String, Value>) {
        let conversation_id = lock(&self.report).conversation_id.clone();
        fields.insert("conversation_id".into(), json!(conversation_id));
        fields.insert("assistant_id".into(), json!(self.start.assistant_id));
        if let Err(e) = self.service.call_event(&self.call.call_control_id, event_type, fields).await {
            tracing::error!(call = %self.call.call_control_id, error = %e, "could not record {event_type}");
        }
    }
}

/// Each stage's latency into Prometheus (`bond_assistant_stage_seconds{stage}`).
fn record(latency: &Latency) {
    for (stage, value) in latency.stages() {
        if let Some(value) = value {
            metrics::histogram!("bond_assistant_stage_seconds", "stage" => stage).record(value.as_secs_f64());
        }
    }
}

fn latency_ms(latency: &Latency) -> Value {
    latency.stages().into_iter().map(|(stage, value)| (stage.to_owned(), json!(value.map(millis)))).collect()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
