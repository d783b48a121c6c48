//! The engine: many legs in one I/O-free state machine.
//!
//! The driver feeds it datagrams and the passage of time, and drains
//! [`Engine::poll_output`] until it returns `None`; then it sleeps until
//! [`Engine::poll_timeout`]. Deadlines live in a min-heap so a timeout costs
//! O(log n) in the number of legs, not a scan.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use bond_codecs::signals::SplitMix64;
use bond_codecs::{AudioFrame, Codec};
use bytes::Bytes;

use crate::event::{EngineEvent, HangupCause};
use crate::ids::LegId;
use crate::leg::{Leg, LegConfig, LegOutput, MediaSource};
use crate::rtp::RtpStats;
use crate::EngineError;

/// What the engine asks its driver to do.
#[derive(Debug)]
pub enum EngineOutput {
    /// Send `data` to the leg's peer.
    Transmit {
        leg: LegId,
        data: Bytes,
    },
    /// A decoded frame from a leg created with `emit_heard`.
    Heard {
        leg: LegId,
        frame: Box<AudioFrame>,
    },
    Event(EngineEvent),
}

/// Many legs, their timers and their outputs.
#[derive(Debug)]
pub struct Engine {
    legs: HashMap<LegId, Leg>,
    next_leg: u64,
    deadlines: BinaryHeap<Reverse<(Instant, LegId)>>,
    outputs: VecDeque<EngineOutput>,
    rng: SplitMix64,
}

impl Engine {
    /// `seed` drives SSRCs, sequence numbers and timestamps, so runs can be replayed.
    pub fn new(seed: u64) -> Self {
        Self {
            legs: HashMap::new(),
            next_leg: 1,
            deadlines: BinaryHeap::new(),
            outputs: VecDeque::new(),
            rng: SplitMix64::new(seed),
        }
    }

    /// A leg configuration for `codec` with fresh seeded identifiers.
    pub fn leg_config(&mut self, codec: Codec) -> LegConfig {
        LegConfig::new(codec, self.rng.next_u64())
    }

    pub fn add_leg(
        &mut self,
        now: Instant,
        config: LegConfig,
        source: MediaSource,
    ) -> Result<LegId, EngineError> {
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        let leg = Leg::new(id, config, source, now)?;
        self.legs.insert(id, leg);
        self.after_leg_changed(id);
        Ok(id)
    }

    /// A datagram arrived for `leg`.
    pub fn handle_receive(&mut self, now: Instant, leg: LegId, datagram: &[u8]) -> Result<(), EngineError> {
        let result = self.leg_mut(leg)?.handle_rtp(now, datagram);
        self.after_leg_changed(leg);
        result
    }

    /// Queue audio for an external-source leg.
    pub fn push_frame(&mut self, leg: LegId, frame: &AudioFrame) -> Result<bool, EngineError> {
        Ok(self.leg_mut(leg)?.handle_frame(frame))
    }

    pub fn hangup(&mut self, leg: LegId, cause: HangupCause) -> Result<(), EngineError> {
        self.leg_mut(leg)?.hangup(cause);
        self.after_leg_changed(leg);
        Ok(())
    }

    /// End every leg (shutdown).
    pub fn hangup_all(&mut self, cause: HangupCause) {
        let ids: Vec<LegId> = self.legs.keys().copied().collect();
        for id in ids {
            let _ = self.hangup(id, cause);
        }
    }

    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(leg) = self.legs.get_mut(&id) else { continue };
            if leg.poll_timeout().is_some_and(|due| due <= now) {
                leg.handle_timeout(now);
                self.after_leg_changed(id);
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<EngineOutput> {
        self.outputs.pop_front()
    }

    /// The earliest deadline of any leg.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            match self.legs.get(&id).and_then(Leg::poll_timeout) {
                Some(due) if due == at => return Some(at),
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    pub fn stats(&self, leg: LegId) -> Option<RtpStats> {
        self.legs.get(&leg).map(Leg::stats)
    }

    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    fn leg_mut(&mut self, leg: LegId) -> Result<&mut Leg, EngineError> {
        self.legs.get_mut(&leg).ok_or(EngineError::UnknownLeg(leg))
    }

    /// Move the leg's outputs out, re-arm its deadline, and drop it once ended.
    fn after_leg_changed(&mut self, id: LegId) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        while let Some(output) = leg.poll_output() {
            self.outputs.push_back(match output {
                LegOutput::Transmit(data) => EngineOutput::Transmit { leg: id, data },
                LegOutput::Heard(frame) => EngineOutput::Heard { leg: id, frame },
                LegOutput::Event(event) => EngineOutput::Event(event),
            });
        }
        if leg.is_ended() {
            self.legs.remove(&id);
            return;
        }
        if let Some(at) = leg.poll_timeout() {
            self.deadlines.push(Reverse((at, id)));
        }
    }
}
