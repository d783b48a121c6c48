//! Agent legs: a browser registered on the signaling WebSocket is dialable as
//! `agent:<name>`. Dialing rings the browser (`incoming_call`); the browser
//! accepts with its SDP offer, Bond answers it with a WebRTC leg and the call is
//! answered (`call.answered`). Reject, hang-up, mute, hold and DTMF come over the
//! same socket. The socket's own protocol is in `http/agents.rs` and docs/agents.md.
//!
//! An agent also places calls: `call` with the browser's offer makes the agent's
//! own leg (an incoming call from `agent:<name>` on the token's connection,
//! answered and parked), and the page then dials the customer through the API
//! with `link_to` that call and `bridge_on_answer` (`linked.rs`).

use bond_store::CallId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bond_media_engine::runtime::IceCreds;
use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::mpsc;

use super::dial::{new_call, no_route, outgoing_call, Dial};
use super::error::CallError;
use super::registry::Ending;
use super::service::CallService;
use bond_store::{CallRecord, Connection};

/// How long an agent's browser may ring (Telnyx `timeout_secs` overrides).
const DEFAULT_RING_SECS: i64 = 30;
/// What a signaling socket may have waiting before Bond stops waiting for it.
const SESSION_QUEUE: usize = 64;

/// What Bond tells an agent's browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Registered {
        agent: String,
        expires: i64,
        connection_id: Option<String>,
    },
    IncomingCall {
        call_control_id: CallId,
        from: String,
        to: String,
    },
    Answer {
        call_control_id: CallId,
        sdp: String,
    },
    /// The agent's own leg for a call it places (answer to `call`).
    Outgoing {
        call_control_id: CallId,
        sdp: String,
    },
    /// The call the agent placed was answered and joined to its leg.
    Answered {
        call_control_id: CallId,
    },
    Hangup {
        call_control_id: CallId,
        cause: String,
    },
    Error {
        code: String,
        detail: String,
    },
    Pong,
}

/// A registered browser: where to send it messages.
#[derive(Debug, Clone)]
struct Session {
    id: u64,
    tx: mpsc::Sender<AgentMessage>,
}

/// A call on an agent: whose it is, whether it has been accepted, and whether
/// the agent placed it.
#[derive(Debug, Clone)]
struct AgentCall {
    organization_id: String,
    agent: String,
    accepted: bool,
    originated: bool,
}

/// Registered agents and the calls on them.
#[derive(Debug, Clone, Default)]
pub struct AgentCalls {
    sessions: Arc<DashMap<(String, String), Session>>,
    calls: Arc<DashMap<CallId, AgentCall>>,
    next_session: Arc<AtomicU64>,
}

/// A registration: the messages for this browser arrive on `messages` until it
/// is replaced (the same agent registered elsewhere) or unregistered.
#[derive(Debug)]
pub struct AgentSession {
    pub id: u64,
    pub messages: mpsc::Receiver<AgentMessage>,
}

impl AgentCalls {
    /// Whether `call` is an agent call still ringing (it has no leg yet).
    pub fn is_ringing(&self, call: &CallId) -> bool {
        self.calls.get(call).is_some_and(|c| !c.accepted)
    }

    fn is_originated(&self, call: &CallId) -> bool {
        self.calls.get(call).is_some_and(|c| c.originated)
    }

    fn send(&self, organization_id: &str, agent: &str, message: AgentMessage) {
        let key = (organization_id.to_owned(), agent.to_owned());
        if let Some(session) = self.sessions.get(&key) {
            // A browser that stops reading loses messages, never the media path.
            let _ = session.tx.try_send(message);
        }
    }
}

impl CallService {
    /// Register an agent's browser; a newer registration of the same agent replaces it.
    pub fn register_agent(&self, organization_id: &str, agent: &str) -> AgentSession {
        let (tx, messages) = mpsc::channel(SESSION_QUEUE);
        let id = self.agents.next_session.fetch_add(1, Ordering::Relaxed);
        self.agents.sessions.insert((organization_id.to_owned(), agent.to_owned()), Session { id, tx });
        tracing::info!(%agent, organization = %organization_id, "agent registered");
        AgentSession { id, messages }
    }

    /// The browser's socket closed: its calls end (ringing ones as unanswered).
    pub async fn unregister_agent(&self, organization_id: &str, agent: &str, session: u64) {
        tracing::info!(%agent, organization = %organization_id, "agent signed out");
        let key = (organization_id.to_owned(), agent.to_owned());
        // Only this session's registration: a newer one stays.
        if self.agents.sessions.remove_if(&key, |_, s| s.id == session).is_none() {
            return;
        }
        let calls: Vec<(CallId, bool)> = self
            .agents
            .calls
            .iter()
            .filter(|c| c.organization_id == organization_id && c.agent == agent)
            .map(|c| (c.key().clone(), c.accepted))
            .collect();
        for (call, accepted) in calls {
            let cause = if accepted { "normal_clearing" } else { "no_answer" };
            self.end(&call, Ending { cause, source: "callee" }).await;
        }
    }

    /// Dial `agent:<name>`: ring the agent's browser. 422 when it is not registered.
    pub(super) async fn dial_agent(
        &self,
        connection: &Connection,
        dial: Dial,
        agent: &str,
    ) -> Result<CallRecord, CallError> {
        let org = &connection.organization_id;
        if !self.agents.sessions.contains_key(&(org.clone(), agent.to_owned())) {
            return Err(no_route(&format!("Agent '{agent}' is not registered.")));
        }
        let ring_secs = dial.timeout_secs.unwrap_or(DEFAULT_RING_SECS).max(1) as u64;
        let new = outgoing_call(connection, dial);
        let call = self.record_initiated(&new, serde_json::Map::new()).await?;
        let id = call.call_control_id.clone();
        let entry = AgentCall {
            organization_id: org.clone(),
            agent: agent.to_owned(),
            accepted: false,
            originated: false,
        };
        self.agents.calls.insert(id.clone(), entry);
        let ring = AgentMessage::IncomingCall {
            call_control_id: id.clone(),
            from: call.from.clone(),
            to: call.to.clone(),
        };
        self.agents.send(org, agent, ring);
        let service = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(ring_secs)).await;
            if service.agents.is_ringing(&id) {
                service.end(&id, Ending { cause: "timeout", source: "callee" }).await;
            }
        });
        Ok(call)
    }

    /// The agent accepts a ringing call with its browser's SDP offer: returns
    /// Bond's answer. The call is answered once its WebRTC leg exists.
    pub async fn agent_accept(
        &self,
        organization_id: &str,
        agent: &str,
        call: &CallId,
        offer: String,
    ) -> Result<String, String> {
        self.agent_call(organization_id, agent, call)?;
        let claimed =
            self.agents.calls.get_mut(call).is_some_and(|mut c| !std::mem::replace(&mut c.accepted, true));
        if !claimed {
            return Err("the call was accepted already".into());
        }
        // Near the call it will be bridged with, or the call it is to supervise.
        let near = self.waiting_link(call).or_else(|| {
            self.live.read(call, |c| c.supervising.as_ref().map(|s| s.supervise.call.clone())).flatten()
        });
        let engine = self.engine_near_link(near.as_ref());
        let (leg, answer) = match engine.create_webrtc_leg(offer, fresh_credentials()).await {
            Ok(created) => created,
            Err(e) => {
                // The browser may try again with a better offer.
                if let Some(mut c) = self.agents.calls.get_mut(call) {
                    c.accepted = false;
                }
                return Err(e.to_string());
            }
        };
        self.registry.insert(call, leg);
        let codec = answer.codec;
        match self.mark_call_answered(call, codec.encoding_name(), codec.sample_rate().hz()).await {
            Ok(Some(record)) => {
                if let Some(limit) = record.time_limit_secs {
                    self.enforce_time_limit(call.to_owned(), limit);
                }
                Ok(answer.sdp)
            }
            Ok(None) => {
                self.registry.remove(leg);
                let _ = self.engine.hangup(leg).await;
                Err("the call has ended".into())
            }
            Err(e) => {
                self.end(call, Ending { cause: "unspecified", source: "unknown" }).await;
                Err(format!("could not record the answer: {e}"))
            }
        }
    }

    /// The agent places a call: its browser's offer becomes the agent's own leg,
    /// an incoming call from `agent:<name>` to `to` on `connection_id`, answered
    /// and parked. Returns the call and Bond's answer.
    pub async fn agent_originate(
        &self,
        organization_id: &str,
        agent: &str,
        connection_id: &str,
        to: Option<String>,
        offer: String,
    ) -> Result<(CallId, String), String> {
        let connection = match self.store.get_connection(organization_id, connection_id).await {
            Ok(Some(c)) if c.active => c,
            Ok(_) => return Err(format!("connection {connection_id} is missing or not active")),
            Err(e) => return Err(e.to_string()),
        };
        let (leg, answer) =
            self.engine.create_webrtc_leg(offer, fresh_credentials()).await.map_err(|e| e.to_string())?;
        let from = format!("agent:{agent}");
        let new = new_call(&connection, "incoming", from.clone(), to.unwrap_or(from));
        let id = new.call_control_id.clone();
        let entry = AgentCall {
            organization_id: organization_id.to_owned(),
            agent: agent.to_owned(),
            accepted: true,
            originated: true,
        };
        self.agents.calls.insert(id.clone(), entry);
        let codec = answer.codec;
        match self
            .record_answered(&new, leg, codec.encoding_name(), codec.sample_rate(), serde_json::Map::new())
            .await
        {
            Ok(_) => Ok((id, answer.sdp)),
            Err(e) => {
                self.agents.calls.remove(&id);
                Err(format!("could not record the call: {e}"))
            }
        }
    }

    /// The agent rejects a ringing call, or hangs up an accepted one.
    pub async fn agent_hangup(
        &self,
        organization_id: &str,
        agent: &str,
        call: &CallId,
    ) -> Result<(), String> {
        let AgentCall { accepted, originated, .. } = self.agent_call(organization_id, agent, call)?;
        let ending = match (accepted, originated) {
            (_, true) => Ending { cause: "normal_clearing", source: "caller" },
            (true, false) => Ending { cause: "normal_clearing", source: "callee" },
            (false, false) => Ending { cause: "call_rejected", source: "callee" },
        };
        self.end(call, ending).await;
        Ok(())
    }

    /// Whether `call` is an agent's own leg for a call it placed.
    pub(super) fn is_agent_originated(&self, call: &CallId) -> bool {
        self.agents.is_originated(call)
    }

    /// The call placed from an agent's leg was answered and bridged: tell its browser.
    pub(super) fn agent_call_answered(&self, call: &CallId) {
        if let Some(c) = self.agents.calls.get(call).filter(|c| c.originated).map(|c| c.clone()) {
            let message = AgentMessage::Answered { call_control_id: call.to_owned() };
            self.agents.send(&c.organization_id, &c.agent, message);
        }
    }

    /// The record of a live call on this agent (for mute, hold and DTMF).
    pub async fn agent_call_record(
        &self,
        organization_id: &str,
        agent: &str,
        call: &CallId,
    ) -> Result<CallRecord, String> {
        self.agent_call(organization_id, agent, call)?;
        match self.store.get_call(organization_id, call).await {
            Ok(Some(record)) if record.is_alive() => Ok(record),
            Ok(_) => Err("the call has ended".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn agent_call(&self, organization_id: &str, agent: &str, call: &CallId) -> Result<AgentCall, String> {
        match self.agents.calls.get(call) {
            Some(c) if c.organization_id == organization_id && c.agent == agent => Ok(c.clone()),
            _ => Err(format!("no call {call} on this agent")),
        }
    }

    /// A call ended: its agent's browser hears of it.
    pub(super) fn release_agent(&self, call_control_id: &CallId, cause: &str) {
        if let Some((id, c)) = self.agents.calls.remove(call_control_id) {
            let message = AgentMessage::Hangup { call_control_id: id, cause: cause.to_owned() };
            self.agents.send(&c.organization_id, &c.agent, message);
        }
    }
}

/// Random ICE credentials for a leg (the password keys STUN message integrity).
fn fresh_credentials() -> IceCreds {
    let ufrag = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let pass = uuid::Uuid::new_v4().simple().to_string();
    IceCreds { ufrag, pass }
}
