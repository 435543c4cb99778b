//! `/metrics` pages for the services that have no HTTP API of their own (router, ledger,
//! prober): a tiny HTTP server on its own address, and the prober's page.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use switchyard_health::{Prober, RedisConn, Status};

/// Produces one page of metrics text.
pub(crate) type Page = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `page` at `http://addr/metrics` until `stop` completes.
pub(crate) async fn spawn(
    service: &'static str,
    addr: SocketAddr,
    page: Page,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = page();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    text.await,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, service, "metrics listening");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await;
    });
    Ok(bound)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

/// The prober's page: what it last wrote for each deployment, its rounds and lease, Redis errors.
pub(crate) fn prober_page(
    prober: Arc<Prober>,
    redis: RedisConn,
    reloader: Arc<crate::Reloader>,
) -> Page {
    Arc::new(move || {
        let (prober, redis, reloader) = (prober.clone(), redis.clone(), reloader.clone());
        Box::pin(async move {
            // The deployments probed now (a reload may have changed them).
            let ids = prober.deployment_ids();
            let snapshot = prober.store().snapshot().await.ok();
            let mut registry = Registry::with_prefix("switchyard_prober");
            let up = Family::<DeploymentLabels, Gauge>::default();
            let loaded = Family::<DeploymentLabels, Gauge>::default();
            for id in ids.iter() {
                let h = snapshot.as_ref().and_then(|s| s.get(id));
                let labels = DeploymentLabels {
                    deployment: id.clone(),
                };
                up.get_or_create(&labels).set(match h.map(|h| h.status) {
                    Some(Status::Up) => 1,
                    Some(Status::Down) => 0,
                    _ => -1,
                });
                loaded
                    .get_or_create(&labels)
                    .set(h.and_then(|h| h.loaded).map_or(-1, i64::from));
            }
            registry.register(
                "deployment_up",
                "Deployment health as last written: 1 up, 0 down, -1 unknown",
                up,
            );
            registry.register(
                "deployment_loaded",
                "Model resident in memory (warm): 1 yes, 0 no, -1 unknown",
                loaded,
            );
            registry.register(
                "rounds",
                "Probe rounds run by this prober",
                ConstCounter::new(prober.rounds()),
            );
            registry.register(
                "leader",
                "1 when this prober holds the lease (only the leader probes)",
                ConstGauge::new(i64::from(prober.is_leader())),
            );
            registry.register(
                "redis_errors",
                "Redis calls that failed or timed out",
                ConstCounter::new(redis.error_count()),
            );
            let mut out = String::new();
            if encode(&mut out, &registry).is_err() {
                out.clear();
            }
            switchyard_gateway::join_pages(&[out, reloader.render_metrics()])
        })
    })
}
