//! Reading the model's answers for one agent's task (`run.rs`): each answer
//! is read by a task of its own that reports what the model writes, tagged
//! with the answer's number so the agent drops what an older answer still
//! sends. An answer asked ahead of the turn's end (`Output::Prepare`) is read
//! the same way and held until the turn's `Ask` takes it or drops it.

use std::sync::{Arc, Mutex};

use bond_speech::chat::{ChatChain, ChatError, ChatEvent, ToolCall, Usage as ChatUsage};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::conversation::Message;
use super::report::{history, lock, Report};
use super::tools::{Outcome, Tool};
use super::{AiGather, AssistantStart};

/// What an answer's reading task reports, tagged with the answer it belongs to.
pub(super) enum Answered {
    Text(String),
    Done(Option<ChatUsage>),
    /// The model called `gather_complete` with these arguments (JSON text).
    Gathered(String),
    /// The model called these tools (before its `Done`).
    Tools(Vec<ToolCall>),
    /// What each tool called came to, in order.
    ToolResults(Vec<(ToolCall, Outcome)>),
    /// A model failed; `next` says whether another was asked.
    ModelFailed {
        error: String,
        next: bool,
    },
    Failed(String),
}

/// An answer asked ahead (`Output::Prepare`): read, and held until the
/// turn's `Ask` takes it (the same messages) or drops it.
pub(super) struct Prepared {
    pub messages: Vec<Message>,
    pub number: u64,
    pub task: JoinHandle<()>,
    pub held: Vec<Answered>,
}

impl Prepared {
    /// Stop reading it; the token counts, if the model got as far as sending them.
    pub fn drop_reading(self) -> Option<ChatUsage> {
        self.task.abort();
        self.held.into_iter().find_map(|answered| match answered {
            Answered::Done(usage) => usage,
            _ => None,
        })
    }
}

/// What every answer of one agent is asked with.
pub(super) struct Model {
    llm: Arc<ChatChain>,
    /// Overrides the configured model's name.
    model: Option<String>,
    /// The functions offered: `gather_using_ai`'s, then the tools.
    tools: Vec<Value>,
    report: Arc<Mutex<Report>>,
}

impl Model {
    pub fn new(llm: Arc<ChatChain>, start: &AssistantStart, report: Arc<Mutex<Report>>) -> Self {
        let offered = start.tools.iter().map(Tool::definition);
        let tools = start.gather.iter().flat_map(AiGather::tools).chain(offered).collect();
        Self { llm, model: start.model.clone(), tools, report }
    }

    /// A task reading the model's answer to `messages`, reporting as answer `number`.
    pub fn read(
        &self,
        number: u64,
        messages: &[Message],
        answers: mpsc::Sender<(u64, Answered)>,
    ) -> JoinHandle<()> {
        let wire = match history(messages) {
            Value::Array(wire) => wire,
            _ => Vec::new(),
        };
        let (llm, model, tools) = (self.llm.clone(), self.model.clone(), self.tools.clone());
        let report = self.report.clone();
        tokio::spawn(async move {
            let send = |answered| answers.send((number, answered));
            let (started, failures) = match llm.answer(&wire, &tools, model.as_deref()).await {
                Ok((started, passed_over)) => (Some(started), passed_over),
                Err(failures) => (None, failures),
            };
            let count = failures.len();
            for (i, failure) in failures.iter().enumerate() {
                let next = i + 1 < count || started.is_some();
                let _ = send(Answered::ModelFailed { error: failure.to_string(), next }).await;
            }
            let Some((mut stream, first)) = started else {
                let error =
                    failures.last().map_or("no language model could be asked".into(), ToString::to_string);
                let _ = send(Answered::Failed(error)).await;
                return;
            };
            let name = model.unwrap_or_else(|| stream.model().to_owned());
            lock(&report).llm_model = name;
            let mut next: Option<Result<ChatEvent, ChatError>> = Some(Ok(first));
            while let Some(event) = next {
                let answered = match event {
                    Ok(ChatEvent::Text(piece)) => Answered::Text(piece),
                    Ok(ChatEvent::Done { usage }) => Answered::Done(usage),
                    Ok(ChatEvent::ToolCall(call)) if call.name == AiGather::FUNCTION => {
                        Answered::Gathered(call.arguments)
                    }
                    Ok(ChatEvent::ToolCall(call)) => Answered::Tools(vec![call]),
                    Err(e) => Answered::Failed(e.to_string()),
                };
                let last = matches!(answered, Answered::Done(_) | Answered::Failed(_));
                if send(answered).await.is_err() || last {
                    return;
                }
                next = stream.next().await;
            }
            let _ = send(Answered::Failed("the answer stopped without an end".into())).await;
        })
    }
}
