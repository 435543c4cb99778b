//! Redis unreachable: every call fails fast, and the stores say they are degraded.

use std::time::{Duration, Instant};

use switchyard_core::FailureClass;
use switchyard_core::config::Provider;
use switchyard_health::{
    HealthStore, InflightCounter, ProbeTarget, Prober, ProberSettings, RedisConn, RedisStore,
    Status, UsageWindow,
};
use switchyard_sim::{SimConfig, SimHandle, SimModel};

const DEAD: &str = "redis://127.0.0.1:1/";

async fn fast<T, E: std::fmt::Debug>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) {
    let start = Instant::now();
    let r = f.await;
    assert!(r.is_err(), "{what} should fail");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{what} took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn calls_fail_fast_and_report_degraded() {
    let store = RedisStore::new(DEAD, "dead").unwrap();
    assert!(!store.is_degraded(), "not degraded before any call");
    let hs = HealthStore::from(store.clone());
    fast("snapshot", hs.snapshot()).await;
    assert!(hs.is_degraded());
    fast("get", hs.get("a")).await;
    fast(
        "report_failure",
        hs.report_failure("a", FailureClass::Connect),
    )
    .await;
    fast("lease", hs.try_lease("me", Duration::from_secs(1))).await;
    let conn = RedisConn::new(DEAD, "dead").unwrap();
    let inflight = InflightCounter::redis(conn.clone(), "r");
    fast("incr", inflight.incr("a")).await;
    fast("get_many", inflight.get_many(&["a"])).await;
    assert!(inflight.is_degraded());
    let usage = UsageWindow::redis(conn);
    fast("usage add", usage.add("a", 1)).await;
    fast("usage current", usage.current(&["a"])).await;

    // The subscription keeps retrying in the background without blocking anyone.
    let mut sub = hs.subscribe();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sub.recv())
            .await
            .is_err()
    );

    // The prober still probes; only its writes fail.
    let sim = SimHandle::start(SimConfig::ollama(vec![SimModel::new("m:1b", 4096)]))
        .await
        .unwrap();
    let target = ProbeTarget::new(&sim.base_url(), Provider::Ollama, &[("a", "m:1b")]);
    let prober = Prober::new(vec![target], hs, ProberSettings::default()).unwrap();
    let start = Instant::now();
    let states = prober.probe_once().await;
    assert_eq!(states["a"].status, Status::Up);
    assert!(start.elapsed() < Duration::from_secs(1));
}
