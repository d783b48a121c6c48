//! The engine's clock side: every leg's next deadline (its timers', or its
//! stream pacer's) on one min-heap, pushed only when it changes, and the legs
//! whose deadlines are due run.

use std::cmp::Reverse;
use std::time::Instant;

use super::member::Member;
use super::Engine;
use crate::ids::LegId;

impl Engine {
    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.handle_next_timeout(now) {}
    }

    /// Run the earliest leg's timers if they are due at `now`; false if none
    /// is. A driver that sends each leg's output before running the next (as
    /// [`handle_timeout`](Self::handle_timeout) would not) keeps a frame from
    /// waiting for the codec work of every other leg due at the same time.
    pub fn handle_next_timeout(&mut self, now: Instant) -> bool {
        let Some(&Reverse((at, id))) = self.deadlines.peek() else { return false };
        if at > now {
            return false;
        }
        self.deadlines.pop();
        if self.armed.get(&id) == Some(&at) {
            self.armed.remove(&id);
        }
        if self.conference_deadline(id).is_some() {
            self.tick_conference(now, id);
            self.arm(id);
            return true;
        }
        if self.paced_deadline(id).is_some_and(|due| due <= now) {
            self.release_paced(now, id);
        }
        let Some(leg) = self.legs.get_mut(&id) else { return true };
        if leg.poll_timeout().is_some_and(|due| due <= now) {
            leg.handle_timeout(now);
            self.forward_received(now, id);
            self.after_leg_changed(id);
        } else {
            self.arm(id); // its deadline moved: keep one on the heap
        }
        true
    }

    /// The earliest deadline of any leg.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            match self.deadline(id) {
                Some(due) if due == at => return Some(at),
                _ => {
                    self.deadlines.pop();
                    if self.armed.get(&id) == Some(&at) {
                        self.armed.remove(&id);
                        self.arm(id);
                    }
                }
            }
        }
        None
    }

    /// The leg's next deadline: its own timers', or its stream pacer's.
    fn deadline(&self, id: LegId) -> Option<Instant> {
        if let Some(conference) = self.conference_deadline(id) {
            return Some(conference);
        }
        let leg = self.legs.get(&id).and_then(Member::poll_timeout);
        match self.paced_deadline(id) {
            Some(paced) => Some(leg.map_or(paced, |at| at.min(paced))),
            None => leg,
        }
    }

    /// Push the leg's next deadline unless it is the one already pushed.
    pub(super) fn arm(&mut self, id: LegId) {
        let Some(at) = self.deadline(id) else { return };
        if self.armed.insert(id, at) != Some(at) {
            self.deadlines.push(Reverse((at, id)));
        }
    }
}
