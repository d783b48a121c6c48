//! The book of live calls: what each call's lifecycle is now, and what a
//! change to one call means for the others.
//!
//! Inputs are methods that take what happened (and `now` where time counts);
//! what must be carried out comes out of [`CallBook::poll_output`] in order.
//! A call enters the book when it is created ([`CallBook::created`]) and
//! leaves it when it ends, so an ended call is simply not found.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::{CallId, Ending};

/// What the book asks its owner to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// End `call`: hang up its leg if it still has one and record its end
    /// with `ending`. `partner` was bridged with it and is not any more.
    End { call: CallId, ending: Ending, partner: Option<CallId> },
    /// Bridge `call`, a dial now answered and up, with the call it was
    /// linked to (`bridge_on_answer`).
    Bridge { call: CallId, with: CallId },
}

/// Why the book refuses a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A call cannot be bridged with itself.
    SameCall,
    /// The call has ended (or never was).
    Ended(CallId),
    /// The call is bridged already and the bridge asked not to break that.
    AlreadyBridged(CallId),
}

/// A dial waiting to be bridged with its linked call once answered.
#[derive(Debug, Clone)]
struct Waiting {
    with: CallId,
    /// The linked call was placed only for this dial (an agent's outgoing
    /// call): it ends too if the dial ends unanswered.
    with_ends_unanswered: bool,
}

/// One live call's lifecycle.
#[derive(Debug, Default)]
struct Call {
    answered: bool,
    has_leg: bool,
    partner: Option<CallId>,
    /// Stays up (parked) when its partner hangs up.
    park_after_unbridge: bool,
    waiting: Option<Waiting>,
    supervises: Option<CallId>,
    deadline: Option<Instant>,
}

/// Every live call's lifecycle, and the outputs not yet carried out.
#[derive(Debug, Default)]
pub struct CallBook {
    calls: HashMap<CallId, Call>,
    deadlines: BTreeSet<(Instant, CallId)>,
    out: VecDeque<Output>,
}

impl CallBook {
    /// A new call, not answered, without a leg yet.
    pub fn created(&mut self, call: &CallId) {
        self.calls.entry(call.clone()).or_default();
    }

    /// Forget a call that was never really made (its record could not be
    /// written): no output, nothing cascades.
    pub fn forget(&mut self, call: &CallId) {
        if let Some(gone) = self.calls.remove(call) {
            if let Some(at) = gone.deadline {
                self.deadlines.remove(&(at, call.clone()));
            }
        }
    }

    /// The call has its media leg now.
    pub fn leg_up(&mut self, call: &CallId) {
        let Some(c) = self.calls.get_mut(call) else { return };
        c.has_leg = true;
        self.bridge_if_ready(call);
        for dial in self.waiting_for(call) {
            self.bridge_if_ready(&dial);
        }
    }

    /// The call was answered.
    pub fn answered(&mut self, call: &CallId) {
        let Some(c) = self.calls.get_mut(call) else { return };
        c.answered = true;
        self.bridge_if_ready(call);
    }

    /// Whether the call is in the book and answered.
    pub fn is_answered(&self, call: &CallId) -> bool {
        self.calls.get(call).is_some_and(|c| c.answered)
    }

    /// The call ends `limit` after `now` unless it ends before.
    pub fn limit_time(&mut self, call: &CallId, limit: Duration, now: Instant) {
        let Some(c) = self.calls.get_mut(call) else { return };
        if let Some(before) = c.deadline.replace(now + limit) {
            self.deadlines.remove(&(before, call.clone()));
        }
        self.deadlines.insert((now + limit, call.clone()));
    }

    /// `dial` is bridged with `with` once both are up and it is answered;
    /// until then `with` ending cancels it, and, when `with` was placed only
    /// for it, it ending unanswered ends `with`.
    pub fn bridge_on_answer(&mut self, dial: &CallId, with: &CallId, with_ends_unanswered: bool) {
        let Some(c) = self.calls.get_mut(dial) else { return };
        c.waiting = Some(Waiting { with: with.clone(), with_ends_unanswered });
        self.bridge_if_ready(dial);
    }

    /// The call `dial` waits to be bridged with on answer, if any.
    pub fn waiting_link(&self, dial: &CallId) -> Option<&CallId> {
        self.calls.get(dial)?.waiting.as_ref().map(|w| &w.with)
    }

    /// `supervisor` supervises `watched` and ends with it.
    pub fn supervise(&mut self, supervisor: &CallId, watched: &CallId) {
        if let Some(c) = self.calls.get_mut(supervisor) {
            c.supervises = Some(watched.clone());
        }
    }

    /// Whether `a` may be bridged with `b`, and which of the two must first
    /// be unbridged from their partners (each pair named once).
    pub fn plan_bridge(
        &self,
        a: &CallId,
        b: &CallId,
        prevent_double_bridge: bool,
    ) -> Result<Vec<CallId>, Refusal> {
        if a == b {
            return Err(Refusal::SameCall);
        }
        let mut unbridge: Vec<CallId> = Vec::new();
        for id in [a, b] {
            let call = self.calls.get(id).ok_or_else(|| Refusal::Ended(id.clone()))?;
            if call.partner.is_some() && prevent_double_bridge {
                return Err(Refusal::AlreadyBridged(id.clone()));
            }
            let pair_named = unbridge.iter().any(|u| self.partner(u) == Some(id));
            if call.partner.is_some() && !pair_named {
                unbridge.push(id.clone());
            }
        }
        Ok(unbridge)
    }

    /// The call's partner, if it is bridged.
    pub fn partner(&self, call: &CallId) -> Option<&CallId> {
        self.calls.get(call)?.partner.as_ref()
    }

    /// `call` and its partner are not bridged any more; returns the partner.
    pub fn unbridged(&mut self, call: &CallId) -> Option<CallId> {
        let partner = self.calls.get_mut(call)?.partner.take()?;
        if let Some(p) = self.calls.get_mut(&partner) {
            p.partner = None;
        }
        Some(partner)
    }

    /// `a` and `b` are bridged now (each unbridged from any other first);
    /// with `park_after_unbridge`, `a` stays up when `b` hangs up.
    pub fn bridged(&mut self, a: &CallId, b: &CallId, park_after_unbridge: bool) {
        for (id, with) in [(a, b), (b, a)] {
            if self.partner(id).is_some_and(|p| p != with) {
                self.unbridged(id);
            }
            if let Some(c) = self.calls.get_mut(id) {
                c.partner = Some(with.clone());
            }
        }
        if park_after_unbridge {
            if let Some(c) = self.calls.get_mut(a) {
                c.park_after_unbridge = true;
            }
        }
    }

    /// `call`'s partner lives in another book (a bridge across nodes) and
    /// left the bridge: it `ended` (then `call` ends with it, unless parked),
    /// or it was bridged elsewhere (then `call` stays up, unbridged). A notice
    /// about a partner `call` no longer has is stale and ignored.
    pub fn remote_partner_left(&mut self, call: &CallId, partner: &CallId, ended: bool) {
        let Some(c) = self.calls.get_mut(call) else { return };
        if c.partner.as_ref() != Some(partner) {
            return;
        }
        c.partner = None;
        if !ended {
            return;
        }
        if c.park_after_unbridge {
            c.park_after_unbridge = false;
        } else {
            self.end(call, Ending::WITH_ITS_PARTNER);
        }
    }

    /// End `call` with `ending`, and with it the calls that go when it goes:
    /// its partner (unless parked), the dials waiting to be bridged with it
    /// (`originator_cancel`), the call placed only for it if it was such a
    /// dial, and its supervisors. A call not in the book still gets its `End`
    /// (its record may say it is alive); nothing cascades from it.
    pub fn end(&mut self, call: &CallId, ending: Ending) {
        if !self.calls.contains_key(call) {
            self.out.push_back(Output::End { call: call.clone(), ending, partner: None });
            return;
        }
        let mut endings = vec![(call.clone(), ending)];
        while let Some((id, ending)) = endings.pop() {
            // Gone already: it was reached twice in this cascade.
            let Some(ended) = self.calls.remove(&id) else { continue };
            if let Some(at) = ended.deadline {
                self.deadlines.remove(&(at, id.clone()));
            }
            if let Some(partner) = &ended.partner {
                match self.calls.get_mut(partner) {
                    Some(p) if p.park_after_unbridge => {
                        p.park_after_unbridge = false;
                        p.partner = None;
                    }
                    Some(p) => {
                        p.partner = None;
                        endings.push((partner.clone(), Ending::WITH_ITS_PARTNER));
                    }
                    None => {}
                }
            }
            if let Some(Waiting { with, with_ends_unanswered: true }) = ended.waiting {
                endings.push((with, Ending { cause: ending.cause, source: "callee" }));
            }
            for dial in self.waiting_for(&id) {
                self.calls.get_mut(&dial).map(|d| d.waiting.take());
                endings.push((dial, Ending::ORIGINATOR_CANCEL));
            }
            for supervisor in self.supervisors_of(&id) {
                endings.push((supervisor, Ending::WITH_ITS_PARTNER));
            }
            self.out.push_back(Output::End { call: id, ending, partner: ended.partner });
        }
    }

    /// When the book next needs [`CallBook::handle_timeout`]: the earliest time limit.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// End the calls whose time limit has run out by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, call)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, call.clone()));
            if let Some(c) = self.calls.get_mut(&call) {
                c.deadline = None;
            }
            self.end(&call, Ending::TIME_LIMIT);
        }
    }

    /// The next thing to carry out.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// How many calls are live.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// A waiting dial that is answered, up, and whose linked call is up: bridge them.
    fn bridge_if_ready(&mut self, dial: &CallId) {
        let Some(c) = self.calls.get(dial) else { return };
        let Some(waiting) = c.waiting.as_ref().filter(|_| c.answered && c.has_leg) else { return };
        if !self.calls.get(&waiting.with).is_some_and(|w| w.has_leg) {
            return;
        }
        let with = waiting.with.clone();
        self.calls.get_mut(dial).map(|d| d.waiting.take());
        self.out.push_back(Output::Bridge { call: dial.clone(), with });
    }

    /// The dials waiting to be bridged with `call`.
    fn waiting_for(&self, call: &CallId) -> Vec<CallId> {
        let waits = |c: &Call| c.waiting.as_ref().is_some_and(|w| w.with == *call);
        self.calls.iter().filter(|(_, c)| waits(c)).map(|(id, _)| id.clone()).collect()
    }

    /// The calls supervising `call`.
    fn supervisors_of(&self, call: &CallId) -> Vec<CallId> {
        let watches = |c: &Call| c.supervises.as_ref() == Some(call);
        self.calls.iter().filter(|(_, c)| watches(c)).map(|(id, _)| id.clone()).collect()
    }
}
