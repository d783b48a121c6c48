//! The request rate and the failed authentications of the whole cluster
//! (`cluster.redis_url`; docs/cluster.md): one token bucket per client (and
//! one per address for failed authentications) in Redis, taken atomically by
//! a script on Redis's clock, so N nodes allow a client one rate, not N.
//! When Redis does not answer within [`ANSWER_WITHIN`], the node's own bucket
//! decides (`bond_rate_limit_fallbacks_total`): a Redis outage loosens the
//! limit to per node, never stops the API.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use bond_sip::digest::{SharedFailures, FAILURE_WINDOW_SECS, MAX_FAILURES};

use super::guard::{Decision, AUTH_FAILURES_BURST, AUTH_FAILURES_PER_SECOND};

/// How long a request waits for Redis before its node decides alone.
const ANSWER_WITHIN: Duration = Duration::from_millis(250);

/// Refill the bucket `KEYS[1]` at `ARGV[1]` tokens a second up to `ARGV[2]`,
/// take `ARGV[3]` (1, or 0 to look) if there is one; answers {there was one,
/// tokens left, ms to wait}. The bucket expires once it would be full again.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local taken, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - cost
  taken = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {taken, math.floor(tokens), wait}
";

/// The cluster's buckets in Redis: each client's request rate, and each
/// address's failed authentications.
#[derive(Clone)]
pub struct SharedLimit {
    client: redis::Client,
    connection: std::sync::Arc<OnceCell<ConnectionManager>>,
    script: redis::Script,
    rate: Bucket,
    failures: Bucket,
    sip_failures: Bucket,
}

/// One family of buckets: its keys' prefix (`bond:<instance>:<kind>:`, so
/// clusters sharing a Redis keep apart) and its refill.
#[derive(Debug, Clone)]
struct Bucket {
    prefix: String,
    per_second: f64,
    burst: u32,
}

impl std::fmt::Debug for SharedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimit").field("rate", &self.rate).finish_non_exhaustive()
    }
}

impl SharedLimit {
    /// Request rates of `per_second` up to `burst`, and failed authentications
    /// as [`AUTH_FAILURES_PER_SECOND`] up to [`AUTH_FAILURES_BURST`], at Redis
    /// `url` (connected at first use).
    pub fn new(url: &str, instance: &str, per_second: u32, burst: u32) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("cluster.redis_url: {e}"))?;
        let bucket = |kind: &str, per_second: f64, burst: u32| Bucket {
            prefix: format!("bond:{instance}:{kind}:"),
            per_second,
            burst: burst.max(1),
        };
        let sip_refill = f64::from(MAX_FAILURES) / FAILURE_WINDOW_SECS as f64;
        Ok(Self {
            client,
            connection: std::sync::Arc::default(),
            script: redis::Script::new(TAKE),
            rate: bucket("rate", f64::from(per_second.max(1)), burst),
            failures: bucket("auth_failures", f64::from(AUTH_FAILURES_PER_SECOND), AUTH_FAILURES_BURST),
            sip_failures: bucket("sip_auth_failures", sip_refill, MAX_FAILURES),
        })
    }

    /// Take a token for `client` from the cluster's bucket; `None` when Redis
    /// did not answer in time (the caller's own bucket decides).
    pub async fn check(&self, client: &str) -> Option<Decision> {
        self.decide(&self.rate, client, 1).await
    }

    /// How long `ip` must wait, having failed to authenticate too often
    /// anywhere in the cluster; `None` when Redis did not answer in time.
    pub async fn failures_wait(&self, ip: IpAddr) -> Option<Duration> {
        let decision = self.decide(&self.failures, &ip.to_string(), 0).await?;
        Some(if decision.allowed { Duration::ZERO } else { decision.retry_after })
    }

    /// Count a failed authentication from `ip` for the cluster.
    pub async fn failed(&self, ip: IpAddr) {
        self.decide(&self.failures, &ip.to_string(), 1).await;
    }

    async fn decide(&self, bucket: &Bucket, client: &str, cost: u32) -> Option<Decision> {
        let taken = tokio::time::timeout(ANSWER_WITHIN, self.take(bucket, client, cost)).await;
        match taken {
            Ok(Ok((taken, remaining, wait_ms))) => Some(Decision {
                allowed: taken == 1,
                remaining: remaining.max(0) as u64,
                retry_after: Duration::from_millis(wait_ms.max(0) as u64),
            }),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the cluster's rate limit is unreachable; this node decides alone");
                metrics::counter!("bond_rate_limit_fallbacks_total").increment(1);
                None
            }
            Err(_) => {
                metrics::counter!("bond_rate_limit_fallbacks_total").increment(1);
                None
            }
        }
    }

    async fn take(&self, bucket: &Bucket, client: &str, cost: u32) -> redis::RedisResult<(i64, i64, i64)> {
        let connection =
            self.connection.get_or_try_init(|| ConnectionManager::new(self.client.clone())).await?;
        let mut connection = connection.clone();
        self.script
            .key(format!("{}{client}", bucket.prefix))
            .arg(bucket.per_second)
            .arg(bucket.burst)
            .arg(cost)
            .invoke_async(&mut connection)
            .await
    }
}

/// SIP digest failures for the cluster: [`MAX_FAILURES`] at once, refilled
/// over [`FAILURE_WINDOW_SECS`], as each node counts its own.
impl SharedFailures for SharedLimit {
    fn throttled(&self, source: IpAddr) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            let decision = self.decide(&self.sip_failures, &source.to_string(), 0).await;
            decision.is_some_and(|d| !d.allowed)
        })
    }

    fn failed(&self, source: IpAddr) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _counted = self.decide(&self.sip_failures, &source.to_string(), 1).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_nodes_take_from_one_bucket_in_redis() {
        // The Redis every machine here runs (a fresh instance name, so a fresh bucket).
        let instance = uuid::Uuid::new_v4().to_string();
        let a = SharedLimit::new("redis://127.0.0.1:6379", &instance, 1, 3).unwrap();
        let b = SharedLimit::new("redis://127.0.0.1:6379", &instance, 1, 3).unwrap();
        let mut taken = Vec::new();
        for limit in [&a, &b, &a, &b] {
            taken.push(limit.check("key:k").await.expect("Redis answers").allowed);
        }
        assert_eq!(taken, [true, true, true, false]);
        let refused = b.check("key:k").await.unwrap();
        assert!(
            !refused.allowed
                && refused.retry_after > Duration::ZERO
                && refused.retry_after <= Duration::from_secs(1)
        );
        assert!(a.check("key:other").await.unwrap().allowed, "each client has its own bucket");
    }

    #[tokio::test]
    async fn failed_authentications_from_an_address_add_up_over_the_nodes() {
        let instance = uuid::Uuid::new_v4().to_string();
        let a = SharedLimit::new("redis://127.0.0.1:6379", &instance, 1, 1).unwrap();
        let b = SharedLimit::new("redis://127.0.0.1:6379", &instance, 1, 1).unwrap();
        let ip = IpAddr::from([192, 0, 2, 7]);
        for i in 0..AUTH_FAILURES_BURST {
            let node = if i % 2 == 0 { &a } else { &b };
            assert_eq!(
                node.failures_wait(ip).await,
                Some(Duration::ZERO),
                "failure {i}: looking takes nothing"
            );
            node.failed(ip).await;
        }
        let wait = b.failures_wait(ip).await.expect("Redis answers");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(a.failures_wait(IpAddr::from([192, 0, 2, 8])).await, Some(Duration::ZERO), "per address");
    }

    #[tokio::test]
    async fn an_unreachable_redis_leaves_the_decision_to_the_node() {
        let limit = SharedLimit::new("redis://127.0.0.1:1", "t", 1, 1).unwrap();
        assert_eq!(limit.check("key:k").await, None);
    }
}
