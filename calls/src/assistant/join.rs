//! `ai_assistant_join`: another call leg joins a running agent's
//! conversation. The two calls are bridged (unless they already are, to each
//! other), so their parties hear each other; the joined leg gets a speech fork
//! of its own, whose utterances reach the agent as the joined party's; and the
//! agent's answers play on both legs. The model is told who joined, and each
//! transcript names its speaker from then on (`parties.rs`).
//!
//! The conversation stays the agent's call's: its events go there, and it ends
//! with that call. A joined call that hangs up leaves the conversation, or
//! ends it (`on_hangup: end_conversation`).

use bond_media_engine::{DtmfPassing, LegId};
use bond_store::{CallId, CallRecord};

use super::conversation::Party;
use super::report::lock;
use super::Input;
use crate::error::CallError;
use crate::service::{BridgeOptions, CallService};

/// `ai_assistant_join`, checked (`action/assistant_join.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistantJoin {
    pub conversation_id: String,
    pub participant: Joining,
}

/// A call leg that joins a conversation (Telnyx's `participant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joining {
    /// Telnyx's `participant.id`.
    pub call: CallId,
    /// What the model calls it (Telnyx's `participant.name`).
    pub name: Option<String>,
    pub on_hangup: OnHangup,
}

/// What the joined call's hangup does to the conversation (Telnyx's `participant.on_hangup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHangup {
    ContinueConversation,
    EndConversation,
}

/// A call that joined another call's conversation, kept in its `LiveCall`.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The call the agent runs on.
    pub host: CallId,
    pub party: Party,
}

/// What the agent's task is told of a call that joined.
#[derive(Debug)]
pub(crate) struct Participant {
    pub call: CallId,
    pub leg: LegId,
    pub name: String,
    pub on_hangup: OnHangup,
    /// The agent dialed it (the `invite` tool).
    pub invited: bool,
}

/// A call the agent invited, ringing: it joins `host`'s conversation on answer.
#[derive(Debug)]
pub(crate) struct PendingJoin {
    pub host: CallId,
    /// The host's tenant, and the invited call's.
    pub organization_id: String,
    pub joining: Joining,
    /// The call is screened: it joins once answering-machine detection (which
    /// listens from the answer) says a person answered, and this is what a
    /// voicemail gets (`None`: it joins on answer).
    pub screened: Option<super::OnVoicemail>,
    /// A screened `transfer` tool's call: once a person answers, the agent
    /// ends and the host call is bridged with it, instead of it joining.
    pub transfer: bool,
}

impl PendingJoin {
    /// What the model calls what it asked for.
    pub fn asked(&self) -> &'static str {
        if self.transfer {
            "transfer"
        } else {
            "invitation"
        }
    }
}

/// A message being left on the voicemail that answered an invited call: it
/// is spoken once the greeting ends, and the call hung up once it has played.
#[derive(Debug)]
pub(crate) struct VoicemailDrop {
    pub host: CallId,
    pub name: String,
    pub message: String,
    /// The message's clip, once it plays.
    pub clip: Option<u64>,
}

impl Participant {
    /// The events' `participant`.
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let participant =
            serde_json::json!({ "call_control_id": self.call, "name": self.name, "role": "user" });
        crate::payload::fields([("participant", participant)])
    }
}

fn refused(detail: &str, pointer: &str) -> CallError {
    CallError::invalid("10002", detail, pointer)
}

fn in_a_conversation(pointer: &str) -> CallError {
    let detail = "The participant's call already has an assistant or is in a conversation.";
    CallError::invalid("90019", detail, pointer)
}

impl CallService {
    /// `ai_assistant_join` sent on `call`: the participant joins the
    /// conversation. `call` is the participant's or a call already in the
    /// conversation. Answers the conversation's id.
    pub async fn join_assistant(&self, call: &CallRecord, join: AssistantJoin) -> Result<String, CallError> {
        let no_conversation = || {
            let detail = "No conversation with that conversation_id is running on this call's Bond.";
            CallError::invalid("90020", detail, "/conversation_id")
        };
        let hosts = self.live.find(|c| {
            c.assistant.as_ref().is_some_and(|a| lock(&a.report).conversation_id == join.conversation_id)
        });
        let host_id = hosts.into_iter().next().ok_or_else(no_conversation)?;
        let host = self.store.get_call(&call.organization_id, &host_id).await?.ok_or_else(no_conversation)?;
        let in_it = |id: &CallId| {
            *id == host_id
                || self.live.read(id, |c| c.joined.as_ref().is_some_and(|j| j.host == host_id)) == Some(true)
        };
        if call.call_control_id != join.participant.call && !in_it(&call.call_control_id) {
            let detail = "Send ai_assistant_join on the participant's call or on a call in the conversation.";
            return Err(refused(detail, "/call_control_id"));
        }
        let (participant, leg) = self.joinable(&host, &join.participant, "/participant/id").await?;
        self.add_participant(&host, participant, leg, join.participant, false).await?;
        Ok(join.conversation_id)
    }

    /// The call `joining` names, if it may join `host`'s conversation: of the
    /// tenant, alive, on this node, and in no conversation. `pointer` names it in the request.
    pub(super) async fn joinable(
        &self,
        host: &CallRecord,
        joining: &Joining,
        pointer: &str,
    ) -> Result<(CallRecord, LegId), CallError> {
        let participant = match self.store.get_call(&host.organization_id, &joining.call).await? {
            Some(found) if found.is_alive() => found,
            Some(_) => return Err(CallError::Ended),
            None => return Err(refused("No call with that participant id.", pointer)),
        };
        if participant.call_control_id == host.call_control_id {
            return Err(refused("The participant is the conversation's own call.", pointer));
        }
        if participant.node_id.as_deref().is_some_and(|node| node != self.store.node_id()) {
            let detail = "The participant's call is carried by another node than the conversation's.";
            return Err(refused(detail, pointer));
        }
        let leg = self.live_leg(&participant)?;
        let free = |c: &crate::live::LiveCall| c.assistant.is_none() && c.joined.is_none();
        if self.live.read(&participant.call_control_id, free) == Some(false) {
            return Err(in_a_conversation(pointer));
        }
        Ok((participant, leg))
    }

    /// `participant` (checked by [`joinable`](Self::joinable)) joins the
    /// conversation running on `host`: bridged, heard, spoken to.
    pub(super) async fn add_participant(
        &self,
        host: &CallRecord,
        participant: CallRecord,
        leg: LegId,
        joining: Joining,
        invited: bool,
    ) -> Result<(), CallError> {
        let host_id = &host.call_control_id;
        let gone = || CallError::invalid("90020", "The call has no assistant running.", "/call_control_id");
        if host.bridged_with.as_ref() != Some(&participant.call_control_id) {
            let dtmf = DtmfPassing::Both;
            // The conversation goes on when the participant hangs up.
            let options = BridgeOptions { prevent_double_bridge: true, park_after_unbridge: true, dtmf };
            self.bridge(host, &participant, options).await?;
        }
        let party = self.live.update(host_id, |c| {
            let running = c.assistant.as_mut()?;
            running.joined += 1;
            Some((Party(running.joined), running.language.clone()))
        });
        let (party, language) = party.ok_or_else(gone)?;
        let claimed = self.live.update(&participant.call_control_id, |c| match (&c.assistant, &c.joined) {
            (None, None) => {
                c.joined = Some(Joined { host: host_id.clone(), party });
                true
            }
            _ => false,
        });
        if !claimed {
            return Err(in_a_conversation("/participant/id"));
        }
        if let Err(e) = self.listen_for_assistant(&participant, language).await {
            self.live.update(&participant.call_control_id, |c| c.joined = None);
            return Err(e);
        }
        let name = joining.name.unwrap_or_else(|| format!("Participant {}", party.0));
        let on_hangup = joining.on_hangup;
        let joined = Participant { call: participant.call_control_id, leg, name, on_hangup, invited };
        match self.agent_of(host_id) {
            Some((_, inputs)) if inputs.send((party, Input::Joined(joined))).await.is_ok() => Ok(()),
            _ => Err(gone()),
        }
    }

    /// A joined call ended: its conversation's agent is told (off the hang-up path).
    pub(super) fn left_conversation(&self, joined: Joined) {
        if let Some((_, inputs)) = self.agent_of(&joined.host) {
            tokio::spawn(async move {
                let _ = inputs.send((joined.party, Input::Left)).await;
            });
        }
    }
}
