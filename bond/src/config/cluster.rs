//! Many nodes on one database (docs/cluster.md).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// This node among the others sharing the database.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `all` (the default) answers the API and carries calls; `control`
    /// answers the API only, placing every dial on another node (needs
    /// `nats_url`; no SIP listener); `media` carries calls.
    pub role: bond_calls::NodeRole,
    /// This node's name, unique among the nodes sharing the database; empty:
    /// made on first start and kept in `<data_dir>/node_id`.
    pub node_id: String,
    /// NATS (`nats://host:port`), over which actions reach the node carrying
    /// their call; empty: such actions answer 421 naming that node.
    pub nats_url: String,
    /// Redis (`redis://host:port`) holding the request rate limits of the
    /// whole cluster; empty: each node limits on its own.
    pub redis_url: String,
    /// The address other nodes send this node's trunk legs RTP to (bridges
    /// across nodes); unset: `rtp.bind_ip`, or the host's own address when that
    /// is every address.
    pub media_ip: Option<std::net::IpAddr>,
}

impl ClusterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.node_id.len() > 64 || !self.node_id.chars().all(allowed) {
            return Err(ConfigError::new(
                "cluster.node_id",
                "must be at most 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if !self.nats_url.is_empty()
            && !self.nats_url.starts_with("nats://")
            && !self.nats_url.starts_with("tls://")
        {
            return Err(ConfigError::new("cluster.nats_url", "must start with nats:// or tls://"));
        }
        if !self.role.carries_calls() && self.nats_url.is_empty() {
            return Err(ConfigError::new(
                "cluster.role",
                "a control node places every dial on another node: it needs cluster.nats_url",
            ));
        }
        if !self.redis_url.is_empty() && !self.redis_url.starts_with("redis://") {
            return Err(ConfigError::new("cluster.redis_url", "must start with redis://"));
        }
        Ok(())
    }
}
