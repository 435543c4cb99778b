//! Requests and tokens per deployment in the current minute, for usage-based (TPM/RPM) routing.
//!
//! Fixed one-minute windows keyed by the Unix minute: Redis hash `{prefix}:usage:{dep}:{minute}`
//! with fields `r` (requests) and `t` (tokens), updated in one `MULTI` and expiring after two
//! minutes, so nothing needs cleaning up. Every replica adds to the same window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::HealthError;
use crate::model::now_ms;
use crate::redis_conn::{RedisConn, px};

const WINDOW_TTL: Duration = Duration::from_secs(120);

fn minute_now() -> u64 {
    now_ms() / 60_000
}

/// deployment → (minute, requests, tokens).
type MemoryWindows = Arc<Mutex<HashMap<String, (u64, u64, u64)>>>;

/// Per-minute usage per deployment.
#[derive(Clone, Debug)]
pub enum UsageWindow {
    Memory(MemoryWindows),
    Redis(RedisConn),
}

impl UsageWindow {
    pub fn memory() -> Self {
        UsageWindow::Memory(Arc::default())
    }

    pub fn redis(conn: RedisConn) -> Self {
        UsageWindow::Redis(conn)
    }

    /// Counts one request using `tokens` (prompt + completion) in the current minute.
    pub async fn add(&self, deployment: &str, tokens: u64) -> Result<(), HealthError> {
        let minute = minute_now();
        match self {
            UsageWindow::Memory(m) => {
                let mut map = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let e = map.entry(deployment.to_owned()).or_insert((minute, 0, 0));
                if e.0 != minute {
                    *e = (minute, 0, 0);
                }
                e.1 = e.1.saturating_add(1);
                e.2 = e.2.saturating_add(tokens);
                Ok(())
            }
            UsageWindow::Redis(conn) => {
                let key = window_key(conn, deployment, minute);
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("HINCRBY")
                    .arg(&key)
                    .arg("r")
                    .arg(1)
                    .ignore()
                    .cmd("HINCRBY")
                    .arg(&key)
                    .arg("t")
                    .arg(tokens)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(px(WINDOW_TTL))
                    .ignore();
                let mut c = conn.conn();
                conn.run("usage", pipe.query_async::<()>(&mut c)).await
            }
        }
    }

    /// `(requests, tokens)` of the current minute for each of `deployments`, in order.
    pub async fn current(&self, deployments: &[&str]) -> Result<Vec<(u64, u64)>, HealthError> {
        let minute = minute_now();
        match self {
            UsageWindow::Memory(m) => {
                let map = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(deployments
                    .iter()
                    .map(|d| match map.get(*d) {
                        Some(&(m, r, t)) if m == minute => (r, t),
                        _ => (0, 0),
                    })
                    .collect())
            }
            UsageWindow::Redis(conn) => {
                if deployments.is_empty() {
                    return Ok(Vec::new());
                }
                let mut pipe = redis::pipe();
                for d in deployments {
                    pipe.cmd("HMGET")
                        .arg(window_key(conn, d, minute))
                        .arg("r")
                        .arg("t");
                }
                let mut c = conn.conn();
                let rows: Vec<(Option<u64>, Option<u64>)> =
                    conn.run("usage", pipe.query_async(&mut c)).await?;
                Ok(rows
                    .into_iter()
                    .map(|(r, t)| (r.unwrap_or(0), t.unwrap_or(0)))
                    .collect())
            }
        }
    }

    /// Whether the shared backend failed at its last call.
    pub fn is_degraded(&self) -> bool {
        match self {
            UsageWindow::Memory(_) => false,
            UsageWindow::Redis(c) => c.is_degraded(),
        }
    }
}

fn window_key(conn: &RedisConn, deployment: &str, minute: u64) -> String {
    conn.key(&format!("usage:{deployment}:{minute}"))
}
