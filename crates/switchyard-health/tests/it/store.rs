//! Both health stores: snapshot, TTL expiry to Unknown, events across instances, passive reports,
//! and the Redis subscriber's reconnect after a Redis restart.

use std::time::Duration;

use switchyard_core::FailureClass;
use switchyard_health::{
    DeploymentHealth, HealthEvent, HealthStore, HealthView, MemoryStore, RedisStore, Source, Status,
};

use crate::common::{REDIS_URL, cleanup, eventually, redis_up, unique_prefix};

fn up(latency: u32) -> DeploymentHealth {
    DeploymentHealth {
        status: Status::Up,
        latency_ms: Some(latency),
        updated_ms: switchyard_health::now_ms(),
        ..DeploymentHealth::unknown()
    }
}

async fn next_event(sub: &mut switchyard_health::HealthSubscription) -> HealthEvent {
    tokio::time::timeout(Duration::from_secs(3), sub.recv())
        .await
        .expect("event in time")
        .expect("subscription open")
}

/// The behaviour both stores share; `other` is a second handle on the same state (for Redis,
/// another instance, i.e. another process).
async fn common_behaviour(store: HealthStore, other: HealthStore) {
    assert_eq!(store.get("a").await.unwrap().status, Status::Unknown);
    let mut sub = store.subscribe();
    assert!(matches!(next_event(&mut sub).await, HealthEvent::Snapshot(s) if s.is_empty()));

    other.put("a", &up(3), true).await.unwrap();
    match next_event(&mut sub).await {
        HealthEvent::Changed(c) => {
            assert_eq!(c.deployment, "a");
            assert_eq!(c.health, up(3).clone_with_updated(c.health.updated_ms));
        }
        e => panic!("expected a change, got {e:?}"),
    }
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap["a"].status, Status::Up);

    // Passive: a refused connection marks it Down at once, published to the other side.
    let down = other
        .report_failure("a", FailureClass::Connect)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((down.status, down.source), (Status::Down, Source::Passive));
    match next_event(&mut sub).await {
        HealthEvent::Changed(c) => assert_eq!(c.health.status, Status::Down),
        e => panic!("expected a change, got {e:?}"),
    }
    assert!(!store.get("a").await.unwrap().is_routable());
    assert!(
        store
            .report_failure("a", FailureClass::Overflow)
            .await
            .unwrap()
            .is_none()
    );
    let back = store.report_success("a").await.unwrap().unwrap();
    assert_eq!(back.status, Status::Up);
    assert!(
        store.report_success("a").await.unwrap().is_none(),
        "clean: no write"
    );

    // TTL: the state expires and reads as Unknown.
    eventually(Duration::from_secs(3), "state expiry", || async {
        store.get("a").await.unwrap().status == Status::Unknown
    })
    .await;
    assert!(store.snapshot().await.unwrap().is_empty());
}

trait CloneWithUpdated {
    fn clone_with_updated(&self, updated_ms: u64) -> DeploymentHealth;
}

impl CloneWithUpdated for DeploymentHealth {
    fn clone_with_updated(&self, updated_ms: u64) -> DeploymentHealth {
        DeploymentHealth {
            updated_ms,
            ..self.clone()
        }
    }
}

#[tokio::test]
async fn memory_store() {
    let store = MemoryStore::with_ttl(Duration::from_millis(1000));
    common_behaviour(store.clone().into(), store.into()).await;
}

#[tokio::test]
async fn redis_store_two_instances() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("store");
    let ttl = Duration::from_millis(1000);
    let a = RedisStore::new(REDIS_URL, &prefix)
        .unwrap()
        .with_state_ttl(ttl);
    let b = RedisStore::new(REDIS_URL, &prefix)
        .unwrap()
        .with_state_ttl(ttl);
    common_behaviour(a.into(), b.into()).await;
    cleanup(&prefix).await;
}

#[tokio::test]
async fn view_follows_the_store() {
    let store = MemoryStore::with_ttl(Duration::from_secs(5));
    let view = HealthView::start(store.clone().into(), Duration::from_secs(1));
    assert!(view.is_routable("x"), "unknown counts as up");
    store.put("x", &up(1), true);
    eventually(Duration::from_secs(2), "view update", || async {
        view.get("x").status == Status::Up
    })
    .await;
    store.report_failure("x", FailureClass::Connect);
    eventually(Duration::from_secs(2), "view sees Down", || async {
        !view.is_routable("x")
    })
    .await;
    assert!(view.needs_success_report("x"));
}

/// A private redis-server on a free port, restartable on the same port.
struct PrivateRedis {
    port: u16,
    child: tokio::process::Child,
}

impl PrivateRedis {
    async fn start(port: u16) -> Option<Self> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            return None;
        }
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(PrivateRedis { port, child })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[tokio::test]
async fn redis_subscriber_reconnects_after_restart() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let Some(server) = PrivateRedis::start(port).await else {
        println!("skipped: redis-server cannot be started");
        return;
    };
    let url = format!("redis://127.0.0.1:{}/", server.port);
    let store = RedisStore::new(&url, "restart").unwrap();
    let writer = RedisStore::new(&url, "restart").unwrap();
    let mut sub = HealthStore::from(store.clone()).subscribe();
    assert!(matches!(
        next_event(&mut sub).await,
        HealthEvent::Snapshot(_)
    ));

    server.stop().await;
    // While Redis is down, calls fail fast and the store says it is degraded.
    assert!(writer.snapshot().await.is_err());
    assert!(writer.is_degraded());

    let server = PrivateRedis::start(port).await.expect("restart");
    eventually(Duration::from_secs(3), "writer reconnect", || async {
        writer.put("r", &up(1), true).await.is_ok()
    })
    .await;
    // After reconnecting, the subscriber re-reads the snapshot, which has the state written
    // while it was away; later changes arrive as events.
    loop {
        match next_event(&mut sub).await {
            HealthEvent::Snapshot(s) if s.contains_key("r") => break,
            _ => {}
        }
    }
    writer
        .report_failure("r", FailureClass::Connect)
        .await
        .unwrap();
    loop {
        if let HealthEvent::Changed(c) = next_event(&mut sub).await {
            assert_eq!(c.health.status, Status::Down);
            break;
        }
    }
    assert!(!writer.is_degraded());
    server.stop().await;
}
