//! Carrying out a routing queue's offers: each rings the agent's browser
//! (a dial of `agent:<name>` linked to the caller and bridged with it on
//! answer, so the caller leaves its queue `bridged`). An offer the agent
//! rejects or lets ring out makes the agent unavailable (its browser is told)
//! and leaves the caller first in line for the next one. Offers are made when a
//! caller joins, when an agent becomes available, and once a second for what
//! time alone frees (wrap-up ends, calls end).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bond_store::clock::monotonic;
use bond_store::{CallId, CallRecord, Ending};
use dashmap::DashMap;

use super::routing::Offer;
use crate::dial::Dial;
use crate::endpoint::Endpoint;
use crate::error::CallError;
use crate::linked::Link;
use crate::service::CallService;

/// How often queues look again for agents time has freed.
const ROUTE_EVERY: Duration = Duration::from_secs(1);

/// An agent's call ringing for a queued caller.
#[derive(Debug, Clone)]
struct Offered {
    caller: CallId,
    agent: String,
}

/// The offers ringing, by the agent's call; and whether the routing loop runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Offers {
    ringing: Arc<DashMap<CallId, Offered>>,
    looping: Arc<AtomicBool>,
}

impl CallService {
    /// Make the offers `org`'s routing queues have for its idle agents.
    pub(crate) async fn route(&self, org: &str) {
        self.keep_routing();
        let idle = self.agents.idle(org, monotonic());
        if idle.is_empty() {
            return;
        }
        let offers = self.queues.lock().offers(org, &idle, monotonic());
        for offer in offers {
            if let Err(e) = self.offer(org, &offer).await {
                tracing::info!(caller = %offer.caller, agent = %offer.agent, error = %e, "a queue's offer failed");
                self.queues.lock().offer_ended(&offer.caller);
            }
        }
    }

    /// Ring `offer.agent` for the caller, bridged with it on answer.
    async fn offer(&self, org: &str, offer: &Offer) -> Result<(), CallError> {
        let caller = self.store.get_call(org, &offer.caller).await?;
        let caller = caller.filter(CallRecord::is_alive).ok_or(CallError::Ended)?;
        let connection = self.store.get_connection(org, &caller.connection_id).await?;
        let connection = connection.filter(|c| c.active).ok_or(CallError::Ended)?;
        let dial = Dial {
            to: format!("agent:{}", offer.agent),
            endpoint: Endpoint::Agent(offer.agent.clone()),
            from: caller.from.clone(),
            from_display_name: caller.from_display_name.clone(),
            client_state: None,
            webhook_url: None,
            webhook_failover_url: None,
            time_limit_secs: None,
            timeout_secs: Some(offer.ring.as_secs().max(1) as i64),
            amd: None,
            link: Some(Link {
                call: caller.call_control_id.clone(),
                call_session_id: caller.call_session_id.clone(),
                bridge_on_answer: true,
                early_media: false,
            }),
            supervise: None,
            placed_by: caller.placed_by.clone(),
            srtp: false,
            custom_headers: Vec::new(),
        };
        let ringing = self.dial(&connection, dial).await?;
        let offered = Offered { caller: offer.caller.clone(), agent: offer.agent.clone() };
        self.queues.offers.ringing.insert(ringing.call_control_id, offered);
        Ok(())
    }

    /// `call` ended: if it was an offer the agent never answered, the caller
    /// may be offered again and, if the agent turned it down or let it ring
    /// out, the agent is unavailable until it says otherwise.
    pub(crate) fn offer_ended(&self, call: &CallRecord, ending: Ending) {
        let Some((_, offered)) = self.queues.offers.ringing.remove(&call.call_control_id) else { return };
        if call.answered_at.is_some() {
            return;
        }
        self.queues.lock().offer_ended(&offered.caller);
        if matches!(ending.cause, "timeout" | "call_rejected") {
            self.agents.set_available(&call.organization_id, &offered.agent, false, monotonic());
        }
    }

    /// Start the loop that offers callers to agents time has freed, once.
    fn keep_routing(&self) {
        if self.queues.offers.looping.swap(true, Ordering::Relaxed) {
            return;
        }
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ROUTE_EVERY).await;
                let orgs = service.queues.lock().waiting_for_agents();
                for org in orgs {
                    service.route(&org).await;
                }
            }
        });
    }
}
