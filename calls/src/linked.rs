//! Telnyx `link_to` and `bridge_on_answer` on a dial: the new call shares the
//! linked call's `call_session_id` and, with `bridge_on_answer`, is bridged with
//! it as soon as it is answered. Until then the two are tied: the linked call
//! ending cancels the dial (`originator_cancel`), and a dial that ends unanswered
//! ends the agent leg that was placed only to make it (the softphone's outgoing
//! calls, see `agent_calls.rs`). The call book keeps the tie and decides when
//! it bridges or cancels (`lifecycle.rs`).
//!
//! A `bridge` with `play_ringtone`, asked while the other call still rings, is
//! the same tie made afterwards: the call that asked hears the ringtone
//! (`ringback.rs`) and is bridged, with the options it asked for, on answer.

use bond_codecs::ringtone::Ringtone;
use bond_store::{CallId, CallRecord};

use super::error::CallError;
use super::recording::RecordOptions;
use super::service::{BridgeOptions, CallService};
use bond_media_engine::runtime::EngineHandle;

/// What a dial is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The linked call's `call_control_id`.
    pub call: CallId,
    pub call_session_id: String,
    pub bridge_on_answer: bool,
    /// The linked call hears the dial's early media while it rings (a transfer's `early_media`).
    pub early_media: bool,
}

/// A `bridge` waiting for the call it names to answer; the call that asked
/// for it is the one the book ties it to.
#[derive(Debug, Clone)]
pub(crate) struct PendingBridge {
    pub options: BridgeOptions,
    pub record: Option<RecordOptions>,
}

impl CallService {
    /// The engine to create a dialed call's leg with: next to its linked call's
    /// leg, so that a bridge between them stays within one engine shard.
    pub(super) fn engine_near_link(&self, linked_call: Option<&CallId>) -> EngineHandle {
        match linked_call.and_then(|call| self.registry.leg(call)) {
            Some(leg) => self.engine.near(leg),
            None => self.engine.clone(),
        }
    }

    /// The call `dialed` waits to be bridged with on answer, if any.
    pub(super) fn waiting_link(&self, dialed: &CallId) -> Option<CallId> {
        self.book().waiting_link(dialed).cloned()
    }

    /// Bridge `dialed` with its linked call once it is answered.
    pub(super) async fn bridge_on_answer(&self, dialed: &CallId, link: &Link) {
        if link.bridge_on_answer {
            // An agent's leg placed only to make this dial goes if the dial fails.
            let placed_for_it = self.agents.is_placed(&link.call);
            if link.early_media {
                self.live.update(dialed, |c| c.early_media_for = Some(link.call.clone()));
            }
            self.in_book(|book| book.bridge_on_answer(dialed, &link.call, placed_for_it)).await;
        }
    }

    /// `bridge` with `play_ringtone` while `ringing` has not answered: `call`
    /// leaves any bridge it is in and hears `tone`; the two are bridged when
    /// `ringing` answers. Until then they are tied as a transfer is: `call`
    /// ending cancels `ringing`, and `ringing` failing leaves `call` up.
    pub(super) async fn bridge_on_answer_ringing(
        &self,
        call: &CallRecord,
        ringing: &CallRecord,
        pending: PendingBridge,
        tone: &'static Ringtone,
    ) -> Result<(), CallError> {
        let (a, b) = (&call.call_control_id, &ringing.call_control_id);
        if ringing.node_id.as_deref().is_some_and(|node| node != self.store.node_id()) {
            let detail =
                "play_ringtone with a call ringing on another Bond node is not available in Bond yet.";
            return Err(CallError::invalid("10015", detail, "/play_ringtone"));
        }
        if self.waiting_link(b).is_some_and(|w| w != *a) {
            let detail = "That call is to be bridged with another call when it answers.";
            return Err(CallError::invalid("10015", detail, "/call_control_id_to_bridge_with"));
        }
        let unbridge = self.book().plan_bridge(a, b, pending.options.prevent_double_bridge)?;
        self.live_leg(call)?;
        for c in &unbridge {
            self.unbridge(c).await?;
        }
        self.ring_back(a, b, tone).await?;
        self.live.update(b, |c| c.pending_bridge = Some(pending));
        self.in_book(|book| book.bridge_on_answer(b, a, false)).await;
        // It ended before the book could tie them: nothing will bridge it now.
        if self.waiting_link(b).is_none() && self.live.update(b, |c| c.pending_bridge.take()).is_some() {
            self.stop_ringback(a).await;
            return Err(CallError::Ended);
        }
        Ok(())
    }
}
