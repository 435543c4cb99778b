//! A what-if build for the benchmark, not a product binary: Switchyard's `serve`, `router` and
//! `gateway` services started exactly as `crates/switchyard/src/lib.rs` starts them, except that
//! every accepted TCP connection gets `TCP_NODELAY`.
//!
//! Why it exists: the benchmark showed ~40 ms stalls on streamed responses and on every split-mode
//! request — Nagle's algorithm on the server sockets meeting the peer's delayed ACK. `axum::serve`
//! leaves Nagle on, and tonic ignores `Server::tcp_nodelay` under `serve_with_incoming_shutdown`.
//! Running the same matrix against this variant (`bench/run.sh --targets "serve-nodelay
//! split-nodelay"`) measures what setting the flag would give, without touching the product code.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::{Parser, Subcommand};
use switchyard_core::config::GatewaySettings;
use switchyard_gateway::{AppState, GatewayOptions, app, local_router, remote_router};
use switchyard_router::RouterService;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve {
        #[arg(long)]
        config: String,
        #[arg(long)]
        listen: SocketAddr,
    },
    Router {
        #[arg(long)]
        config: String,
        #[arg(long)]
        listen: SocketAddr,
    },
    Gateway {
        #[arg(long)]
        config: String,
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        router: String,
    },
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn announce(service: &str, addr: SocketAddr) {
    println!("{}", serde_json::json!({"listening": addr.to_string(), "service": service}));
}

fn options(g: &GatewaySettings) -> GatewayOptions {
    GatewayOptions {
        max_body_bytes: g.max_body_bytes,
        sse_keepalive: g.sse_keepalive,
    }
}

async fn http(state: AppState, listen: SocketAddr, service: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    announce(service, listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve { config, listen } => {
            let cfg = switchyard::load_config(&config)?;
            let opts = options(&cfg.gateway);
            let router = RouterService::new(cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
            http(AppState::new(local_router(router.into_server()), opts), listen, "serve").await
        }
        Command::Gateway { config, listen, router } => {
            let cfg = switchyard::load_config(&config)?;
            let channel = remote_router(&router).with_context(|| format!("invalid router address {router}"))?;
            http(AppState::new(channel, options(&cfg.gateway)), listen, "gateway").await
        }
        Command::Router { config, listen } => {
            let cfg = switchyard::load_config(&config)?;
            let service = RouterService::new(cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
            let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            announce("router", listener.local_addr()?);
            tonic::transport::Server::builder()
                .add_service(service.into_server())
                .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown())
                .await?;
            Ok(())
        }
    }
}
