//! The `[sip]` section of Bond's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where SIP listens and how long it waits.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    pub udp_listen: SocketAddr,
    pub tcp_listen: SocketAddr,
    /// SIP over TLS, served when `tls_cert` is set.
    pub tls_listen: SocketAddr,
    /// The certificate chain (PEM) SIP over TLS is served with; empty: no SIP over TLS.
    pub tls_cert: PathBuf,
    /// Its private key (PEM).
    pub tls_key: PathBuf,
    /// A SIP call ends (`timeout`) when no RTP arrives for this long while the
    /// peer should be sending; 0: never.
    pub rtp_timeout_secs: u64,
    /// An incoming call the application neither answers nor rejects in this
    /// long gets 480 and ends as `timeout`, freeing its ports.
    pub ring_timeout_secs: u64,
    /// A SIP-TCP connection that sends nothing (not even a keep-alive CRLF)
    /// for this long is closed.
    pub tcp_idle_timeout_secs: u64,
    /// SIP-TCP connections open at once; unset: a quarter of the descriptor limit.
    pub tcp_max_connections: Option<usize>,
    /// SIP-TCP connections open at once from one address.
    pub tcp_max_connections_per_address: usize,
}

impl SipConfig {
    /// Whether SIP over TLS is served.
    pub fn tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            udp_listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            tcp_listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            tls_listen: SocketAddr::from(([0, 0, 0, 0], 5061)),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            rtp_timeout_secs: 30,
            ring_timeout_secs: 120,
            tcp_idle_timeout_secs: 120,
            tcp_max_connections: None,
            tcp_max_connections_per_address: 32,
        }
    }
}
