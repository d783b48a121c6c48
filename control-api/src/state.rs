//! What every handler can reach.

use std::sync::OnceLock;

use bond_media_engine::runtime::EngineHandle;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::http::guard::RateLimiter;
use crate::revocation::Revocations;
use bond_calls::CallService;
use bond_store::webhooks::{OrgSigners, WebhookNotifier, WebhookSigner};
use bond_store::Store;

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: EngineHandle,
    pub calls: CallService,
    /// The instance key: agent tokens, and webhooks of organizations older than per-organization keys.
    pub signer: WebhookSigner,
    /// Each organization's webhook signing key.
    pub signers: OrgSigners,
    pub notifier: WebhookNotifier,
    pub rate_limiter: RateLimiter,
    /// Revocations announced to open sockets.
    pub revocations: Revocations,
    pub prometheus: PrometheusHandle,
    pub instance_id: String,
    /// The bus to the other nodes (`cluster.nats_url`); `None`: actions on their calls answer 421.
    pub forwarder: Option<crate::http::forward::Forwarder>,
    /// The cluster's request rate in Redis (`cluster.redis_url`); `None`: per node.
    pub shared_limit: Option<crate::http::shared_limit::SharedLimit>,
    /// Where dials go when there are other nodes.
    pub placement: std::sync::Arc<bond_calls::placement::Placement>,
    /// What this node does in its cluster (`cluster.role`).
    pub role: bond_calls::NodeRole,
    pub max_body_bytes: usize,
    /// Where Bond is reached from outside (`http.public_url`), for signed URLs.
    pub public_url: String,
    /// The TURN servers agents are handed (`turn.*`), if any.
    pub turn: Option<bond_agents::turn::TurnServers>,
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is already global; then this one just renders nothing new.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
