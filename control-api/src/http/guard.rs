//! Middleware around the authenticated API: rate limits and the audit log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;

use super::ApiError;
use crate::auth::{hash_key, Principal};
use crate::state::AppState;
use bond_store::clock::{rfc3339_now, unix_millis};
use bond_store::AuditEntry;

/// A token bucket per client (API key, or IP address without one). Buckets that
/// have refilled completely carry no information and are dropped now and then,
/// so many distinct clients cannot grow the table without bound.
///
/// Failed authentication is limited apart, per source address
/// ([`AUTH_FAILURES_BURST`] at once, then [`AUTH_FAILURES_PER_SECOND`]): a
/// client that makes up a new key for each request gets a new bucket each
/// time, but not a new address.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Arc<DashMap<String, (f64, i64)>>,
    checks: Arc<std::sync::atomic::AtomicU64>,
    failures: Option<Box<RateLimiter>>,
}

/// Failed authentications an address may make at once, and how fast that budget refills.
pub const AUTH_FAILURES_BURST: u32 = 20;
pub const AUTH_FAILURES_PER_SECOND: u32 = 1;

/// Sweep for full buckets once per this many checks.
const SWEEP_EVERY: u64 = 10_000;

/// What a request may do: go on, or wait this long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub remaining: u64,
    pub retry_after: Duration,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let failures = Self::bare(AUTH_FAILURES_PER_SECOND, AUTH_FAILURES_BURST);
        Self { failures: Some(Box::new(failures)), ..Self::bare(per_second, burst) }
    }

    fn bare(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Arc::default(),
            checks: Arc::default(),
            failures: None,
        }
    }

    pub fn limit(&self) -> u64 {
        self.burst as u64
    }

    /// Clients with a bucket (for tests and metrics).
    pub fn tracked_clients(&self) -> usize {
        self.buckets.len()
    }

    /// How long `ip` must wait before failing to authenticate again; zero when it may.
    pub fn failures_wait(&self, ip: IpAddr, now_ms: i64) -> Duration {
        let Some(failures) = &self.failures else { return Duration::ZERO };
        let Some(entry) = failures.buckets.get(&ip.to_string()) else { return Duration::ZERO };
        let (tokens, last) = *entry;
        let refilled =
            (tokens + (now_ms - last).max(0) as f64 / 1000.0 * failures.per_second).min(failures.burst);
        if refilled >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - refilled) / failures.per_second)
        }
    }

    /// Count a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, now_ms: i64) {
        if let Some(failures) = &self.failures {
            failures.check(&ip.to_string(), now_ms);
        }
    }

    /// Take one token for `client` at `now_ms`.
    pub fn check(&self, client: &str, now_ms: i64) -> Decision {
        if self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(now_ms);
        }
        let mut entry = self.buckets.entry(client.to_owned()).or_insert((self.burst, now_ms));
        let (tokens, last) = *entry;
        let refilled = (tokens + (now_ms - last).max(0) as f64 / 1000.0 * self.per_second).min(self.burst);
        if refilled >= 1.0 {
            *entry = (refilled - 1.0, now_ms);
            Decision { allowed: true, remaining: (refilled - 1.0) as u64, retry_after: Duration::ZERO }
        } else {
            *entry = (refilled, now_ms);
            let wait = (1.0 - refilled) / self.per_second;
            Decision { allowed: false, remaining: 0, retry_after: Duration::from_secs_f64(wait) }
        }
    }
}

impl RateLimiter {
    /// Forget buckets that would be full by `now_ms`: the same as having none.
    fn sweep(&self, now_ms: i64) {
        let full_after_ms = (self.burst / self.per_second * 1000.0) as i64;
        self.buckets.retain(|_, (tokens, last)| *tokens < self.burst && now_ms - *last < full_after_ms);
    }
}

/// 429 with `Retry-After` when a key (or an address) is over its rate, or the
/// address has failed to authenticate too often; rate headers on every answer.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client = client_id(&request);
    let ip = peer_ip(&request);
    let now = unix_millis();
    let limiter = &state.rate_limiter;
    // Failed authentications too: the cluster's count when Redis answers, else this node's.
    let shared_wait = match &state.shared_limit {
        Some(shared) => shared.failures_wait(ip).await,
        None => None,
    };
    let decision = match shared_wait.unwrap_or_else(|| limiter.failures_wait(ip, now)) {
        wait if wait > Duration::ZERO => Decision { allowed: false, remaining: 0, retry_after: wait },
        // The cluster's bucket when there is one (and Redis answers), else this node's.
        _ => match &state.shared_limit {
            Some(shared) => match shared.check(&client).await {
                Some(decision) => decision,
                None => limiter.check(&client, now),
            },
            None => limiter.check(&client, now),
        },
    };
    let reset_secs = decision.retry_after.as_secs_f64().ceil() as u64;
    let mut response = if decision.allowed {
        let response = next.run(request).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            limiter.failed(ip, now);
            if let Some(shared) = &state.shared_limit {
                shared.failed(ip).await;
            }
        }
        response
    } else {
        metrics::counter!("bond_http_rate_limited_total").increment(1);
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "10011",
            "Too many requests",
            "This API key or address is over its request rate, or the address has failed to \
             authenticate too often; retry after the time in Retry-After.",
        )
        .into_response();
        r.headers_mut().insert("retry-after", HeaderValue::from(reset_secs.max(1)));
        r
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(state.rate_limiter.limit()));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset_secs));
    response
}

/// The key's hash when there is one (so keys are limited separately), else the peer address.
fn client_id(request: &Request) -> String {
    if let Some(key) = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return format!("key:{}", hash_key(key.trim()));
    }
    format!("ip:{}", peer_ip(request))
}

fn peer_ip(request: &Request) -> IpAddr {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// Record every mutating request made with a valid key.
pub async fn audit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mutating = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let (mut parts, body) = request.into_parts();
    let principal = if mutating {
        match <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
            .await
        {
            Ok(principal) => Some(principal),
            // The database is out of reach: the handler would wait for it again, and
            // the change could not be audited anyway.
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => return e.into_response(),
            Err(_) => None,
        }
    } else {
        None
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    if let Some(p) = principal {
        let entry = AuditEntry {
            id: uuid::Uuid::new_v4().to_string(),
            record_type: "audit_event",
            organization_id: p.organization_id,
            api_key_id: p.api_key_id,
            method,
            path,
            status: i64::from(response.status().as_u16()),
            created_at: rfc3339_now(),
        };
        if let Err(e) = state.store.record_audit(&entry).await {
            tracing::error!(error = %e, "audit log write failed");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(10, 3);
        let t = 1_000_000;
        assert!(limiter.check("a", t).allowed);
        assert!(limiter.check("a", t).allowed);
        assert!(limiter.check("a", t).allowed);
        let refused = limiter.check("a", t);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert!(limiter.check("b", t).allowed, "clients are separate");
        assert!(limiter.check("a", t + 100).allowed, "one token back after 100 ms");
    }

    #[test]
    fn an_address_that_keeps_failing_to_authenticate_is_held_back_whatever_key_it_makes_up() {
        let limiter = RateLimiter::new(1000, 1000);
        let (ip, t) = (IpAddr::from([192, 0, 2, 9]), 1_000_000);
        for _ in 0..AUTH_FAILURES_BURST {
            assert_eq!(limiter.failures_wait(ip, t), Duration::ZERO);
            limiter.failed(ip, t);
        }
        assert_eq!(limiter.failures_wait(ip, t), Duration::from_secs(1));
        assert_eq!(limiter.failures_wait(IpAddr::from([192, 0, 2, 10]), t), Duration::ZERO, "per address");
        assert_eq!(limiter.failures_wait(ip, t + 1000), Duration::ZERO, "one more try a second later");
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let limiter = RateLimiter::new(10, 3);
        for n in 0..SWEEP_EVERY - 1 {
            limiter.check(&format!("ip:{n}"), 0);
        }
        assert_eq!(limiter.tracked_clients(), (SWEEP_EVERY - 1) as usize);
        // Long after, the sweep drops every bucket that has refilled, and keeps the new one.
        limiter.check("latest", 60_000);
        assert!(limiter.tracked_clients() <= 1, "{}", limiter.tracked_clients());
    }
}
