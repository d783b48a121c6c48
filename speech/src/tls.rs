//! Whom the providers' TLS connections trust. Built with `new`, a provider
//! trusts the public web roots; `trusting` hands it Bond's own client
//! configuration (the public roots plus `trusted_ca`), so a provider served
//! under a private certificate authority verifies too, as Bond's webhooks and
//! streams do.

use std::sync::Arc;
use std::time::Duration;

/// A TLS client configuration: whom a provider's connections trust.
pub type TlsConfig = Arc<rustls::ClientConfig>;

/// An HTTP client with `timeout` that trusts `tls` (the public roots without it).
pub(crate) fn http_client(timeout: Duration, tls: Option<&TlsConfig>) -> reqwest::Client {
    build(reqwest::Client::builder().timeout(timeout), tls)
}

/// An HTTP client for answers read as they stream: `total` bounds a whole
/// request, `idle` each wait for the server (its answer's start, each chunk).
pub(crate) fn streaming_http_client(
    idle: Duration,
    total: Duration,
    tls: Option<&TlsConfig>,
) -> reqwest::Client {
    build(reqwest::Client::builder().timeout(total).read_timeout(idle), tls)
}

fn build(builder: reqwest::ClientBuilder, tls: Option<&TlsConfig>) -> reqwest::Client {
    let builder = match tls {
        Some(tls) => builder.use_preconfigured_tls(rustls::ClientConfig::clone(tls)),
        None => builder,
    };
    builder.build().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a speech provider's HTTP client fell back to the defaults");
        reqwest::Client::default()
    })
}
