//! Bond's own accept loop for SIP over TCP and over TLS, in front of rsipstack.
//!
//! rsipstack's listener retries a failed `accept` at once and logs each
//! failure: with descriptors exhausted that is millions of log lines a second
//! and a core spinning, while idle connections hold every descriptor. Bond
//! accepts itself and hands each connection to rsipstack's transport layer:
//!
//! - at most `per_address` connections from one address and `total` in all;
//!   a connection over either limit is closed at once (it never holds a
//!   descriptor longer than the accept);
//! - a failing `accept` (out of descriptors, say) backs off from 10 ms to 1 s
//!   and is logged once a minute with how many failed;
//! - rsipstack closes a connection that sends nothing for `idle` (a keep-alive
//!   CRLF counts), so idle and half-sent connections end;
//! - over TLS, the handshake runs on the connection's own task and must end
//!   within [`HANDSHAKE_TIMEOUT`]; a connection that fails it is closed and
//!   counted (`bond_sip_tls_handshakes_failed_total`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many SIP-TCP connections Bond keeps open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    pub per_address: usize,
    pub total: usize,
}

/// Open connections, by peer address.
#[derive(Debug, Default)]
struct Open {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

impl Open {
    /// Count one more from `ip` if the limits allow it.
    fn admit(&mut self, ip: IpAddr, limits: TcpLimits) -> bool {
        let from_ip = self.by_ip.entry(ip).or_default();
        if *from_ip >= limits.per_address || self.total >= limits.total {
            return false;
        }
        *from_ip += 1;
        self.total += 1;
        true
    }

    fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
        self.total = self.total.saturating_sub(1);
    }
}

/// Accept until `cancel`, handing connections to `endpoint`'s transport layer
/// as connections of the listener at `local`, after a TLS handshake with `tls`.
pub async fn run(
    listener: TcpListener,
    local: SipAddr,
    endpoint: EndpointInnerRef,
    limits: TcpLimits,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff.succeeded();
                accepted
            }
            Err(e) => {
                let wait = backoff.failed(&e);
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        if !lock(&open).admit(peer.ip(), limits) {
            metrics::counter!("bond_sip_tcp_refused_total").increment(1);
            tracing::debug!(%peer, "SIP-TCP connection over the limits: closed");
            continue;
        }
        let token = cancel.child_token();
        // rsipstack cancels a connection's token when it retires it.
        let released = open.clone();
        let watched = token.clone();
        tokio::spawn(async move {
            watched.cancelled().await;
            lock(&released).release(peer.ip());
        });
        match &tls {
            None => match TcpConnection::from_stream(stream, local.clone(), Some(token.clone())) {
                Ok(connection) => endpoint.transport_layer.add_connection(SipConnection::Tcp(connection)),
                Err(e) => {
                    token.cancel();
                    tracing::debug!(%peer, error = %e, "SIP-TCP connection dropped at once");
                }
            },
            Some(acceptor) => {
                let (acceptor, local, endpoint) = (acceptor.clone(), local.clone(), endpoint.clone());
                tokio::spawn(handshake(acceptor, stream, local, endpoint, token));
            }
        }
    }
}

/// The TLS handshake of a connection accepted on the TLS listener; then it is
/// rsipstack's. A failed or slow handshake closes it (cancelling `token`).
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    local: SipAddr,
    endpoint: EndpointInnerRef,
    token: CancellationToken,
) {
    let peer = stream.peer_addr().ok();
    let accepted = tokio::select! {
        () = token.cancelled() => return,
        accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => accepted,
    };
    let failed = |reason: String| {
        metrics::counter!("bond_sip_tls_handshakes_failed_total").increment(1);
        tracing::debug!(?peer, %reason, "SIP-TLS connection closed before it began");
        token.cancel();
    };
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(_) => return failed("no TLS handshake in time".into()),
    };
    let Some(peer) = peer else { return failed("no peer address".into()) };
    let remote = SipAddr { r#type: Some(Transport::Tls), addr: peer.into() };
    match TlsConnection::from_server_stream(stream, local, remote, Some(token.clone())).await {
        Ok(connection) => endpoint.transport_layer.add_connection(SipConnection::Tls(connection)),
        Err(e) => failed(e.to_string()),
    }
}

fn lock(open: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    // The counts hold no invariant a panicking holder could break half-way.
    open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits after failed accepts, and a log line a minute at most.
#[derive(Debug)]
struct Backoff {
    wait: Duration,
    failures: u64,
    logged: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { wait: FIRST_WAIT, failures: 0, logged: None }
    }
}

const FIRST_WAIT: Duration = Duration::from_millis(10);
const LONGEST_WAIT: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(60);

impl Backoff {
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.failures += 1;
        #[allow(clippy::disallowed_methods)] // the runtime side of the control plane: logging pace only
        let now = Instant::now();
        if self.logged.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            tracing::warn!(%error, failures = self.failures, "SIP-TCP accept failing; backing off");
            self.logged = Some(now);
        }
        let wait = self.wait;
        self.wait = (self.wait * 2).min(LONGEST_WAIT);
        wait
    }

    fn succeeded(&mut self) {
        self.wait = FIRST_WAIT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_limited_per_address_and_in_all() {
        let limits = TcpLimits { per_address: 2, total: 3 };
        let (a, b, c) =
            (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]), IpAddr::from([192, 0, 2, 3]));
        let mut open = Open::default();
        assert!(open.admit(a, limits) && open.admit(a, limits));
        assert!(!open.admit(a, limits), "a third from one address");
        assert!(open.admit(b, limits));
        assert!(!open.admit(c, limits), "a fourth in all");
        open.release(a);
        assert!(open.admit(c, limits), "room again once one closes");
        assert_eq!(open.by_ip.get(&a), Some(&1));
    }

    #[test]
    fn failed_accepts_back_off_to_a_second_and_start_over_after_a_success() {
        let mut backoff = Backoff::default();
        let error = std::io::Error::from_raw_os_error(24); // EMFILE
        let waits: Vec<_> = (0..9).map(|_| backoff.failed(&error)).collect();
        assert_eq!(waits[0], Duration::from_millis(10));
        assert_eq!(waits[1], Duration::from_millis(20));
        assert_eq!(*waits.last().unwrap(), LONGEST_WAIT);
        backoff.succeeded();
        assert_eq!(backoff.failed(&error), FIRST_WAIT);
    }
}
