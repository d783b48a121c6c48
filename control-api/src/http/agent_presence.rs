//! One signaling socket per agent across the cluster (docs/cluster.md): a
//! node where an agent registers says so on NATS
//! (`bond.<instance>.agent_registered`), and any other node holding a socket
//! for that agent closes it as a single node does when the agent registers
//! again (close code 4000, "registered elsewhere").

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::forward::Forwarder;
use crate::state::AppState;

/// An agent registered on `node_id`.
#[derive(Debug, Serialize, Deserialize)]
struct Registered {
    organization_id: String,
    agent: String,
    node_id: String,
}

impl Forwarder {
    fn registered_subject(&self) -> String {
        format!("bond.{}.agent_registered", self.instance)
    }

    /// Tell the other nodes that `agent` registered here.
    pub async fn agent_registered(&self, state: &AppState, organization_id: &str, agent: &str) {
        let note = Registered {
            organization_id: organization_id.to_owned(),
            agent: agent.to_owned(),
            node_id: state.store.node_id().to_owned(),
        };
        let Ok(payload) = serde_json::to_vec(&note) else { return };
        if let Err(e) = self.client.publish(self.registered_subject(), payload.into()).await {
            tracing::warn!(agent, error = %e, "could not tell the other nodes an agent registered");
        }
    }

    /// Close the sockets of agents that registered on another node, until the bus closes.
    pub async fn follow_agent_registrations(self, state: AppState) {
        let Some(mut notes) = self.subscribe(self.registered_subject()).await else { return };
        while let Some(message) = notes.next().await {
            let Ok(note) = serde_json::from_slice::<Registered>(&message.payload) else { continue };
            if note.node_id != state.store.node_id()
                && bond_agents::AgentControl::agents(&state.calls).evict(&note.organization_id, &note.agent)
            {
                tracing::info!(agent = %note.agent, node = %note.node_id, "agent registered on another node");
            }
        }
    }
}
