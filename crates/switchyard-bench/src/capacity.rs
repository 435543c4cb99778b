//! The capacity scenario: a bursty, mixed open-loop workload run against a fleet of simulated
//! models with limited slots (small: 2 slots, fast; medium: 2; large: 1, slow), through
//! Switchyard or LiteLLM, to compare how each spreads load between "busy" and "too small".
//!
//! The schedule is generated from a seed, so every system is sent the same requests at the same
//! offsets: bursts at `burst_factor` times the small model's capacity, quiet spells in between,
//! and a share of prompts too large for the small model's window. Completion time is measured
//! from each request's scheduled send time (open loop: a slow system does not slow the sender).
//! Which model served what, and how many requests the backends refused as busy (503), comes from
//! the simulator's `/_sim/stats`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::load;
use crate::target::Target;

/// The shape of the workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Workload {
    /// Seconds of arrivals (the run lasts until the last answer or its timeout).
    pub duration_s: f64,
    /// Requests per second the small model sustains (its slots over its service time).
    pub small_capacity_rps: f64,
    /// Arrival rate in a burst, as a multiple of `small_capacity_rps`.
    pub burst_factor: f64,
    /// Arrival rate between bursts, as a multiple of `small_capacity_rps`.
    pub quiet_factor: f64,
    /// Length of a burst, seconds.
    pub burst_s: f64,
    /// Length of the quiet spell after each burst, seconds.
    pub quiet_s: f64,
    /// Share of prompts too large for the small model.
    pub large_share: f64,
    /// Prompt sizes (approximate tokens) of ordinary prompts: `[min, max]`.
    pub small_prompt: [u32; 2],
    /// Prompt sizes of the prompts too large for the small model.
    pub large_prompt: [u32; 2],
    /// Answer lengths (tokens, `[[tokens=N]]`).
    pub output: [u32; 2],
    /// The `model` every request names (the preferred group).
    pub model: String,
    pub seed: u64,
}

/// One scheduled request.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub at: Duration,
    pub large: bool,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
}

/// A small deterministic generator (xorshift64*), so the schedule needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, r: [u32; 2]) -> u32 {
        let span = u64::from(r[1].saturating_sub(r[0])) + 1;
        r[0] + u32::try_from(self.next() % span).unwrap_or(0)
    }
}

impl Workload {
    /// The arrivals: a Poisson process whose rate switches between burst and quiet spells.
    pub fn schedule(&self) -> Vec<Arrival> {
        let mut rng = Rng(self.seed.max(1));
        let mut out = Vec::new();
        let mut phase_start = 0.0f64;
        let mut burst = true;
        while phase_start < self.duration_s && self.burst_s + self.quiet_s > 0.0 {
            let (len, factor) = if burst {
                (self.burst_s, self.burst_factor)
            } else {
                (self.quiet_s, self.quiet_factor)
            };
            let end = (phase_start + len).min(self.duration_s);
            let rate = self.small_capacity_rps * factor;
            let mut t = phase_start;
            while rate > 0.0 && t < end {
                t += -(1.0 - rng.unit()).ln() / rate;
                if t >= end {
                    break;
                }
                let large = rng.unit() < self.large_share;
                out.push(Arrival {
                    at: Duration::from_secs_f64(t),
                    large,
                    prompt_tokens: rng.between(if large {
                        self.large_prompt
                    } else {
                        self.small_prompt
                    }),
                    output_tokens: rng.between(self.output),
                });
            }
            phase_start += len;
            burst = !burst;
        }
        out
    }

    /// The OpenAI chat body of one arrival (unstreamed; `max_tokens` leaves room for the answer).
    pub fn body(&self, a: &Arrival, n: usize) -> Value {
        let text = crate::prompt::text(a.prompt_tokens);
        json!({
            "model": self.model,
            "stream": false,
            "max_tokens": 256,
            "messages": [{"role": "user",
                          "content": format!("Request {n}. {text} [[tokens={}]]", a.output_tokens)}],
        })
    }
}

/// What became of one request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub large: bool,
    /// HTTP status, or 0 when there was none (connection error, timeout).
    pub status: u16,
    /// From the scheduled send time to the whole answer, milliseconds.
    pub ms: f64,
    /// The error, for a failed request (first 200 characters).
    pub error: Option<String>,
}

/// Percentiles of completion times, milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Times {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Times {
    pub fn of(mut ms: Vec<f64>) -> Self {
        if ms.is_empty() {
            return Self::default();
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1;
            ms.get(i).copied().unwrap_or(0.0)
        };
        Self {
            count: ms.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// One system's result (a `capacity-SYSTEM.json` file of the results directory).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CapacityResult {
    /// Always `capacity`.
    pub kind: String,
    pub system: String,
    pub description: String,
    pub workload: Option<Workload>,
    pub sent: usize,
    pub ok: usize,
    /// Requests that did not get a 2xx answer, by status (`"0"`: no answer).
    pub errors_by_status: std::collections::BTreeMap<String, usize>,
    pub first_error: Option<String>,
    /// Completion times of the successful requests, all / ordinary prompts / large prompts.
    pub times: Times,
    pub times_small_prompts: Times,
    pub times_large_prompts: Times,
    /// The simulator's `/_sim/stats` after the run (per backend model: served, busy, truncated…).
    pub backend: Value,
    /// Seconds from the first send to the last answer.
    pub wall_s: f64,
    /// The fleet, smallest first: `(label, backend model name)`.
    #[serde(default)]
    pub fleet: Vec<(String, String)>,
    /// p95 completion time over *all* requests, a failed one counting as never completed
    /// (`None` when more than 5 % failed: then there is no such p95).
    #[serde(default)]
    pub p95_all_ms: Option<f64>,
    /// `/proc/loadavg` (1, 5, 15 min) when this system's run started.
    #[serde(default)]
    pub loadavg_at_start: String,
}

/// Report order: capacity routing first, then ordered, then LiteLLM's strategies.
pub fn system_rank(system: &str) -> (usize, String) {
    let rank = [
        "switchyard-capacity",
        "switchyard-ordered",
        "litellm-least-busy",
        "litellm-usage",
    ]
    .iter()
    .position(|p| system.starts_with(p))
    .unwrap_or(9);
    (rank, system.to_string())
}

impl CapacityResult {
    pub fn errors(&self) -> usize {
        self.errors_by_status.values().sum()
    }

    /// Backend 503s (requests a model refused as busy), summed over the models.
    pub fn backend_busy(&self) -> u64 {
        self.backend_sum("busy")
    }

    /// Prompts a model truncated silently, summed.
    pub fn backend_truncated(&self) -> u64 {
        self.backend_sum("truncated")
    }

    fn backend_sum(&self, key: &str) -> u64 {
        self.backend
            .as_object()
            .map(|m| m.values().filter_map(|v| v.get(key)?.as_u64()).sum())
            .unwrap_or(0)
    }

    /// Generations each backend model served.
    pub fn served(&self, model: &str) -> u64 {
        self.backend
            .get(model)
            .and_then(|v| v.get("served"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// Sends the workload to `url` (a chat completions URL) and reads `sim`'s stats afterwards.
pub async fn run(
    w: &Workload,
    url: &str,
    sim: &str,
    timeout: Duration,
    system: &str,
    description: &str,
) -> anyhow::Result<CapacityResult> {
    let target = Target::parse(url)?;
    let stats = Target::parse(sim)?.with_path("/_sim/stats");
    let read_stats = || async {
        let (_, body) = load::once(&stats, Method::GET, None, Duration::from_secs(10)).await?;
        anyhow::Ok(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
    };
    let before = read_stats().await?;
    let arrivals = w.schedule();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, a) in arrivals.iter().enumerate() {
        let body = Bytes::from(serde_json::to_vec(&w.body(a, n))?);
        let target = target.clone();
        let (at, large) = (a.at, a.large);
        tasks.spawn(async move {
            tokio::time::sleep_until((start + at).into()).await;
            let r = load::once(&target, Method::POST, Some(body), timeout).await;
            let ms = (start + at).elapsed().as_secs_f64() * 1000.0;
            let (status, error) = match r {
                Ok((s, _)) if s.is_success() => (s.as_u16(), None),
                Ok((s, b)) => (s.as_u16(), Some(String::from_utf8_lossy(&b).into_owned())),
                Err(e) => (0, Some(e.to_string())),
            };
            Outcome {
                large,
                status,
                ms,
                error: error.map(|e| e.chars().take(200).collect()),
            }
        });
    }
    let mut outcomes = Vec::with_capacity(arrivals.len());
    while let Some(o) = tasks.join_next().await {
        outcomes.push(o?);
    }
    let wall_s = start.elapsed().as_secs_f64();
    let backend = counted_since(&before, read_stats().await?);
    Ok(summarize(
        system,
        description,
        w,
        &outcomes,
        backend,
        wall_s,
    ))
}

/// Where the section starts and ends in `BENCHMARKS.md`.
pub const BEGIN: &str = "<!-- capacity-scenario:begin (bench/run.sh --targets capacity) -->";
pub const END: &str = "<!-- capacity-scenario:end -->";

/// Puts `section` between the markers of `doc`, replacing what was there; appends it (with the
/// markers) when `doc` has none.
pub fn splice(doc: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{}\n{END}\n", section.trim_end());
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let tail = doc.get(e + END.len()..).unwrap_or("");
            let tail = tail.strip_prefix('\n').unwrap_or(tail);
            format!("{}{block}{tail}", doc.get(..b).unwrap_or(""))
        }
        _ => {
            let sep = if doc.ends_with("\n\n") || doc.is_empty() {
                ""
            } else if doc.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{doc}{sep}{block}")
        }
    }
}

fn secs(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

/// The Markdown section: one row per system, in the order given.
pub fn render(results: &[CapacityResult], header: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Capacity: a bursty mixed workload on a fleet with limited slots\n"
    );
    if !header.trim().is_empty() {
        let _ = writeln!(out, "{}\n", header.trim_end());
    }
    let fleet: Vec<(String, String)> = results
        .iter()
        .find(|r| !r.fleet.is_empty())
        .map(|r| r.fleet.clone())
        .unwrap_or_default();
    if let Some(w) = results.iter().find_map(|r| r.workload.as_ref()) {
        let _ = writeln!(
            out,
            "Workload: {:.0} s of arrivals to `{}`, bursts of {:.0} s at {}× the small model's capacity \
             ({:.1} req/s) then {:.0} s at {}×; {:.0} % of prompts ({}–{} tokens) too large for the \
             small model, the rest {}–{} tokens; answers of {}–{} tokens; not streamed; seed {}. \
             Completion time runs from each request's scheduled send time to its whole answer \
             (successful requests only).\n",
            w.duration_s,
            w.model,
            w.burst_s,
            w.burst_factor,
            w.small_capacity_rps * w.burst_factor,
            w.quiet_s,
            w.quiet_factor,
            w.large_share * 100.0,
            w.large_prompt[0],
            w.large_prompt[1],
            w.small_prompt[0],
            w.small_prompt[1],
            w.output[0],
            w.output[1],
            w.seed,
        );
    }
    let mut head =
        "| system | requests | errors | backend 503s | silently truncated | p50 | p95 | p99 | p95, failures as never done |"
            .to_string();
    let mut rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|".to_string();
    for (label, model) in &fleet {
        let _ = write!(head, " {label} (`{model}`) |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for r in results {
        let total: u64 = fleet.iter().map(|(_, m)| r.served(m)).sum();
        let mut row = format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.system,
            r.sent,
            r.errors(),
            r.backend_busy(),
            r.backend_truncated(),
            secs(r.times.p50_ms),
            secs(r.times.p95_ms),
            secs(r.times.p99_ms),
            r.p95_all(),
        );
        for (_, m) in &fleet {
            let n = r.served(m);
            let share = if total == 0 {
                0.0
            } else {
                n as f64 * 100.0 / total as f64
            };
            let _ = write!(row, " {share:.0} % ({n}) |");
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Errors are requests the client got no 2xx answer for; p50, p95 and p99 are over the \
         successful requests, the next column counts a failed request as one that never \
         completed (none when more than 5 % failed); backend 503s are requests a \
         simulated Ollama refused because its queue was full (`server busy, please try again.  \
         maximum pending requests exceeded`), whether or not the system retried them elsewhere; \
         silently truncated are prompts Ollama cut to its `num_ctx`. The shares are the \
         generations each model served.\n"
    );
    for r in results {
        let mut notes = Vec::new();
        if !r.errors_by_status.is_empty() {
            let by: Vec<String> = r
                .errors_by_status
                .iter()
                .map(|(s, n)| {
                    if s == "0" {
                        format!("{n} without an answer")
                    } else {
                        format!("{n} × {s}")
                    }
                })
                .collect();
            notes.push(format!("errors: {}", by.join(", ")));
        }
        if let Some(e) = &r.first_error {
            notes.push(format!(
                "first error: `{}`",
                e.replace('`', "'").replace('\n', " ")
            ));
        }
        if !r.loadavg_at_start.is_empty() {
            notes.push(format!("load average at start {}", r.loadavg_at_start));
        }
        notes.push(format!(
            "p95 ordinary / large prompts {} / {}",
            secs(r.times_small_prompts.p95_ms),
            secs(r.times_large_prompts.p95_ms)
        ));
        let _ = writeln!(
            out,
            "- **{}**: {}. {}",
            r.system,
            r.description,
            notes.join("; ")
        );
    }
    out
}

/// The simulator's counters accumulated since `before` (a warm-up request does not count); the
/// other fields (peaks, current values) are `after`'s.
pub fn counted_since(before: &Value, mut after: Value) -> Value {
    const COUNTERS: [&str; 5] = ["requests", "served", "busy", "truncated", "reloads"];
    if let Some(models) = after.as_object_mut() {
        for (name, v) in models.iter_mut() {
            for key in COUNTERS {
                let old = before
                    .get(name)
                    .and_then(|m| m.get(key))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(n) = v.get_mut(key)
                    && let Some(now) = n.as_u64()
                {
                    *n = json!(now.saturating_sub(old));
                }
            }
        }
    }
    after
}

/// The p95 of all requests with failures as infinitely slow; `None` when over 5 % failed.
fn p95_counting_failures(outcomes: &[Outcome]) -> Option<f64> {
    let mut ms: Vec<f64> = outcomes
        .iter()
        .map(|o| {
            if o.error.is_none() {
                o.ms
            } else {
                f64::INFINITY
            }
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let i = ((ms.len() as f64 * 0.95).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
    ms.get(i).copied().filter(|v| v.is_finite())
}

impl CapacityResult {
    /// p95 with failures counted as never completed, for the table.
    fn p95_all(&self) -> String {
        match (self.errors(), self.p95_all_ms) {
            (0, _) => secs(self.times.p95_ms),
            (e, _) if e * 20 > self.sent => format!(
                "none ({:.0} % failed)",
                e as f64 * 100.0 / self.sent.max(1) as f64
            ),
            (_, Some(ms)) => secs(ms),
            (_, None) => "n/a".to_string(),
        }
    }
}

/// Folds the outcomes into a result.
pub fn summarize(
    system: &str,
    description: &str,
    w: &Workload,
    outcomes: &[Outcome],
    backend: Value,
    wall_s: f64,
) -> CapacityResult {
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_none()).collect();
    let mut errors_by_status = std::collections::BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.error.is_some()) {
        *errors_by_status.entry(o.status.to_string()).or_insert(0) += 1;
    }
    let times = |f: &dyn Fn(&Outcome) -> bool| {
        Times::of(ok.iter().filter(|o| f(o)).map(|o| o.ms).collect())
    };
    CapacityResult {
        kind: "capacity".into(),
        system: system.into(),
        description: description.into(),
        workload: Some(w.clone()),
        sent: outcomes.len(),
        ok: ok.len(),
        errors_by_status,
        first_error: outcomes.iter().find_map(|o| o.error.clone()),
        times: times(&|_| true),
        times_small_prompts: times(&|o| !o.large),
        times_large_prompts: times(&|o| o.large),
        backend,
        wall_s,
        fleet: Vec::new(),
        p95_all_ms: p95_counting_failures(outcomes),
        loadavg_at_start: String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn workload() -> Workload {
        Workload {
            duration_s: 60.0,
            small_capacity_rps: 2.0,
            burst_factor: 3.0,
            quiet_factor: 0.5,
            burst_s: 10.0,
            quiet_s: 20.0,
            large_share: 0.2,
            small_prompt: [200, 1200],
            large_prompt: [3000, 5000],
            output: [24, 72],
            model: "local-small".into(),
            seed: 7,
        }
    }

    #[test]
    fn the_schedule_is_deterministic_bursty_and_mixed() {
        let w = workload();
        let a = w.schedule();
        let b = w.schedule();
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.at == y.at && x.large == y.large)
        );
        // Bursts carry 3 × 2 req/s for 10 s of every 30, quiet spells 1 req/s for 20 s.
        let in_burst = a
            .iter()
            .filter(|x| x.at.as_secs_f64() % 30.0 < 10.0)
            .count();
        let quiet = a.len() - in_burst;
        assert!((90..=150).contains(&in_burst), "{in_burst}");
        assert!((25..=60).contains(&quiet), "{quiet}");
        let large = a.iter().filter(|x| x.large).count() as f64 / a.len() as f64;
        assert!((0.1..0.3).contains(&large), "{large}");
        assert!(a.iter().all(|x| x.large == (x.prompt_tokens >= 3000)));
        assert!(a.windows(2).all(|p| p[0].at <= p[1].at));
    }

    #[test]
    fn summary_counts_errors_and_percentiles() {
        let o = |large, status, ms: f64, err: bool| Outcome {
            large,
            status,
            ms,
            error: err.then(|| "x".to_string()),
        };
        let outcomes = vec![
            o(false, 200, 100.0, false),
            o(false, 200, 300.0, false),
            o(true, 200, 900.0, false),
            o(false, 503, 5.0, true),
            o(false, 0, 30_000.0, true),
        ];
        let backend =
            json!({"a": {"served": 3, "busy": 4, "truncated": 1}, "b": {"served": 1, "busy": 0}});
        let r = summarize("s", "d", &workload(), &outcomes, backend, 1.0);
        assert_eq!((r.sent, r.ok, r.errors()), (5, 3, 2));
        assert_eq!(r.errors_by_status.get("503"), Some(&1));
        assert_eq!(r.errors_by_status.get("0"), Some(&1));
        assert_eq!(r.times.p50_ms, 300.0);
        assert_eq!(r.times.max_ms, 900.0);
        assert_eq!(r.times_large_prompts.count, 1);
        assert_eq!(r.p95_all_ms, None);
        let few: Vec<Outcome> = (0..40)
            .map(|i| o(false, 200, f64::from(i), false))
            .chain([o(false, 503, 1.0, true)])
            .collect();
        assert_eq!(p95_counting_failures(&few), Some(38.0));
        assert_eq!(
            (r.backend_busy(), r.backend_truncated(), r.served("a")),
            (4, 1, 3)
        );
        let mut r = r;
        r.fleet = vec![("small".into(), "a".into()), ("large".into(), "b".into())];
        let md = render(&[r], "");
        assert!(md.contains("| s | 5 | 2 | 4 | 1 | 0.3 s |"), "{md}");
        assert!(md.contains("| none (40 % failed) |"), "{md}");
        let cols = |l: &str| l.matches('|').count();
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert!(lines.iter().all(|l| cols(l) == cols(lines[0])), "{md}");
        assert!(md.contains("75 % (3) | 25 % (1) |"), "{md}");
    }

    #[test]
    fn counters_are_taken_since_the_warm_up() {
        let before = json!({"a": {"served": 1, "busy": 0, "peak_running": 1}});
        let after = json!({"a": {"served": 10, "busy": 3, "peak_running": 2}, "b": {"served": 4}});
        assert_eq!(
            counted_since(&before, after),
            json!({"a": {"served": 9, "busy": 3, "peak_running": 2}, "b": {"served": 4}})
        );
    }

    #[test]
    fn splice_replaces_the_section_or_appends_it() {
        let once = splice("# Bench\n\ntext\n", "## A\nrow");
        assert_eq!(
            once,
            format!("# Bench\n\ntext\n\n{BEGIN}\n## A\nrow\n{END}\n")
        );
        let twice = splice(&format!("{once}after\n"), "## B");
        assert_eq!(
            twice,
            format!("# Bench\n\ntext\n\n{BEGIN}\n## B\n{END}\nafter\n")
        );
    }
}
