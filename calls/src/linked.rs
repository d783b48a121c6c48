//! Telnyx `link_to` and `bridge_on_answer` on a dial: the new call shares the
//! linked call's `call_session_id` and, with `bridge_on_answer`, is bridged with
//! it as soon as it is answered. Until then the two are tied: the linked call
//! ending cancels the dial (`originator_cancel`), and a dial that ends unanswered
//! ends the agent leg that was placed only to make it (the softphone's outgoing
//! calls, see `agent_calls.rs`). The call book keeps the tie and decides when
//! it bridges or cancels (`lifecycle.rs`).

use bond_store::CallId;

use super::service::CallService;
use bond_media_engine::runtime::EngineHandle;

/// What a dial is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The linked call's `call_control_id`.
    pub call: CallId,
    pub call_session_id: String,
    pub bridge_on_answer: bool,
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
            self.in_book(|book| book.bridge_on_answer(dialed, &link.call, placed_for_it)).await;
        }
    }
}
