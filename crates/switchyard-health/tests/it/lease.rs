//! Two prober replicas on one store: only the lease holder probes; the other takes over when
//! the holder stops (released lease) or dies (expired lease).

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::config::Provider;
use switchyard_health::{
    HealthStore, MemoryStore, ProbeTarget, Prober, ProberSettings, RedisStore,
};
use switchyard_sim::{SimConfig, SimHandle, SimModel};
use tokio::sync::oneshot;

use crate::common::{REDIS_URL, cleanup, eventually, redis_up, unique_prefix};

fn prober(base: &str, store: HealthStore, replica: &str) -> Arc<Prober> {
    let target = ProbeTarget::new(base, Provider::Ollama, &[("a", "m:1b")]);
    let settings = ProberSettings {
        interval: Duration::from_millis(25),
        jitter: Duration::from_millis(5),
        timeout: Duration::from_millis(500),
        lease_ttl: Some(Duration::from_millis(1000)),
        replica_id: replica.to_owned(),
    };
    Arc::new(Prober::new(vec![target], store, settings).unwrap())
}

fn spawn(p: &Arc<Prober>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let p = Arc::clone(p);
    let task = tokio::spawn(async move {
        p.run(async {
            let _ = rx.await;
        })
        .await;
    });
    (tx, task)
}

async fn one_at_a_time(make: impl Fn() -> HealthStore) {
    let sim = SimHandle::start(SimConfig::ollama(vec![SimModel::new("m:1b", 4096)]))
        .await
        .unwrap();
    let a = prober(&sim.base_url(), make(), "replica-a");
    let b = prober(&sim.base_url(), make(), "replica-b");
    let (stop_a, task_a) = spawn(&a);
    let (stop_b, task_b) = spawn(&b);
    eventually(Duration::from_secs(3), "several rounds", || async {
        a.rounds() + b.rounds() >= 5
    })
    .await;
    // Exactly one of them probes.
    let (leader, leader_stop, leader_task, standby, standby_stop, standby_task) = if a.rounds() > 0
    {
        (a, stop_a, task_a, b, stop_b, task_b)
    } else {
        (b, stop_b, task_b, a, stop_a, task_a)
    };
    assert_eq!(standby.rounds(), 0, "the standby must not probe");
    assert!(leader.is_leader() && !standby.is_leader());

    // Graceful stop releases the lease: the standby takes over.
    let _ = leader_stop.send(());
    leader_task.await.unwrap();
    let frozen = leader.rounds();
    eventually(Duration::from_secs(3), "takeover", || async {
        standby.rounds() >= 3
    })
    .await;
    assert_eq!(leader.rounds(), frozen);

    // A crashed holder (task aborted, lease not released) is replaced once the lease expires.
    let revived = prober(&sim.base_url(), make(), "replica-c");
    standby_task.abort();
    drop(standby_stop);
    let (stop_c, task_c) = spawn(&revived);
    eventually(Duration::from_secs(3), "takeover after expiry", || async {
        revived.rounds() >= 1
    })
    .await;
    let _ = stop_c.send(());
    task_c.await.unwrap();
}

#[tokio::test]
async fn memory_lease() {
    let store = MemoryStore::new();
    one_at_a_time(|| store.clone().into()).await;
}

#[tokio::test]
async fn redis_lease() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("lease");
    one_at_a_time(|| RedisStore::new(REDIS_URL, &prefix).unwrap().into()).await;
    cleanup(&prefix).await;
}
