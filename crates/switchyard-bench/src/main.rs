//! `switchyard-loadgen`: the command line of Switchyard's benchmark. `bench/run.sh` drives it:
//! `body` writes request bodies, `probe` captures what a gateway sends the backend (so the direct
//! baseline sends the same thing), `run` puts load on one target and writes one JSON result,
//! `wait-http` / `target-info` / `meta` help the script, and `report` writes `BENCHMARKS.md`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::Method;
use serde_json::Value;
use switchyard_bench::load::{self, Labels, Spec};
use switchyard_bench::procfs;
use switchyard_bench::report::{self, Meta, TargetInfo};
use switchyard_bench::scan::{Expect, Markers};
use switchyard_bench::target::Target;

#[derive(Parser)]
#[command(
    name = "switchyard-loadgen",
    version,
    about = "Load generator and report writer of Switchyard's benchmark"
)]
struct Cli {
    /// Runtime worker threads of the load generator (kept low so it leaves the cores to the servers).
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Target URL, e.g. http://127.0.0.1:4000/v1/chat/completions (loopback only).
    #[arg(long)]
    url: String,
    /// Request body file (JSON), sent as is.
    #[arg(long)]
    body_file: PathBuf,
    /// What the answer looks like: json, sse or ndjson.
    #[arg(long, value_parser = parse_expect)]
    expect: Expect,
    /// JSON key whose non-empty string or array value is the answer content (default `content`).
    #[arg(long)]
    content_key: Option<String>,
    /// Text that ends a complete body, instead of the format's own (`[DONE]`, `"done":true`).
    #[arg(long)]
    end_marker: Option<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, short = 'c', default_value_t = 8)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Open loop: requests per second in total, latency measured from the intended send time.
    #[arg(long)]
    rate: Option<f64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Server process ids to measure (repeatable; descendants are included).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Kernel clock ticks per second (`getconf CLK_TCK`).
    #[arg(long, default_value_t = procfs::DEFAULT_CLK_TCK)]
    clk_tck: u64,
    /// Label: target name (direct, serve, split, litellm).
    #[arg(long)]
    target: String,
    /// Label: scenario name.
    #[arg(long)]
    scenario: String,
    /// Label: the API measured (chat, responses, embeddings, completions).
    #[arg(long, default_value = "chat")]
    endpoint: String,
    /// Label: prompt size (small, 2k).
    #[arg(long, default_value = "small")]
    prompt: String,
    /// Label: whether the request streams.
    #[arg(long)]
    stream: bool,
    /// Replace the body's unique marker (see `body --turn`) with a new number on every request.
    #[arg(long)]
    unique: bool,
    /// Result file (JSON); printed to stdout when absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CapacityArgs {
    /// Chat completions URL of the system (loopback only).
    #[arg(long)]
    url: String,
    /// The simulator's base URL (its `/_sim/stats` is read after the run).
    #[arg(long)]
    sim: String,
    /// Label of the system, e.g. switchyard-ordered.
    #[arg(long)]
    system: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Seconds of arrivals.
    #[arg(long, default_value_t = 90.0)]
    duration: f64,
    /// Requests per second the small model sustains.
    #[arg(long, default_value_t = 2.0)]
    small_capacity: f64,
    /// Burst arrival rate, times the small model's capacity.
    #[arg(long, default_value_t = 3.0)]
    burst_factor: f64,
    /// Quiet arrival rate, times the small model's capacity.
    #[arg(long, default_value_t = 0.5)]
    quiet_factor: f64,
    #[arg(long, default_value_t = 10.0)]
    burst_s: f64,
    #[arg(long, default_value_t = 20.0)]
    quiet_s: f64,
    /// Share of prompts too large for the small model.
    #[arg(long, default_value_t = 0.2)]
    large_share: f64,
    /// The model (group) every request names.
    #[arg(long, default_value = "local-small")]
    model: String,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 180.0)]
    timeout: f64,
    /// The fleet, smallest first, as LABEL=BACKEND_MODEL (repeatable).
    #[arg(long = "fleet")]
    fleet: Vec<String>,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Put load on one target and write the result as JSON.
    Run(RunArgs),
    /// Write an OpenAI request body (chat by default).
    Body {
        /// chat, responses, embeddings or completions.
        #[arg(long, default_value = "chat")]
        endpoint: String,
        #[arg(long, default_value = "local-small")]
        model: String,
        /// Approximate prompt size in tokens (≤ 16 gives a one-line prompt).
        #[arg(long, default_value_t = 10)]
        prompt_tokens: u32,
        #[arg(long)]
        stream: bool,
        /// Text files whose contents, repeated, make the prompt (instead of the built-in
        /// sentences); the prompt is then exactly `--prompt-tokens` by `--tokenizer` and is turn
        /// `--turn` of a conversation (chat only).
        #[arg(long = "corpus")]
        corpus: Vec<PathBuf>,
        /// Tokenizer file (GGUF or tokenizer.json) that measures `--corpus` prompts.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Turn of the conversation (1: one new user message; n: 2(n-1) resent messages and a new
        /// one of 1/n of the tokens). Its new message carries the unique marker.
        #[arg(long, default_value_t = 1)]
        turn: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Send one request through a gateway and save the body the simulator received for it.
    Probe {
        /// Gateway chat URL.
        #[arg(long)]
        url: String,
        #[arg(long)]
        body_file: PathBuf,
        /// The simulator's base URL (its `/_sim/requests` is read).
        #[arg(long)]
        sim: String,
        /// The backend path whose last recorded request is saved (`/api/chat`, `/api/embed`,
        /// `/api/generate`).
        #[arg(long, default_value = "/api/chat")]
        backend_path: String,
        /// Where to write the backend request body.
        #[arg(long)]
        out: PathBuf,
    },
    /// Poll a URL until it answers 200 (readiness without fixed sleeps).
    WaitHttp {
        #[arg(long)]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
    },
    /// Print the TCP port a process (or its descendants) listens on, waiting for it to appear.
    ListenPort {
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 180.0)]
        timeout: f64,
    },
    /// Record a target's setup: status, description, idle RSS, backend stats.
    TargetInfo {
        #[arg(long)]
        target: String,
        #[arg(long, default_value = "ok")]
        status: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long = "pid")]
        pids: Vec<u32>,
        /// Read the processes' current RSS as the idle RSS.
        #[arg(long)]
        idle: bool,
        /// Simulator base URL whose `/_sim/stats` is recorded.
        #[arg(long)]
        sim: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Record the machine and the run's options.
    Meta {
        #[arg(long)]
        date: String,
        #[arg(long)]
        mode: String,
        #[arg(long)]
        duration: f64,
        #[arg(long)]
        warmup: f64,
        #[arg(long, default_value = "bench/run.sh")]
        command: String,
        #[arg(long = "note")]
        notes: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a proxy with no logic (the benchmark's floor): every request is forwarded unchanged
    /// to the same path on `--upstream`.
    Passthrough {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Loopback base URL, e.g. http://127.0.0.1:11434.
        #[arg(long)]
        upstream: String,
    },
    /// The capacity scenario: send the bursty mixed workload through one system (open loop) and
    /// record its errors, completion times and the simulator's per-model stats.
    Capacity(CapacityArgs),
    /// Write the capacity scenario's section (every `capacity-*.json` of `--results`) into a
    /// Markdown file, replacing the previous one.
    CapacityReport {
        #[arg(long)]
        results: PathBuf,
        /// Text under the section's title (the run, the machine's load).
        #[arg(long, default_value = "")]
        header: String,
        /// A Markdown file appended to the section (observations).
        #[arg(long)]
        notes: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write BENCHMARKS.md from a results directory.
    Report {
        #[arg(long)]
        results: PathBuf,
        /// Markdown files appended after the tables (methodology, notes).
        #[arg(long = "appendix")]
        appendix: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_expect(s: &str) -> Result<Expect, String> {
    match s {
        "json" => Ok(Expect::Json),
        "sse" => Ok(Expect::Sse),
        "ndjson" => Ok(Expect::Ndjson),
        other => Err(format!(
            "unknown format {other:?}: expected json, sse or ndjson"
        )),
    }
}

fn secs(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|e| anyhow::anyhow!("invalid duration {s}: {e}"))
}

fn write_json(path: Option<&Path>, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    match path {
        Some(p) => {
            std::fs::write(p, text + "\n").with_context(|| format!("cannot write {}", p.display()))
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")?;
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let body = std::fs::read(&args.body_file)
        .with_context(|| format!("cannot read {}", args.body_file.display()))?;
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let body = Bytes::from(body);
    let unique = if args.unique {
        Some(load::Unique::new(&body).context("--unique: the body has no unique marker")?)
    } else {
        None
    };
    let spec = Spec {
        target,
        body,
        unique,
        expect: args.expect,
        markers: (args.content_key.is_some() || args.end_marker.is_some()).then(|| {
            Markers::new(
                args.expect,
                args.content_key.as_deref(),
                args.end_marker.as_deref(),
            )
        }),
        connections: args.connections,
        warmup: secs(args.warmup)?,
        duration: secs(args.duration)?,
        rate: args.rate,
        timeout: secs(args.timeout)?,
        pids: args.pids,
        clk_tck: args.clk_tck,
    };
    let r = load::run(
        spec,
        Labels {
            target: &args.target,
            scenario: &args.scenario,
            endpoint: &args.endpoint,
            prompt: &args.prompt,
            stream: args.stream,
        },
    )
    .await?;
    let ttft = r
        .ttft
        .as_ref()
        .map(|t| format!(" ttft p50 {:.0}µs", t.p50_us))
        .unwrap_or_default();
    eprintln!(
        "{:8} {:26} {:>9.0} req/s  p50 {:>9.0}µs  p99 {:>9.0}µs{ttft}  errors {}  cpu/1k {}",
        r.target,
        r.scenario,
        r.rps,
        r.latency.p50_us,
        r.latency.p99_us,
        r.errors,
        r.server
            .cpu_s_per_1000
            .map_or("n/a".into(), |c| format!("{c:.3}s")),
    );
    if let Some(e) = &r.first_error {
        eprintln!("         first error: {e}");
    }
    write_json(args.out.as_deref(), &r)
}

async fn probe(
    url: &str,
    body_file: &Path,
    sim: &str,
    backend_path: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let gw = Target::parse(url)?;
    let body =
        std::fs::read(body_file).with_context(|| format!("cannot read {}", body_file.display()))?;
    let (status, answer) = load::once(
        &gw,
        Method::POST,
        Some(Bytes::from(body)),
        Duration::from_secs(30),
    )
    .await?;
    if !status.is_success() {
        bail!(
            "probe through {url} failed: {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let sim = Target::parse(sim)?.with_path("/_sim/requests");
    let (status, list) = load::once(&sim, Method::GET, None, Duration::from_secs(30)).await?;
    if !status.is_success() {
        bail!("cannot read the simulator's recorded requests: {status}");
    }
    let list: Vec<Value> = serde_json::from_slice(&list)?;
    let last = list
        .iter()
        .rev()
        .find(|r| r.get("path").and_then(Value::as_str) == Some(backend_path))
        .with_context(|| format!("the simulator recorded no {backend_path} request"))?;
    let body = last
        .get("body")
        .context("recorded request without a body")?;
    std::fs::write(out, serde_json::to_vec(body)?)?;
    eprintln!(
        "probe: {url} → backend {backend_path} model {}",
        body.get("model").and_then(Value::as_str).unwrap_or("?")
    );
    Ok(())
}

async fn wait_http(url: &str, timeout: f64) -> anyhow::Result<()> {
    let t = Target::parse(url)?;
    let deadline = Instant::now() + secs(timeout)?;
    let mut last = String::new();
    while Instant::now() < deadline {
        match load::once(&t, Method::GET, None, Duration::from_secs(5)).await {
            Ok((s, _)) if s.is_success() => return Ok(()),
            Ok((s, _)) => last = s.to_string(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} not ready after {timeout} s (last: {last})")
}

async fn listen_port(pid: u32, timeout: f64) -> anyhow::Result<()> {
    let deadline = Instant::now() + secs(timeout)?;
    loop {
        if procfs::status_kb(pid, "VmRSS").is_none() {
            bail!("process {pid} is gone");
        }
        if let Some(port) = procfs::listening_ports(&procfs::with_descendants(&[pid])).first() {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{port}")?;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("process {pid} listens on no TCP port after {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn target_info(
    target: String,
    status: String,
    description: String,
    pids: Vec<u32>,
    idle: bool,
    sim: Option<String>,
    out: &Path,
) -> anyhow::Result<()> {
    let all = procfs::with_descendants(&pids);
    let idle_rss_kb = if idle {
        procfs::sum_kb(&all, "VmRSS")
    } else {
        None
    };
    let backend_stats = match sim {
        Some(s) => {
            let t = Target::parse(&s)?.with_path("/_sim/stats");
            let (_, body) = load::once(&t, Method::GET, None, Duration::from_secs(10)).await?;
            serde_json::from_slice(&body).ok()
        }
        None => None,
    };
    let info = TargetInfo {
        kind: "target".into(),
        target,
        status,
        description,
        pids: all,
        idle_rss_kb,
        backend_stats,
    };
    write_json(Some(out), &info)
}

fn first_line_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

fn meta(
    date: String,
    mode: String,
    duration: f64,
    warmup: f64,
    command: String,
    notes: Vec<String>,
    out: &Path,
) -> anyhow::Result<()> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let m = Meta {
        kind: "meta".into(),
        date,
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model: first_line_value(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        mem_total_kb: first_line_value(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
        loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        mode,
        duration_s: duration,
        warmup_s: warmup,
        command,
        notes,
    };
    write_json(Some(out), &m)
}

fn report(results: &Path, appendix: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let r = report::load_dir(results)?;
    let mut extra = String::new();
    for a in appendix {
        match std::fs::read_to_string(a) {
            Ok(t) => {
                extra.push_str(&t);
                if !t.ends_with('\n') {
                    extra.push('\n');
                }
                extra.push('\n');
            }
            Err(e) => eprintln!("report: skipping {}: {e}", a.display()),
        }
    }
    std::fs::write(out, report::render(&r, extra.trim_end()) + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    for c in report::checks(&r) {
        eprintln!(
            "{:8} {} ({})",
            c.verdict.trim_matches('*'),
            c.what,
            c.measured
        );
    }
    Ok(())
}

/// A chat body of `tokens` tokens (by `tokenizer`) of the `corpus` files' text, turn `turn`.
fn corpus_body(
    endpoint: &str,
    model: &str,
    tokens: u32,
    stream: bool,
    corpus: &[PathBuf],
    tokenizer: Option<PathBuf>,
    turn: usize,
) -> anyhow::Result<Value> {
    if endpoint != "chat" {
        bail!("--corpus bodies are chat bodies only");
    }
    let path = tokenizer.context("--corpus needs --tokenizer to measure the prompt")?;
    let tok = if path.extension().is_some_and(|e| e == "json") {
        switchyard_tokenizers::Tokenizer::from_tokenizer_json(&path)
    } else {
        switchyard_tokenizers::Tokenizer::from_gguf_file(&path)
    }
    .with_context(|| format!("cannot load the tokenizer {}", path.display()))?;
    let mut text = String::new();
    for f in corpus {
        let t =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        text.push_str(t.trim());
        text.push_str("\n\n");
    }
    let count = |s: &str| tok.count_tokens(s);
    Ok(switchyard_bench::conversation::chat_body(
        model,
        &text,
        tokens as usize,
        turn,
        stream,
        &count,
    ))
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run(args).await,
        Command::Body {
            endpoint,
            model,
            prompt_tokens,
            stream,
            corpus,
            tokenizer,
            turn,
            out,
        } => {
            let b = if corpus.is_empty() {
                switchyard_bench::prompt::body(&endpoint, &model, prompt_tokens, stream)?
            } else {
                corpus_body(
                    &endpoint,
                    &model,
                    prompt_tokens,
                    stream,
                    &corpus,
                    tokenizer,
                    turn,
                )?
            };
            std::fs::write(&out, serde_json::to_vec(&b)?)
                .with_context(|| format!("cannot write {}", out.display()))
        }
        Command::Probe {
            url,
            body_file,
            sim,
            backend_path,
            out,
        } => probe(&url, &body_file, &sim, &backend_path, &out).await,
        Command::WaitHttp { url, timeout } => wait_http(&url, timeout).await,
        Command::ListenPort { pid, timeout } => listen_port(pid, timeout).await,
        Command::TargetInfo {
            target,
            status,
            description,
            pids,
            idle,
            sim,
            out,
        } => target_info(target, status, description, pids, idle, sim, &out).await,
        Command::Meta {
            date,
            mode,
            duration,
            warmup,
            command,
            notes,
            out,
        } => meta(date, mode, duration, warmup, command, notes, &out),
        Command::Report {
            results,
            appendix,
            out,
        } => report(&results, &appendix, &out),
        Command::Capacity(args) => capacity(args).await,
        Command::CapacityReport {
            results,
            header,
            notes,
            out,
        } => capacity_report(&results, &header, notes.as_deref(), &out),
        Command::Passthrough { listen, upstream } => {
            switchyard_bench::passthrough::run(listen, &upstream).await
        }
    }
}

async fn capacity(a: CapacityArgs) -> anyhow::Result<()> {
    use switchyard_bench::capacity::{self as cap, Workload};
    let w = Workload {
        duration_s: a.duration,
        small_capacity_rps: a.small_capacity,
        burst_factor: a.burst_factor,
        quiet_factor: a.quiet_factor,
        burst_s: a.burst_s,
        quiet_s: a.quiet_s,
        large_share: a.large_share,
        small_prompt: [200, 1200],
        large_prompt: [3000, 5000],
        output: [24, 72],
        model: a.model,
        seed: a.seed,
    };
    let fleet = a
        .fleet
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(l, m)| (l.to_string(), m.to_string()))
                .with_context(|| format!("--fleet {f}: expected LABEL=MODEL"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let mut r = cap::run(
        &w,
        &a.url,
        &a.sim,
        secs(a.timeout)?,
        &a.system,
        &a.description,
    )
    .await?;
    r.fleet = fleet;
    r.loadavg_at_start = loadavg;
    let shares: Vec<String> = r
        .fleet
        .iter()
        .map(|(l, m)| format!("{l} {}", r.served(m)))
        .collect();
    eprintln!(
        "{:26} sent {:4}  errors {:4}  backend 503s {:4}  p50 {:>7.0}ms  p95 {:>7.0}ms  served: {}",
        r.system,
        r.sent,
        r.errors(),
        r.backend_busy(),
        r.times.p50_ms,
        r.times.p95_ms,
        shares.join(", ")
    );
    write_json(Some(&a.out), &r)
}

fn capacity_report(
    results: &Path,
    header: &str,
    notes: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    use switchyard_bench::capacity::{self as cap, CapacityResult};
    let mut found: Vec<CapacityResult> = Vec::new();
    for e in std::fs::read_dir(results)? {
        let p = e?.path();
        let is_capacity = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("capacity-") && n.ends_with(".json"));
        if is_capacity {
            let text = std::fs::read_to_string(&p)?;
            found.push(serde_json::from_str(&text).with_context(|| format!("{}", p.display()))?);
        }
    }
    if found.is_empty() {
        bail!("no capacity-*.json in {}", results.display());
    }
    found.sort_by_key(|r| cap::system_rank(&r.system));
    let mut section = cap::render(&found, header);
    if let Some(n) = notes {
        let text =
            std::fs::read_to_string(n).with_context(|| format!("cannot read {}", n.display()))?;
        section.push('\n');
        section.push_str(text.trim_end());
        section.push('\n');
    }
    let doc = std::fs::read_to_string(out).unwrap_or_default();
    std::fs::write(out, cap::splice(&doc, &section))
        .with_context(|| format!("cannot write {}", out.display()))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(dispatch(cli.command))
}
