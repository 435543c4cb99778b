//! The `switchyard-sim` binary: runs one simulator from a YAML file until SIGTERM / ctrl-c, so
//! benchmarks and out-of-process tests can use it. Prints `{"listening":"ADDR"}` once bound.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchyard_sim::{SimConfig, SimHandle};

/// Deterministic Ollama / llama.cpp server simulator.
#[derive(Parser)]
#[command(name = "switchyard-sim", version)]
struct Args {
    /// YAML config: {flavor: ollama|llamacpp, models: [{name, context_length, ...}],
    /// default_num_ctx, chunk_delay_ms, default_output_tokens}.
    #[arg(long)]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match SimConfig::from_file(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let handle = match SimHandle::start_on(config, args.listen).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("switchyard-sim: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    {
        let line = serde_json::json!({ "listening": handle.addr().to_string() });
        let mut out = std::io::stdout().lock();
        #[allow(clippy::print_stdout)]
        let written = writeln!(out, "{line}").and_then(|()| out.flush());
        if let Err(e) = written {
            eprintln!("switchyard-sim: cannot write to stdout: {e}");
        }
    }
    wait_for_signal().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
