//! Bond's SIP leg adapter: Bond as user agent towards a carrier's SIP trunk
//! (UDP and TCP).
//!
//! Transactions, dialogs, retransmissions and digest authentication are
//! rsipstack's (docs/sip.md says why that crate). This crate decides what the
//! messages mean for calls:
//!
//! - `inbound`: an INVITE from an allowed trunk (by source address, or by
//!   digest credentials: [`digest`]) becomes a parked incoming call (`100 Trying`,
//!   then [`CallControl::incoming`], then `180 Ringing`); the application
//!   answers, rejects or bridges it through call control ([`SipCalls::answer`],
//!   [`SipCalls::reject`]).
//! - `outbound`: call control dials a number (through the connection's trunk)
//!   or a `sip:` URI ([`SipCalls::dial`]); the answer or the failure goes back
//!   to [`CallControl`].
//! - `dialogs`: what happens inside a dialog: BYE, CANCEL, re-INVITE (hold,
//!   codec change), INFO (DTMF), OPTIONS.
//! - `refer`: REFER both ways (the `refer` action; a peer's blind transfer).
//!
//! Every SIP call has one RTP leg in the media engine ([`media`]).
//!
//! It owns rsipstack and the live dialogs ([`SipCalls`]). It talks to call
//! control only through [`CallControl`], and must never import the call
//! service, HTTP or the webhook outbox.

mod actions;
mod causes;
mod config;
mod control;
mod dialogs;
pub mod digest;
mod examine;
mod headers;
mod inbound;
pub mod media;
mod outbound;
mod refer;
mod registry;
pub mod settings;
mod source;
mod tcp_accept;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog::DialogStateSender;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::Transport;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio_util::sync::CancellationToken;

pub use actions::AnswerError;
pub use causes::status_of_reject_cause;
pub use config::SipConfig;
pub use control::{CallControl, IncomingCall, IncomingRefused};
pub use examine::examine;
pub use headers::ExtraHeader;
pub use outbound::{Destination, Outgoing};
pub use refer::{ReferProgress, ReferRefusal};
pub use registry::{SipCall, SipCalls};
pub use settings::{SipSettings, Trunk, TrunkTransport};

use bond_media_engine::runtime::EngineHandle;
use inbound::Inbound;

/// Methods Bond answers (sent in `Allow`).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY";

/// The running SIP user agent.
pub struct SipStack {
    dialogs: Arc<DialogLayer>,
    states: DialogStateSender,
    /// Where Bond listens, as peers should reach it.
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    /// Where SIP over TLS listens, when it does (`sip.tls_cert`).
    pub tls_addr: Option<SocketAddr>,
    /// The address written into SDP.
    pub media_ip: IpAddr,
    /// How long a call's RTP may stop while the peer should be sending (`sip.rtp_timeout_secs`).
    pub rtp_timeout: Option<Duration>,
    /// How long an incoming call may wait for the application (`sip.ring_timeout_secs`).
    pub ring_timeout: Duration,
    /// Challenges for connections with `bond.sip.inbound_auth`.
    digest: digest::DigestAuth,
    /// Failed digest answers counted for the cluster, when it shares them.
    shared_failures: Option<Arc<dyn digest::SharedFailures>>,
    /// Where SIP calls' RTP legs are opened and changed.
    engine: EngineHandle,
    cancel: CancellationToken,
}

impl std::fmt::Debug for SipStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipStack").field("udp", &self.udp_addr).field("tcp", &self.tcp_addr).finish()
    }
}

/// Why the SIP stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipStartError {
    #[error("cannot listen for SIP on {addr} ({key}): {reason}")]
    Listen { addr: SocketAddr, key: &'static str, reason: String },
}

/// SIP over TLS: the listener's TLS session set-up (with `sip.tls_cert`),
/// and the certificate authorities (PEM) trunks' certificates must chain to.
#[derive(Clone, Default)]
pub struct SipTls {
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    pub trusted_pem: Vec<u8>,
}

impl std::fmt::Debug for SipTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trusted = self.trusted_pem.len();
        f.debug_struct("SipTls")
            .field("serves", &self.acceptor.is_some())
            .field("trusted_bytes", &trusted)
            .finish()
    }
}

/// Listen on UDP and TCP (and TLS with `tls.acceptor`) until
/// [`SipStack::stop`]: SIP calls are kept in `calls` (which call control acts
/// on), their legs opened on `engine`, and what they do is reported to `control`.
pub async fn start<C: CallControl>(
    config: &SipConfig,
    media_ip: Option<IpAddr>,
    engine: EngineHandle,
    tls: SipTls,
    calls: SipCalls,
    control: C,
    shared_failures: Option<Arc<dyn digest::SharedFailures>>,
) -> Result<Arc<SipStack>, SipStartError> {
    let cancel = CancellationToken::new();
    let transports = TransportLayer::new(cancel.child_token());
    // Trunks over TLS are verified against these roots only.
    transports.set_tls_config(rsipstack::transport::tls::TlsConfig {
        ca_certs: Some(tls.trusted_pem.clone()),
        ..Default::default()
    });
    let udp = UdpConnection::create_connection(config.udp_listen, None, Some(cancel.child_token()))
        .await
        .map_err(|e| SipStartError::Listen {
            addr: config.udp_listen,
            key: "sip.udp_listen",
            reason: e.to_string(),
        })?;
    let udp_addr = socket_addr(udp.get_addr()).unwrap_or(config.udp_listen);
    transports.add_transport(udp.into());
    // Bond accepts SIP-TCP itself (tcp_accept.rs) and hands rsipstack the connections.
    let listen_error = |e: std::io::Error| SipStartError::Listen {
        addr: config.tcp_listen,
        key: "sip.tcp_listen",
        reason: e.to_string(),
    };
    let tcp = listen_tcp(config.tcp_listen).map_err(listen_error)?;
    let tcp_addr = tcp.local_addr().map_err(listen_error)?;
    let tls_listener = match &tls.acceptor {
        Some(acceptor) => {
            let listener = listen_tcp(config.tls_listen).map_err(|e| SipStartError::Listen {
                addr: config.tls_listen,
                key: "sip.tls_listen",
                reason: e.to_string(),
            })?;
            Some((listener, acceptor.clone()))
        }
        None => None,
    };
    let tls_addr = tls_listener.as_ref().and_then(|(listener, _)| listener.local_addr().ok());
    transports.set_stream_idle_timeout(Duration::from_secs(config.tcp_idle_timeout_secs));
    let endpoint = EndpointBuilder::new()
        .with_transport_layer(transports)
        .with_inspector(Box::new(source::StampSource))
        .with_cancel_token(cancel.clone())
        .with_user_agent("Bond")
        .build();
    let incoming = endpoint.incoming_transactions().map_err(|e| SipStartError::Listen {
        addr: config.udp_listen,
        key: "sip.udp_listen",
        reason: e.to_string(),
    })?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let (states, state_events) = dialogs.new_dialog_state_channel();
    let media_ip = media_ip.filter(|ip| !ip.is_unspecified()).unwrap_or_else(|| {
        if udp_addr.ip().is_unspecified() {
            default_route_ip()
        } else {
            udp_addr.ip()
        }
    });
    let digest = digest::DigestAuth::default();
    let rtp_timeout = (config.rtp_timeout_secs > 0).then(|| Duration::from_secs(config.rtp_timeout_secs));
    let ring_timeout = Duration::from_secs(config.ring_timeout_secs.max(1));
    let stack = Arc::new(SipStack {
        dialogs,
        states,
        udp_addr,
        tcp_addr,
        tls_addr,
        media_ip,
        rtp_timeout,
        ring_timeout,
        digest,
        shared_failures,
        engine,
        cancel,
    });
    calls.install(stack.clone());
    let local = SipAddr { r#type: Some(Transport::Tcp), addr: tcp_addr.into() };
    let limits = tcp_accept::TcpLimits {
        per_address: config.tcp_max_connections_per_address,
        total: config.tcp_max_connections.unwrap_or_else(default_tcp_connections),
    };
    let accept = |listener, local, tls| {
        let cancel = stack.cancel.child_token();
        tokio::spawn(tcp_accept::run(listener, local, endpoint.inner.clone(), limits, tls, cancel));
    };
    accept(tcp, local, None);
    if let (Some((listener, acceptor)), Some(addr)) = (tls_listener, tls_addr) {
        accept(listener, SipAddr { r#type: Some(Transport::Tls), addr: addr.into() }, Some(acceptor));
    }
    tokio::spawn(async move { endpoint.serve().await });
    let inbound = Inbound { stack: stack.clone(), calls: calls.clone(), control: control.clone() };
    tokio::spawn(inbound::run(inbound, incoming));
    tokio::spawn(dialogs::run(stack.clone(), calls, control, state_events));
    tracing::info!(udp = %udp_addr, tcp = %tcp_addr, tls = ?tls_addr, "SIP is up");
    Ok(stack)
}

/// A TCP listener on `addr`, for tokio.
fn listen_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

impl SipStack {
    /// Stop listening; dialogs still open get no further messages.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Bond's Contact for a dialog over `transport`.
    fn contact(&self, user: &str, transport: Transport) -> rsipstack::sip::Uri {
        let (addr, transport) = match transport {
            Transport::Tls => (self.tls_addr.unwrap_or(self.tcp_addr), ";transport=tls"),
            Transport::Tcp => (self.tcp_addr, ";transport=tcp"),
            _ => (self.udp_addr, ""),
        };
        let host =
            if addr.ip().is_unspecified() { SocketAddr::new(self.media_ip, addr.port()) } else { addr };
        let user = if user.is_empty() { "bond" } else { user };
        rsipstack::sip::Uri::try_from(format!("sip:{user}@{host}{transport}").as_str()).unwrap_or_else(|_| {
            rsipstack::sip::Uri::try_from(format!("sip:bond@{host}").as_str()).unwrap_or_default()
        })
    }
}

/// SIP-TCP connections kept open in all when `sip.tcp_max_connections` is
/// unset: a quarter of the process's descriptor limit (the rest is for RTP,
/// HTTP and the database), 16 to 4,096.
fn default_tcp_connections() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    limit.map_or(1024, |n| (n / 4).clamp(16, 4096))
}

/// The local address packets to the outside leave from (no packet is sent), or
/// loopback on a host with no route out: what SDP and Contact carry when Bond
/// listens on every address and no public IP is set.
pub fn default_route_ip() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    probe.map(|a| a.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

fn socket_addr(addr: &rsipstack::transport::SipAddr) -> Option<SocketAddr> {
    addr.addr.clone().try_into().ok()
}
