//! Who is signed in, and the calls on them: the adapter's own state, keyed by
//! organization and agent name (sessions) and by call (calls).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bond_store::{CallId, Ending};
use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::protocol::AgentMessage;

/// What a signalling socket may have waiting before Bond stops waiting for it.
const SESSION_QUEUE: usize = 64;

/// A signed-in agent, as its token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub organization_id: String,
    pub agent: String,
    /// The connection the agent places its calls on, if its token names one.
    pub connection_id: Option<String>,
}

/// A registered browser: where to send it messages, and whether queues may
/// offer it calls.
#[derive(Debug, Clone)]
struct Session {
    id: u64,
    tx: mpsc::Sender<AgentMessage>,
    available: bool,
    /// Since when the agent has been free: made available, or its last call ended.
    free_since: Instant,
}

/// Where a signed-in agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// Ready, and on no call: queues may offer it one.
    Available,
    /// A call rings or is up on it.
    Busy,
    /// Not ready (its own choice, or after a missed offer).
    Unavailable,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A signed-in agent and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub organization_id: String,
    pub agent: String,
    pub state: AgentState,
    /// Since when it has been free (ready, or its last call ended).
    pub free_since: Instant,
    /// What it is skilled in (queues may ask for some).
    pub skills: Vec<String>,
}

/// An agent queues may offer a call to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idle {
    pub agent: String,
    /// Since when it has been free (the longest-idle agent is offered first).
    pub since: Instant,
    pub skills: Vec<String>,
}

/// A call on an agent: whose it is, whether it has been accepted, and whether
/// the agent placed it.
#[derive(Debug, Clone)]
pub(crate) struct AgentCall {
    organization_id: String,
    agent: String,
    pub(crate) accepted: bool,
    pub(crate) placed: bool,
}

/// Registered agents and the calls on them.
#[derive(Debug, Clone, Default)]
pub struct Agents {
    sessions: Arc<DashMap<(String, String), Session>>,
    calls: Arc<DashMap<CallId, AgentCall>>,
    next_session: Arc<AtomicU64>,
    /// Each agent's skills, kept across its sessions (while Bond runs).
    skills: Arc<DashMap<(String, String), Vec<String>>>,
}

/// A registration: the messages for this browser arrive on `messages` until it
/// is replaced (the same agent registered elsewhere: the channel closes).
#[derive(Debug)]
pub struct AgentSession {
    pub id: u64,
    pub messages: mpsc::Receiver<AgentMessage>,
}

impl Agents {
    /// Register an agent's browser; a newer registration of the same agent replaces it.
    /// It starts unavailable to queues until it says otherwise.
    pub fn register(&self, who: &SignedIn, now: Instant) -> AgentSession {
        let (tx, messages) = mpsc::channel(SESSION_QUEUE);
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let session = Session { id, tx, available: false, free_since: now };
        self.sessions.insert(key(&who.organization_id, &who.agent), session);
        tracing::info!(agent = %who.agent, organization = %who.organization_id, "agent registered");
        AgentSession { id, messages }
    }

    /// Whether `agent` of `organization_id` has a browser registered.
    pub fn is_registered(&self, organization_id: &str, agent: &str) -> bool {
        self.sessions.contains_key(&key(organization_id, agent))
    }

    /// The session `session` closed. Unless a newer one replaced it, the
    /// agent's calls are returned with how each ends (ringing ones as unanswered).
    pub(crate) fn unregister(&self, who: &SignedIn, session: u64) -> Vec<(CallId, Ending)> {
        tracing::info!(agent = %who.agent, organization = %who.organization_id, "agent signed out");
        let session_key = key(&who.organization_id, &who.agent);
        if self.sessions.remove_if(&session_key, |_, s| s.id == session).is_none() {
            return Vec::new();
        }
        self.calls
            .iter()
            .filter(|c| c.organization_id == who.organization_id && c.agent == who.agent)
            .map(|c| {
                let cause = if c.accepted { "normal_clearing" } else { "no_answer" };
                (c.key().clone(), Ending { cause, source: "callee" })
            })
            .collect()
    }

    /// Ring `agent` with `call` (dialed as `agent:<name>`).
    pub fn ring(&self, organization_id: &str, agent: &str, call: &CallId, from: &str, to: &str) {
        let entry = AgentCall {
            organization_id: organization_id.to_owned(),
            agent: agent.to_owned(),
            accepted: false,
            placed: false,
        };
        self.calls.insert(call.clone(), entry);
        let ring = AgentMessage::IncomingCall {
            call_control_id: call.clone(),
            from: from.to_owned(),
            to: to.to_owned(),
        };
        self.send(organization_id, agent, ring);
    }

    /// Whether `call` is an agent call still ringing (it has no leg yet).
    pub fn is_ringing(&self, call: &CallId) -> bool {
        self.calls.get(call).is_some_and(|c| !c.accepted)
    }

    /// Whether `call` is an agent's own leg for a call it placed.
    pub fn is_placed(&self, call: &CallId) -> bool {
        self.calls.get(call).is_some_and(|c| c.placed)
    }

    /// The call placed from an agent's leg `call` was answered and joined to it: tell its browser.
    pub fn placed_call_answered(&self, call: &CallId) {
        if let Some(c) = self.calls.get(call).filter(|c| c.placed).map(|c| c.clone()) {
            let message = AgentMessage::Answered { call_control_id: call.clone() };
            self.send(&c.organization_id, &c.agent, message);
        }
    }

    /// `call` ended at `now`: its agent's browser hears of it, and the agent is free from now.
    pub fn released(&self, call: &CallId, cause: &str, now: Instant) {
        if let Some((id, c)) = self.calls.remove(call) {
            let message = AgentMessage::Hangup { call_control_id: id, cause: cause.to_owned() };
            self.send(&c.organization_id, &c.agent, message);
            if let Some(mut session) = self.sessions.get_mut(&key(&c.organization_id, &c.agent)) {
                session.free_since = now;
            }
        }
    }

    /// Make `agent` available to queues or not (its own choice, or Bond's after a
    /// missed offer); the browser is told. Whether it is registered.
    pub fn set_available(&self, organization_id: &str, agent: &str, available: bool, now: Instant) -> bool {
        let Some(mut session) = self.sessions.get_mut(&key(organization_id, agent)) else { return false };
        if available && !session.available {
            session.free_since = session.free_since.max(now);
        }
        session.available = available;
        drop(session);
        self.send(organization_id, agent, AgentMessage::Availability { available });
        true
    }

    /// Give `agent` these skills (checked by the caller), for queues that ask for some.
    pub fn set_skills(&self, organization_id: &str, agent: &str, skills: Vec<String>) {
        self.skills.insert(key(organization_id, agent), skills);
    }

    /// The organization's agents queues may offer a call to: registered,
    /// available, and with no call ringing or up on them.
    pub fn idle(&self, organization_id: &str) -> Vec<Idle> {
        self.statuses(Some(organization_id))
            .into_iter()
            .filter(|s| s.state == AgentState::Available)
            .map(|s| Idle { agent: s.agent, since: s.free_since, skills: s.skills })
            .collect()
    }

    /// Every signed-in agent (of `organization_id`, or of all), by name.
    pub fn statuses(&self, organization_id: Option<&str>) -> Vec<AgentStatus> {
        let busy =
            |org: &str, agent: &str| self.calls.iter().any(|c| c.organization_id == org && c.agent == agent);
        let mut statuses: Vec<AgentStatus> = self
            .sessions
            .iter()
            .filter(|s| organization_id.is_none_or(|org| s.key().0 == org))
            .map(|s| {
                let (org, agent) = s.key();
                let state = match (busy(org, agent), s.available) {
                    (true, _) => AgentState::Busy,
                    (false, true) => AgentState::Available,
                    (false, false) => AgentState::Unavailable,
                };
                AgentStatus {
                    organization_id: org.clone(),
                    agent: agent.clone(),
                    state,
                    free_since: s.free_since,
                    skills: self.skills.get(s.key()).map(|k| k.clone()).unwrap_or_default(),
                }
            })
            .collect();
        statuses.sort_by(|a, b| (&a.organization_id, &a.agent).cmp(&(&b.organization_id, &b.agent)));
        statuses
    }

    /// The agent's own leg `call`, for a call it places.
    pub(crate) fn placing(&self, who: &SignedIn, call: &CallId) {
        let entry = AgentCall {
            organization_id: who.organization_id.clone(),
            agent: who.agent.clone(),
            accepted: true,
            placed: true,
        };
        self.calls.insert(call.clone(), entry);
    }

    pub(crate) fn forget(&self, call: &CallId) {
        self.calls.remove(call);
    }

    /// The agent accepts ringing `call`: refused if it is not on this agent or
    /// was accepted already.
    pub(crate) fn claim(&self, who: &SignedIn, call: &CallId) -> Result<(), String> {
        self.on_agent(who, call)?;
        let claimed = self.calls.get_mut(call).is_some_and(|mut c| !std::mem::replace(&mut c.accepted, true));
        if claimed {
            Ok(())
        } else {
            Err("the call was accepted already".into())
        }
    }

    /// The accepted call's leg could not be made: it rings again, and the
    /// browser may accept with a better offer.
    pub(crate) fn unclaim(&self, call: &CallId) {
        if let Some(mut c) = self.calls.get_mut(call) {
            c.accepted = false;
        }
    }

    /// The call `call` on this agent, or why not.
    pub(crate) fn on_agent(&self, who: &SignedIn, call: &CallId) -> Result<AgentCall, String> {
        match self.calls.get(call) {
            Some(c) if c.organization_id == who.organization_id && c.agent == who.agent => Ok(c.clone()),
            _ => Err(format!("no call {call} on this agent")),
        }
    }

    fn send(&self, organization_id: &str, agent: &str, message: AgentMessage) {
        if let Some(session) = self.sessions.get(&key(organization_id, agent)) {
            // A browser that stops reading loses messages, never the media path.
            let _ = session.tx.try_send(message);
        }
    }
}

fn key(organization_id: &str, agent: &str) -> (String, String) {
    (organization_id.to_owned(), agent.to_owned())
}
