//! A transfer's early media (Telnyx's `early_media`, on unless turned off):
//! while the new party rings, what its network plays before the answer (a
//! 183 or 180 with SDP: ringback, an announcement) reaches the transferred
//! call. The SIP adapter reports the early media; the two legs are then
//! bridged in the engine only. The call book does not know of that bridge:
//! the calls are not partners until the answer, so the new party failing
//! still leaves the transferred call up. The answer's bridge replaces it, and
//! either call ending takes it apart. Each call's entry names the other.
//!
//! Early media that arrives before the dial is linked (within microseconds
//! of its INVITE going out) is not passed on: the caller keeps what it had.

use bond_store::CallId;

use super::service::CallService;
use bond_media_engine::DtmfPassing;

impl CallService {
    /// `dial` plays early media: the call it is linked to hears it, if the
    /// link asked for it and that call is in no other bridge.
    pub(super) async fn early_media_started(&self, dial: &CallId) {
        let Some(linked) = self.live.update(dial, |c| c.early_media_for.take()) else { return };
        let (Some(leg), Some(linked_leg)) = (self.registry.leg(dial), self.registry.leg(&linked)) else {
            return;
        };
        if self.book().partner(&linked).is_some() {
            return;
        }
        match self.engine.bridge(linked_leg, leg, DtmfPassing::Both).await {
            Ok(()) => {
                self.live.update(dial, |c| c.early_bridged = Some(linked.clone()));
                self.live.update(&linked, |c| c.early_bridged = Some(dial.clone()));
            }
            Err(e) => tracing::info!(call = %dial, %linked, error = %e, "early media not passed on"),
        }
    }

    /// Take apart the early-media bridge `call` is in (either end of it:
    /// about to be bridged for good, or ended), if it is in one.
    pub(super) async fn end_early_media(&self, call: &CallId) {
        let Some(other) = self.live.update(call, |c| {
            c.early_media_for = None;
            c.early_bridged.take()
        }) else {
            return;
        };
        self.live.update(&other, |c| c.early_bridged.take_if(|o| o == call));
        if let Some(leg) = self.registry.leg(call).or_else(|| self.registry.leg(&other)) {
            let _ = self.engine.unbridge(leg).await;
        }
    }
}
