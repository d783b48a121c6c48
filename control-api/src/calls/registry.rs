//! Which engine leg serves which call, and why a leg is being ended.

use std::sync::Arc;

use bond_media_engine::LegId;
use dashmap::DashMap;

/// How a call ended, in Telnyx's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub cause: &'static str,
    pub source: &'static str,
}

/// Live calls and their legs. Shared by the HTTP handlers and the engine-event task.
#[derive(Debug, Clone, Default)]
pub struct CallRegistry {
    legs: Arc<DashMap<String, LegId>>,
    calls: Arc<DashMap<LegId, String>>,
    endings: Arc<DashMap<LegId, Ending>>,
}

impl CallRegistry {
    pub fn insert(&self, call: &str, leg: LegId) {
        self.legs.insert(call.to_owned(), leg);
        self.calls.insert(leg, call.to_owned());
    }

    pub fn leg(&self, call: &str) -> Option<LegId> {
        self.legs.get(call).map(|l| *l)
    }

    pub fn call(&self, leg: LegId) -> Option<String> {
        self.calls.get(&leg).map(|c| c.clone())
    }

    /// Say why the leg is about to end (the engine only knows it was asked to).
    pub fn set_ending(&self, leg: LegId, ending: Ending) {
        self.endings.entry(leg).or_insert(ending);
    }

    /// Forget a leg that ended; returns its call and the recorded ending, if any.
    pub fn remove(&self, leg: LegId) -> Option<(String, Option<Ending>)> {
        let (_, call) = self.calls.remove(&leg)?;
        self.legs.remove(&call);
        Some((call, self.endings.remove(&leg).map(|(_, e)| e)))
    }

    /// The ids of every live call.
    pub fn calls_snapshot(&self) -> Vec<String> {
        self.legs.iter().map(|e| e.key().clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }
}
