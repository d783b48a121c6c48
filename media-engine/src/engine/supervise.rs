//! Supervisors on a bridged call (Telnyx `supervisor_role`): a supervisor's leg
//! hears both parties of the call it supervises (`monitor`), and may also be
//! heard by the supervised party alone (`whisper`, e.g. coaching an agent) or by
//! both (`barge`). Each such path is a tap: the frame a leg hears is converted to
//! the listener's rate and mixed into what the listener hears on its next tick,
//! beside its bridge and clips. Tapped legs decode (no passthrough).

use bond_codecs::AudioFrame;

use super::bridge::Route;
use super::Engine;
use crate::ids::LegId;
use crate::EngineError;

/// What a supervisor may do (Telnyx `supervisor_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorRole {
    /// Hears both parties; heard by nobody.
    Monitor,
    /// Hears both; heard by the supervised call's party only.
    Whisper,
    /// Hears both; heard by both.
    Barge,
}

/// Which of a leg's two sides a tap copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// What the leg's party says.
    Said,
    /// What the leg's party hears (its bridge peer, wherever that runs).
    Heard,
}

/// Where a tap's audio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Into what this leg's party hears next.
    Party(LegId),
    /// Into what this leg sends across its bridge next (the peer hears it, in
    /// this engine or another).
    Bridge(LegId),
}

/// One side of a leg's audio, mixed somewhere else.
#[derive(Debug)]
pub(super) struct Tap {
    side: Side,
    to: Target,
    route: Route,
    /// The supervisor this tap belongs to.
    supervisor: LegId,
}

impl Engine {
    /// Let `supervisor` supervise `call` (and whoever is bridged with it) in
    /// `role`, replacing its earlier role; `None` ends it.
    pub fn supervise(
        &mut self,
        supervisor: LegId,
        call: LegId,
        role: Option<SupervisorRole>,
    ) -> Result<(), EngineError> {
        if supervisor == call {
            return Err(EngineError::Config("a leg cannot supervise itself"));
        }
        let rate = |leg| self.legs.get(&leg).map(|m| m.rate()).ok_or(EngineError::UnknownLeg(leg));
        let (call_rate, supervisor_rate) = (rate(call)?, rate(supervisor)?);
        self.unsupervise(supervisor);
        let Some(role) = role else { return Ok(()) };
        // (from, side, to): the supervisor hears both sides of the call's leg.
        let mut paths = vec![
            (call, Side::Said, Target::Party(supervisor)),
            (call, Side::Heard, Target::Party(supervisor)),
        ];
        if matches!(role, SupervisorRole::Whisper | SupervisorRole::Barge) {
            paths.push((supervisor, Side::Said, Target::Party(call)));
        }
        if role == SupervisorRole::Barge {
            paths.push((supervisor, Side::Said, Target::Bridge(call)));
        }
        for (from, side, to) in paths {
            let (from_rate, to_rate) =
                if from == call { (call_rate, supervisor_rate) } else { (supervisor_rate, call_rate) };
            let leg = match to {
                Target::Party(l) | Target::Bridge(l) => l,
            };
            let route = Route::new(leg, from_rate, to_rate, true)?;
            self.taps.entry(from).or_default().push(Tap { side, to, route, supervisor });
            if let Some(member) = self.legs.get_mut(&from) {
                member.set_emit_heard(true);
            }
        }
        self.refresh_passthrough(call);
        Ok(())
    }

    /// Take away every path of `supervisor`.
    pub(super) fn unsupervise(&mut self, supervisor: LegId) {
        self.taps.retain(|_, taps| {
            taps.retain(|t| t.supervisor != supervisor);
            !taps.is_empty()
        });
    }

    /// A leg ended: the paths to and from it, and those of the supervisor it was, go.
    pub(super) fn drop_taps_of(&mut self, leg: LegId) {
        self.unsupervise(leg);
        self.taps.remove(&leg);
        self.taps.retain(|_, taps| {
            taps.retain(|t| !t.targets(leg));
            !taps.is_empty()
        });
        self.bridge_mix.remove(&leg);
    }

    /// Whether supervision involves `leg` (it must then decode).
    pub(super) fn is_tapped(&self, leg: LegId) -> bool {
        self.taps.contains_key(&leg) || self.taps.values().flatten().any(|t| t.targets(leg))
    }

    /// Mix what `leg` said and heard this tick into its taps' targets.
    pub(super) fn feed_taps(&mut self, leg: LegId) {
        let Some(mut taps) = self.taps.remove(&leg) else { return };
        for tap in &mut taps {
            let Some(member) = self.legs.get(&leg) else { break };
            match tap.side {
                Side::Said => self.tap_scratch.clone_from(member.heard_frame()),
                Side::Heard => {
                    // What the party heard, less a supervisor's own whisper in it.
                    self.tap_scratch.clone_from(member.sent_frame());
                    if let Some(mixed) = member.mixed().filter(|m| m.rate() == self.tap_scratch.rate()) {
                        for (a, b) in self.tap_scratch.samples_mut().iter_mut().zip(mixed.samples()) {
                            *a = a.saturating_sub(*b);
                        }
                    }
                }
            }
            let frame = tap.route.convert(&self.tap_scratch);
            match tap.to {
                Target::Party(to) => {
                    if let Some(listener) = self.legs.get_mut(&to) {
                        listener.mix_in(frame);
                    }
                }
                Target::Bridge(to) => match self.bridge_mix.get_mut(&to) {
                    Some(mix) => add_frame(mix, frame),
                    None => drop(self.bridge_mix.insert(to, frame.clone())),
                },
            }
        }
        self.taps.insert(leg, taps);
    }
}

/// `from` added onto `into`, when their rates agree.
pub(super) fn add_frame(into: &mut AudioFrame, from: &AudioFrame) {
    if into.rate() == from.rate() {
        crate::leg::player::add(into.samples_mut(), from.samples());
    }
}

impl Tap {
    fn targets(&self, leg: LegId) -> bool {
        matches!(self.to, Target::Party(l) | Target::Bridge(l) if l == leg)
    }
}
