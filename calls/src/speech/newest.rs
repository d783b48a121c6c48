//! The newest of something, where only the latest counts: an interim snapshot
//! waiting for the recognizer, the translation being spoken into the other call.

use std::sync::Arc;
use std::time::Instant;

use bond_media_engine::LegId;

/// The translation being spoken into the other call: its leg and when it ends.
pub(super) type Voice = Newest<(LegId, Instant)>;

/// The newest of something, replacing what waited before (an interim snapshot).
#[derive(Debug)]
pub(super) struct Newest<T> {
    value: Arc<std::sync::Mutex<Option<T>>>,
    ready: Arc<tokio::sync::Notify>,
}

impl<T> Clone for Newest<T> {
    fn clone(&self) -> Self {
        Self { value: self.value.clone(), ready: self.ready.clone() }
    }
}

impl<T> Default for Newest<T> {
    fn default() -> Self {
        Self { value: Arc::default(), ready: Arc::default() }
    }
}

impl<T> Newest<T> {
    pub(super) fn put(&self, value: T) {
        *self.lock() = Some(value);
        self.ready.notify_one();
    }

    /// Take what waits, if `take` says so.
    pub(super) fn take_if(&self, take: impl FnOnce(&T) -> bool) -> Option<T> {
        self.lock().take_if(|v| take(v))
    }

    /// Resolves once something was put (perhaps taken again since).
    pub(super) async fn ready(&self) {
        self.ready.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<T>> {
        // Holds a plain value: nothing a panicking holder could leave half-done.
        self.value.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
