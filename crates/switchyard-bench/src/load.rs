//! The load itself: N keep-alive HTTP/1.1 connections, each sending the same request over and
//! over for a fixed time after a warm-up, timing every request into HDR histograms.
//!
//! Two ways to pace it:
//! - **closed loop** (default): each connection sends its next request as soon as the previous
//!   answer ends. This finds the throughput ceiling, but a stall delays the requests that would
//!   have been sent meanwhile, so they are never measured (coordinated omission).
//! - **open loop** (`rate`): requests are due at fixed intervals whatever happens, and latency is
//!   measured from the *intended* send time, so a stall counts against every request it delayed.
//!
//! Alongside the client-side numbers it reads the server processes' CPU time and memory from
//! `/proc` over the measured window (see [`crate::procfs`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

use crate::procfs;
use crate::scan::{BodyScan, Expect, Markers};
use crate::summary::{Summary, histogram};
use crate::target::Target;

/// What to run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub target: Target,
    pub body: Bytes,
    pub expect: Expect,
    /// Content key and end marker, when not the defaults of `expect`.
    pub markers: Option<Markers>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Open loop at this many requests per second (all connections together); closed loop if
    /// `None`.
    pub rate: Option<f64>,
    /// Per-request limit; a request over it counts as an error and its connection is dropped.
    pub timeout: Duration,
    /// Server processes whose CPU and memory are measured (their descendants too).
    pub pids: Vec<u32>,
    pub clk_tck: u64,
    /// Replace [`crate::conversation::UNIQUE_MARKER`] in the body with a number of this run's
    /// own on every request, so no request repeats another's text.
    pub unique: Option<Unique>,
}

/// The body around its unique marker, and the numbers put there.
#[derive(Debug)]
pub struct Unique {
    before: Bytes,
    after: Bytes,
    /// Differs between runs (start time), so a server's cache never saw a number before.
    seed: u64,
    next: std::sync::atomic::AtomicU64,
}

impl Clone for Unique {
    fn clone(&self) -> Self {
        Unique {
            before: self.before.clone(),
            after: self.after.clone(),
            seed: self.seed,
            next: std::sync::atomic::AtomicU64::new(
                self.next.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

impl Unique {
    /// Splits `body` at its first marker; `None` when it has none.
    pub fn new(body: &Bytes) -> Option<Self> {
        let marker = crate::conversation::UNIQUE_MARKER.as_bytes();
        let at = body.windows(marker.len()).position(|w| w == marker)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Some(Unique {
            before: body.slice(..at),
            after: body.slice(at + marker.len()..),
            seed,
            next: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The next request's body.
    pub fn body(&self) -> Bytes {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{:x}-{n}", self.seed);
        let mut b = Vec::with_capacity(self.before.len() + tag.len() + self.after.len());
        b.extend_from_slice(&self.before);
        b.extend_from_slice(tag.as_bytes());
        b.extend_from_slice(&self.after);
        Bytes::from(b)
    }
}

/// What the server processes cost over the measured window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerCost {
    pub pids: Vec<u32>,
    pub cpu_s: Option<f64>,
    pub cpu_s_per_1000: Option<f64>,
    /// Sum of `VmHWM` after the run (reset at the start of the window when `peak_reset`).
    pub peak_rss_kb: Option<u64>,
    pub peak_reset: bool,
    /// Highest sum of `VmRSS` seen by sampling every 50 ms during the window.
    pub sampled_max_rss_kb: Option<u64>,
    pub rss_after_kb: Option<u64>,
}

/// The outcome of one run, written as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    /// Always `"run"` (other files in a results directory have other kinds).
    pub kind: String,
    /// Target name (`direct`, `serve`, `split`, `litellm`, …).
    pub target: String,
    /// Scenario name (e.g. `nonstream-small-c8`).
    pub scenario: String,
    /// The API measured: `chat` (chat completions), `responses`, `embeddings`, `completions`.
    #[serde(default = "chat")]
    pub endpoint: String,
    pub stream: bool,
    /// Prompt size label (`small`, `2k`).
    pub prompt: String,
    pub connections: usize,
    /// `closed` or `open`.
    pub mode: String,
    pub rate: Option<f64>,
    pub warmup_s: f64,
    /// Length of the measured window (from the end of the warm-up to the last answer).
    pub window_s: f64,
    /// Successful requests in the window.
    pub requests: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    /// Successful requests per second.
    pub rps: f64,
    /// Whole request: send (or intended send, open loop) to the last body byte.
    pub latency: Summary,
    /// Send to response head.
    pub ttfb: Summary,
    /// Send to the first body frame carrying answer text (streams only).
    pub ttft: Option<Summary>,
    pub server: ServerCost,
    /// CPU seconds the load generator itself used in the window.
    pub loadgen_cpu_s: Option<f64>,
}

fn chat() -> String {
    "chat".into()
}

struct Clock {
    measure_start: Instant,
    end: Instant,
    /// After this, queued open-loop requests are dropped (counted as `backlog` errors).
    drain_deadline: Instant,
}

struct WorkerOut {
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
    ttft: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

impl WorkerOut {
    fn new() -> anyhow::Result<Self> {
        Ok(WorkerOut {
            latency: histogram()?,
            ttfb: histogram()?,
            ttft: histogram()?,
            ok: 0,
            errors: BTreeMap::new(),
            first_error: None,
            last_done: None,
        })
    }

    fn error(&mut self, kind: &str, message: String) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{kind}: {message}"));
        }
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

struct Timing {
    head: Instant,
    first_content: Option<Instant>,
}

/// A failed request: a short kind for counting, a message, and whether the connection is unusable.
struct Failure {
    kind: String,
    message: String,
    drop_conn: bool,
}

impl Failure {
    fn new(kind: impl Into<String>, message: impl Into<String>, drop_conn: bool) -> Self {
        Failure {
            kind: kind.into(),
            message: message.into(),
            drop_conn,
        }
    }
}

type Sender = SendRequest<Full<Bytes>>;

async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn send_one(sender: &mut Sender, spec: &Spec) -> Result<Timing, Failure> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(spec.target.path.as_str())
        .header(HOST, spec.target.authority.as_str())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(match &spec.unique {
            Some(u) => u.body(),
            None => spec.body.clone(),
        }))
        .map_err(|e| Failure::new("request", e.to_string(), false))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Failure::new("send", e.to_string(), true))?;
    let head = Instant::now();
    let status = resp.status();
    let mut body = resp.into_body();
    let mut scan = match &spec.markers {
        Some(m) => BodyScan::with(m),
        None => BodyScan::new(spec.expect),
    };
    let mut first_content = None;
    let mut error_text: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::new("body", e.to_string(), true))?;
        if let Some(data) = frame.data_ref() {
            if scan.feed(data) {
                first_content = Some(Instant::now());
            }
            if status != StatusCode::OK && error_text.len() < 300 {
                error_text.extend_from_slice(&data[..data.len().min(300 - error_text.len())]);
            }
        }
    }
    if status != StatusCode::OK {
        return Err(Failure::new(
            format!("http_{}", status.as_u16()),
            String::from_utf8_lossy(&error_text).into_owned(),
            false,
        ));
    }
    if !scan.complete() {
        let what = if scan.saw_content {
            "no end marker"
        } else {
            "no content"
        };
        return Err(Failure::new(
            "incomplete",
            format!("{what} in a {}-byte body", scan.bytes),
            false,
        ));
    }
    Ok(Timing {
        head,
        first_content,
    })
}

type Tickets = Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>;

async fn worker(
    spec: Arc<Spec>,
    clock: Arc<Clock>,
    tickets: Option<Tickets>,
) -> anyhow::Result<WorkerOut> {
    let mut out = WorkerOut::new()?;
    let mut sender: Option<Sender> = None;
    loop {
        let intended = match &tickets {
            Some(rx) => match rx.lock().await.recv().await {
                Some(t) => t,
                None => break,
            },
            None => {
                let now = Instant::now();
                if now >= clock.end {
                    break;
                }
                now
            }
        };
        let measured = intended >= clock.measure_start;
        if Instant::now() > clock.drain_deadline {
            if measured {
                out.error("backlog", "not sent before the drain deadline".into());
            }
            continue;
        }
        // A keep-alive connection the server closed is replaced without counting an error.
        if let Some(s) = sender.as_mut()
            && s.ready().await.is_err()
        {
            sender = None;
        }
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(&spec.target).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    if measured {
                        out.error("connect", e.to_string());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let start = if tickets.is_some() { intended } else { sent };
        let result = tokio::time::timeout(spec.timeout, send_one(s, &spec)).await;
        let done = Instant::now();
        match result {
            Ok(Ok(t)) => {
                if measured {
                    out.ok += 1;
                    out.latency.saturating_record(ns(done - start).max(1));
                    out.ttfb.saturating_record(ns(t.head - start).max(1));
                    if let Some(fc) = t.first_content {
                        out.ttft.saturating_record(ns(fc - start).max(1));
                    }
                    out.last_done = Some(done);
                }
            }
            Ok(Err(f)) => {
                if f.drop_conn {
                    sender = None;
                }
                if measured {
                    out.error(&f.kind, f.message);
                }
            }
            Err(_) => {
                sender = None;
                if measured {
                    out.error(
                        "timeout",
                        format!("no complete answer within {:?}", spec.timeout),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Samples the servers' summed `VmRSS` until `until`, returning the highest value seen.
async fn sample_rss(pids: Vec<u32>, from: Instant, until: Instant) -> Option<u64> {
    tokio::time::sleep_until(from.into()).await;
    let mut max: Option<u64> = None;
    while Instant::now() < until {
        if let Some(kb) = procfs::sum_kb(&pids, "VmRSS") {
            max = Some(max.map_or(kb, |m| m.max(kb)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    max
}

/// The labels of one result (they do not change the load).
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    pub target: &'a str,
    pub scenario: &'a str,
    pub endpoint: &'a str,
    pub prompt: &'a str,
    pub stream: bool,
}

/// Runs the load and measures it; `labels` only label the result.
pub async fn run(spec: Spec, labels: Labels<'_>) -> anyhow::Result<RunResult> {
    let Labels {
        target,
        scenario,
        endpoint,
        prompt,
        stream,
    } = labels;
    let pids = procfs::with_descendants(&spec.pids);
    let me = std::process::id();
    let begin = Instant::now();
    let clock = Arc::new(Clock {
        measure_start: begin + spec.warmup,
        end: begin + spec.warmup + spec.duration,
        drain_deadline: begin + spec.warmup + spec.duration + spec.timeout,
    });
    let spec = Arc::new(spec);

    let (tickets, dispatcher) = match spec.rate {
        Some(rate) if rate > 0.0 => {
            let (tx, rx) = mpsc::unbounded_channel::<Instant>();
            let end = clock.end;
            // A plain thread with `std::thread::sleep` (sub-100 µs precision) rather than a tokio
            // timer (1 ms ticks), so intended send times are kept closely.
            let handle = tokio::task::spawn_blocking(move || {
                let mut i: u64 = 0;
                loop {
                    let due = begin + Duration::from_secs_f64(i as f64 / rate);
                    if due >= end {
                        break;
                    }
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if tx.send(due).is_err() {
                        break;
                    }
                    i += 1;
                }
            });
            (Some(Arc::new(Mutex::new(rx))), Some(handle))
        }
        _ => (None, None),
    };

    let sampler = tokio::spawn(sample_rss(pids.clone(), clock.measure_start, clock.end));
    let mut workers = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections.max(1) {
        workers.push(tokio::spawn(worker(
            spec.clone(),
            clock.clone(),
            tickets.clone(),
        )));
    }

    // The measured window opens: CPU snapshot and peak-RSS reset.
    tokio::time::sleep_until(clock.measure_start.into()).await;
    let cpu_before = procfs::cpu_seconds(&pids, spec.clk_tck);
    let self_before = procfs::cpu_seconds(&[me], spec.clk_tck);
    let peak_reset = !pids.is_empty() && pids.iter().all(|&p| procfs::reset_peak(p));

    if let Some(d) = dispatcher {
        d.await?;
    }
    drop(tickets);
    let mut total = WorkerOut::new()?;
    for w in workers {
        let o = w.await??;
        total
            .latency
            .add(&o.latency)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        total
            .ttfb
            .add(&o.ttfb)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        total
            .ttft
            .add(&o.ttft)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        total.ok += o.ok;
        for (k, v) in o.errors {
            *total.errors.entry(k).or_default() += v;
        }
        if total.first_error.is_none() {
            total.first_error = o.first_error;
        }
        total.last_done = match (total.last_done, o.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let cpu_after = procfs::cpu_seconds(&pids, spec.clk_tck);
    let self_after = procfs::cpu_seconds(&[me], spec.clk_tck);
    let sampled = sampler.await?;

    let window_end = total.last_done.map_or(clock.end, |d| d.max(clock.end));
    let window = (window_end - clock.measure_start).as_secs_f64().max(1e-9);
    let cpu_s = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if !pids.is_empty() => Some(b - a),
        _ => None,
    };
    let errors: u64 = total.errors.values().sum();
    Ok(RunResult {
        kind: "run".into(),
        target: target.into(),
        scenario: scenario.into(),
        endpoint: endpoint.into(),
        stream,
        prompt: prompt.into(),
        connections: spec.connections,
        mode: if spec.rate.is_some() {
            "open".into()
        } else {
            "closed".into()
        },
        rate: spec.rate,
        warmup_s: spec.warmup.as_secs_f64(),
        window_s: window,
        requests: total.ok,
        errors,
        error_kinds: total.errors,
        first_error: total.first_error,
        rps: total.ok as f64 / window,
        latency: Summary::of(&total.latency),
        ttfb: Summary::of(&total.ttfb),
        ttft: if stream {
            Some(Summary::of(&total.ttft))
        } else {
            None
        },
        server: ServerCost {
            cpu_s,
            cpu_s_per_1000: cpu_s
                .filter(|_| total.ok > 0)
                .map(|c| c / (total.ok as f64 / 1000.0)),
            peak_rss_kb: procfs::sum_kb(&pids, "VmHWM").filter(|_| !pids.is_empty()),
            peak_reset,
            sampled_max_rss_kb: sampled.filter(|_| !pids.is_empty()),
            rss_after_kb: procfs::sum_kb(&pids, "VmRSS").filter(|_| !pids.is_empty()),
            pids,
        },
        loadgen_cpu_s: match (self_before, self_after) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
    })
}

/// Sends one request and returns its status and whole body (for probes and smoke checks).
pub async fn once(
    target: &Target,
    method: Method,
    body: Option<Bytes>,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let fut = async {
        let mut sender = connect(target).await?;
        let has_body = body.is_some();
        let mut req = Request::builder()
            .method(method)
            .uri(target.path.as_str())
            .header(HOST, target.authority.as_str());
        if has_body {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, bytes))
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| {
        anyhow::anyhow!(
            "{}{}: no answer within {timeout:?}",
            target.authority,
            target.path
        )
    })?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::conversation::UNIQUE_MARKER;

    #[test]
    fn every_request_gets_its_own_number_where_the_marker_was() {
        let body = Bytes::from(format!(r#"{{"content":"Request {UNIQUE_MARKER}. text"}}"#));
        let u = Unique::new(&body).unwrap();
        let (a, b) = (u.body(), u.body());
        assert_ne!(a, b);
        for x in [&a, &b] {
            let s = std::str::from_utf8(x).unwrap();
            assert!(s.starts_with(r#"{"content":"Request "#) && s.ends_with(r#". text"}"#));
            assert!(!s.contains(UNIQUE_MARKER));
        }
        assert!(Unique::new(&Bytes::from_static(b"{}")).is_none());
    }
}
