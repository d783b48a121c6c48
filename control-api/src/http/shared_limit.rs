//! The request rate of the whole cluster (`cluster.redis_url`;
//! docs/cluster.md): one token bucket per client in Redis, taken atomically by
//! a script on Redis's clock, so N nodes allow a client one rate, not N.
//! When Redis does not answer within [`ANSWER_WITHIN`], the node's own bucket
//! decides (`bond_rate_limit_fallbacks_total`): a Redis outage loosens the
//! limit to per node, never stops the API.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::guard::Decision;

/// How long a request waits for Redis before its node decides alone.
const ANSWER_WITHIN: Duration = Duration::from_millis(250);

/// Refill the bucket `KEYS[1]` at `ARGV[1]` tokens a second up to `ARGV[2]`,
/// take one if there is one; answers {taken, tokens left, ms to wait}. The
/// bucket expires once it would be full again.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local taken, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {taken, math.floor(tokens), wait}
";

/// The cluster's buckets in Redis.
#[derive(Clone)]
pub struct SharedLimit {
    client: redis::Client,
    connection: std::sync::Arc<OnceCell<ConnectionManager>>,
    script: redis::Script,
    /// `bond:<instance>:rate:`, so clusters sharing a Redis keep apart.
    prefix: String,
    per_second: u32,
    burst: u32,
}

impl std::fmt::Debug for SharedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimit").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl SharedLimit {
    /// Buckets of `per_second` up to `burst` at Redis `url` (connected at first use).
    pub fn new(url: &str, instance: &str, per_second: u32, burst: u32) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("cluster.redis_url: {e}"))?;
        Ok(Self {
            client,
            connection: std::sync::Arc::default(),
            script: redis::Script::new(TAKE),
            prefix: format!("bond:{instance}:rate:"),
            per_second: per_second.max(1),
            burst: burst.max(1),
        })
    }

    /// Take a token for `client` from the cluster's bucket; `None` when Redis
    /// did not answer in time (the caller's own bucket decides).
    pub async fn check(&self, client: &str) -> Option<Decision> {
        let taken = tokio::time::timeout(ANSWER_WITHIN, self.take(client)).await;
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

    async fn take(&self, client: &str) -> redis::RedisResult<(i64, i64, i64)> {
        let connection =
            self.connection.get_or_try_init(|| ConnectionManager::new(self.client.clone())).await?;
        let mut connection = connection.clone();
        self.script
            .key(format!("{}{client}", self.prefix))
            .arg(self.per_second)
            .arg(self.burst)
            .invoke_async(&mut connection)
            .await
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
    async fn an_unreachable_redis_leaves_the_decision_to_the_node() {
        let limit = SharedLimit::new("redis://127.0.0.1:1", "t", 1, 1).unwrap();
        assert_eq!(limit.check("key:k").await, None);
    }
}
