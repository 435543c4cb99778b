//! Starting Switchyard's services: the code behind each subcommand of the `switchyard` binary,
//! kept in a library so integration tests start services exactly the way the binary does.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use switchyard_core::config::{Config, GatewaySettings, ProcessEnv};
use switchyard_gateway::{AppState, GatewayOptions, app, local_router, remote_router};
use switchyard_router::RouterService;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// Loads and validates a configuration file from the process environment.
pub fn load_config(path: &str) -> anyhow::Result<Config> {
    switchyard_core::config::load_file(path, &ProcessEnv).map_err(|e| anyhow::anyhow!("{e}"))
}

fn gateway_options(g: &GatewaySettings) -> GatewayOptions {
    GatewayOptions {
        max_body_bytes: g.max_body_bytes,
        sse_keepalive: g.sse_keepalive,
    }
}

/// A service bound to its socket, not yet serving.
pub struct Bound<F> {
    pub addr: SocketAddr,
    pub serve: F,
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// `switchyard serve`: gateway and router in one process, the router called in process through
/// its gRPC service.
pub async fn serve(
    config: Config,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = std::io::Result<()>>>> {
    serve_with_sink(config, listen, None, shutdown).await
}

/// `serve` with finished requests handed to `sink`.
pub async fn serve_with_sink(
    config: Config,
    listen: SocketAddr,
    sink: Option<std::sync::Arc<dyn switchyard_router::UsageSink>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = std::io::Result<()>>>> {
    let options = gateway_options(&config.gateway);
    let router =
        RouterService::with_usage_sink(config, sink).map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = AppState::new(local_router(router.into_server()), options);
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let serve = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown);
    Ok(Bound {
        addr,
        serve: async move { serve.await },
    })
}

/// `switchyard gateway`: the HTTP API, calling a router at `router_address` over gRPC.
pub async fn gateway(
    settings: &GatewaySettings,
    router_address: &str,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = std::io::Result<()>>>> {
    let channel = remote_router(router_address)
        .with_context(|| format!("invalid router address {router_address}"))?;
    let state = AppState::new(channel, gateway_options(settings));
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let serve = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown);
    Ok(Bound {
        addr,
        serve: async move { serve.await },
    })
}

/// `switchyard router`: the routing service alone, over gRPC.
pub async fn router(
    config: Config,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Bound<impl Future<Output = Result<(), tonic::transport::Error>>>> {
    let service = RouterService::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let serve = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown);
    Ok(Bound { addr, serve })
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
