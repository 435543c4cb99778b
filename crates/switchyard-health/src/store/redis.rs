//! The Redis health store, shared by every router and prober replica.
//!
//! Keys (all under the configured prefix):
//! - `{prefix}:health:{deployment}`: the state as JSON, with a TTL ([`RedisStore::state_ttl`]),
//!   so a prober that stopped writing leaves states that expire and read as Unknown;
//! - `{prefix}:health-index`: the set of deployment ids ever written, so a snapshot is two
//!   round trips (`SMEMBERS`, `MGET`) instead of a `SCAN`;
//! - `{prefix}:prober:lease`: the prober lease (`SET … NX PX`, renewed by its holder);
//! - channel `{prefix}:health:events`: each change as a JSON [`HealthChange`].
//!
//! Passive reports are a read, then a compare-and-set script that writes only if the state is
//! still what was read (retried a few times), so two replicas reporting at once cannot lose
//! each other's update.

use std::time::Duration;

use switchyard_core::FailureClass;

use super::DEFAULT_STATE_TTL;
use super::subscription::HealthSubscription;
use crate::error::HealthError;
use crate::model::{DeploymentHealth, HealthChange, HealthSnapshot, now_ms};
use crate::passive;
use crate::redis_conn::{RedisConn, px};

/// The index set outlives any state; it is refreshed on every write.
const INDEX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Compare-and-set attempts of one passive report before giving up.
const CAS_ATTEMPTS: usize = 3;

const LEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
";

const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
";

/// KEYS: state, index. ARGV: expected ('' = absent), new value, ttl ms, channel, event, id,
/// index ttl ms.
const CAS_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

#[derive(Clone, Debug)]
pub struct RedisStore {
    conn: RedisConn,
    ttl: Duration,
}

impl RedisStore {
    /// A store on `url` under `key_prefix` with the default timeouts and state TTL. Does not
    /// connect yet.
    pub fn new(url: &str, key_prefix: &str) -> Result<Self, HealthError> {
        Ok(Self::from_conn(RedisConn::new(url, key_prefix)?))
    }

    /// A store on an existing connection (shared with the counters).
    pub fn from_conn(conn: RedisConn) -> Self {
        RedisStore {
            conn,
            ttl: DEFAULT_STATE_TTL,
        }
    }

    /// Sets how long a written state lives (about three probe intervals).
    #[must_use]
    pub fn with_state_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn conn(&self) -> &RedisConn {
        &self.conn
    }

    pub fn state_ttl(&self) -> Duration {
        self.ttl
    }

    pub fn is_degraded(&self) -> bool {
        self.conn.is_degraded()
    }

    pub(crate) fn state_key(&self, deployment: &str) -> String {
        self.conn.key(&format!("health:{deployment}"))
    }

    fn index_key(&self) -> String {
        self.conn.key("health-index")
    }

    pub(crate) fn channel(&self) -> String {
        self.conn.key("health:events")
    }

    fn lease_key(&self) -> String {
        self.conn.key("prober:lease")
    }

    async fn get_raw(&self, deployment: &str) -> Result<Option<String>, HealthError> {
        let mut c = self.conn.conn();
        let cmd = redis::cmd("GET").arg(self.state_key(deployment)).clone();
        self.conn.run("get", cmd.query_async(&mut c)).await
    }

    pub async fn get(&self, deployment: &str) -> Result<DeploymentHealth, HealthError> {
        let key = self.state_key(deployment);
        match self.get_raw(deployment).await? {
            Some(raw) => decode(&key, &raw),
            None => Ok(DeploymentHealth::unknown()),
        }
    }

    pub async fn snapshot(&self) -> Result<HealthSnapshot, HealthError> {
        let mut c = self.conn.conn();
        let members = redis::cmd("SMEMBERS").arg(self.index_key()).clone();
        let ids: Vec<String> = self
            .conn
            .run("snapshot", members.query_async(&mut c))
            .await?;
        if ids.is_empty() {
            return Ok(HealthSnapshot::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.state_key(id)).collect();
        let mget = redis::cmd("MGET").arg(&keys).clone();
        let values: Vec<Option<String>> =
            self.conn.run("snapshot", mget.query_async(&mut c)).await?;
        let mut out = HealthSnapshot::with_capacity(ids.len());
        for ((id, key), raw) in ids.into_iter().zip(&keys).zip(values) {
            let Some(raw) = raw else { continue };
            match decode(key, &raw) {
                Ok(h) => {
                    out.insert(id, h);
                }
                Err(e) => tracing::warn!(error = %e, "ignoring unreadable health state"),
            }
        }
        Ok(out)
    }

    pub async fn put(
        &self,
        deployment: &str,
        health: &DeploymentHealth,
        publish: bool,
    ) -> Result<(), HealthError> {
        let value = encode(health)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.state_key(deployment))
            .arg(&value)
            .arg("PX")
            .arg(px(self.ttl))
            .ignore()
            .cmd("SADD")
            .arg(self.index_key())
            .arg(deployment)
            .ignore()
            .cmd("PEXPIRE")
            .arg(self.index_key())
            .arg(px(INDEX_TTL))
            .ignore();
        if publish {
            pipe.cmd("PUBLISH")
                .arg(self.channel())
                .arg(event_json(deployment, health)?)
                .ignore();
        }
        let mut c = self.conn.conn();
        self.conn.run("put", pipe.query_async::<()>(&mut c)).await
    }

    pub fn subscribe(&self) -> HealthSubscription {
        HealthSubscription::redis(self.clone())
    }

    /// Read, compute, compare-and-set; retried when another writer got in between.
    async fn apply(
        &self,
        deployment: &str,
        f: impl Fn(Option<&DeploymentHealth>) -> Option<DeploymentHealth>,
    ) -> Result<Option<DeploymentHealth>, HealthError> {
        let key = self.state_key(deployment);
        let script = redis::Script::new(CAS_SCRIPT);
        for _ in 0..CAS_ATTEMPTS {
            let raw = self.get_raw(deployment).await?;
            let current = raw.as_deref().map(|r| decode(&key, r)).transpose()?;
            let Some(next) = f(current.as_ref()) else {
                return Ok(None);
            };
            let mut inv = script.prepare_invoke();
            inv.key(&key)
                .key(self.index_key())
                .arg(raw.as_deref().unwrap_or(""))
                .arg(encode(&next)?)
                .arg(px(self.ttl))
                .arg(self.channel())
                .arg(event_json(deployment, &next)?)
                .arg(deployment)
                .arg(px(INDEX_TTL));
            let mut c = self.conn.conn();
            let done: i64 = self.conn.run("report", inv.invoke_async(&mut c)).await?;
            if done == 1 {
                return Ok(Some(next));
            }
        }
        Err(HealthError::Redis {
            op: "report",
            reason: format!("state of {deployment} kept changing; report dropped"),
        })
    }

    pub async fn report_failure(
        &self,
        deployment: &str,
        class: FailureClass,
    ) -> Result<Option<DeploymentHealth>, HealthError> {
        if passive::after_failure(None, class, 0).is_none() {
            return Ok(None);
        }
        self.apply(deployment, |c| passive::after_failure(c, class, now_ms()))
            .await
    }

    pub async fn report_success(
        &self,
        deployment: &str,
    ) -> Result<Option<DeploymentHealth>, HealthError> {
        self.apply(deployment, |c| passive::after_success(c, now_ms()))
            .await
    }

    pub async fn try_lease(&self, replica: &str, ttl: Duration) -> Result<bool, HealthError> {
        let script = redis::Script::new(LEASE_SCRIPT);
        let mut inv = script.prepare_invoke();
        inv.key(self.lease_key()).arg(replica).arg(px(ttl));
        let mut c = self.conn.conn();
        let held: i64 = self.conn.run("lease", inv.invoke_async(&mut c)).await?;
        Ok(held == 1)
    }

    pub async fn release_lease(&self, replica: &str) -> Result<(), HealthError> {
        let script = redis::Script::new(RELEASE_SCRIPT);
        let mut inv = script.prepare_invoke();
        inv.key(self.lease_key()).arg(replica);
        let mut c = self.conn.conn();
        self.conn
            .run::<i64, _>("release lease", inv.invoke_async(&mut c))
            .await
            .map(|_| ())
    }
}

fn encode(health: &DeploymentHealth) -> Result<String, HealthError> {
    serde_json::to_string(health).map_err(|e| HealthError::Decode {
        key: "health".to_owned(),
        reason: e.to_string(),
    })
}

fn event_json(deployment: &str, health: &DeploymentHealth) -> Result<String, HealthError> {
    let change = HealthChange {
        deployment: deployment.to_owned(),
        health: health.clone(),
    };
    serde_json::to_string(&change).map_err(|e| HealthError::Decode {
        key: "event".to_owned(),
        reason: e.to_string(),
    })
}

fn decode(key: &str, raw: &str) -> Result<DeploymentHealth, HealthError> {
    serde_json::from_str(raw).map_err(|e| HealthError::Decode {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}
