//! The `switchyard` binary: a thin command line over the service crates.
//!
//! Each service prints one JSON line `{"listening":"ADDR","service":"…"}` on stdout once its
//! socket is bound (tests and scripts read it to find ephemeral ports); logs go to stderr.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Routes OpenAI-API requests to the smallest local model whose context fits"
)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "SWITCHYARD_LOG_JSON")]
    log_json: bool,
    /// Threads that run requests. Default: one per core for `serve` and `demo`, one for each
    /// split-mode service (gateway, router, prober, ledger), which are scaled by replicas: a
    /// single thread spares every request the wake-ups of handing work between threads, the
    /// largest cost of a call between two services. With one, the runtime is Tokio's
    /// current-thread scheduler, run by the process's main thread.
    #[arg(long, global = true, env = "SWITCHYARD_WORKER_THREADS")]
    worker_threads: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Clone)]
struct ConfigArg {
    /// Configuration file (LiteLLM config.yaml or Switchyard's native YAML).
    #[arg(
        long,
        short,
        env = "SWITCHYARD_CONFIG",
        default_value = "switchyard.yaml"
    )]
    config: String,
    /// Do not reload the configuration when its file changes (SIGHUP and `POST /admin/reload`
    /// still reload it).
    #[arg(long, env = "SWITCHYARD_NO_WATCH")]
    no_watch: bool,
}

impl ConfigArg {
    fn follow(&self) -> switchyard::Follow {
        switchyard::Follow {
            path: PathBuf::from(&self.config),
            watch: !self.no_watch,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Gateway, router, prober and usage ledger in one process (the default).
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Address for the HTTP API (default: gateway.listen, else 0.0.0.0:4000).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory for the SQLite usage ledger and the spool (default: beside the config).
        #[arg(long, env = "SWITCHYARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// The HTTP API alone, calling a router over gRPC.
    Gateway {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Router address, e.g. http://127.0.0.1:4001 (default: gateway.router_address).
        #[arg(long)]
        router: Option<String>,
    },
    /// The routing service alone (gRPC).
    Router {
        #[command(flatten)]
        config: ConfigArg,
        /// Address for the gRPC service (default: router.listen, else 127.0.0.1:4001).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory for the spool (and the SQLite ledger when no ledger service is configured).
        #[arg(long, env = "SWITCHYARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Do not probe backends in this process (a separate `switchyard prober` does).
        #[arg(long)]
        no_prober: bool,
        /// Serve Prometheus `/metrics` over HTTP here (default: router.metrics_listen, else none).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// The usage ledger service alone (gRPC).
    Ledger {
        #[command(flatten)]
        config: ConfigArg,
        /// Address for the gRPC service (default: ledger.listen, else 127.0.0.1:4002).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory for the SQLite database when no ledger.database_url is set.
        #[arg(long, env = "SWITCHYARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Serve Prometheus `/metrics` over HTTP here (default: ledger.metrics_listen, else none).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// The health prober alone, writing to Redis.
    Prober {
        #[command(flatten)]
        config: ConfigArg,
        /// Serve Prometheus `/metrics` over HTTP here (default: prober.metrics_listen, else none).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// Exit 0 when a service answers (for container health checks): a TCP connect, or an
    /// HTTP GET answered with 200.
    Healthcheck {
        #[arg(long, conflicts_with = "http")]
        tcp: Option<String>,
        #[arg(long)]
        http: Option<String>,
    },
    /// Validate a configuration and print how every value was interpreted.
    Check {
        /// The configuration file.
        file: String,
    },
    /// Dry run: show where a prompt would be routed and why, without calling any model.
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// The model group to ask for.
        #[arg(long)]
        model: String,
        /// The user message (or use --prompt-file).
        #[arg(long, conflicts_with = "prompt_file")]
        prompt: Option<String>,
        /// A file whose text is the user message.
        #[arg(long)]
        prompt_file: Option<String>,
        /// Requested output tokens (max_tokens).
        #[arg(long)]
        max_tokens: Option<u32>,
    },
    /// Simulated models, `serve` in front and mixed traffic: watch it at /ui, no GPU needed.
    Demo {
        /// Address for the HTTP API and the console.
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: SocketAddr,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration_secs: Option<u64>,
        /// Milliseconds between generated requests.
        #[arg(long, default_value_t = 800)]
        interval_ms: u64,
        /// Directory for the demo's usage ledger (default: a new one under the temp dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// The runtime's worker threads when `--worker-threads` is not given: one for a split-mode
/// service, else Tokio's default (one per core).
fn default_worker_threads(command: &Command) -> Option<usize> {
    match command {
        Command::Gateway { .. }
        | Command::Router { .. }
        | Command::Ledger { .. }
        | Command::Prober { .. } => Some(1),
        _ => None,
    }
}

/// The OpenTelemetry `service.name` of each subcommand (`None`: no logs or traces at all).
fn service_name(command: &Command) -> Option<&'static str> {
    match command {
        Command::Serve { .. } | Command::Demo { .. } => Some("switchyard"),
        Command::Gateway { .. } => Some("switchyard-gateway"),
        Command::Router { .. } => Some("switchyard-router"),
        Command::Ledger { .. } => Some("switchyard-ledger"),
        Command::Prober { .. } => Some("switchyard-prober"),
        Command::Check { .. } | Command::Explain { .. } | Command::Healthcheck { .. } => None,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

/// A minimal HTTP/1.0 GET (no client library needed for one status line).
async fn healthcheck_http(url: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported"))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let check = async {
        let mut s = tokio::net::TcpStream::connect(host).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await?;
        anyhow::Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(3), check)
        .await
        .map_err(|_| anyhow::anyhow!("{url}: timed out"))??;
    if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        anyhow::bail!("{url}: {}", head.lines().next().unwrap_or("no answer"))
    }
}

/// The directory of the config file: the default home of the ledger and spool.
fn beside(config: &str) -> PathBuf {
    std::path::Path::new(config)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// An open API on a network address is worth a loud line in the log (see README, "Access").
fn warn_if_open(cfg: &switchyard_core::config::Config, listen: SocketAddr) {
    if cfg.gateway.master_key.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "no master key is set and the API listens beyond this machine: anyone who can reach it can use your models (set general_settings.master_key)"
        );
    }
}

/// The same for a gRPC service (router, ledger) that anyone could call as the gateway.
fn warn_if_grpc_open(cfg: &switchyard_core::config::Config, service: &str, listen: SocketAddr) {
    if switchyard::internal_secret(cfg).is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            service,
            "no master key and no internal secret are set and this gRPC service listens beyond this machine: anyone who can reach it can call it as the gateway would (set general_settings.master_key or SWITCHYARD_INTERNAL_SECRET)"
        );
    }
}

fn announce(service: &str, addr: SocketAddr) {
    println!(
        "{}",
        serde_json::json!({"listening": addr.to_string(), "service": service})
    );
    tracing::info!(%addr, service, "listening");
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo {
            listen,
            duration_secs,
            interval_ms,
            data_dir,
        } => {
            let args = demo::DemoArgs {
                listen,
                duration: duration_secs.map(std::time::Duration::from_secs),
                interval: std::time::Duration::from_millis(interval_ms.max(10)),
                data_dir,
            };
            demo::run(args, shutdown_signal()).await?;
        }
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let cfg = switchyard::load_config(&config.config)?;
            for w in &cfg.warnings {
                tracing::warn!("config: {w}");
            }
            for u in &cfg.unservable {
                tracing::warn!(
                    "config: {}: {} ({}) is not served: {}",
                    u.key,
                    u.group,
                    u.model,
                    u.reason
                );
            }
            let listen = listen.unwrap_or(cfg.gateway.listen);
            let opts = switchyard::ServeOptions {
                data_dir: Some(data_dir.unwrap_or_else(|| beside(&config.config))),
                ..Default::default()
            };
            warn_if_open(&cfg, listen);
            let bound = switchyard::serve(cfg, listen, opts, shutdown_signal()).await?;
            config.follow().start(&bound.reloader)?;
            announce("serve", bound.addr);
            bound.serve.await?;
        }
        Command::Gateway {
            config,
            listen,
            router,
        } => {
            let cfg = switchyard::load_config(&config.config)?;
            let listen = listen.unwrap_or(cfg.gateway.listen);
            let router = router.unwrap_or_else(|| cfg.gateway.router_address.clone());
            warn_if_open(&cfg, listen);
            let bound = switchyard::gateway(&cfg, &router, listen, shutdown_signal()).await?;
            config.follow().start(&bound.reloader)?;
            announce("gateway", bound.addr);
            bound.serve.await?;
        }
        Command::Router {
            config,
            listen,
            data_dir,
            no_prober,
            metrics_listen,
        } => {
            let mut cfg = switchyard::load_config(&config.config)?;
            if metrics_listen.is_some() {
                cfg.router.metrics_listen = metrics_listen;
            }
            for w in &cfg.warnings {
                tracing::warn!("config: {w}");
            }
            for u in &cfg.unservable {
                tracing::warn!(
                    "config: {}: {} ({}) is not served: {}",
                    u.key,
                    u.group,
                    u.model,
                    u.reason
                );
            }
            let listen = listen.unwrap_or(cfg.router.listen);
            let opts = switchyard::ServeOptions {
                data_dir: Some(data_dir.unwrap_or_else(|| beside(&config.config))),
                embedded_prober: no_prober.then_some(false),
                ..Default::default()
            };
            warn_if_grpc_open(&cfg, "router", listen);
            let bound = switchyard::router(cfg, listen, opts, shutdown_signal()).await?;
            config.follow().start(&bound.reloader)?;
            announce("router", bound.addr);
            bound.serve.await?;
        }
        Command::Ledger {
            config,
            listen,
            data_dir,
            metrics_listen,
        } => {
            let mut cfg = switchyard::load_config(&config.config)?;
            if metrics_listen.is_some() {
                cfg.ledger.metrics_listen = metrics_listen;
            }
            let listen = listen.unwrap_or(cfg.ledger.listen);
            let dir = data_dir.unwrap_or_else(|| beside(&config.config));
            warn_if_grpc_open(&cfg, "ledger", listen);
            let bound = switchyard::ledger(&cfg, &dir, listen, shutdown_signal()).await?;
            config.follow().start(&bound.reloader)?;
            announce("ledger", bound.addr);
            bound.serve.await?;
        }
        Command::Prober {
            config,
            metrics_listen,
        } => {
            let mut cfg = switchyard::load_config(&config.config)?;
            if metrics_listen.is_some() {
                cfg.prober.metrics_listen = metrics_listen;
            }
            println!(
                "{}",
                serde_json::json!({"service": "prober", "targets": cfg.deployments.len()})
            );
            switchyard::prober(&cfg, Some(config.follow()), shutdown_signal()).await?;
        }
        Command::Healthcheck { tcp, http } => match (tcp, http) {
            (Some(addr), _) => {
                tokio::time::timeout(
                    std::time::Duration::from_secs(3),
                    tokio::net::TcpStream::connect(&addr),
                )
                .await
                .map_err(|_| anyhow::anyhow!("{addr}: timed out"))??;
            }
            (None, Some(url)) => healthcheck_http(&url).await?,
            (None, None) => anyhow::bail!("give --tcp ADDR or --http URL"),
        },
        Command::Check { file } => {
            let cfg = switchyard::discovered_now(switchyard::load_config(&file)?).await;
            print!("{}", switchyard::describe(&cfg));
        }
        Command::Explain {
            config,
            model,
            prompt,
            prompt_file,
            max_tokens,
        } => {
            let cfg = switchyard::discovered_now(switchyard::load_config(&config.config)?).await;
            let text = match (prompt, prompt_file) {
                (Some(p), _) => p,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map_err(|e| anyhow::anyhow!("cannot read {f}: {e}"))?,
                (None, None) => anyhow::bail!("give --prompt or --prompt-file"),
            };
            print!("{}", switchyard::explain(cfg, &model, text, max_tokens)?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve {
        config: ConfigArg {
            config: std::env::var("SWITCHYARD_CONFIG").unwrap_or_else(|_| "switchyard.yaml".into()),
            no_watch: std::env::var_os("SWITCHYARD_NO_WATCH").is_some(),
        },
        listen: None,
        data_dir: std::env::var_os("SWITCHYARD_DATA_DIR").map(PathBuf::from),
    });
    let mut builder = match cli.worker_threads.or(default_worker_threads(&command)) {
        // One thread: Tokio's current-thread scheduler on the main thread. A one-worker
        // multi-thread runtime costs more per request (measured: BENCHMARKS.md).
        Some(n) if n <= 1 => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchyard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match service_name(&command) {
        Some(service) => {
            let format = if cli.log_json {
                switchyard_telemetry::LogFormat::Json
            } else {
                switchyard_telemetry::LogFormat::Text
            };
            // The OTLP exporter's gRPC channel needs the runtime.
            let _guard = runtime.enter();
            match switchyard_telemetry::init(service, format) {
                Ok(t) => {
                    if let Some(endpoint) = t.endpoint() {
                        tracing::info!(endpoint, "exporting traces over OTLP");
                    }
                    Some(t)
                }
                Err(e) => {
                    eprintln!("switchyard: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let result = runtime.block_on(run(command));
    // Export the spans still buffered. The exporter's connection is a task of this runtime, which
    // only a `block_on` drives once the runtime runs on this thread alone, so the (blocking)
    // shutdown runs beside one.
    if let Some(t) = telemetry {
        let _ = runtime.block_on(runtime.spawn_blocking(move || t.shutdown()));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}
