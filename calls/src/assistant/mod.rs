//! Voice agents: `ai_assistant_start`, `ai_assistant_stop` and
//! `ai_assistant_add_messages` (Telnyx Call Control). A language model talks
//! with the call's party through Bond's own speech pipeline: the call's speech
//! fork (`speech/`) cuts the party's utterances and transcribes them, the
//! conversation machine (`conversation.rs`: turns, interruptions, what was
//! heard) decides, and the call's task (`run.rs`) carries its decisions out:
//! streams the model's answer (`bond_speech::chat`), synthesizes it sentence by
//! sentence and plays it on the call's leg.
//!
//! One agent per call. It ends with `ai_assistant_stop` or the call
//! (`call.conversation.ended`, written in the same transaction as `call.hangup`
//! when the call ends first); what it used and how fast it answered is in that
//! event (`report.rs`). Other call legs may join its conversation
//! (`ai_assistant_join`, `join.rs`): the agent then hears and speaks to each.

mod answer;
mod conversation;
mod invite;
mod join;
mod message;
mod output;
mod parties;
mod playout;
mod reading;
mod report;
mod rules;
mod run;
mod sentences;
mod speech_parts;
mod tools;
mod turn;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bond_store::db::DbError;
use bond_store::{CallId, CallRecord};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::CallError;
use crate::payload;
use crate::service::CallService;
use conversation::Party;
pub use conversation::{Message, Role, Rules};
pub use join::{AssistantJoin, Joining, OnHangup};
pub(crate) use join::{Joined, PendingJoin, VoicemailDrop};
pub use report::Prices;
use report::Report;
pub use tools::{OnVoicemail, Tool, TransferTool, Webhook};

/// Inputs that may wait for the agent's task; more are dropped and counted.
const INPUT_QUEUE: usize = 64;

/// `ai_assistant_start`, checked (`action/assistant_fields.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantStart {
    /// Telnyx's `assistant.id`: Bond stores no assistants, it names the conversation in the events.
    pub assistant_id: String,
    pub instructions: String,
    pub greeting: Option<String>,
    /// Overrides the configured model's name.
    pub model: Option<String>,
    /// The language the party speaks (BCP 47).
    pub language: String,
    /// Telnyx's `voice`: each text-to-speech engine takes it when it names one
    /// of its voices (`ElevenLabs.<model>.<voice>`; espeak-ng's `male`/`female`).
    pub voice: String,
    /// Messages the conversation starts with (`message_history`).
    pub history: Vec<Message>,
    pub rules: Rules,
    /// Send `call.ai_gather.message_history_updated` after every turn.
    pub send_history_updates: bool,
    /// `gather_using_ai`: the agent collects these parameters, then ends.
    pub gather: Option<AiGather>,
    /// What the model may call (`assistant.tools`).
    pub tools: Vec<Tool>,
    /// Call legs that join the conversation as it starts (Telnyx's `participants`).
    pub participants: Vec<Joining>,
}

/// What `gather_using_ai` collects, and what the agent says once it has it.
#[derive(Debug, Clone, PartialEq)]
pub struct AiGather {
    /// A JSON Schema object: the model fills it through a function call.
    pub parameters: Value,
    pub ended_speech: Option<String>,
    /// `send_partial_results`: the model is also offered `gather_partial`, and
    /// each call of it is sent as `call.ai_gather.partial_results`.
    pub partial: bool,
}

impl AiGather {
    /// The function the model calls with what it gathered.
    pub const FUNCTION: &'static str = "gather_complete";

    /// The function the model calls with the values it has so far (`send_partial_results`).
    pub const PARTIAL: &'static str = "gather_partial";

    /// What the system message adds, so the model knows to collect and then call.
    pub fn instructions(&self) -> String {
        let partial = if self.partial {
            format!(" Each time the caller gives you a new value, call the function {} with every value you have so far.", Self::PARTIAL)
        } else {
            String::new()
        };
        format!(
            "Your task on this call is to collect the information described by this JSON Schema: {}. \
             Ask the caller for what is still missing, one short question at a time.{partial} As soon as \
             you have every required value, call the function {} with them.",
            self.parameters,
            Self::FUNCTION
        )
    }

    /// The function definitions offered to the model: `gather_complete`, and
    /// `gather_partial` (the same parameters, none required) when asked.
    pub fn tools(&self) -> Vec<Value> {
        let complete =
            function(Self::FUNCTION, "Save the information gathered from the caller.", &self.parameters);
        if !self.partial {
            return vec![complete];
        }
        let mut so_far = self.parameters.clone();
        if let Some(schema) = so_far.as_object_mut() {
            schema.remove("required");
        }
        let partial = function(Self::PARTIAL, "Save what has been gathered from the caller so far.", &so_far);
        vec![complete, partial]
    }
}

fn function(name: &str, description: &str, parameters: &Value) -> Value {
    serde_json::json!({
        "type": "function",
        "function": { "name": name, "description": description, "parameters": parameters },
    })
}

/// What the agent's task is told.
#[derive(Debug)]
pub(crate) enum Input {
    /// The party started speaking.
    SpeechStarted(Instant),
    /// The party's utterance was cut at `at`; the speech itself ended at `ended`.
    SpeechEnded { at: Instant, ended: Instant, length: Duration },
    /// The transcript of the oldest utterance waiting for one (empty: none),
    /// and why each recognizer asked before the one that answered failed
    /// (every one asked, when none `answered`).
    Transcript { at: Instant, text: String, failures: Vec<String>, answered: bool },
    /// An early look's transcript of the utterance being cut (`speech/early.rs`),
    /// whose speech ended at `ended`.
    EarlyTranscript { ended: Instant, text: String },
    /// `ai_assistant_add_messages`.
    Add { messages: Vec<Message>, respond: bool },
    /// Bond tells the agent what happened (an invited call was not answered):
    /// into its history, and answered as soon as it is not speaking.
    Told(Vec<Message>),
    /// `ai_assistant_stop`.
    Stop,
    /// A screened `transfer` reached a person: the agent ends as a transfer
    /// ends it, and the call is bridged with the person.
    Transferred,
    /// A call leg joined the conversation (`ai_assistant_join`) as the party it is sent with.
    Joined(join::Participant),
    /// A joined call ended.
    Left,
}

/// A call's running agent, kept in its `LiveCall`.
#[derive(Debug)]
pub(crate) struct Running {
    /// What the agent is told, and by which party.
    inputs: mpsc::Sender<(Party, Input)>,
    report: Arc<Mutex<Report>>,
    /// The language its parties speak (for the speech forks of those who join).
    language: String,
    /// How many call legs have joined it so far (each one's party is the next number).
    joined: u32,
}

impl CallService {
    /// `ai_assistant_start`: the agent greets (if asked) and listens. Answers the conversation's id.
    pub async fn start_assistant(
        &self,
        call: &CallRecord,
        mut start: AssistantStart,
    ) -> Result<String, CallError> {
        let leg = self.live_leg(call)?;
        let mut joining = Vec::with_capacity(start.participants.len());
        for (i, participant) in start.participants.drain(..).enumerate() {
            let (record, leg) = self.joinable(call, &participant, &format!("/participants/{i}/id")).await?;
            joining.push((record, leg, participant));
        }
        let engines = match &self.speech {
            Ok(engines) if !engines.llm.is_empty() => engines.clone(),
            Ok(_) => {
                let detail = "No language model is configured on this Bond (assistant.llm_base_url).";
                return Err(CallError::invalid("10015", detail, "/assistant"));
            }
            Err(why) => {
                let detail = format!("Speech is not available on this Bond: {why}.");
                return Err(CallError::invalid("10015", detail, "/call_control_id"));
            }
        };
        let (inputs, received) = mpsc::channel(INPUT_QUEUE);
        let report = Report::new(&start);
        let conversation_id = report.conversation_id.clone();
        let report = Arc::new(Mutex::new(report));
        let running = Running { inputs, report: report.clone(), language: start.language.clone(), joined: 0 };
        let claimed = self.live.update(&call.call_control_id, |c| match (&c.assistant, &c.joined) {
            (None, None) => {
                c.assistant = Some(running);
                true
            }
            _ => false,
        });
        if !claimed {
            let detail =
                "The call already has an assistant, or is in another call's conversation; stop it first.";
            return Err(CallError::invalid("90019", detail, "/call_control_id"));
        }
        if let Err(e) = self.listen_for_assistant(call, start.language.clone()).await {
            self.live.update(&call.call_control_id, |c| c.assistant = None);
            return Err(e);
        }
        let task = run::Task::new(self.clone(), call.clone(), leg, engines, start, report.clone());
        tokio::spawn(task.run(received));
        for (record, leg, participant) in joining {
            if let Err(e) = self.add_participant(call, record, leg, participant, false).await {
                // The start is refused: its conversation is not reported as one that ran.
                let _ = report::lock(&report).end("start_refused", &self.assistant_prices);
                let _ = self.tell_assistant(&call.call_control_id, Input::Stop).await;
                return Err(e);
            }
        }
        Ok(conversation_id)
    }

    /// `ai_assistant_stop`: the agent stops speaking and listening.
    pub async fn stop_assistant(&self, call: &CallRecord) -> Result<(), CallError> {
        self.live_leg(call)?;
        self.tell_assistant(&call.call_control_id, Input::Stop).await
    }

    /// `ai_assistant_add_messages`: into the agent's history; with `respond`, it answers now.
    pub async fn add_assistant_messages(
        &self,
        call: &CallRecord,
        messages: Vec<Message>,
        respond: bool,
    ) -> Result<(), CallError> {
        self.live_leg(call)?;
        self.tell_assistant(&call.call_control_id, Input::Add { messages, respond }).await
    }

    /// The agent `call` talks with (its own, or that of the conversation it
    /// joined) and which party `call` is there; `None` with no agent running.
    fn agent_of(&self, call: &CallId) -> Option<(Party, mpsc::Sender<(Party, Input)>)> {
        let joined = self.live.read(call, |c| c.joined.as_ref().map(|j| (j.host.clone(), j.party))).flatten();
        let (host, party) = joined.unwrap_or_else(|| (call.clone(), Party::CALLER));
        let inputs = self.live.read(&host, |c| c.assistant.as_ref().map(|a| a.inputs.clone())).flatten()?;
        Some((party, inputs))
    }

    /// Tell the agent of `call`, or of the conversation `call` joined.
    async fn tell_assistant(&self, call: &CallId, input: Input) -> Result<(), CallError> {
        match self.agent_of(call) {
            Some((_, inputs)) if inputs.send((Party::CALLER, input)).await.is_ok() => Ok(()),
            _ => Err(CallError::invalid("90020", "The call has no assistant running.", "/call_control_id")),
        }
    }

    /// What the speech fork heard, for the agent of the call or of the
    /// conversation it joined (never waits: a full queue drops it).
    pub(crate) fn assistant_hears(&self, call: &CallId, input: Input) {
        let Some((party, inputs)) = self.agent_of(call) else { return };
        if inputs.try_send((party, input)).is_err() {
            metrics::counter!("bond_assistant_inputs_dropped_total").increment(1);
        }
    }

    /// The call ended with its agent running: `call.conversation.ended`, just
    /// before `call.hangup`; what the call's agents used, added up, if this one reported.
    pub(super) async fn end_assistant(
        &self,
        tx: &mut bond_store::Tx,
        call: &CallRecord,
    ) -> Result<Option<Value>, DbError> {
        let (running, joined) =
            self.live.update(&call.call_control_id, |c| (c.assistant.take(), c.joined.take()));
        if let Some(joined) = joined {
            self.left_conversation(joined);
        }
        let Some(running) = running else {
            return Ok(None);
        };
        // Dropping `running` closes the task's inputs: it stops without a second event.
        let ended = report::lock(&running.report).end("call_hangup", &self.assistant_prices);
        match ended {
            Some(fields) => self.conversation_ended_in(tx, call, fields).await.map(Some),
            None => Ok(None),
        }
    }

    /// The agent stopped while the call goes on: `call.conversation.ended`,
    /// and its usage added to the call's.
    async fn conversation_ended(
        &self,
        call: &CallId,
        fields: serde_json::Map<String, Value>,
    ) -> Result<(), DbError> {
        let mut tx = self.store.begin().await?;
        let record = self.call_in(&mut tx, call).await?;
        self.conversation_ended_in(&mut tx, &record, fields).await?;
        self.store.commit(tx).await?;
        self.notifier.notify();
        Ok(())
    }

    /// `call.conversation.ended` with `fields`, and the call's
    /// `bond_assistant_usage` with this conversation's added; the new total.
    async fn conversation_ended_in(
        &self,
        tx: &mut bond_store::Tx,
        call: &CallRecord,
        fields: serde_json::Map<String, Value>,
    ) -> Result<Value, DbError> {
        let total = report::add_up(call.assistant_usage.as_ref(), &fields);
        self.store.set_assistant_usage(tx, &call.call_control_id, &total).await?;
        self.enqueue(tx, call, "call.conversation.ended", with_base(call, fields)).await?;
        Ok(total)
    }

    /// The agent's task is over (stopped, or its inputs closed): forget it,
    /// and stop listening on its call and on the calls that joined it.
    async fn assistant_gone(&self, call: &CallId, report: &Arc<Mutex<Report>>, joined: &[CallId]) {
        self.live.update(call, |c| c.assistant.take_if(|a| Arc::ptr_eq(&a.report, report)));
        self.stop_listening(call, |s| s.assistant.take().is_some()).await;
        for other in joined {
            if self.live.update(other, |c| c.joined.take_if(|j| j.host == *call)).is_some() {
                self.stop_listening(other, |s| s.assistant.take().is_some()).await;
            }
        }
    }
}

fn with_base(call: &CallRecord, fields: serde_json::Map<String, Value>) -> Value {
    let mut body = payload::base(call);
    body.extend(fields);
    Value::Object(body)
}
