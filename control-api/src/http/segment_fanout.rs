//! Supervisor streams across the cluster (docs/cluster.md): each node
//! publishes the translated segments it stores on NATS, subject
//! `bond.<instance>.segments.<node_id>`, and hands the other nodes' segments
//! to its own supervisor streams, so a supervisor connected to any node sees
//! every call of their organization. NATS keeps one publisher's order, so a
//! call's segments arrive in the order they were stored. What was said before
//! a stream opened still comes from the database.

use bond_store::Segment;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::forward::Forwarder;
use crate::state::AppState;

/// A segment as it travels between nodes: with its organization, which the
/// API's shape leaves out.
#[derive(Debug, Serialize, Deserialize)]
struct Carried {
    organization_id: String,
    segment: Segment,
}

impl Forwarder {
    fn segments_subject(&self, node_id: &str) -> String {
        format!("bond.{}.segments.{node_id}", self.instance)
    }

    /// Publish this node's segments and take in the others', until the bus closes.
    pub async fn fan_out_segments(self, state: AppState) {
        let Some(mut incoming) = self.subscribe(self.segments_subject(">")).await else { return };
        tokio::spawn(self.clone().publish_segments(state.clone()));
        let mine = self.segments_subject(state.store.node_id());
        while let Some(message) = incoming.next().await {
            if message.subject.as_str() == mine {
                continue;
            }
            match serde_json::from_slice::<Carried>(&message.payload) {
                Ok(Carried { organization_id, mut segment }) => {
                    segment.fields.organization_id = organization_id;
                    state.calls.relay_segment(segment);
                }
                Err(e) => {
                    tracing::warn!(subject = %message.subject, error = %e, "a garbled segment from another node")
                }
            }
        }
    }

    async fn publish_segments(self, state: AppState) {
        let subject = self.segments_subject(state.store.node_id());
        let mut stored = state.calls.subscribe_local_segments();
        loop {
            let segment = match stored.recv().await {
                Ok(segment) => segment,
                Err(RecvError::Lagged(n)) => {
                    metrics::counter!("bond_cluster_segments_dropped_total").increment(n);
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let carried = Carried { organization_id: segment.fields.organization_id.clone(), segment };
            let Ok(payload) = serde_json::to_vec(&carried) else { continue };
            if let Err(e) = self.client.publish(subject.clone(), payload.into()).await {
                metrics::counter!("bond_cluster_segments_dropped_total").increment(1);
                tracing::warn!(error = %e, "could not publish a segment to the other nodes");
            }
        }
    }
}
