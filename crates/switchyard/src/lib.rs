//! Starting Switchyard's services: the code behind each subcommand of the `switchyard` binary,
//! kept in a library so integration tests start services exactly the way the binary does.

use std::future::Future;
use std::net::SocketAddr;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use switchyard_core::config::{Config, GatewaySettings, ProcessEnv};
use switchyard_gateway::{AppState, GatewayOptions, UsageQuerier, app, remote_router};
use switchyard_health::{HealthStore, Prober, ProberSettings, RedisConn, RedisStore};
use switchyard_router::{RouterService, UsageSink};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

mod coalesced;
mod config_watch;
pub mod discovery;
mod grpc_keys;
mod grpc_router;
mod metrics_page;
pub mod reload;
pub mod usage;

pub use reload::{Cause, Follow, Reloader};

/// Loads and validates a configuration file from the process environment.
pub fn load_config(path: &str) -> anyhow::Result<Config> {
    switchyard_core::config::load_file(path, &ProcessEnv).map_err(|e| anyhow::anyhow!("{e}"))
}

fn gateway_options(config: &Config) -> GatewayOptions {
    let g = &config.gateway;
    GatewayOptions {
        max_body_bytes: g.max_body_bytes,
        sse_keepalive: g.sse_keepalive,
        master_key: g
            .master_key
            .as_deref()
            .map(switchyard_gateway::MasterKey::new),
        metrics_require_key: g.metrics_require_key,
        max_messages: g.max_messages,
        cors_allow_origins: g.cors_allow_origins.clone(),
        unavailable_retry_after: config.prober.interval,
        output_reserve: config.routing.reserve_output_tokens,
    }
}

fn server_limits(g: &GatewaySettings) -> switchyard_gateway::server::ServerLimits {
    switchyard_gateway::server::ServerLimits {
        header_read_timeout: g.header_read_timeout,
        body_read_timeout: g.body_read_timeout,
        shutdown_grace: g.shutdown_grace,
        ..Default::default()
    }
}

/// The secret this process presents to the router's and the ledger's gRPC services:
/// `SWITCHYARD_INTERNAL_SECRET` or `general_settings.internal_secret`, else one derived from the
/// master key (so every process with the same configuration agrees), else none.
pub fn internal_secret(config: &Config) -> Option<switchyard_proto::auth::InternalSecret> {
    switchyard_proto::auth::InternalSecret::resolve(
        config.gateway.internal_secret.as_deref(),
        config.gateway.master_key.as_deref(),
    )
}

/// What a gRPC service of this process accepts: the internal secret or the master key (neither
/// configured: anyone).
fn grpc_auth(config: &Config) -> switchyard_proto::auth::GrpcAuth {
    switchyard_proto::auth::GrpcAuth::new(
        internal_secret(config),
        config.gateway.master_key.as_deref(),
    )
}

/// A service bound to its socket, not yet serving.
pub struct Bound<F> {
    pub addr: SocketAddr,
    pub serve: F,
    /// Its configuration reload: give it the file to follow ([`Reloader::watch_file`],
    /// [`Reloader::on_sighup`]) or a config ([`Reloader::apply`]).
    pub reloader: Arc<Reloader>,
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// How a router process keeps its books and its health.
#[derive(Default)]
pub struct ServeOptions {
    /// Where the SQLite ledger and the spool live (`--data-dir`, by default beside the config).
    /// `None`, with no `ledger.database_url` or `ledger.address` configured: no ledger.
    pub data_dir: Option<PathBuf>,
    /// Replaces the ledger with this sink (tests).
    pub usage_sink: Option<Arc<dyn UsageSink>>,
    /// Run the health prober in this process (default: when `prober.enabled`).
    pub embedded_prober: Option<bool>,
}

/// Fans one shutdown signal out to every part of a process.
fn shutdown_fanout(shutdown: impl Future<Output = ()> + Send + 'static) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    rx
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

type QuerierRef = Arc<usage::Querier>;

/// The router with its usage recorder and prober, as `serve` and `router` run it.
struct RouterParts {
    service: RouterService,
    recorder: Option<switchyard_ledger::Recorder>,
    querier: Option<QuerierRef>,
    /// The prober running in this process, if any (a reload gives it new targets).
    prober: Option<Arc<Prober>>,
    /// The file's configuration and the discovery catalog it is expanded with.
    discovery: Arc<discovery::Discovery>,
    /// The health store the catalog is published in.
    store: HealthStore,
}

/// Model discovery through this process's reloader: a file reload expands the new file with
/// the catalog, and each catalog the store publishes is applied like a reload (see
/// [`discovery`]).
fn follow_discovery(
    reloader: &Arc<Reloader>,
    disc: Arc<discovery::Discovery>,
    store: &HealthStore,
    poll: std::time::Duration,
    stop: &watch::Receiver<bool>,
) {
    reloader.set_discovery(disc);
    // Held until `stop`: following the catalog is part of serving, whoever keeps the handle.
    let reloader = reloader.clone();
    discovery::follow(
        store,
        poll,
        move |catalog| {
            let reloader = reloader.clone();
            Box::pin(async move {
                let _ = reloader.apply_catalog(catalog).await;
            })
        },
        stop.clone(),
    );
}

/// The reloader of a process that runs a router (`kind`: `serve` or `router`), over the
/// configuration in service (the file's, expanded with discovered models), following discovery.
fn reloader_for(
    kind: &'static str,
    parts: &RouterParts,
    stop: &watch::Receiver<bool>,
) -> Arc<Reloader> {
    let config = &parts.service.state().config;
    let reloader = Reloader::new(
        kind,
        config.clone(),
        Some(parts.service.clone()),
        parts.prober.clone(),
    );
    follow_discovery(
        &reloader,
        parts.discovery.clone(),
        &parts.store,
        config.prober.interval,
        stop,
    );
    reloader
}

/// The shared store as a process sees it before its router exists: Redis when configured (for
/// a catalog other processes already discovered), else nothing yet.
fn redis_store(config: &Config) -> Option<HealthStore> {
    let url = config.state.redis_url.as_ref()?;
    match RedisStore::new(url, &config.state.key_prefix) {
        Ok(s) => Some(s.into()),
        Err(e) => {
            tracing::warn!(error = %e, "discovery: cannot use Redis for the catalog");
            None
        }
    }
}

async fn router_parts(
    config: Config,
    opts: ServeOptions,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<RouterParts> {
    let ledger_configured = config.ledger.address.is_some() || config.ledger.database_url.is_some();
    let (sink, recorder, querier): (Option<Arc<dyn UsageSink>>, _, Option<QuerierRef>) =
        match (opts.usage_sink, &opts.data_dir) {
            (Some(sink), _) => (Some(sink), None, None),
            (None, dir) if dir.is_some() || ledger_configured => {
                let dir = dir.clone().unwrap_or_else(|| PathBuf::from("."));
                let u = usage::start(&config, &dir).await?;
                let sink: Arc<dyn UsageSink> = Arc::new(usage::RecorderSink(u.recorder.clone()));
                (Some(sink), Some(u.recorder), Some(u.querier))
            }
            (None, _) => (None, None, None),
        };
    let embedded_prober = opts.embedded_prober.unwrap_or(config.prober.enabled);
    let tokenizer_cache = opts.data_dir.as_ref().map(|d| d.join("tokenizers"));
    let prober_settings = ProberSettings {
        interval: config.prober.interval,
        timeout: config.prober.timeout,
        ..ProberSettings::default()
    };
    // Boxed: the listing's future is large, and every starter awaits this one.
    let catalog = Box::pin(discovery::initial_catalog(
        &config,
        redis_store(&config).as_ref(),
        config.prober.timeout,
    ))
    .await;
    let disc = discovery::Discovery::new(config, catalog.clone());
    let config = disc.expanded();
    let service =
        RouterService::build(config, sink, tokenizer_cache).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = service.state().shared.store.clone();
    if let (Some(c), HealthStore::Memory(_)) = (&catalog, &store) {
        // In process the store starts empty: the start-up catalog goes in for the prober.
        let _ = store.put_catalog(c).await;
    }
    let prober = if embedded_prober {
        let prober = Arc::new(
            Prober::for_config(&service.state().config, store.clone(), prober_settings)
                .map_err(|e| anyhow::anyhow!("cannot start the prober: {e}"))?,
        );
        let (p, stop) = (prober.clone(), stop.clone());
        tokio::spawn(async move { p.run(stopped(stop)).await });
        Some(prober)
    } else {
        None
    };
    Ok(RouterParts {
        service,
        recorder,
        querier,
        prober,
        discovery: disc,
        store,
    })
}

/// `switchyard serve`: gateway and router (with its prober and usage ledger) in one process, the
/// router's service called in process (no encoding, no socket).
pub async fn serve(
    config: Config,
    listen: SocketAddr,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = anyhow::Result<()>>>> {
    let stop = shutdown_fanout(shutdown);
    let options = gateway_options(&config);
    let config_for_keys = config.clone();
    let limits = server_limits(&config.gateway);
    let parts = Box::pin(router_parts(config, opts, &stop)).await?;
    let reloader = reloader_for("serve", &parts, &stop);
    let metrics_source = parts.service.clone();
    let reload_metrics = Arc::downgrade(&reloader);
    let router: switchyard_gateway::InProcessRouter = Arc::new(parts.service.clone());
    let redis = parts.service.state().shared.redis.clone();
    let mut state = AppState::in_process(router, options)
        .with_metrics(Arc::new(move || {
            let reload = reload_metrics
                .upgrade()
                .map(|r| r.render_metrics())
                .unwrap_or_default();
            switchyard_gateway::join_pages(&[metrics_source.render_metrics(), reload])
        }))
        .with_admin(reloader.admin());
    if let Some(q) = parts.querier {
        if let Some(keys) = usage::virtual_keys(&config_for_keys, &q, redis) {
            state = state.with_keys(keys);
        }
        state = state.with_usage(q as Arc<dyn UsageQuerier>);
    }
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let live = switchyard_gateway::LiveApp::new(app(state.clone()));
    reloader.set_gateway(reload::GatewayPart {
        live: live.clone(),
        base: state,
    });
    let serve = switchyard_gateway::server::serve(listener, live.router(), limits, stopped(stop));
    let recorder = parts.recorder;
    Ok(Bound {
        addr,
        reloader,
        serve: async move {
            serve.await?;
            if let Some(r) = recorder {
                let out = r.close().await;
                if !out.delivered_all {
                    tracing::warn!(
                        spooled = out.spool_records,
                        "usage records left in the spool for the next start"
                    );
                }
            }
            Ok(())
        },
    })
}

/// `switchyard gateway`: the HTTP API, calling a router at `router_address` over gRPC, and the
/// ledger at `ledger.address` (if any) for `/v1/usage`.
pub async fn gateway(
    config: &Config,
    router_address: &str,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = std::io::Result<()>>>> {
    let channel = remote_router(router_address, internal_secret(config))
        .with_context(|| format!("invalid router address {router_address}"))?;
    let reloader = Reloader::new("gateway", config.clone(), None, None);
    reloader.set_remote_router(channel.clone());
    let reload_metrics = Arc::downgrade(&reloader);
    let mut state = AppState::new(channel, gateway_options(config))
        .with_metrics(Arc::new(move || {
            reload_metrics
                .upgrade()
                .map(|r| r.render_metrics())
                .unwrap_or_default()
        }))
        .with_admin(reloader.admin());
    if let Some(addr) = &config.ledger.address {
        let ledger = usage::remote_querier(addr, internal_secret(config))?;
        let redis = match &config.state.redis_url {
            Some(url) => Some(
                RedisConn::new(url, &config.state.key_prefix)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            None => None,
        };
        if let Some(keys) = usage::virtual_keys(config, &ledger, redis) {
            state = state.with_keys(keys);
        }
        state = state.with_usage(ledger as Arc<dyn UsageQuerier>);
    }
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let live = switchyard_gateway::LiveApp::new(app(state.clone()));
    reloader.set_gateway(reload::GatewayPart {
        live: live.clone(),
        base: state,
    });
    let serve = switchyard_gateway::server::serve(
        listener,
        live.router(),
        server_limits(&config.gateway),
        shutdown,
    );
    Ok(Bound {
        addr,
        serve,
        reloader,
    })
}

/// `switchyard router`: the routing service alone, over gRPC.
pub async fn router(
    config: Config,
    listen: SocketAddr,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = anyhow::Result<()>>>> {
    let stop = shutdown_fanout(shutdown);
    let metrics_listen = config.router.metrics_listen;
    let auth = grpc_auth(&config);
    let master_key = config.gateway.master_key.clone();
    let mut parts = Box::pin(router_parts(config, opts, &stop)).await?;
    let reloader = reloader_for("router", &parts, &stop);
    // Direct gRPC clients present virtual keys, looked up in the ledger like the gateway does.
    let keys = match (&parts.querier, &master_key) {
        (Some(q), Some(m)) => Some(Arc::new(grpc_keys::LedgerKeys::new(q.clone(), m))
            as Arc<dyn switchyard_router::KeyResolver>),
        _ => None,
    };
    parts.service = parts
        .service
        .with_auth(switchyard_router::RouterAuth::new(auth, keys))
        .with_reload_hook(reloader.router_hook());
    if let Some(maddr) = metrics_listen {
        let source = parts.service.clone();
        let reload_metrics = Arc::downgrade(&reloader);
        let page: metrics_page::Page = Arc::new(move || {
            let reload = reload_metrics
                .upgrade()
                .map(|r| r.render_metrics())
                .unwrap_or_default();
            let text = switchyard_gateway::join_pages(&[source.render_metrics(), reload]);
            Box::pin(async move { text })
        });
        metrics_page::spawn("router", maddr, page, stopped(stop.clone())).await?;
    }
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let serve = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(grpc_router::HeadersWithFirstEvent(parts.service).into_server())
        // The builder's `tcp_nodelay` applies only to sockets it accepts itself.
        .serve_with_incoming_shutdown(
            futures::StreamExt::map(TcpIncoming::from(listener).with_nodelay(Some(true)), |c| {
                c.map(coalesced::CoalescedWrites::new)
            }),
            stopped(stop),
        );
    let recorder = parts.recorder;
    Ok(Bound {
        addr,
        reloader,
        serve: async move {
            serve.await?;
            if let Some(r) = recorder {
                r.close().await;
            }
            Ok(())
        },
    })
}

/// `switchyard ledger`: the usage ledger service over gRPC.
pub async fn ledger(
    config: &Config,
    data_dir: &Path,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = anyhow::Result<()>>>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let url = usage::store_url(config, data_dir);
    let store = switchyard_ledger::open_store(&url)
        .await
        .with_context(|| format!("cannot open the usage ledger at {url}"))?;
    let service = switchyard_ledger::LedgerService::new(store).with_auth(grpc_auth(config));
    let stop = shutdown_fanout(shutdown);
    // The ledger has nothing to reload (its keys are restart-only): its reloader reports them.
    let reloader = Reloader::new("ledger", config.clone(), None, None);
    if let Some(maddr) = config.ledger.metrics_listen {
        let metrics = service.metrics();
        let reload_metrics = Arc::downgrade(&reloader);
        let page: metrics_page::Page = Arc::new(move || {
            let reload = reload_metrics
                .upgrade()
                .map(|r| r.render_metrics())
                .unwrap_or_default();
            let text = switchyard_gateway::join_pages(&[metrics.render(), reload]);
            Box::pin(async move { text })
        });
        metrics_page::spawn("ledger", maddr, page, stopped(stop.clone())).await?;
    }
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        addr,
        reloader,
        serve: async move {
            switchyard_ledger::serve_ledger_service(service, listener, stopped(stop)).await?;
            Ok(())
        },
    })
}

/// `switchyard prober`: the health prober alone, writing to Redis (`state.redis_url`).
/// `follow`: the config file to reload from (`None`: no reload).
pub async fn prober(
    config: &Config,
    follow: Option<Follow>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Some(url) = &config.state.redis_url else {
        anyhow::bail!(
            "the prober service needs state.redis_url (or router_settings.redis_host): without Redis, run the prober inside `serve` or `router`"
        );
    };
    let conn = RedisConn::new(url, &config.state.key_prefix).map_err(|e| anyhow::anyhow!("{e}"))?;
    let conn_for_metrics = conn.clone();
    let store: HealthStore = RedisStore::from_conn(conn).into();
    let settings = ProberSettings {
        interval: config.prober.interval,
        timeout: config.prober.timeout,
        ..ProberSettings::default()
    };
    let catalog = match store.catalog().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "discovery: cannot read the stored catalog");
            None
        }
    };
    let disc = discovery::Discovery::new(config.clone(), catalog);
    let expanded = disc.expanded();
    let prober = Arc::new(
        Prober::for_config(&expanded, store.clone(), settings)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let stop = shutdown_fanout(shutdown);
    let reloader = Reloader::new("prober", expanded, None, Some(prober.clone()));
    if let Some(f) = follow {
        f.start(&reloader)?;
    }
    follow_discovery(&reloader, disc, &store, config.prober.interval, &stop);
    if let Some(maddr) = config.prober.metrics_listen {
        let page = metrics_page::prober_page(prober.clone(), conn_for_metrics, reloader.clone());
        metrics_page::spawn("prober", maddr, page, stopped(stop.clone())).await?;
    }
    prober.run(stopped(stop)).await;
    Ok(())
}

/// What `switchyard explain` prints: the plan for one user message, in try order.
pub fn explain(
    config: Config,
    model: &str,
    prompt: String,
    max_tokens: Option<u32>,
) -> anyhow::Result<String> {
    use switchyard_proto as pb;
    let service = RouterService::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let req = pb::ChatRequest {
        model: model.to_string(),
        messages: vec![pb::Message {
            role: "user".into(),
            content: Some(prompt),
            ..Default::default()
        }],
        sampling: Some(pb::Sampling {
            max_tokens,
            ..Default::default()
        }),
        ..Default::default()
    };
    let plan = service.explain_local(&req);
    let mut out = format!(
        "model {}: output reserve {} tokens\n",
        plan.group, plan.output_reserve
    );
    let mut verdicts = plan.verdicts.clone();
    verdicts.sort_by_key(|v| if v.rank == 0 { u32::MAX } else { v.rank });
    for v in &verdicts {
        let head = if v.rank > 0 {
            format!("{}.", v.rank)
        } else {
            "--".to_string()
        };
        out.push_str(&format!(
            "  {head} {} [{}] {} tokens, window {}: {} ({})\n",
            v.deployment, v.group, v.prompt_tokens, v.context_window, v.verdict, v.reason
        ));
    }
    if let Some(e) = &plan.error {
        out.push_str(&format!(
            "  error {} {}: {}\n",
            e.http_status, e.code, e.message
        ));
    }
    Ok(out)
}

/// A configuration as a process would run it now: its wildcard entries' hosts listed once
/// (each bounded by `prober.timeout`) and expanded; a host that does not answer becomes a
/// warning. For `check` and `explain`, which start nothing.
pub async fn discovered_now(config: Config) -> Config {
    if config.discovery.is_empty() {
        return config;
    }
    let (catalog, errors) = discovery::discover_now(&config, config.prober.timeout).await;
    let mut out = switchyard_core::config::expand(&config, &catalog);
    for (host, e) in errors {
        out.warnings.push(format!(
            "discovery: {host} did not answer ({e}); its models are not listed"
        ));
    }
    out
}

/// What `switchyard check` prints: every interpretation, then every warning.
pub fn describe(config: &Config) -> String {
    let mut out = String::new();
    out.push_str("Configuration is valid.\n\nHow each value was read:\n");
    for n in &config.notes {
        out.push_str("  - ");
        out.push_str(n);
        out.push('\n');
    }
    out.push_str(&format!(
        "  - gateway: listens on {}, request bodies up to {} bytes; router service on {} (split mode: gateway dials {})\n",
        config.gateway.listen, config.gateway.max_body_bytes, config.router.listen, config.gateway.router_address
    ));
    let t = &config.routing.timeouts;
    out.push_str(&format!(
        "  - timeouts: connect {:?}, first token {:?}, between tokens {:?}, whole attempt {:?}\n",
        t.connect, t.first_byte, t.idle, t.total
    ));
    if !config.unservable.is_empty() {
        out.push_str(&format!(
            "\nNot served ({} of the file's deployments; the rest load, and a request for a group with none left gets 400 model_not_servable):\n",
            config.unservable.len()
        ));
        for u in &config.unservable {
            out.push_str(&format!(
                "  - {}: {} ({}): {}\n",
                u.key, u.group, u.model, u.reason
            ));
        }
    }
    if !config.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &config.warnings {
            out.push_str("  - ");
            out.push_str(w);
            out.push('\n');
        }
    }
    out
}
