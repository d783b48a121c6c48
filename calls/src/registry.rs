//! Which engine leg serves which call.

use bond_store::CallId;
pub use bond_store::Ending;
use std::sync::Arc;

use bond_media_engine::LegId;
use dashmap::DashMap;

/// Live calls and their legs. Shared by the HTTP handlers and the engine-event task.
#[derive(Debug, Clone, Default)]
pub struct CallRegistry {
    legs: Arc<DashMap<CallId, LegId>>,
    calls: Arc<DashMap<LegId, CallId>>,
}

impl CallRegistry {
    pub fn insert(&self, call: &CallId, leg: LegId) {
        self.legs.insert(call.to_owned(), leg);
        self.calls.insert(leg, call.to_owned());
    }

    pub fn leg(&self, call: &CallId) -> Option<LegId> {
        self.legs.get(call).map(|l| *l)
    }

    pub fn call(&self, leg: LegId) -> Option<CallId> {
        self.calls.get(&leg).map(|c| c.clone())
    }

    /// Forget a leg; returns its call. Whoever removes it ends the call: a
    /// hangup claims the leg before asking the engine, so the engine's `LegEnded`
    /// for it finds nothing to do.
    pub fn remove(&self, leg: LegId) -> Option<CallId> {
        let (_, call) = self.calls.remove(&leg)?;
        self.legs.remove(&call);
        Some(call)
    }

    /// The ids of every live call.
    pub fn calls_snapshot(&self) -> Vec<CallId> {
        self.legs.iter().map(|e| e.key().clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }
}
