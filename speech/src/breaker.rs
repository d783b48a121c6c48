//! A circuit breaker for one engine: after a failure it rests for 30 s (callers
//! skip it and ask the next), and the first success after that closes it again;
//! and [`Fallback`], engines of one kind asked in order, each behind its breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

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

/// Engines of one kind in order, each behind its [`Breaker`]: the first that
/// answers wins, and when all fail (or rest) the last failure comes back.
pub struct Fallback<T: ?Sized> {
    members: Vec<(Box<T>, Breaker)>,
}

impl<T: ?Sized> std::fmt::Debug for Fallback<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback").field("members", &self.members.len()).finish()
    }
}

impl<T: ?Sized> Fallback<T> {
    pub fn new(members: Vec<Box<T>>) -> Self {
        Self { members: members.into_iter().map(|m| (m, Breaker::default())).collect() }
    }

    pub fn members(&self) -> impl Iterator<Item = &T> {
        self.members.iter().map(|(m, _)| m.as_ref())
    }

    /// `ask` each member that is not resting, in turn; an error for which
    /// `outage` holds rests it. `none` is the answer when no member was asked.
    pub async fn first<R, E: std::fmt::Display>(
        &self,
        name: impl Fn(&T) -> &'static str,
        ask: impl Fn(&T) -> BoxFuture<'static, Result<R, E>>,
        outage: impl Fn(&E) -> bool,
        none: E,
    ) -> Result<R, E> {
        let ask = |member| -> BoxFuture<'_, Result<R, E>> { ask(member) };
        match self.first_noting(name, ask, outage).await {
            Ok((answer, _)) => Ok(answer),
            Err(mut failures) => Err(failures.pop().unwrap_or(none)),
        }
    }

    /// As [`first`](Self::first), keeping every failure in order: the answer
    /// with the failures of the members passed over, or all of them (none
    /// when no member was asked).
    pub async fn first_noting<'a, R, E: std::fmt::Display>(
        &'a self,
        name: impl Fn(&T) -> &'static str,
        ask: impl Fn(&'a T) -> BoxFuture<'a, Result<R, E>>,
        outage: impl Fn(&E) -> bool,
    ) -> Result<(R, Vec<E>), Vec<E>> {
        let mut failures = Vec::new();
        for (member, breaker) in &self.members {
            if breaker.is_resting(monotonic()) {
                continue;
            }
            match ask(member).await {
                Ok(answer) => {
                    breaker.succeeded();
                    return Ok((answer, failures));
                }
                Err(e) => {
                    tracing::warn!(engine = name(member), error = %e, "failed; trying the next engine");
                    if outage(&e) {
                        breaker.failed(monotonic());
                    }
                    failures.push(e);
                }
            }
        }
        Err(failures)
    }
}

/// The monotonic clock, for when a resting engine may be asked again.
pub(crate) fn monotonic() -> std::time::Instant {
    #[allow(clippy::disallowed_methods)] // the engines run outside the media core
    std::time::Instant::now()
}
