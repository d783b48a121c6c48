//! Who is signed in, and the calls on them: the adapter's own state, keyed by
//! organization and agent name (sessions) and by call (calls).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// After a call, until when it wraps up (its `wrap_up` setting) before queues offer it another.
    wrap_up_until: Option<Instant>,
}

/// What Bond keeps of an agent across its sessions (while Bond runs).
#[derive(Debug, Clone, Default)]
struct Profile {
    skills: Vec<String>,
    /// How long it wraps up after each call it took.
    wrap_up: Duration,
}

/// Where an agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// Ready, and on no call: queues may offer it one.
    Available,
    /// A call rings or is up on it.
    Busy,
    /// Its last call ended less than its wrap-up time ago: ready once that is over.
    WrapUp,
    /// Signed in, not ready (its own choice, or after a missed offer).
    Unavailable,
    /// Known (signed in before, or given skills) but not signed in now.
    Offline,
}

impl AgentState {
    pub const ALL: [Self; 5] = [Self::Available, Self::Busy, Self::WrapUp, Self::Unavailable, Self::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::WrapUp => "wrap_up",
            Self::Unavailable => "unavailable",
            Self::Offline => "offline",
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
    /// How long it wraps up after a call, and what is left of the current wrap-up.
    pub wrap_up: Duration,
    pub wrap_up_left: Option<Duration>,
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
    /// Each agent Bond knows, with what is kept across its sessions (while Bond runs).
    profiles: Arc<DashMap<(String, String), Profile>>,
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
        let session = Session { id, tx, available: false, free_since: now, wrap_up_until: None };
        let agent = key(&who.organization_id, &who.agent);
        self.profiles.entry(agent.clone()).or_default();
        self.sessions.insert(agent, session);
        tracing::info!(agent = %who.agent, organization = %who.organization_id, "agent registered");
        AgentSession { id, messages }
    }

    /// Close `agent`'s session here (it registered on another node): its
    /// socket is told it registered elsewhere. Whether there was one.
    pub fn evict(&self, organization_id: &str, agent: &str) -> bool {
        self.sessions.remove(&key(organization_id, agent)).is_some()
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

    /// `call` ended at `now`: its agent's browser hears of it, and the agent is
    /// free from now, after its wrap-up if it took the call.
    pub fn released(&self, call: &CallId, cause: &str, now: Instant) {
        if let Some((id, c)) = self.calls.remove(call) {
            let message = AgentMessage::Hangup { call_control_id: id, cause: cause.to_owned() };
            self.send(&c.organization_id, &c.agent, message);
            let agent = key(&c.organization_id, &c.agent);
            let wrap_up = self.profiles.get(&agent).map_or(Duration::ZERO, |p| p.wrap_up);
            if let Some(mut session) = self.sessions.get_mut(&agent) {
                session.free_since = now;
                if c.accepted && !wrap_up.is_zero() {
                    session.wrap_up_until = Some(now + wrap_up);
                }
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
        // Saying it is ready (or not) ends a wrap-up early.
        session.wrap_up_until = None;
        drop(session);
        self.send(organization_id, agent, AgentMessage::Availability { available });
        true
    }

    /// Give `agent` these skills (checked by the caller), for queues that ask for some.
    pub fn set_skills(&self, organization_id: &str, agent: &str, skills: Vec<String>) {
        self.profiles.entry(key(organization_id, agent)).or_default().skills = skills;
    }

    /// How long `agent` wraps up after each call it takes (from its next one).
    pub fn set_wrap_up(&self, organization_id: &str, agent: &str, wrap_up: Duration) {
        self.profiles.entry(key(organization_id, agent)).or_default().wrap_up = wrap_up;
    }

    /// The organization's agents queues may offer a call to at `now`:
    /// registered, available, past their wrap-up, and with no call ringing or up on them.
    pub fn idle(&self, organization_id: &str, now: Instant) -> Vec<Idle> {
        self.statuses(Some(organization_id), now)
            .into_iter()
            .filter(|s| s.state == AgentState::Available)
            .map(|s| Idle { agent: s.agent, since: s.free_since, skills: s.skills })
            .collect()
    }

    /// Every agent Bond knows (of `organization_id`, or of all) and where it
    /// stands at `now`, by name.
    pub fn statuses(&self, organization_id: Option<&str>, now: Instant) -> Vec<AgentStatus> {
        let busy =
            |org: &str, agent: &str| self.calls.iter().any(|c| c.organization_id == org && c.agent == agent);
        let mut statuses: Vec<AgentStatus> = self
            .profiles
            .iter()
            .filter(|p| organization_id.is_none_or(|org| p.key().0 == org))
            .map(|p| {
                let (org, agent) = p.key();
                let session =
                    self.sessions.get(p.key()).map(|s| (s.available, s.free_since, s.wrap_up_until));
                let wrap_up_left = session
                    .and_then(|(_, _, until)| until)
                    .map(|until| until.saturating_duration_since(now))
                    .filter(|left| !left.is_zero());
                let state = match session {
                    None => AgentState::Offline,
                    Some(_) if busy(org, agent) => AgentState::Busy,
                    Some((true, _, _)) if wrap_up_left.is_some() => AgentState::WrapUp,
                    Some((true, _, _)) => AgentState::Available,
                    Some((false, _, _)) => AgentState::Unavailable,
                };
                AgentStatus {
                    organization_id: org.clone(),
                    agent: agent.clone(),
                    state,
                    free_since: session.map_or(now, |(_, since, _)| since),
                    skills: p.skills.clone(),
                    wrap_up: p.wrap_up,
                    wrap_up_left: wrap_up_left.filter(|_| state == AgentState::WrapUp),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> SignedIn {
        SignedIn { organization_id: "org".into(), agent: "alice".into(), connection_id: None }
    }

    fn state(agents: &Agents, now: Instant) -> (AgentState, Option<Duration>) {
        let status = agents.statuses(Some("org"), now).into_iter().find(|s| s.agent == "alice").unwrap();
        (status.state, status.wrap_up_left)
    }

    #[test]
    fn a_call_taken_is_followed_by_wrap_up_then_the_agent_is_available_again() {
        let (agents, t0) = (Agents::default(), bond_store::clock::monotonic());
        let session = agents.register(&alice(), t0);
        agents.set_wrap_up("org", "alice", Duration::from_secs(30));
        agents.set_available("org", "alice", true, t0);
        let call = CallId::from("call-1".to_owned());
        agents.ring("org", "alice", &call, "+15550001111", "agent:alice");
        assert_eq!(state(&agents, t0).0, AgentState::Busy);
        agents.claim(&alice(), &call).unwrap();
        let ended = t0 + Duration::from_secs(60);
        agents.released(&call, "normal_clearing", ended);
        assert_eq!(
            state(&agents, ended + Duration::from_secs(10)),
            (AgentState::WrapUp, Some(Duration::from_secs(20)))
        );
        assert!(
            agents.idle("org", ended + Duration::from_secs(10)).is_empty(),
            "no offers while wrapping up"
        );
        assert_eq!(state(&agents, ended + Duration::from_secs(30)), (AgentState::Available, None));

        // A call it never took (it rang out) leaves no wrap-up; saying "ready" ends one early.
        let missed = CallId::from("call-2".to_owned());
        agents.ring("org", "alice", &missed, "+15550001111", "agent:alice");
        agents.released(&missed, "no_answer", ended + Duration::from_secs(40));
        assert_eq!(state(&agents, ended + Duration::from_secs(41)).0, AgentState::Available);
        agents.calls.insert(
            call.clone(),
            AgentCall { organization_id: "org".into(), agent: "alice".into(), accepted: true, placed: false },
        );
        agents.released(&call, "normal_clearing", ended + Duration::from_secs(50));
        assert_eq!(state(&agents, ended + Duration::from_secs(51)).0, AgentState::WrapUp);
        agents.set_available("org", "alice", true, ended + Duration::from_secs(52));
        assert_eq!(state(&agents, ended + Duration::from_secs(52)).0, AgentState::Available);

        agents.unregister(&alice(), session.id);
        assert_eq!(
            state(&agents, ended + Duration::from_secs(60)).0,
            AgentState::Offline,
            "known, signed out"
        );
    }
}
