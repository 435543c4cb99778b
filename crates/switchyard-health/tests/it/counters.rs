//! In-flight counters and usage windows, in memory and shared through Redis.

use std::time::Duration;

use switchyard_health::{InflightCounter, RedisConn, UsageWindow};

use crate::common::{REDIS_URL, cleanup, eventually, redis_up, unique_prefix};

#[tokio::test]
async fn memory_counters() {
    let c = InflightCounter::memory();
    c.incr("a").await.unwrap();
    c.incr("a").await.unwrap();
    c.decr("b").await.unwrap();
    assert_eq!(c.get_many(&["a", "b", "z"]).await.unwrap(), [2, 0, 0]);
    let u = UsageWindow::memory();
    u.add("a", 10).await.unwrap();
    u.add("a", 5).await.unwrap();
    assert_eq!(u.current(&["a", "b"]).await.unwrap(), [(2, 15), (0, 0)]);
}

#[tokio::test]
async fn redis_inflight_shared_never_negative_and_leaks_expire() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("inflight");
    let r1 = InflightCounter::redis(RedisConn::new(REDIS_URL, &prefix).unwrap(), "r1");
    let r2 = InflightCounter::redis_with_heartbeat(
        RedisConn::new(REDIS_URL, &prefix).unwrap(),
        "r2",
        Duration::from_millis(1000),
    );
    r1.incr("a").await.unwrap();
    r2.incr("a").await.unwrap();
    r2.incr("a").await.unwrap();
    r2.incr("b").await.unwrap();
    assert_eq!(r1.get_many(&["a", "b", "c"]).await.unwrap(), [3, 1, 0]);
    // Never negative, whatever the order of calls.
    assert_eq!(r1.decr("a").await.unwrap(), 0);
    assert_eq!(r1.decr("a").await.unwrap(), 0);
    assert_eq!(r1.decr("c").await.unwrap(), 0);
    assert_eq!(r2.get_many(&["a", "c"]).await.unwrap(), [2, 0]);

    // r2 "crashes" with requests in flight: its counts vanish once its heartbeat expires.
    drop(r2);
    eventually(Duration::from_secs(3), "leaked counts expire", || async {
        r1.get_many(&["a", "b"]).await.unwrap() == [0, 0]
    })
    .await;
    cleanup(&prefix).await;
}

#[tokio::test]
async fn memory_slots_are_taken_up_to_capacity() {
    let c = InflightCounter::memory();
    assert!(c.try_acquire("a", 2).await.unwrap().taken);
    assert!(c.try_acquire("a", 2).await.unwrap().taken);
    assert!(
        !c.try_acquire("a", 2).await.unwrap().taken,
        "both slots are taken"
    );
    c.decr("a").await.unwrap();
    assert!(
        c.try_acquire("a", 2).await.unwrap().taken,
        "a released slot is free again"
    );
}

#[tokio::test]
async fn redis_slots_are_shared_by_replicas_and_a_dead_replica_frees_its_own() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("slots");
    let r1 = InflightCounter::redis(RedisConn::new(REDIS_URL, &prefix).unwrap(), "r1");
    let r2 = InflightCounter::redis_with_heartbeat(
        RedisConn::new(REDIS_URL, &prefix).unwrap(),
        "r2",
        Duration::from_millis(1000),
    );
    // Two slots in all: one replica each, then neither gets a third.
    assert!(r1.try_acquire("a", 2).await.unwrap().taken);
    assert!(r2.try_acquire("a", 2).await.unwrap().taken);
    assert!(!r1.try_acquire("a", 2).await.unwrap().taken);
    assert!(!r2.try_acquire("a", 2).await.unwrap().taken);
    assert_eq!(r1.get_many(&["a"]).await.unwrap(), [2]);
    // Least-busy's plain counting and slots are one count.
    r1.decr("a").await.unwrap();
    assert!(r2.try_acquire("a", 2).await.unwrap().taken);
    assert!(!r1.try_acquire("a", 2).await.unwrap().taken);
    // r2 dies holding both slots: its lease (heartbeat) expires and they are free again.
    drop(r2);
    eventually(
        Duration::from_secs(3),
        "a dead replica's slots free up",
        || async { r1.try_acquire("a", 2).await.unwrap().taken },
    )
    .await;
    assert!(r1.try_acquire("a", 2).await.unwrap().taken);
    assert!(!r1.try_acquire("a", 2).await.unwrap().taken);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn redis_usage_window_counts_across_instances() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("usage");
    let u1 = UsageWindow::redis(RedisConn::new(REDIS_URL, &prefix).unwrap());
    let u2 = UsageWindow::redis(RedisConn::new(REDIS_URL, &prefix).unwrap());
    // Stay within one minute window: retry once if the minute turned mid-test.
    for _ in 0..2 {
        cleanup(&prefix).await;
        let minute = switchyard_health::now_ms() / 60_000;
        u1.add("a", 100).await.unwrap();
        u2.add("a", 20).await.unwrap();
        u2.add("b", 7).await.unwrap();
        let got = u1.current(&["a", "b", "c"]).await.unwrap();
        if switchyard_health::now_ms() / 60_000 != minute {
            continue;
        }
        assert_eq!(got, [(2, 120), (1, 7), (0, 0)]);
        break;
    }
    cleanup(&prefix).await;
}

/// Per-key limits in Redis: two limiters (two gateway replicas) share one key's RPM, TPM and
/// parallel slots exactly.
#[tokio::test]
async fn redis_key_limits_are_shared_by_replicas() {
    use switchyard_health::{KeyLimiter, KeyLimits, LimitDenied};
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("limits");
    let a = KeyLimiter::redis(RedisConn::new(REDIS_URL, &prefix).unwrap());
    let b = KeyLimiter::redis(RedisConn::new(REDIS_URL, &prefix).unwrap());

    let rpm = KeyLimits {
        rpm: Some(3),
        ..Default::default()
    };
    let mut admitted = 0;
    for i in 0..8 {
        let l = if i % 2 == 0 { &a } else { &b };
        match l.acquire("k-rpm", &rpm, 0).await {
            Ok(_) => admitted += 1,
            Err(LimitDenied::Rpm { limit, retry_after }) => {
                assert_eq!(limit, 3);
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60));
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(admitted, 3);

    let par = KeyLimits {
        parallel: Some(2),
        ..Default::default()
    };
    a.acquire("k-par", &par, 0).await.unwrap();
    let held = b.acquire("k-par", &par, 0).await.unwrap();
    assert_eq!(
        a.acquire("k-par", &par, 0).await,
        Err(LimitDenied::Parallel { limit: 2 })
    );
    b.release("k-par", &par, held, 0).await;
    a.acquire("k-par", &par, 0).await.unwrap();

    let tpm = KeyLimits {
        tpm: Some(100),
        ..Default::default()
    };
    let held = a.acquire("k-tpm", &tpm, 0).await.unwrap();
    a.release("k-tpm", &tpm, held, 60).await;
    let held = b.acquire("k-tpm", &tpm, 0).await.unwrap();
    b.release("k-tpm", &tpm, held, 60).await;
    assert!(matches!(
        a.acquire("k-tpm", &tpm, 0).await,
        Err(LimitDenied::Tpm { limit: 100, .. })
    ));
    cleanup(&prefix).await;
}

/// 50 requests of one key arrive together, each expected to use 30 tokens, against
/// `tpm_limit: 100` over two replicas: admission reserves the estimate, so only the three that
/// fit whole (30 + 30 + 30) get in; settling to the tokens really used (5 each) frees the rest
/// of the window for the next request.
async fn burst_against(a: switchyard_health::KeyLimiter, b: switchyard_health::KeyLimiter) {
    use switchyard_health::{KeyLimits, LimitDenied};
    let tpm = KeyLimits {
        tpm: Some(100),
        ..Default::default()
    };
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let l = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { l.acquire("k-burst", &tpm, 30).await })
        })
        .collect();
    let mut admitted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(adm) => admitted.push(adm),
            Err(LimitDenied::Tpm { limit: 100, .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(admitted.len(), 3, "admitted {admitted:?}");
    let reserved: u64 = admitted.iter().map(|x| x.reserved()).sum();
    assert_eq!(reserved, 90);
    for adm in admitted {
        a.release("k-burst", &tpm, adm, 5).await;
    }
    // 15 tokens used: 85 left, so the next request is admitted and reserves its 30.
    let next = b.acquire("k-burst", &tpm, 30).await.unwrap();
    assert_eq!(next.reserved(), 30);
}

#[tokio::test]
async fn redis_tpm_limit_holds_under_a_parallel_burst() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("tpm-burst");
    let a = switchyard_health::KeyLimiter::redis(RedisConn::new(REDIS_URL, &prefix).unwrap());
    let b = switchyard_health::KeyLimiter::redis(RedisConn::new(REDIS_URL, &prefix).unwrap());
    burst_against(a, b).await;
    cleanup(&prefix).await;
}

#[tokio::test]
async fn memory_tpm_limit_holds_under_a_parallel_burst() {
    let a = switchyard_health::KeyLimiter::memory();
    burst_against(a.clone(), a).await;
}
