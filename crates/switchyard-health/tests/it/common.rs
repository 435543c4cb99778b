//! Shared helpers: unique key prefixes, Redis availability, cleanup, waiting with a deadline.

use std::future::Future;
use std::time::Duration;

use switchyard_health::RedisConn;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// A key prefix no other test (or engineer) uses.
pub fn unique_prefix(name: &str) -> String {
    format!("sy-test-{name}-{:016x}", rand::random::<u64>())
}

/// Whether Redis answers PING; prints the skip notice when it does not.
pub async fn redis_up() -> bool {
    let ok = match RedisConn::new(REDIS_URL, "probe") {
        Ok(c) => c.ping().await.is_ok(),
        Err(_) => false,
    };
    if !ok {
        println!("skipped: Redis not reachable");
    }
    ok
}

/// Deletes every key under `prefix`.
pub async fn cleanup(prefix: &str) {
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

/// Polls `cond` until it holds, failing after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
