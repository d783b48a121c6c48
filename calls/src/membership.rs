//! This node among the others on one database (docs/cluster.md). It holds a
//! lease it renews every [`RENEW_EVERY`] with its load; a node whose lease
//! lapsed ([`LEASE`] without a renewal) is dead, and the first live node to
//! see it ends the calls it carried (each with its `call.hangup`, cause
//! `unspecified`), then removes it. Ending a call is idempotent in the
//! database, so two nodes reaping at once report each call once.
//!
//! A node reaps only once it has itself been connected to the database for
//! [`SETTLED_AFTER`]: after an outage of the database every lease has lapsed,
//! and the others must first have had the time to renew theirs. A node that
//! finds itself removed (it stalled past its lease and was taken for dead)
//! ends the legs it still carries, whose calls were already reported ended,
//! and registers again.

use std::time::{Duration, Instant};

use bond_media_engine::rtp::RtpStats;
use bond_store::clock::monotonic;
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord, Ending};
use tokio::sync::watch;

use crate::{CallError, CallService};

/// What a node does in its cluster (`cluster.role`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Answers the API and carries calls.
    #[default]
    All,
    /// Answers the API only: every dial is placed on a node that carries
    /// calls, every action sent to it; no SIP listener.
    Control,
    /// Carries calls (and answers the API, which a load balancer may leave out).
    Media,
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Control => "control",
            Self::Media => "media",
        }
    }

    /// Whether calls are placed on, and legs terminated by, such a node.
    pub fn carries_calls(self) -> bool {
        self != Self::Control
    }
}

/// How long a lease lasts without a renewal.
pub const LEASE: Duration = Duration::from_secs(3);
/// How often a node renews its lease and looks for dead nodes.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long a node must have been connected before it reaps others: a lease,
/// in which every other node connected too has renewed its own.
pub const SETTLED_AFTER: Duration = LEASE;

impl CallService {
    /// The calls the database has this node carrying have no leg after a
    /// restart: end them (and those stored before nodes were named).
    pub async fn end_orphaned_calls(&self) -> Result<usize, DbError> {
        let ids = self.store.live_call_ids_of(self.store.node_id(), true).await?;
        self.end_lost(&ids).await?;
        Ok(ids.len())
    }

    /// Node `node_id` died: end the calls it carried, then remove it (unless
    /// it renewed its lease meanwhile) and end its hold on webhook partitions
    /// (it may have stalled rather than died). Returns how many calls were ended.
    pub async fn reap_node(&self, node_id: &str) -> Result<usize, DbError> {
        let ids = self.store.live_call_ids_of(node_id, false).await?;
        for id in &ids {
            self.recording_interrupted(id).await?;
        }
        self.end_lost(&ids).await?;
        if !self.store.remove_lapsed_node(node_id).await? {
            tracing::warn!(node = node_id, "a node taken for dead renewed its lease");
        } else if let Err(e) = self.store.release_partitions_of(node_id).await {
            tracing::warn!(node = node_id, error = %e, "a dead node's webhook partitions stay held until its connection closes");
        }
        Ok(ids.len())
    }

    /// Whether `call`'s legs are this node's; else which node has them.
    pub(crate) async fn carried_here(&self, call: &CallRecord) -> Result<(), CallError> {
        let Some(node_id) = call.node_id.as_deref().filter(|n| *n != self.store.node_id()) else {
            return Ok(());
        };
        let http_url = self.store.node_http_url(node_id).await?.unwrap_or_default();
        Err(CallError::OnAnotherNode { node_id: node_id.to_owned(), http_url })
    }

    /// Report calls whose legs are gone as ended.
    async fn end_lost(&self, ids: &[CallId]) -> Result<(), DbError> {
        for id in ids {
            self.finish(id, Ending::UNSPECIFIED, None, &RtpStats::default()).await?;
        }
        Ok(())
    }

    /// Register this node, then renew its lease and reap dead nodes every
    /// [`RENEW_EVERY`] until `shutdown`; then leave the cluster.
    pub async fn run_membership(self, role: NodeRole, http_url: String, mut shutdown: watch::Receiver<bool>) {
        let lease = LEASE.as_millis() as i64;
        let mut registered = false;
        let mut connected_since: Option<Instant> = None;
        let mut cpu = super::node_cpu::CpuSampler::default();
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            let renewed = if registered {
                self.store.renew_lease(self.registry.len() as i64, cpu.percent(monotonic()), lease).await
            } else {
                self.store.register_node(role.as_str(), &http_url, lease).await.map(|()| true)
            };
            match renewed {
                Ok(true) => {
                    registered = true;
                    let since = *connected_since.get_or_insert_with(monotonic);
                    if monotonic().duration_since(since) >= SETTLED_AFTER {
                        self.reap_lapsed_nodes().await;
                        self.drop_trunks_to_dead_nodes().await;
                    }
                }
                Ok(false) => {
                    tracing::error!("this node was taken for dead (its lease lapsed): ending its calls");
                    self.end_all().await;
                    registered = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew this node's lease");
                    connected_since = None;
                }
            }
        }
        if let Err(e) = self.store.deregister_node().await {
            tracing::warn!(error = %e, "could not leave the cluster; the others will reap this node");
        }
    }

    async fn reap_lapsed_nodes(&self) {
        let lapsed = match self.store.lapsed_nodes().await {
            Ok(lapsed) => lapsed,
            Err(e) => return tracing::warn!(error = %e, "cannot read the cluster's nodes"),
        };
        for node in lapsed {
            match self.reap_node(&node).await {
                Ok(calls) => tracing::warn!(node = %node, calls, "a node died: its calls are ended"),
                Err(e) => tracing::warn!(node = %node, error = %e, "could not reap a dead node"),
            }
        }
    }
}
