//! `switchyard demo`: the whole product on one machine with no GPU and no Ollama. Three
//! simulated Ollama servers serve the seed's three models at a realistic speed each, `serve`
//! routes in front of them, and a small generator sends mixed traffic: short prompts that stay
//! on the small model, long ones that only fit a larger window (predictive routing), and now and
//! then an injected failure (a 500 before the first byte: fallback; a stream cut mid-answer:
//! continuation). The console at `/ui` shows all of it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

/// A line on stdout for the person watching; a closed stdout (a script that read the first
/// line and left) is no reason to stop.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// One simulated model: the seed's group, the Ollama model, its trained context, its speed.
struct DemoModel {
    group: &'static str,
    model: &'static str,
    context: u32,
    window: u32,
    per_token: Duration,
}

const MODELS: [DemoModel; 3] = [
    DemoModel {
        group: "local-small",
        model: "llama3.2:1b",
        context: 131_072,
        window: 2048,
        per_token: Duration::from_millis(12),
    },
    DemoModel {
        group: "local-medium",
        model: "llama3.1:8b",
        context: 131_072,
        window: 8192,
        per_token: Duration::from_millis(35),
    },
    DemoModel {
        group: "local-large",
        model: "mistral:7b",
        context: 32_768,
        window: 32_768,
        per_token: Duration::from_millis(45),
    },
];

/// What the demo was asked to do.
pub struct DemoArgs {
    pub listen: SocketAddr,
    /// Stop after this long (default: until Ctrl-C).
    pub duration: Option<Duration>,
    /// Time between generated requests.
    pub interval: Duration,
    /// Where the demo's usage ledger lives (default: a fresh folder under the system's temp dir).
    pub data_dir: Option<PathBuf>,
}

fn config_text(sims: &[SimHandle]) -> String {
    let mut text = String::from("model_list:\n");
    for (m, sim) in MODELS.iter().zip(sims) {
        text.push_str(&format!(
            "  - model_name: {}\n    litellm_params:\n      model: ollama/{}\n      api_base: {}\n      max_tokens: {}\n",
            m.group,
            m.model,
            sim.base_url(),
            m.window
        ));
    }
    text.push_str(
        "router_settings:\n  routing_strategy: usage-based-routing\n  num_retries: 2\n  fallbacks:\n    - local-small\n    - local-medium\n    - local-large\nprober:\n  interval: 2\n",
    );
    text
}

/// A prompt of about `n` words (one token each in every tokenizer involved).
fn words(n: usize, seed: usize) -> String {
    const W: [&str; 12] = [
        "the", "cat", "sat", "on", "a", "mat", "and", "ran", "to", "the", "red", "door",
    ];
    (0..n)
        .map(|i| W[(i + seed) % W.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `i`-th request of the mix: (group asked for, prompt words, stream, max tokens).
fn traffic(i: usize) -> (&'static str, usize, bool, u32) {
    match i % 10 {
        // Most automation prompts are short and stay on the small model.
        0..=4 => ("local-small", 20 + (i * 37) % 300, i.is_multiple_of(2), 24),
        // Too long for the small model's 2048-token window: routed to the medium one.
        5 | 6 => ("local-small", 2600 + (i * 53) % 2000, i % 2 == 1, 32),
        7 => ("local-medium", 400 + (i * 11) % 600, true, 32),
        // Only the large model's window fits.
        8 => ("local-small", 10_000 + (i * 97) % 4000, true, 24),
        _ => ("local-large", 300, false, 16),
    }
}

/// Arms the occasional failure for request `i`.
fn inject(i: usize, sims: &[SimHandle]) {
    if i % 7 == 3 {
        // The small model answers 500 once: the router falls back before the first byte.
        sims[0].add_fault(FaultRule::for_model(
            MODELS[0].model,
            Fault::Status {
                code: 500,
                message: "demo: injected server error".into(),
            },
            Some(1),
        ));
    }
    if i % 11 == 6 {
        // The medium model's stream is cut mid-answer: the router continues it elsewhere.
        sims[1].add_fault(FaultRule::for_model(
            MODELS[1].model,
            Fault::CutAfter { chunks: 4 },
            Some(1),
        ));
    }
}

async fn one_request(client: reqwest::Client, url: String, i: usize) -> anyhow::Result<String> {
    let (group, n, stream, max_tokens) = traffic(i);
    let body = serde_json::json!({
        "model": group,
        "stream": stream,
        "max_tokens": max_tokens,
        "messages": [
            {"role": "system", "content": "You are a helpful automation assistant."},
            {"role": "user", "content": words(n, i)},
        ],
    });
    let resp = client.post(&url).json(&body).send().await?;
    let status = resp.status();
    let served = resp
        .headers()
        .get("x-switchyard-deployment")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    // Read the whole answer (a stream to its end).
    let _ = resp.bytes().await?;
    Ok(format!(
        "#{i:<4} {group:<12} {n:>6} words{} -> {served} ({status})",
        if stream { ", streamed" } else { "" }
    ))
}

/// Sends the mix to `addr` until stopped, a few requests at a time.
async fn generate(addr: SocketAddr, sims: Arc<Vec<SimHandle>>, interval: Duration) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/chat/completions");
    let slots = Arc::new(tokio::sync::Semaphore::new(4));
    for i in 0usize.. {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        inject(i, &sims);
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            match one_request(client, url, i).await {
                Ok(line) => say!("{line}"),
                Err(e) => say!("#{i:<4} failed: {e}"),
            }
            drop(permit);
        });
        tokio::time::sleep(interval).await;
    }
}

/// Runs the demo until `shutdown` or the duration ends.
pub async fn run(
    args: DemoArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut sims = Vec::new();
    for m in &MODELS {
        let mut cfg = SimConfig::ollama(vec![SimModel::new(m.model, m.context)]);
        cfg.chunk_delay = m.per_token;
        cfg.default_output_tokens = 48;
        sims.push(
            SimHandle::start(cfg)
                .await
                .context("cannot start the simulator")?,
        );
    }
    let text = config_text(&sims);
    let cfg = switchyard_core::config::load_str(
        "demo.yaml",
        &text,
        None,
        &switchyard_core::config::ProcessEnv,
    )
    .map_err(|e| anyhow::anyhow!("demo config: {e}"))?;
    let data_dir = args.data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()))
    });
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = switchyard::ServeOptions {
        data_dir: Some(data_dir.clone()),
        embedded_prober: Some(true),
        ..Default::default()
    };
    let bound = switchyard::serve(cfg, args.listen, opts, async {
        let _ = stop_rx.await;
    })
    .await?;
    let addr = bound.addr;
    crate::announce("demo", addr);
    // What a browser on this machine can open (0.0.0.0 is not an address to visit).
    let mut visit = addr;
    if visit.ip().is_unspecified() {
        visit.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    say!("Switchyard demo: three simulated models behind the gateway, no GPU needed.");
    say!("  Console:  http://{visit}/ui");
    say!(
        "  API:      http://{visit}/v1/chat/completions (models local-small, local-medium, local-large)"
    );
    say!("  Ledger:   {}", data_dir.display());
    say!("Sending mixed traffic; press Ctrl-C to stop.");
    let server = tokio::spawn(bound.serve);
    let sims = Arc::new(sims);
    let generator = tokio::spawn(generate(addr, sims.clone(), args.interval));
    match args.duration {
        Some(d) => {
            tokio::select! {
                _ = shutdown => {}
                _ = tokio::time::sleep(d) => {}
            }
        }
        None => shutdown.await,
    }
    generator.abort();
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_asks_every_group_and_mostly_the_small_one() {
        let asked: Vec<&str> = (0..20).map(|i| traffic(i).0).collect();
        for g in ["local-small", "local-medium", "local-large"] {
            assert!(asked.contains(&g), "{g} is never asked for");
        }
        assert!(asked.iter().filter(|g| **g == "local-small").count() >= 10);
    }
}
