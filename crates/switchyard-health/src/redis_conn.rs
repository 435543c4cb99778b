//! One shared Redis connection with a short deadline on every call.
//!
//! The health store, the in-flight counter and the usage window all talk to the same Redis, so
//! they share one [`RedisConn`]: a lazily connecting, self-reconnecting multiplexed connection
//! (`redis::aio::ConnectionManager`), a key prefix, and a `degraded` flag that the last call
//! sets. Every call is bounded by [`RedisOptions::op_timeout`] so a dead Redis costs the request
//! path at most that long and never hangs it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::HealthError;

/// Tuning of a [`RedisConn`].
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Deadline of one call (connect included). Short on purpose: shared state is an
    /// optimisation, and a request must not wait long for it.
    pub op_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            op_timeout: Duration::from_millis(150),
        }
    }
}

/// A cloneable handle on one Redis server and key prefix.
#[derive(Clone)]
pub struct RedisConn {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: String,
    op_timeout: Duration,
    degraded: AtomicBool,
    errors: AtomicU64,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn")
            .field("prefix", &self.inner.prefix)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}

impl RedisConn {
    /// Prepares a connection to `url` (`redis://host:port/db`); keys start with `key_prefix`.
    /// Does not connect: the first call does, so a process starts even while Redis is down.
    pub fn new(url: &str, key_prefix: &str) -> Result<Self, HealthError> {
        Self::with_options(url, key_prefix, RedisOptions::default())
    }

    pub fn with_options(
        url: &str,
        key_prefix: &str,
        options: RedisOptions,
    ) -> Result<Self, HealthError> {
        let client =
            redis::Client::open(url).map_err(|e| HealthError::InvalidUrl(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.op_timeout))
            .set_response_timeout(Some(options.op_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let manager = client
            .get_connection_manager_lazy(config)
            .map_err(|e| HealthError::InvalidUrl(e.to_string()))?;
        Ok(RedisConn {
            inner: Arc::new(Inner {
                client,
                manager,
                prefix: key_prefix.to_owned(),
                op_timeout: options.op_timeout,
                degraded: AtomicBool::new(false),
                errors: AtomicU64::new(0),
            }),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// `{prefix}:{rest}`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.inner.prefix)
    }

    /// Whether the last call failed because Redis was unreachable or too slow.
    pub fn is_degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Relaxed)
    }

    /// Calls that failed or timed out since start (for the `redis_errors` metric).
    pub fn error_count(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    /// Round trip to Redis; updates [`RedisConn::is_degraded`]. For readiness checks.
    pub async fn ping(&self) -> Result<(), HealthError> {
        let mut c = self.conn();
        let cmd = redis::cmd("PING");
        self.run::<String, _>("ping", cmd.query_async(&mut c))
            .await
            .map(|_| ())
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        self.inner.op_timeout
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.manager.clone()
    }

    /// Awaits one Redis future under the deadline, keeping the degraded flag current.
    pub(crate) async fn run<T, F>(&self, op: &'static str, fut: F) -> Result<T, HealthError>
    where
        F: Future<Output = RedisResult<T>>,
    {
        match tokio::time::timeout(self.inner.op_timeout, fut).await {
            Ok(Ok(v)) => {
                self.set_degraded(false);
                Ok(v)
            }
            Ok(Err(e)) => {
                self.inner.errors.fetch_add(1, Ordering::Relaxed);
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
                {
                    self.set_degraded(true);
                }
                Err(HealthError::Redis {
                    op,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                self.inner.errors.fetch_add(1, Ordering::Relaxed);
                self.set_degraded(true);
                Err(HealthError::Timeout {
                    op,
                    ms: u64::try_from(self.inner.op_timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }

    pub(crate) fn set_degraded(&self, degraded: bool) {
        let was = self.inner.degraded.swap(degraded, Ordering::Relaxed);
        if was != degraded {
            if degraded {
                tracing::warn!(prefix = %self.inner.prefix, "redis unreachable: shared state degraded");
            } else {
                tracing::info!(prefix = %self.inner.prefix, "redis reachable again");
            }
        }
    }
}

/// Milliseconds of a duration for `PX` arguments (at least 1: Redis rejects 0).
pub(crate) fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
