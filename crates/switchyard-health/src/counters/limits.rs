//! Per-key request limits shared by every gateway replica: requests per minute, tokens per
//! minute and requests in parallel.
//!
//! Windows are **sliding** (the last 60 s, not the current clock minute), so a burst at a minute
//! boundary cannot pass twice the limit. In Redis each key has two hashes of one-second buckets
//! (requests admitted, tokens charged) and an in-parallel counter; one Lua script checks and
//! admits atomically (one round trip per request, with Redis's own clock), another releases the
//! parallel slot and charges the tokens (a second round trip, after the answer). In memory the
//! same rules run under a mutex. When Redis fails, this replica falls back to its memory limits
//! rather than refusing or admitting everything.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::redis_conn::RedisConn;

/// Limits of one key; `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub parallel: Option<u32>,
}

impl KeyLimits {
    /// Whether any limit is set (no state is touched otherwise).
    pub fn any(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.parallel.is_some()
    }
}

/// Why a request was refused, and when trying again makes sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitDenied {
    Rpm { limit: u32, retry_after: Duration },
    Tpm { limit: u64, retry_after: Duration },
    Parallel { limit: u32 },
}

const WINDOW: Duration = Duration::from_secs(60);
/// Lifetime of a parallel counter without traffic: bounds the slots a crashed replica leaks.
const PARALLEL_TTL: Duration = Duration::from_secs(600);

/// Both windows are hashes of one-second buckets (`unix second -> count`), so a check reads at
/// most 60 fields whatever the request rate.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1])
local from = now - 59
local function window(key)
  local total, oldest = 0, nil
  local h = redis.call('HGETALL', key)
  for i = 1, #h, 2 do
    local s = tonumber(h[i])
    if s < from then
      redis.call('HDEL', key, h[i])
    else
      total = total + tonumber(h[i + 1])
      if oldest == nil or s < oldest then oldest = s end
    end
  end
  return total, oldest
end
local rpm, tpm, par = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if rpm > 0 then
  local used, oldest = window(KEYS[1])
  if used >= rpm then return {1, ((oldest or now) + 60 - now) * 1000} end
end
if tpm > 0 then
  local used, oldest = window(KEYS[2])
  if used >= tpm then return {2, ((oldest or now) + 60 - now) * 1000} end
end
if par > 0 then
  local n = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  if n > par then
    redis.call('DECR', KEYS[3])
    return {3, 1000}
  end
end
if rpm > 0 then
  redis.call('HINCRBY', KEYS[1], now, 1)
  redis.call('EXPIRE', KEYS[1], 61)
end
return {0, 0}
";

const RELEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1])
if tonumber(ARGV[1]) > 0 then
  if redis.call('DECR', KEYS[1]) < 0 then redis.call('SET', KEYS[1], 0) end
end
local tokens = tonumber(ARGV[2])
if tokens > 0 then
  redis.call('HINCRBY', KEYS[2], now, tokens)
  redis.call('EXPIRE', KEYS[2], 61)
end
return 0
";

#[derive(Default)]
struct KeyState {
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    /// Sum of `tokens`.
    tokens_sum: u64,
    parallel: u32,
}

/// Limits kept in this process.
#[derive(Clone, Default)]
struct MemoryLimits {
    keys: Arc<Mutex<HashMap<String, KeyState>>>,
}

impl MemoryLimits {
    fn acquire(&self, key: &str, limits: &KeyLimits) -> Result<(), LimitDenied> {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let s = keys.entry(key.to_owned()).or_default();
        let from = now.checked_sub(WINDOW);
        let expired = |t: &Instant| from.is_some_and(|f| *t <= f);
        while s.requests.front().is_some_and(expired) {
            s.requests.pop_front();
        }
        while let Some((t, n)) = s.tokens.front().copied() {
            if !expired(&t) {
                break;
            }
            s.tokens.pop_front();
            s.tokens_sum = s.tokens_sum.saturating_sub(n);
        }
        let retry = |oldest: Option<&Instant>| {
            oldest.map_or(WINDOW, |t| (*t + WINDOW).saturating_duration_since(now))
        };
        if let Some(limit) = limits.rpm
            && s.requests.len() >= limit as usize
        {
            return Err(LimitDenied::Rpm {
                limit,
                retry_after: retry(s.requests.front()),
            });
        }
        if let Some(limit) = limits.tpm
            && s.tokens_sum >= limit
        {
            return Err(LimitDenied::Tpm {
                limit,
                retry_after: retry(s.tokens.front().map(|(t, _)| t)),
            });
        }
        if let Some(limit) = limits.parallel {
            if s.parallel >= limit {
                return Err(LimitDenied::Parallel { limit });
            }
            s.parallel += 1;
        }
        if limits.rpm.is_some() {
            s.requests.push_back(now);
        }
        Ok(())
    }

    fn release(&self, key: &str, limits: &KeyLimits, tokens: u64) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let s = keys.entry(key.to_owned()).or_default();
        if limits.parallel.is_some() {
            s.parallel = s.parallel.saturating_sub(1);
        }
        if limits.tpm.is_some() && tokens > 0 {
            s.tokens.push_back((Instant::now(), tokens));
            s.tokens_sum = s.tokens_sum.saturating_add(tokens);
        }
    }
}

/// Per-key limits, in Redis (shared by replicas) or in this process.
#[derive(Clone)]
pub struct KeyLimiter {
    redis: Option<RedisConn>,
    memory: MemoryLimits,
}

impl KeyLimiter {
    /// Limits kept in this process only.
    pub fn memory() -> Self {
        KeyLimiter {
            redis: None,
            memory: MemoryLimits::default(),
        }
    }

    /// Limits shared through Redis (this process's memory when Redis fails).
    pub fn redis(conn: RedisConn) -> Self {
        KeyLimiter {
            redis: Some(conn),
            memory: MemoryLimits::default(),
        }
    }

    fn keys(conn: &RedisConn, key: &str) -> [String; 3] {
        [
            conn.key(&format!("limit:{key}:rpm")),
            conn.key(&format!("limit:{key}:tpm")),
            conn.key(&format!("limit:{key}:par")),
        ]
    }

    /// Admits one request of `key` or says which limit refuses it.
    pub async fn acquire(&self, key: &str, limits: &KeyLimits) -> Result<(), LimitDenied> {
        if !limits.any() {
            return Ok(());
        }
        let Some(conn) = &self.redis else {
            return self.memory.acquire(key, limits);
        };
        let [rpm_key, tpm_key, par_key] = Self::keys(conn, key);
        let script = redis::Script::new(ACQUIRE);
        let mut inv = script.prepare_invoke();
        inv.key(rpm_key)
            .key(tpm_key)
            .key(par_key)
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(limits.parallel.unwrap_or(0))
            .arg(crate::redis_conn::px(PARALLEL_TTL));
        let mut c = conn.conn();
        match conn
            .run::<(i64, i64), _>("limit", inv.invoke_async(&mut c))
            .await
        {
            Ok((0, _)) => Ok(()),
            Ok((which, ms)) => {
                let retry_after = Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(1));
                Err(match which {
                    1 => LimitDenied::Rpm {
                        limit: limits.rpm.unwrap_or(0),
                        retry_after,
                    },
                    2 => LimitDenied::Tpm {
                        limit: limits.tpm.unwrap_or(0),
                        retry_after,
                    },
                    _ => LimitDenied::Parallel {
                        limit: limits.parallel.unwrap_or(0),
                    },
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "rate limits: Redis unavailable, using this replica's own counts");
                self.memory.acquire(key, limits)
            }
        }
    }

    /// Ends an admitted request: frees its parallel slot and charges its tokens to the
    /// tokens-per-minute window.
    pub async fn release(&self, key: &str, limits: &KeyLimits, tokens: u64) {
        if !limits.any() {
            return;
        }
        let Some(conn) = &self.redis else {
            return self.memory.release(key, limits, tokens);
        };
        let [_, tpm_key, par_key] = Self::keys(conn, key);
        let script = redis::Script::new(RELEASE);
        let mut inv = script.prepare_invoke();
        inv.key(par_key)
            .key(tpm_key)
            .arg(i32::from(limits.parallel.is_some()))
            .arg(if limits.tpm.is_some() { tokens } else { 0 });
        let mut c = conn.conn();
        if let Err(e) = conn.run::<i64, _>("limit", inv.invoke_async(&mut c)).await {
            tracing::warn!(error = %e, "rate limits: cannot release in Redis");
            self.memory.release(key, limits, tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_limits_count_requests_tokens_and_parallel_calls() {
        let l = KeyLimiter::memory();
        let rpm = KeyLimits {
            rpm: Some(2),
            ..Default::default()
        };
        assert!(l.acquire("a", &rpm).await.is_ok());
        assert!(l.acquire("a", &rpm).await.is_ok());
        assert!(matches!(
            l.acquire("a", &rpm).await,
            Err(LimitDenied::Rpm { limit: 2, .. })
        ));
        assert!(l.acquire("b", &rpm).await.is_ok(), "keys are independent");

        let par = KeyLimits {
            parallel: Some(1),
            ..Default::default()
        };
        assert!(l.acquire("p", &par).await.is_ok());
        assert_eq!(
            l.acquire("p", &par).await,
            Err(LimitDenied::Parallel { limit: 1 })
        );
        l.release("p", &par, 0).await;
        assert!(l.acquire("p", &par).await.is_ok());

        let tpm = KeyLimits {
            tpm: Some(100),
            ..Default::default()
        };
        assert!(l.acquire("t", &tpm).await.is_ok());
        l.release("t", &tpm, 150).await;
        assert!(matches!(
            l.acquire("t", &tpm).await,
            Err(LimitDenied::Tpm { limit: 100, .. })
        ));
    }
}
