//! Offering queued callers to agents, I/O-free (Bond's own: Telnyx leaves
//! the choice to the application, which is still the default).
//!
//! A queue that routes by itself offers its longest-waiting caller not yet
//! offered to an agent that is available, free, past its wrap-up time and
//! skilled in everything the queue asks for: the
//! one idle longest (`longest_idle`) or the next by name after the last one
//! offered (`round_robin`). Queues of one organization share its agents; the
//! queue whose first caller has waited longest picks first. An offer lasts
//! until the agent answers (the caller leaves the queue, bridged), or it ends
//! unanswered ([`Queues::offer_ended`]: the caller is offered again, first).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bond_agents::Idle;
use bond_store::CallId;

use super::line::{key, Queues, Waiting};

/// How a queue picks the agent for its next caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The application picks (it bridges a queued call with an agent's): Telnyx's way.
    #[default]
    Application,
    LongestIdle,
    RoundRobin,
}

impl Strategy {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "application" => Some(Self::Application),
            "longest_idle" => Some(Self::LongestIdle),
            "round_robin" => Some(Self::RoundRobin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::LongestIdle => "longest_idle",
            Self::RoundRobin => "round_robin",
        }
    }
}

/// A queue's settings of Bond's own: how it offers its callers to agents,
/// and what they hear while they wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub strategy: Strategy,
    /// How long an offered agent's browser rings before the offer ends.
    pub ring: Duration,
    /// How long an agent rests after a call before it is offered another.
    pub wrap_up: Duration,
    /// Only agents with every one of these skills are offered its callers.
    pub skills: Vec<String>,
    /// A WAV in the data directory its callers hear, looped, instead of Bond's tune.
    pub hold_audio_file: Option<String>,
}

impl Default for Routing {
    fn default() -> Self {
        Self {
            strategy: Strategy::Application,
            ring: Duration::from_secs(20),
            wrap_up: Duration::ZERO,
            skills: Vec::new(),
            hold_audio_file: None,
        }
    }
}

/// A caller to ring an agent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub caller: CallId,
    pub agent: String,
    pub queue: String,
    pub ring: Duration,
}

impl Queues {
    /// The offers to make now in `org`'s routing queues, given its `idle`
    /// agents; each is marked on its caller.
    pub fn offers(&mut self, org: &str, idle: &[Idle], now: Instant) -> Vec<Offer> {
        let mut free: Vec<&Idle> = idle.iter().collect();
        let mut without_agent: HashSet<String> = HashSet::new();
        let mut offers = Vec::new();
        while !free.is_empty() {
            // The queue whose first caller not yet offered has waited longest.
            let next = self
                .queues
                .iter()
                .filter(|((o, name), q)| {
                    o == org && q.routing.strategy != Strategy::Application && !without_agent.contains(name)
                })
                .filter_map(|((_, name), q)| {
                    first_unoffered(q.waiting.iter()).map(|w| (w.since, name.clone()))
                })
                .min();
            let Some((_, name)) = next else { break };
            let Some(queue) = self.queues.get_mut(&key(org, &name)) else { break };
            let routing = &queue.routing;
            let skilled = |i: &Idle| routing.skills.iter().all(|skill| i.skills.contains(skill));
            let ready: Vec<&Idle> =
                free.iter().copied().filter(|i| i.since + routing.wrap_up <= now && skilled(i)).collect();
            let agent = match queue.routing.strategy {
                Strategy::LongestIdle => {
                    ready.iter().copied().min_by(|a, b| (a.since, &a.agent).cmp(&(b.since, &b.agent)))
                }
                Strategy::RoundRobin => after(&ready, queue.last_agent.as_deref()),
                Strategy::Application => None,
            };
            let Some(agent) = agent.map(|i| i.agent.clone()) else {
                without_agent.insert(name);
                continue;
            };
            let Some(caller) = queue.waiting.iter_mut().find(|w| w.offered_to.is_none()) else { break };
            caller.offered_to = Some(agent.clone());
            offers.push(Offer {
                caller: caller.call.clone(),
                agent: agent.clone(),
                queue: name,
                ring: queue.routing.ring,
            });
            queue.last_agent = Some(agent.clone());
            free.retain(|i| i.agent != agent);
        }
        offers
    }

    /// The offer to `caller` ended unanswered: it may be offered again (it kept its place).
    pub fn offer_ended(&mut self, caller: &CallId) {
        let Some(key) = self.call_in.get(caller) else { return };
        if let Some(waiting) =
            self.queues.get_mut(key).and_then(|q| q.waiting.iter_mut().find(|w| &w.call == caller))
        {
            waiting.offered_to = None;
        }
    }

    /// The organizations with callers a routing queue has yet to offer.
    pub fn waiting_for_agents(&self) -> Vec<String> {
        let mut orgs: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| {
                q.routing.strategy != Strategy::Application && first_unoffered(q.waiting.iter()).is_some()
            })
            .map(|((org, _), _)| org.clone())
            .collect();
        orgs.sort();
        orgs.dedup();
        orgs
    }
}

fn first_unoffered<'a>(mut waiting: impl Iterator<Item = &'a Waiting>) -> Option<&'a Waiting> {
    waiting.find(|w| w.offered_to.is_none())
}

/// The next agent by name after `last` (round-robin), wrapping around.
fn after<'a>(ready: &[&'a Idle], last: Option<&str>) -> Option<&'a Idle> {
    let mut by_name: Vec<&'a Idle> = ready.to_vec();
    by_name.sort_by(|a, b| a.agent.cmp(&b.agent));
    let later = by_name.iter().copied().find(|i| last.is_none_or(|last| i.agent.as_str() > last));
    later.or_else(|| by_name.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::line::{At, Enqueue};
    use bond_store::clock::monotonic;

    const AT: &str = "2026-11-26T08:00:00Z";

    fn routed(strategy: Strategy, wrap_up_secs: u64) -> (Queues, Instant) {
        let mut queues = Queues::default();
        let routing = Routing { strategy, wrap_up: Duration::from_secs(wrap_up_secs), ..Routing::default() };
        queues.create("org", "q", 10, routing, "q-1".into(), AT).unwrap();
        (queues, monotonic())
    }

    fn enqueue(queues: &mut Queues, name: &str, call: &str, now: Instant) {
        let at = At { now, shown: AT };
        queues.enqueue("org", name, &CallId::from(call), Enqueue::default(), at, || "id".into()).unwrap();
    }

    fn idle(agent: &str, since: Instant) -> Idle {
        Idle { agent: agent.into(), since, skills: Vec::new() }
    }

    #[test]
    fn a_queue_asking_for_skills_is_served_only_by_agents_who_have_them() {
        let mut queues = Queues::default();
        let routing =
            Routing { strategy: Strategy::LongestIdle, skills: vec!["spanish".into()], ..Routing::default() };
        queues.create("org", "es", 10, routing, "q-1".into(), AT).unwrap();
        let t0 = monotonic();
        enqueue(&mut queues, "es", "caller", t0);
        let speaks = Idle {
            skills: vec!["billing".into(), "spanish".into()],
            ..idle("bea", t0 + Duration::from_secs(5))
        };
        let offers = queues.offers("org", &[idle("ann", t0), speaks], t0 + Duration::from_secs(10));
        assert_eq!(pairs(&offers), [("caller", "bea")], "ann, idle longer, does not speak Spanish");
    }

    fn pairs(offers: &[Offer]) -> Vec<(&str, &str)> {
        offers.iter().map(|o| (o.caller.as_str(), o.agent.as_str())).collect()
    }

    #[test]
    fn the_longest_waiting_caller_goes_to_the_longest_idle_agent() {
        let (mut queues, t0) = routed(Strategy::LongestIdle, 0);
        enqueue(&mut queues, "q", "first", t0);
        enqueue(&mut queues, "q", "second", t0 + Duration::from_secs(1));
        let agents = [idle("ann", t0 + Duration::from_secs(5)), idle("bob", t0)];
        let offers = queues.offers("org", &agents, t0 + Duration::from_secs(10));
        assert_eq!(pairs(&offers), [("first", "bob"), ("second", "ann")]);
        assert!(queues.offers("org", &agents, t0 + Duration::from_secs(10)).is_empty(), "offered already");
    }

    #[test]
    fn an_unanswered_offer_leaves_the_caller_first_in_line_for_the_next_agent() {
        let (mut queues, t0) = routed(Strategy::LongestIdle, 0);
        enqueue(&mut queues, "q", "first", t0);
        enqueue(&mut queues, "q", "second", t0);
        let offers = queues.offers("org", &[idle("ann", t0)], t0);
        assert_eq!(pairs(&offers), [("first", "ann")]);
        queues.offer_ended(&CallId::from("first"));
        let offers = queues.offers("org", &[idle("bob", t0)], t0);
        assert_eq!(pairs(&offers), [("first", "bob")]);
    }

    #[test]
    fn an_agent_in_wrap_up_is_not_offered_a_call() {
        let (mut queues, t0) = routed(Strategy::LongestIdle, 30);
        enqueue(&mut queues, "q", "first", t0);
        let resting = [idle("ann", t0)];
        assert!(queues.offers("org", &resting, t0 + Duration::from_secs(29)).is_empty());
        assert_eq!(queues.waiting_for_agents(), ["org"]);
        assert_eq!(pairs(&queues.offers("org", &resting, t0 + Duration::from_secs(30))), [("first", "ann")]);
        assert!(queues.waiting_for_agents().is_empty());
    }

    #[test]
    fn round_robin_takes_agents_in_turn_by_name() {
        let (mut queues, t0) = routed(Strategy::RoundRobin, 0);
        let agents = [idle("cid", t0), idle("ann", t0), idle("bob", t0)];
        let mut picked = Vec::new();
        for i in 0..4 {
            let call = format!("c{i}");
            enqueue(&mut queues, "q", &call, t0);
            let offers = queues.offers("org", &agents, t0);
            picked.push(offers[0].agent.clone());
            queues.dequeue(&CallId::from(call.as_str()), t0, super::super::LeftBecause::Bridged);
        }
        assert_eq!(picked, ["ann", "bob", "cid", "ann"]);
    }

    #[test]
    fn application_queues_are_left_to_the_application() {
        let (mut queues, t0) = routed(Strategy::Application, 0);
        enqueue(&mut queues, "q", "first", t0);
        assert!(queues.offers("org", &[idle("ann", t0)], t0).is_empty());
        assert!(queues.waiting_for_agents().is_empty());
    }

    #[test]
    fn queues_sharing_agents_serve_the_caller_waiting_longest_first() {
        let (mut queues, t0) = routed(Strategy::LongestIdle, 0);
        let routing = Routing { strategy: Strategy::LongestIdle, ..Routing::default() };
        queues.create("org", "other", 10, routing, "q-2".into(), AT).unwrap();
        enqueue(&mut queues, "q", "later", t0 + Duration::from_secs(5));
        enqueue(&mut queues, "other", "earlier", t0);
        let offers = queues.offers("org", &[idle("ann", t0)], t0 + Duration::from_secs(6));
        assert_eq!(pairs(&offers), [("earlier", "ann")]);
        assert_eq!(offers[0].queue, "other");
    }
}
