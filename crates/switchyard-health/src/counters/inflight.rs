//! Requests in flight per deployment: least-busy routing reads them, and capacity routing takes
//! a slot with [`InflightCounter::try_acquire`] (check and count in one step, so two router
//! replicas cannot both take a deployment's last slot).
//!
//! **Redis layout and leak handling.** `{prefix}:inflight:{deployment}` is a hash with one field
//! per router replica (its count, always ≥ 1: a field that would reach 0 or below is deleted in
//! the same script, so a count can never go negative). Each replica keeps a heartbeat key
//! `{prefix}:inflight-replica:{replica}` alive with a TTL from a background task. Reads sum only
//! the fields whose replica still has a heartbeat and delete the others, so the counts of a
//! crashed replica disappear one heartbeat TTL after it died. The hash itself also carries a
//! safety TTL refreshed on every change, so an idle deployment leaves nothing behind.
//! (Per-field TTLs would need Redis 7.4's `HEXPIRE`; this works on any Redis with Lua.)
//! The scripts touch the heartbeat keys by computed name, which is fine outside Redis Cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::error::HealthError;
use crate::redis_conn::{RedisConn, px};

/// How long a replica's counts survive it.
const HEARTBEAT_TTL: Duration = Duration::from_secs(30);
/// Safety TTL of a deployment's hash, refreshed on every change.
const KEY_TTL: Duration = Duration::from_secs(600);

/// KEYS[1] hash, KEYS[2] heartbeat; ARGV: replica, delta, key ttl, heartbeat ttl.
const ADD_SCRIPT: &str = r"
local v = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if v <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  v = 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
return v
";

/// KEYS: hashes; ARGV[1]: heartbeat key prefix. Returns the live sum per hash.
const SUM_SCRIPT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local fields = redis.call('HGETALL', key)
  local sum = 0
  for j = 1, #fields, 2 do
    local replica = fields[j]
    if redis.call('EXISTS', ARGV[1] .. replica) == 1 then
      local n = tonumber(fields[j + 1])
      if n > 0 then sum = sum + n end
    else
      redis.call('HDEL', key, replica)
    end
  end
  out[i] = sum
end
return out
";

/// KEYS[1] hash, KEYS[2] own heartbeat; ARGV: replica, capacity, key ttl, heartbeat ttl,
/// heartbeat key prefix. Counts the live replicas' fields (dropping dead ones, as `SUM_SCRIPT`)
/// and adds one to this replica's only when the sum is below the capacity. Returns
/// `{taken (0/1), sum before}`.
const ACQUIRE_SCRIPT: &str = r"
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
local fields = redis.call('HGETALL', KEYS[1])
local sum = 0
for j = 1, #fields, 2 do
  local replica = fields[j]
  if replica == ARGV[1] or redis.call('EXISTS', ARGV[5] .. replica) == 1 then
    local n = tonumber(fields[j + 1])
    if n > 0 then sum = sum + n end
  else
    redis.call('HDEL', KEYS[1], replica)
  end
end
if sum >= tonumber(ARGV[2]) then
  return {0, sum}
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, sum}
";

/// What [`InflightCounter::try_acquire`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotTry {
    /// A slot was taken (and must be released).
    pub taken: bool,
    /// Requests in flight on the deployment across replicas, this one's included if taken.
    pub in_use: i64,
}

/// In-flight requests per deployment.
#[derive(Clone, Debug)]
pub enum InflightCounter {
    Memory(Arc<Mutex<HashMap<String, i64>>>),
    Redis(Arc<RedisInflight>),
}

/// The Redis backend of [`InflightCounter`]; its heartbeat task stops when it is dropped.
#[derive(Debug)]
pub struct RedisInflight {
    conn: RedisConn,
    replica: String,
    heartbeat_ttl: Duration,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for RedisInflight {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl InflightCounter {
    /// Counts within this process.
    pub fn memory() -> Self {
        InflightCounter::Memory(Arc::default())
    }

    /// Counts shared through Redis; `replica` names this router replica (unique per process).
    /// Spawns the heartbeat task, so it needs a Tokio runtime.
    pub fn redis(conn: RedisConn, replica: &str) -> Self {
        Self::redis_with_heartbeat(conn, replica, HEARTBEAT_TTL)
    }

    /// As [`InflightCounter::redis`] with another heartbeat TTL (tests use a short one).
    pub fn redis_with_heartbeat(conn: RedisConn, replica: &str, ttl: Duration) -> Self {
        let inner = Arc::new_cyclic(|weak: &Weak<RedisInflight>| RedisInflight {
            conn: conn.clone(),
            replica: replica.to_owned(),
            heartbeat_ttl: ttl,
            heartbeat: tokio::spawn(heartbeat(weak.clone(), ttl)),
        });
        InflightCounter::Redis(inner)
    }

    /// One more request in flight; returns this replica's count for it.
    pub async fn incr(&self, deployment: &str) -> Result<i64, HealthError> {
        self.add(deployment, 1).await
    }

    /// Takes one of `deployment`'s `capacity` slots if one is free across every live replica:
    /// `taken` counts the request in flight (release it with [`InflightCounter::decr`]);
    /// otherwise nothing changes. `in_use` is the count across replicas after the call.
    pub async fn try_acquire(
        &self,
        deployment: &str,
        capacity: u32,
    ) -> Result<SlotTry, HealthError> {
        match self {
            InflightCounter::Memory(m) => {
                let mut map = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let v = map.entry(deployment.to_owned()).or_insert(0);
                let taken = *v < i64::from(capacity);
                if taken {
                    *v += 1;
                }
                Ok(SlotTry { taken, in_use: *v })
            }
            InflightCounter::Redis(r) => r.try_acquire(deployment, capacity).await,
        }
    }

    /// One request fewer; never goes below zero. Returns this replica's count for it.
    pub async fn decr(&self, deployment: &str) -> Result<i64, HealthError> {
        self.add(deployment, -1).await
    }

    async fn add(&self, deployment: &str, delta: i64) -> Result<i64, HealthError> {
        match self {
            InflightCounter::Memory(m) => {
                let mut map = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let v = map.entry(deployment.to_owned()).or_insert(0);
                *v = (*v + delta).max(0);
                Ok(*v)
            }
            InflightCounter::Redis(r) => r.add(deployment, delta).await,
        }
    }

    /// Counts for `deployments`, in the same order, summed over live replicas.
    pub async fn get_many(&self, deployments: &[&str]) -> Result<Vec<i64>, HealthError> {
        match self {
            InflightCounter::Memory(m) => {
                let map = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(deployments
                    .iter()
                    .map(|d| map.get(*d).copied().unwrap_or(0))
                    .collect())
            }
            InflightCounter::Redis(r) => r.get_many(deployments).await,
        }
    }

    /// Whether the shared backend failed at its last call.
    pub fn is_degraded(&self) -> bool {
        match self {
            InflightCounter::Memory(_) => false,
            InflightCounter::Redis(r) => r.conn.is_degraded(),
        }
    }
}

impl RedisInflight {
    fn hash_key(&self, deployment: &str) -> String {
        self.conn.key(&format!("inflight:{deployment}"))
    }

    fn heartbeat_prefix(&self) -> String {
        self.conn.key("inflight-replica:")
    }

    async fn add(&self, deployment: &str, delta: i64) -> Result<i64, HealthError> {
        let script = redis::Script::new(ADD_SCRIPT);
        let mut inv = script.prepare_invoke();
        inv.key(self.hash_key(deployment))
            .key(format!("{}{}", self.heartbeat_prefix(), self.replica))
            .arg(&self.replica)
            .arg(delta)
            .arg(px(KEY_TTL))
            .arg(px(self.heartbeat_ttl));
        let mut c = self.conn.conn();
        self.conn.run("inflight", inv.invoke_async(&mut c)).await
    }

    async fn try_acquire(&self, deployment: &str, capacity: u32) -> Result<SlotTry, HealthError> {
        let script = redis::Script::new(ACQUIRE_SCRIPT);
        let mut inv = script.prepare_invoke();
        inv.key(self.hash_key(deployment))
            .key(format!("{}{}", self.heartbeat_prefix(), self.replica))
            .arg(&self.replica)
            .arg(capacity)
            .arg(px(KEY_TTL))
            .arg(px(self.heartbeat_ttl))
            .arg(self.heartbeat_prefix());
        let mut c = self.conn.conn();
        let (taken, before): (i64, i64) =
            self.conn.run("inflight", inv.invoke_async(&mut c)).await?;
        Ok(SlotTry {
            taken: taken == 1,
            in_use: before + taken,
        })
    }

    async fn get_many(&self, deployments: &[&str]) -> Result<Vec<i64>, HealthError> {
        if deployments.is_empty() {
            return Ok(Vec::new());
        }
        let script = redis::Script::new(SUM_SCRIPT);
        let mut inv = script.prepare_invoke();
        for d in deployments {
            inv.key(self.hash_key(d));
        }
        inv.arg(self.heartbeat_prefix());
        let mut c = self.conn.conn();
        self.conn.run("inflight", inv.invoke_async(&mut c)).await
    }

    async fn beat(&self, ttl: Duration) -> Result<(), HealthError> {
        let key = format!("{}{}", self.heartbeat_prefix(), self.replica);
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg("1")
            .arg("PX")
            .arg(px(ttl))
            .clone();
        let mut c = self.conn.conn();
        self.conn
            .run::<(), _>("inflight heartbeat", cmd.query_async(&mut c))
            .await
    }
}

/// Keeps this replica's heartbeat alive while the counter exists.
async fn heartbeat(counter: Weak<RedisInflight>, ttl: Duration) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = counter.upgrade() else { return };
        if let Err(e) = c.beat(ttl).await {
            tracing::debug!(error = %e, "inflight heartbeat failed");
        }
    }
}
