//! Per-key request limits shared by every gateway replica: requests per minute, tokens per
//! minute and requests in parallel.
//!
//! Windows are **sliding** (the last 60 s, not the current clock minute), so a burst at a minute
//! boundary cannot pass twice the limit. In Redis each key has two hashes of one-second buckets
//! (requests admitted, tokens charged) and an in-parallel counter; one Lua script checks and
//! admits atomically (one round trip per request, with Redis's own clock), another releases the
//! parallel slot and settles the tokens (a second round trip, after the answer). In memory the
//! same rules run under a mutex. When Redis fails, this replica falls back to its memory limits
//! rather than refusing or admitting everything.
//!
//! Tokens are only known when an answer ends, so admission **reserves** the request's estimate
//! (its prompt and output allowance, admitted only when it fits the room left, or the window is empty) in the window at once;
//! a parallel burst then sees the reservations of the requests before it. The end of the
//! request settles: the reservation leaves the window and the tokens really used enter it. A
//! reservation lives in the window's buckets, so one a crashed replica never settles expires
//! with the window.

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

/// What an admitted request holds in its key's tokens-per-minute window until it is settled by
/// [`KeyLimiter::release`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    reserved: u64,
    at: Reserved,
}

/// Where a reservation was made (a Redis failure can put it in memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Reserved {
    #[default]
    Nowhere,
    /// The one-second bucket (Redis's clock, Unix seconds).
    Redis(i64),
    Memory(Instant),
}

impl Admission {
    /// Tokens reserved in the window.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
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
  if used >= rpm then return {1, ((oldest or now) + 60 - now) * 1000, 0} end
end
local reserve = 0
if tpm > 0 then
  local used, oldest = window(KEYS[2])
  reserve = tonumber(ARGV[5])
  if used >= tpm or (used > 0 and used + reserve > tpm) then
    return {2, ((oldest or now) + 60 - now) * 1000, 0}
  end
end
if par > 0 then
  local n = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  if n > par then
    redis.call('DECR', KEYS[3])
    return {3, 1000, 0}
  end
end
if rpm > 0 then
  redis.call('HINCRBY', KEYS[1], now, 1)
  redis.call('EXPIRE', KEYS[1], 61)
end
if reserve > 0 then
  redis.call('HINCRBY', KEYS[2], now, reserve)
  redis.call('EXPIRE', KEYS[2], 61)
end
return {0, reserve, now}
";

const RELEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1])
if tonumber(ARGV[1]) > 0 then
  if redis.call('DECR', KEYS[1]) < 0 then redis.call('SET', KEYS[1], 0) end
end
local reserved = tonumber(ARGV[3])
if reserved > 0 then
  local held = tonumber(redis.call('HGET', KEYS[2], ARGV[4])) or 0
  if held > reserved then
    redis.call('HINCRBY', KEYS[2], ARGV[4], -reserved)
  elseif held > 0 then
    redis.call('HDEL', KEYS[2], ARGV[4])
  end
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
    fn acquire(
        &self,
        key: &str,
        limits: &KeyLimits,
        estimate: u64,
    ) -> Result<Admission, LimitDenied> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        // Read under the lock, so both queues stay in time order.
        let now = Instant::now();
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
        let mut reserve = 0;
        if let Some(limit) = limits.tpm {
            // A request must fit the room left (an empty window admits one of any size): a
            // reservation cut to the room let the last admitted request overshoot the limit.
            if s.tokens_sum >= limit || (s.tokens_sum > 0 && s.tokens_sum + estimate > limit) {
                return Err(LimitDenied::Tpm {
                    limit,
                    retry_after: retry(s.tokens.front().map(|(t, _)| t)),
                });
            }
            reserve = estimate;
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
        if reserve > 0 {
            s.tokens.push_back((now, reserve));
            s.tokens_sum = s.tokens_sum.saturating_add(reserve);
        }
        Ok(Admission {
            reserved: reserve,
            at: Reserved::Memory(now),
        })
    }

    fn release(&self, key: &str, limits: &KeyLimits, admission: Admission, tokens: u64) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let s = keys.entry(key.to_owned()).or_default();
        if limits.parallel.is_some() {
            s.parallel = s.parallel.saturating_sub(1);
        }
        if let Reserved::Memory(at) = admission.at {
            // Entries are in time order; the reservation is among those made at `at` (if it
            // has not left the window yet). Equal times are interchangeable in the sum.
            let mut left = admission.reserved;
            let first = s.tokens.partition_point(|(t, _)| *t < at);
            for (t, n) in s.tokens.range_mut(first..) {
                if *t != at || left == 0 {
                    break;
                }
                let take = left.min(*n);
                *n -= take;
                left -= take;
                s.tokens_sum = s.tokens_sum.saturating_sub(take);
            }
        }
        if limits.tpm.is_some() && tokens > 0 {
            s.tokens.push_back((now, tokens));
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

    /// Admits one request of `key` or says which limit refuses it. With a tokens-per-minute
    /// limit, `estimate` tokens (admitted only when it fits the room left, or the window is empty) are reserved until
    /// [`KeyLimiter::release`] settles them.
    pub async fn acquire(
        &self,
        key: &str,
        limits: &KeyLimits,
        estimate: u64,
    ) -> Result<Admission, LimitDenied> {
        if !limits.any() {
            return Ok(Admission::default());
        }
        let Some(conn) = &self.redis else {
            return self.memory.acquire(key, limits, estimate);
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
            .arg(crate::redis_conn::px(PARALLEL_TTL))
            .arg(estimate);
        let mut c = conn.conn();
        match conn
            .run::<(i64, i64, i64), _>("limit", inv.invoke_async(&mut c))
            .await
        {
            Ok((0, reserved, second)) => Ok(Admission {
                reserved: u64::try_from(reserved).unwrap_or(0),
                at: Reserved::Redis(second),
            }),
            Ok((which, ms, _)) => {
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
                self.memory.acquire(key, limits, estimate)
            }
        }
    }

    /// Ends an admitted request: frees its parallel slot and settles its tokens (the
    /// reservation leaves the tokens-per-minute window, the `tokens` really used enter it).
    pub async fn release(&self, key: &str, limits: &KeyLimits, admission: Admission, tokens: u64) {
        if !limits.any() {
            return;
        }
        let (Some(conn), Reserved::Redis(_) | Reserved::Nowhere) = (&self.redis, admission.at)
        else {
            return self.memory.release(key, limits, admission, tokens);
        };
        let second = match admission.at {
            Reserved::Redis(s) => s,
            _ => 0,
        };
        let [_, tpm_key, par_key] = Self::keys(conn, key);
        let script = redis::Script::new(RELEASE);
        let mut inv = script.prepare_invoke();
        inv.key(par_key)
            .key(tpm_key)
            .arg(i32::from(limits.parallel.is_some()))
            .arg(if limits.tpm.is_some() { tokens } else { 0 })
            .arg(admission.reserved)
            .arg(second);
        let mut c = conn.conn();
        if let Err(e) = conn.run::<i64, _>("limit", inv.invoke_async(&mut c)).await {
            tracing::warn!(error = %e, "rate limits: cannot release in Redis");
            self.memory
                .release(key, limits, Admission::default(), tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn memory_limits_count_requests_tokens_and_parallel_calls() {
        let l = KeyLimiter::memory();
        let rpm = KeyLimits {
            rpm: Some(2),
            ..Default::default()
        };
        assert!(l.acquire("a", &rpm, 0).await.is_ok());
        assert!(l.acquire("a", &rpm, 0).await.is_ok());
        assert!(matches!(
            l.acquire("a", &rpm, 0).await,
            Err(LimitDenied::Rpm { limit: 2, .. })
        ));
        assert!(
            l.acquire("b", &rpm, 0).await.is_ok(),
            "keys are independent"
        );

        let par = KeyLimits {
            parallel: Some(1),
            ..Default::default()
        };
        let held = l.acquire("p", &par, 0).await.unwrap();
        assert_eq!(
            l.acquire("p", &par, 0).await,
            Err(LimitDenied::Parallel { limit: 1 })
        );
        l.release("p", &par, held, 0).await;
        assert!(l.acquire("p", &par, 0).await.is_ok());

        let tpm = KeyLimits {
            tpm: Some(100),
            ..Default::default()
        };
        let held = l.acquire("t", &tpm, 0).await.unwrap();
        l.release("t", &tpm, held, 150).await;
        assert!(matches!(
            l.acquire("t", &tpm, 0).await,
            Err(LimitDenied::Tpm { limit: 100, .. })
        ));
    }
}
