//! Telnyx `link_to` and `bridge_on_answer` on a dial: the new call shares the
//! linked call's `call_session_id` and, with `bridge_on_answer`, is bridged with
//! it as soon as it is answered. Until then the two are tied: the linked call
//! ending cancels the dial (`originator_cancel`), and a dial that ends unanswered
//! ends the agent leg that was placed only to make it (the softphone's outgoing
//! calls, see `agent_calls.rs`).

use bond_store::CallId;
use std::sync::Arc;

use dashmap::DashMap;

use super::registry::Ending;
use super::service::{BridgeOptions, CallService};
use bond_media_engine::runtime::EngineHandle;
use bond_media_engine::DtmfPassing;

/// What a dial is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The linked call's `call_control_id`.
    pub call: CallId,
    pub call_session_id: String,
    pub bridge_on_answer: bool,
}

/// A dial waiting to be bridged on answer: the linked call, and their organization.
#[derive(Debug, Clone)]
struct Waiting {
    link: CallId,
    organization_id: String,
}

/// Dials waiting to be bridged on answer, by dialed call.
#[derive(Debug, Clone, Default)]
pub struct PendingBridges(Arc<DashMap<CallId, Waiting>>);

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
        self.pending_bridges.0.get(dialed).map(|w| w.link.clone())
    }

    /// Bridge `dialed` with its linked call once it is answered.
    pub(super) async fn bridge_on_answer(&self, organization_id: &str, dialed: &CallId, link: &Link) {
        if link.bridge_on_answer {
            let waiting = Waiting { link: link.call.clone(), organization_id: organization_id.to_owned() };
            self.pending_bridges.0.insert(dialed.to_owned(), waiting);
            self.bridge_if_answered(dialed).await;
        }
    }

    /// A dial waiting for its answer: bridge it now if it is answered and both
    /// calls have their legs (a call dialed through Telnyx gets its leg after the answer).
    pub(super) async fn bridge_if_answered(&self, dialed: &CallId) {
        let Some(Waiting { link, organization_id: org }) =
            self.pending_bridges.0.get(dialed).map(|w| w.clone())
        else {
            return;
        };
        if self.registry.leg(dialed).is_none() || self.registry.leg(&link).is_none() {
            return;
        }
        let (Ok(Some(a)), Ok(Some(b))) =
            (self.store.get_call(&org, dialed).await, self.store.get_call(&org, &link).await)
        else {
            return;
        };
        // Not answered yet, or already bridged by another task.
        if a.answered_at.is_none() || self.pending_bridges.0.remove(dialed).is_none() {
            return;
        }
        let options = BridgeOptions {
            prevent_double_bridge: false,
            park_after_unbridge: false,
            dtmf: DtmfPassing::Both,
        };
        match self.bridge(&a, &b, options).await {
            Ok(()) => self.agents.placed_call_answered(&link),
            Err(e) => tracing::info!(%dialed, %link, error = %e, "bridge on answer failed"),
        }
    }

    /// `call` ended: the dials tied to it that must end too, and how.
    pub(super) fn linked_endings(&self, call: &CallId, ending: Ending) -> Vec<(CallId, Ending)> {
        let mut endings = Vec::new();
        // It was a dial still waiting: an agent leg placed only for it goes with it.
        if let Some((_, Waiting { link, .. })) = self.pending_bridges.0.remove(call) {
            if self.agents.is_placed(&link) {
                endings.push((link, Ending { cause: ending.cause, source: "callee" }));
            }
        }
        // It was the call dials were linked to: they are cancelled.
        let waiting: Vec<CallId> =
            self.pending_bridges.0.iter().filter(|e| e.link == *call).map(|e| e.key().clone()).collect();
        for dialed in waiting {
            self.pending_bridges.0.remove(&dialed);
            endings.push((dialed, Ending { cause: "originator_cancel", source: "caller" }));
        }
        endings
    }
}
