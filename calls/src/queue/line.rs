//! Call queues as Telnyx has them, I/O-free: named queues per organization,
//! calls waiting in arrival order, a size limit per queue and a wait limit per
//! call. Time comes in as `now`; nothing here reads a clock or does I/O.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bond_store::CallId;

use super::routing::Routing;

/// Telnyx's default `max_size` for a queue.
pub const DEFAULT_MAX_SIZE: u32 = 100;
/// How many recent waits the estimate of the wait is taken from.
const RECENT_WAITS: usize = 20;

/// Why a queue request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("No queue named '{0}'.")]
    NoSuchQueue(String),
    #[error("A queue named '{0}' exists already.")]
    Exists(String),
    #[error("The queue '{0}' is full.")]
    Full(String),
    #[error("The call is in the queue '{0}' already.")]
    AlreadyQueued(String),
    #[error("The call is not in a queue.")]
    NotQueued,
    #[error("The queue '{0}' still has calls waiting.")]
    NotEmpty(String),
}

/// Why a call left its queue (Telnyx's `reason` in `call.dequeued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftBecause {
    /// Bridged with another call (an agent picked it).
    Bridged,
    /// `leave_queue`, or removed through `/v2/queues/{name}/calls/{id}`.
    Leave,
    Hangup,
    /// Its `max_wait_time_secs` passed.
    Timeout,
}

impl LeftBecause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridged => "bridged",
            Self::Leave => "leave",
            Self::Hangup => "hangup",
            Self::Timeout => "timeout",
        }
    }
}

/// A call waiting in a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub call: CallId,
    pub since: Instant,
    /// When it was queued, as the API shows it (RFC 3339).
    pub enqueued_at: String,
    /// When `max_wait_time_secs` takes it out.
    pub deadline: Option<Instant>,
    /// Names this stay in the queue: a timer for an earlier stay finds another.
    pub ticket: u64,
    /// The agent it is being offered to (ringing), when the queue routes by itself.
    pub offered_to: Option<String>,
}

/// One queue.
#[derive(Debug, Clone)]
pub struct Queue {
    pub id: String,
    pub name: String,
    pub max_size: u32,
    pub created_at: String,
    pub updated_at: String,
    /// How it offers its callers to agents (`routing.rs`).
    pub routing: Routing,
    pub(super) waiting: VecDeque<Waiting>,
    /// How long recent calls waited before an agent took them (bridged).
    recent_waits: VecDeque<Duration>,
    /// The agent offered the last call, for round-robin.
    pub(super) last_agent: Option<String>,
}

impl Queue {
    fn new(id: String, name: &str, max_size: u32, at: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            max_size,
            created_at: at.to_owned(),
            updated_at: at.to_owned(),
            routing: Routing::default(),
            waiting: VecDeque::new(),
            recent_waits: VecDeque::new(),
            last_agent: None,
        }
    }

    /// The calls waiting, first in line first.
    pub fn waiting(&self) -> impl Iterator<Item = &Waiting> {
        self.waiting.iter()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// `call`'s place in line (1 is next) and its entry.
    pub fn position(&self, call: &CallId) -> Option<(usize, &Waiting)> {
        self.waiting.iter().enumerate().find(|(_, w)| &w.call == call).map(|(i, w)| (i + 1, w))
    }

    /// How long its first caller has waited.
    pub fn longest_wait(&self, now: Instant) -> Duration {
        self.waiting.front().map(|w| now.saturating_duration_since(w.since)).unwrap_or_default()
    }

    /// How long the calls waiting now have waited, on average (Telnyx's
    /// `average_wait_time_secs`); 0 with none waiting.
    pub fn average_wait(&self, now: Instant) -> Duration {
        let waited: Duration = self.waiting.iter().map(|w| now.saturating_duration_since(w.since)).sum();
        waited.checked_div(self.waiting.len() as u32).unwrap_or_default()
    }

    /// A guess at how long the call at `position` will still wait: the mean
    /// of recent calls' waits, once there are any, times its place in line.
    pub fn estimated_wait(&self, position: usize) -> Option<Duration> {
        let recent: Duration = self.recent_waits.iter().sum();
        let mean = recent.checked_div(self.recent_waits.len() as u32)?;
        Some(mean * position as u32)
    }

    fn leave(&mut self, call: &CallId, now: Instant, because: LeftBecause) -> Option<Left> {
        let (position, _) = self.position(call)?;
        let waiting = self.waiting.remove(position - 1)?;
        let waited = now.saturating_duration_since(waiting.since);
        if because == LeftBecause::Bridged {
            if self.recent_waits.len() == RECENT_WAITS {
                self.recent_waits.pop_front();
            }
            self.recent_waits.push_back(waited);
        }
        Some(Left { queue: self.name.clone(), position, waited, because })
    }
}

/// A moment, as the machine counts it and as the API shows it (RFC 3339).
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub now: Instant,
    pub shown: &'a str,
}

/// What `enqueue` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enqueue {
    /// The queue's size limit if this creates it (ignored for an existing one, as Telnyx does).
    pub max_size: Option<u32>,
    /// `max_wait_time_secs`.
    pub max_wait: Option<Duration>,
}

/// A call now in line.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub position: usize,
    pub average_wait: Duration,
    pub ticket: u64,
}

/// A call out of line.
#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    pub queue: String,
    /// Its place in line when it left.
    pub position: usize,
    pub waited: Duration,
    pub because: LeftBecause,
}

/// Every organization's queues, and which queue each waiting call is in.
#[derive(Debug, Default)]
pub struct Queues {
    pub(super) queues: HashMap<(String, String), Queue>,
    pub(super) call_in: HashMap<CallId, (String, String)>,
    next_ticket: u64,
}

impl Queues {
    /// A new, empty queue. `id` is the id it will show; `at` the time (RFC 3339).
    pub fn create(
        &mut self,
        org: &str,
        name: &str,
        max_size: u32,
        routing: Routing,
        id: String,
        at: &str,
    ) -> Result<&Queue, QueueError> {
        let key = key(org, name);
        if self.queues.contains_key(&key) {
            return Err(QueueError::Exists(name.to_owned()));
        }
        let queue = self.queues.entry(key).or_insert_with(|| Queue::new(id, name, max_size, at));
        queue.routing = routing;
        Ok(queue)
    }

    pub fn get(&self, org: &str, name: &str) -> Result<&Queue, QueueError> {
        self.queues.get(&key(org, name)).ok_or_else(|| QueueError::NoSuchQueue(name.to_owned()))
    }

    /// Every organization's queues, with their organization.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Queue)> {
        self.queues.iter().map(|((org, _), queue)| (org.as_str(), queue))
    }

    /// The organization's queues, by name.
    pub fn list(&self, org: &str) -> Vec<&Queue> {
        let mut queues: Vec<&Queue> =
            self.queues.iter().filter(|((o, _), _)| o == org).map(|(_, q)| q).collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        queues
    }

    /// Change the queue's size limit and how it routes, where given.
    pub fn update(
        &mut self,
        org: &str,
        name: &str,
        max_size: Option<u32>,
        routing: Option<Routing>,
        at: &str,
    ) -> Result<&Queue, QueueError> {
        let queue =
            self.queues.get_mut(&key(org, name)).ok_or_else(|| QueueError::NoSuchQueue(name.to_owned()))?;
        queue.max_size = max_size.unwrap_or(queue.max_size);
        if let Some(routing) = routing {
            queue.routing = routing;
        }
        queue.updated_at = at.to_owned();
        Ok(queue)
    }

    /// Delete an empty queue.
    pub fn delete(&mut self, org: &str, name: &str) -> Result<(), QueueError> {
        let queue = self.get(org, name)?;
        if !queue.is_empty() {
            return Err(QueueError::NotEmpty(name.to_owned()));
        }
        self.queues.remove(&key(org, name));
        Ok(())
    }

    /// Put `call` at the back of queue `name`, made (with `new_id`) if it does not exist.
    pub fn enqueue(
        &mut self,
        org: &str,
        name: &str,
        call: &CallId,
        ask: Enqueue,
        at: At<'_>,
        new_id: impl FnOnce() -> String,
    ) -> Result<Joined, QueueError> {
        let now = at.now;
        if let Some((_, queued_in)) = self.call_in.get(call) {
            return Err(QueueError::AlreadyQueued(queued_in.clone()));
        }
        let key = key(org, name);
        let max_size = ask.max_size.unwrap_or(DEFAULT_MAX_SIZE);
        let queue =
            self.queues.entry(key.clone()).or_insert_with(|| Queue::new(new_id(), name, max_size, at.shown));
        if queue.len() >= queue.max_size as usize {
            return Err(QueueError::Full(name.to_owned()));
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let deadline = ask.max_wait.map(|wait| now + wait);
        let enqueued_at = at.shown.to_owned();
        let waiting =
            Waiting { call: call.clone(), since: now, enqueued_at, deadline, ticket, offered_to: None };
        queue.waiting.push_back(waiting);
        let joined = Joined { position: queue.len(), average_wait: queue.average_wait(now), ticket };
        self.call_in.insert(call.clone(), key);
        Ok(joined)
    }

    /// Take `call` out of its queue.
    pub fn dequeue(&mut self, call: &CallId, now: Instant, because: LeftBecause) -> Option<Left> {
        let key = self.call_in.remove(call)?;
        self.queues.get_mut(&key)?.leave(call, now, because)
    }

    /// The queue `call` waits in.
    pub fn queue_of(&self, call: &CallId) -> Option<&Queue> {
        self.queues.get(self.call_in.get(call)?)
    }

    /// `call`'s stay `ticket`, if it is still the one in line: its place and entry.
    pub fn stay(&self, call: &CallId, ticket: u64) -> Option<(usize, &Waiting)> {
        self.queue_of(call)?.position(call).filter(|(_, w)| w.ticket == ticket)
    }
}

pub(super) fn key(org: &str, name: &str) -> (String, String) {
    (org.to_owned(), name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bond_store::clock::monotonic;

    const AT: &str = "2026-11-26T08:00:00Z";

    fn at(now: Instant) -> At<'static> {
        At { now, shown: AT }
    }

    fn ids() -> impl FnOnce() -> String {
        || "q-1".to_owned()
    }

    fn call(name: &str) -> CallId {
        CallId::from(name)
    }

    #[test]
    fn calls_wait_in_arrival_order_and_move_up_as_others_leave() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let joined =
                queues.enqueue("org", "sales", &call(name), Enqueue::default(), at(t0), ids()).unwrap();
            assert_eq!(joined.position, i + 1);
        }
        let left = queues.dequeue(&call("b"), t0 + Duration::from_secs(5), LeftBecause::Leave).unwrap();
        assert_eq!((left.position, left.waited, left.queue.as_str()), (2, Duration::from_secs(5), "sales"));
        let queue = queues.get("org", "sales").unwrap();
        assert_eq!(queue.position(&call("c")).map(|(p, _)| p), Some(2));
        assert_eq!(queue.waiting().map(|w| w.call.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert!(queues.dequeue(&call("b"), t0, LeftBecause::Leave).is_none(), "left already");
    }

    #[test]
    fn enqueue_makes_the_queue_with_its_size_and_refuses_a_full_one() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        let two = Enqueue { max_size: Some(2), ..Enqueue::default() };
        queues.enqueue("org", "q", &call("a"), two, at(t0), ids()).unwrap();
        // A size asked for an existing queue changes nothing.
        let hundred = Enqueue { max_size: Some(100), ..Enqueue::default() };
        queues.enqueue("org", "q", &call("b"), hundred, at(t0), ids()).unwrap();
        let full = queues.enqueue("org", "q", &call("c"), hundred, at(t0), ids());
        assert_eq!(full, Err(QueueError::Full("q".into())));
        assert_eq!(queues.get("org", "q").unwrap().max_size, 2);
    }

    #[test]
    fn a_call_waits_in_one_queue_at_a_time() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        queues.enqueue("org", "q", &call("a"), Enqueue::default(), at(t0), ids()).unwrap();
        let again = queues.enqueue("org", "other", &call("a"), Enqueue::default(), at(t0), ids());
        assert_eq!(again, Err(QueueError::AlreadyQueued("q".into())));
        assert!(queues.get("org", "other").is_err(), "a refused enqueue makes no queue");
    }

    #[test]
    fn queues_are_per_organization() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        queues.enqueue("org-1", "q", &call("a"), Enqueue::default(), at(t0), ids()).unwrap();
        assert!(queues.get("org-2", "q").is_err());
        assert!(queues.list("org-2").is_empty());
        assert_eq!(queues.list("org-1").len(), 1);
    }

    #[test]
    fn the_average_wait_is_of_the_calls_waiting_now() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        queues.enqueue("org", "q", &call("a"), Enqueue::default(), at(t0), ids()).unwrap();
        let later = t0 + Duration::from_secs(10);
        let joined = queues.enqueue("org", "q", &call("b"), Enqueue::default(), at(later), ids()).unwrap();
        assert_eq!(joined.average_wait, Duration::from_secs(5));
        let queue = queues.get("org", "q").unwrap();
        assert_eq!(queue.average_wait(t0 + Duration::from_secs(20)), Duration::from_secs(15));
    }

    #[test]
    fn the_estimate_comes_from_calls_agents_took() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        queues.enqueue("org", "q", &call("a"), Enqueue::default(), at(t0), ids()).unwrap();
        assert_eq!(queues.get("org", "q").unwrap().estimated_wait(1), None, "nothing to go by yet");
        queues.dequeue(&call("a"), t0 + Duration::from_secs(60), LeftBecause::Bridged).unwrap();
        queues.enqueue("org", "q", &call("b"), Enqueue::default(), at(t0), ids()).unwrap();
        // A caller who gave up says nothing of how fast agents are.
        queues.dequeue(&call("b"), t0 + Duration::from_secs(1), LeftBecause::Hangup).unwrap();
        assert_eq!(queues.get("org", "q").unwrap().estimated_wait(3), Some(Duration::from_secs(180)));
    }

    #[test]
    fn a_stay_is_known_by_its_ticket() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        let first = queues.enqueue("org", "q", &call("a"), Enqueue::default(), at(t0), ids()).unwrap();
        queues.dequeue(&call("a"), t0, LeftBecause::Leave);
        let second = queues.enqueue("org", "q", &call("a"), Enqueue::default(), at(t0), ids()).unwrap();
        assert!(queues.stay(&call("a"), first.ticket).is_none());
        assert_eq!(queues.stay(&call("a"), second.ticket).map(|(p, _)| p), Some(1));
    }

    #[test]
    fn a_wait_limit_sets_the_deadline() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        let ask = Enqueue { max_wait: Some(Duration::from_secs(30)), ..Enqueue::default() };
        let joined = queues.enqueue("org", "q", &call("a"), ask, at(t0), ids()).unwrap();
        let (_, waiting) = queues.stay(&call("a"), joined.ticket).unwrap();
        assert_eq!(waiting.deadline, Some(t0 + Duration::from_secs(30)));
    }

    #[test]
    fn only_an_empty_queue_is_deleted_and_names_are_unique() {
        let (mut queues, t0) = (Queues::default(), monotonic());
        queues.create("org", "q", 5, Routing::default(), "q-1".into(), AT).unwrap();
        assert!(matches!(
            queues.create("org", "q", 5, Routing::default(), "q-2".into(), AT),
            Err(QueueError::Exists(_))
        ));
        queues.enqueue("org", "q", &call("a"), Enqueue::default(), at(t0), ids()).unwrap();
        assert_eq!(queues.delete("org", "q"), Err(QueueError::NotEmpty("q".into())));
        queues.dequeue(&call("a"), t0, LeftBecause::Leave);
        queues.delete("org", "q").unwrap();
        assert_eq!(queues.delete("org", "q"), Err(QueueError::NoSuchQueue("q".into())));
    }
}
