//! A circuit breaker for one engine: after a failure it rests for 30 s (callers
//! skip it and ask the next), and the first success after that closes it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an engine that failed is left out before it is tried again.
pub const REST: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Breaker {
    failed_at: Mutex<Option<Instant>>,
}

impl Breaker {
    pub fn is_resting(&self, now: Instant) -> bool {
        self.lock().is_some_and(|since| now.duration_since(since) < REST)
    }

    pub fn failed(&self, now: Instant) {
        *self.lock() = Some(now);
    }

    pub fn succeeded(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A timestamp holds no invariant a panicking holder could break.
        self.failed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
