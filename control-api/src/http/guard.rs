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
use crate::clock::{rfc3339_now, unix_millis};
use crate::state::AppState;
use crate::store::AuditEntry;

/// A token bucket per client (API key, or IP address without one). Buckets that
/// have refilled completely carry no information and are dropped now and then,
/// so many distinct clients cannot grow the table without bound.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Arc<DashMap<String, (f64, i64)>>,
    checks: Arc<std::sync::atomic::AtomicU64>,
}

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
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Arc::default(),
            checks: Arc::default(),
        }
    }

    pub fn limit(&self) -> u64 {
        self.burst as u64
    }

    /// Clients with a bucket (for tests and metrics).
    pub fn tracked_clients(&self) -> usize {
        self.buckets.len()
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

/// 429 with `Retry-After` when a key (or an address) is over its rate; rate headers on every answer.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client = client_id(&request);
    let decision = state.rate_limiter.check(&client, unix_millis());
    let reset_secs = decision.retry_after.as_secs_f64().ceil() as u64;
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        metrics::counter!("bond_http_rate_limited_total").increment(1);
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "10011",
            "Too many requests",
            "This API key or address is over its request rate; retry after the time in Retry-After.",
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
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    format!("ip:{ip}")
}

/// Record every mutating request made with a valid key.
pub async fn audit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mutating = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let (mut parts, body) = request.into_parts();
    let principal = if mutating {
        <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
            .await
            .ok()
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
