//! Call ends the database could not take when they happened (it was down or
//! out of reach). The call's leg is gone already; its end, its `call.hangup`
//! and what the adapters release wait here and are recorded, with the time
//! the call really ended, once the database answers again: retried every
//! [`RETRY_EVERY`], oldest first, by one task that runs while any wait.

use std::time::Duration;

use bond_media_engine::rtp::RtpStats;
use bond_store::{CallId, Ending};

use super::service::CallService;

/// How often the waiting ends are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A call's end, not yet recorded.
#[derive(Debug, Clone)]
pub(crate) struct UnrecordedEnd {
    pub call: CallId,
    pub ending: Ending,
    /// Bridged with it until it ended.
    pub partner: Option<CallId>,
    pub stats: RtpStats,
    pub ended_at: String,
}

impl CallService {
    /// Keep `end` until the database takes it.
    pub(super) fn record_end_later(&self, end: UnrecordedEnd) {
        tracing::warn!(call = %end.call, "the database is out of reach: the call's end is recorded once it is back");
        let first = {
            let mut waiting = self.unrecorded_ends.lock().unwrap_or_else(|p| p.into_inner());
            waiting.push(end);
            metrics::gauge!("bond_call_ends_unrecorded").set(waiting.len() as f64);
            waiting.len() == 1
        };
        if first {
            tokio::spawn(self.clone().record_waiting_ends());
        }
    }

    async fn record_waiting_ends(self) {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            let Some(end) = self.unrecorded_ends.lock().unwrap_or_else(|p| p.into_inner()).first().cloned()
            else {
                return;
            };
            match self.finish_at(&end).await {
                Err(e) if e.is_unavailable() => continue,
                Err(e) => tracing::error!(call = %end.call, error = %e, "could not record the end of a call"),
                Ok(()) => tracing::info!(call = %end.call, "recorded a call's end the database missed"),
            }
            let mut waiting = self.unrecorded_ends.lock().unwrap_or_else(|p| p.into_inner());
            waiting.remove(0);
            metrics::gauge!("bond_call_ends_unrecorded").set(waiting.len() as f64);
            if waiting.is_empty() {
                return;
            }
        }
    }
}
