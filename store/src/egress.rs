//! Where Bond's outgoing requests to URLs an application gave it
//! (`audio_url`, webhook URLs, `streaming_start`'s `stream_url`) may go.
//!
//! Such a URL is the tenant's to choose, so it must not reach what only the
//! machine can: the cloud metadata service (169.254.169.254, `fd00:ec2::254`)
//! and anything else link-local, or unspecified, multicast and broadcast
//! addresses. A request's host is checked after DNS resolution (the client's
//! resolver drops such addresses) and on every redirect (an address written
//! in the URL skips DNS). Loopback and private networks stay reachable: an
//! application beside Bond on the same host or network is the common case.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether a request may go to `ip`.
pub fn allowed(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            // AWS's IPv6 metadata address sits in a unique-local range the rest of which stays open.
            let metadata = v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
            !(link_local || metadata || v6.is_unspecified() || v6.is_multicast())
        }
    }
}

/// Why a URL was refused, if it was: its host is an address Bond may not reach.
pub fn check_url(url: &reqwest::Url) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if allowed(ip) {
        Ok(())
    } else {
        Err(format!("{ip} is not an address Bond fetches from (link-local, unspecified or multicast)"))
    }
}

/// `url` parsed, when it is an http(s) URL with a host Bond may send to
/// (a tenant's webhook or tool URL); else why not.
pub fn http_url(url: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => check_url(&u).map(|()| u),
        _ => Err(format!("'{url}' is not an http(s) URL")),
    }
}

/// `host`'s addresses (with the system resolver) that [`allowed`] keeps, on
/// `port`; an error when it has none left.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let found = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("{host}: {e}"))?;
    let kept: Vec<SocketAddr> = found.filter(|a| allowed(a.ip())).collect();
    if kept.is_empty() {
        let refused = "it resolves only to link-local, unspecified or multicast addresses";
        return Err(format!("{host} is not an address Bond connects to ({refused})"));
    }
    Ok(kept)
}

/// reqwest's resolver for [`client`]: [`resolve`].
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let kept = resolve(name.as_str(), 0).await?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// A client for URLs an application gave Bond: guarded DNS, redirects (at
/// most 5) checked the same way, and the extra roots of [`crate::trust`].
pub fn client(mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    for root in crate::trust::extra_roots() {
        match reqwest::Certificate::from_der(root) {
            Ok(root) => builder = builder.add_root_certificate(root),
            Err(e) => tracing::warn!(error = %e, "a trusted certificate authority was left out"),
        }
    }
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("more than 5 redirects");
        }
        match check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    builder.dns_resolver(Arc::new(GuardedResolver)).redirect(redirects)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_refused_and_the_rest_allowed() {
        for refused in [
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1",
            "fd00:ec2::254",
            "::",
            "::ffff:169.254.169.254",
        ] {
            assert!(!allowed(refused.parse().unwrap()), "{refused}");
        }
        for open in ["127.0.0.1", "10.1.2.3", "192.168.1.10", "8.8.8.8", "::1", "fd00::1", "2001:db8::1"] {
            assert!(allowed(open.parse().unwrap()), "{open}");
        }
    }

    #[test]
    fn urls_naming_a_refused_address_are_refused_before_any_request() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(check_url(&url("http://169.254.169.254/latest/meta-data/")).is_err());
        assert!(check_url(&url("http://[fe80::1]/a.wav")).is_err());
        assert!(check_url(&url("http://127.0.0.1:8080/a.wav")).is_ok());
        assert!(check_url(&url("https://example.com/a.wav")).is_ok(), "names are checked once resolved");
    }

    #[tokio::test]
    async fn a_redirect_to_the_metadata_address_is_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let moved = "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n\
                         Content-Length: 0\r\n\r\n";
            socket.write_all(moved.as_bytes()).await.unwrap();
        });
        let client = client(reqwest::Client::builder().timeout(Duration::from_secs(5))).build().unwrap();
        let error = client.get(format!("http://127.0.0.1:{port}/a.wav")).send().await.unwrap_err();
        assert!(error.is_redirect(), "{error}");
    }
}
