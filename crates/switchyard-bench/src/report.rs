//! Turns a results directory (one JSON file per run, per target and for the machine) into
//! `BENCHMARKS.md`: the machine, the ratios that matter first (overhead against the direct
//! path, throughput against LiteLLM), the product targets with pass/fail, then every number.
//!
//! Overhead is a difference of percentiles taken on separate runs: `target pX − direct pX` for
//! the same scenario. It is the usual way to state a proxy's cost, not an exact per-request
//! subtraction, and it can come out slightly negative within noise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::load::RunResult;

/// The machine and the options of one bench run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Meta {
    pub kind: String,
    pub date: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_kb: u64,
    pub kernel: String,
    pub loadavg_at_start: String,
    pub mode: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub command: String,
    pub notes: Vec<String>,
}

/// One target's setup: started or skipped (and why), idle memory.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TargetInfo {
    pub kind: String,
    pub target: String,
    /// `ok`, or why the target was not benchmarked.
    pub status: String,
    pub description: String,
    pub pids: Vec<u32>,
    /// Summed `VmRSS` after start-up and one request, before load.
    pub idle_rss_kb: Option<u64>,
    /// The simulator's `/_sim/stats` after this target's runs: which backend models served.
    #[serde(default)]
    pub backend_stats: Option<Value>,
}

/// Everything read from a results directory.
#[derive(Debug, Default)]
pub struct Results {
    pub meta: Option<Meta>,
    pub targets: Vec<TargetInfo>,
    pub runs: Vec<RunResult>,
}

/// Reads every `*.json` file of `dir`; files of unknown kinds are ignored.
pub fn load_dir(dir: &Path) -> anyhow::Result<Results> {
    let mut r = Results::default();
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p)?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        match v.get("kind").and_then(Value::as_str) {
            Some("meta") => r.meta = Some(serde_json::from_value(v)?),
            Some("target") => {
                let t: TargetInfo = serde_json::from_value(v)?;
                // A later file for the same target (backend stats) completes the earlier one.
                if let Some(old) = r.targets.iter_mut().find(|o| o.target == t.target) {
                    merge(old, t);
                } else {
                    r.targets.push(t);
                }
            }
            Some("run") => r.runs.push(serde_json::from_value(v)?),
            _ => {}
        }
    }
    Ok(r)
}

/// Several files describe one target (set-up, then backend stats): whatever each one knows wins.
fn merge(old: &mut TargetInfo, new: TargetInfo) {
    if new.backend_stats.is_some() {
        old.backend_stats = new.backend_stats;
    }
    if new.idle_rss_kb.is_some() {
        old.idle_rss_kb = new.idle_rss_kb;
    }
    if new.status != "ok" {
        old.status = new.status;
    }
    if !new.description.is_empty() {
        old.description = new.description;
    }
    if old.pids.is_empty() {
        old.pids = new.pids;
    }
}

const TARGET_ORDER: [&str; 11] = [
    "direct",
    "passthrough",
    "serve",
    "split",
    "proxied",
    "litellm",
    "serve-nodelay",
    "split-nodelay",
    "serve-heuristic",
    "serve-llama3",
    "serve-smollm2",
];

fn target_rank(t: &str) -> usize {
    TARGET_ORDER
        .iter()
        .position(|x| *x == t)
        .unwrap_or(TARGET_ORDER.len())
}

/// Whether a run measured chat completions (results written before endpoints were labelled are).
fn is_chat(r: &RunResult) -> bool {
    r.endpoint.is_empty() || r.endpoint == "chat"
}

const ENDPOINT_ORDER: [&str; 6] = [
    "chat",
    "responses",
    "completions",
    "embeddings",
    "ollama-chat",
    "messages",
];

fn endpoint_rank(r: &RunResult) -> usize {
    let e = if is_chat(r) { "chat" } else { &r.endpoint };
    ENDPOINT_ORDER
        .iter()
        .position(|x| *x == e)
        .unwrap_or(ENDPOINT_ORDER.len())
}

/// Orders scenarios: closed loop first, non-streaming before streaming, small before 2k, by
/// connection count.
fn scenario_key(r: &RunResult) -> (usize, bool, bool, bool, usize, String) {
    (
        endpoint_rank(r),
        r.mode != "closed",
        r.stream,
        r.prompt != "small",
        r.connections,
        r.scenario.clone(),
    )
}

/// Formats microseconds for people: `85 µs`, `1.23 ms`, `2.5 s`.
pub fn fmt_us(us: f64) -> String {
    let sign = if us < 0.0 { "−" } else { "" };
    let a = us.abs();
    if a < 1000.0 {
        format!("{sign}{a:.0} µs")
    } else if a < 1_000_000.0 {
        format!("{sign}{:.2} ms", a / 1000.0)
    } else {
        format!("{sign}{:.2} s", a / 1_000_000.0)
    }
}

fn fmt_mb(kb: Option<u64>) -> String {
    kb.map_or_else(
        || "n/a".to_string(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

pub(crate) fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "n/a".to_string(), f)
}

/// Peak memory of a run: the reset `VmHWM` when it could be reset, else the sampled maximum.
fn peak_kb(r: &RunResult) -> Option<u64> {
    if r.server.peak_reset {
        r.server.peak_rss_kb.or(r.server.sampled_max_rss_kb)
    } else {
        r.server.sampled_max_rss_kb.or(r.server.peak_rss_kb)
    }
}

pub(crate) struct Index<'a> {
    runs: BTreeMap<(String, String), &'a RunResult>,
}

impl<'a> Index<'a> {
    fn new(runs: &'a [RunResult]) -> Self {
        Index {
            runs: runs
                .iter()
                .map(|r| ((r.target.clone(), r.scenario.clone()), r))
                .collect(),
        }
    }

    pub(crate) fn get(&self, target: &str, scenario: &str) -> Option<&'a RunResult> {
        self.runs
            .get(&(target.to_string(), scenario.to_string()))
            .copied()
            .filter(|r| r.requests > 0)
    }

    /// `target pX − direct pX` for the whole-request latency.
    pub(crate) fn overhead(
        &self,
        target: &str,
        scenario: &str,
        pick: fn(&crate::summary::Summary) -> f64,
    ) -> Option<f64> {
        let t = self.get(target, scenario)?;
        let d = self.get("direct", scenario)?;
        Some(pick(&t.latency) - pick(&d.latency))
    }

    /// `target TTFT pX − direct TTFT pX` for streams.
    fn ttft_added(
        &self,
        target: &str,
        scenario: &str,
        pick: fn(&crate::summary::Summary) -> f64,
    ) -> Option<f64> {
        let t = self.get(target, scenario)?.ttft.as_ref()?;
        let d = self.get("direct", scenario)?.ttft.as_ref()?;
        Some(pick(t) - pick(d))
    }

    fn rps_ratio(&self, target: &str, scenario: &str) -> Option<f64> {
        let t = self.get(target, scenario)?;
        let l = self.get("litellm", scenario)?;
        (l.rps > 0.0).then(|| t.rps / l.rps)
    }
}

pub(crate) fn p50(s: &crate::summary::Summary) -> f64 {
    s.p50_us
}
fn p99(s: &crate::summary::Summary) -> f64 {
    s.p99_us
}
fn p999(s: &crate::summary::Summary) -> f64 {
    s.p999_us
}

/// One product target and its verdict.
pub struct Check {
    pub what: String,
    pub measured: String,
    pub verdict: &'static str,
}

pub(crate) fn check(
    what: &str,
    value: Option<f64>,
    limit: f64,
    at_most: bool,
    show: impl Fn(f64) -> String,
) -> Check {
    match value {
        None => Check {
            what: what.to_string(),
            measured: "not measured".into(),
            verdict: "n/a",
        },
        Some(v) => Check {
            what: what.to_string(),
            measured: show(v),
            verdict: if (at_most && v <= limit) || (!at_most && v >= limit) {
                "holds"
            } else {
                "**fails**"
            },
        },
    }
}

/// A figure shown beside the targets for comparison, never counted as holding or failing.
fn reference(what: &str, measured: String) -> Check {
    Check {
        what: what.to_string(),
        measured,
        verdict: "(reference)",
    }
}

/// The product's performance targets, evaluated on the results.
pub fn checks(r: &Results) -> Vec<Check> {
    let ix = Index::new(&r.runs);
    let key = "nonstream-small-c8";
    let skey = "stream-small-c8";
    let serve_idle = r
        .targets
        .iter()
        .find(|t| t.target == "serve")
        .and_then(|t| t.idle_rss_kb);
    let serve_peak64 = r
        .runs
        .iter()
        .filter(|x| x.target == "serve" && x.connections == 64 && x.mode == "closed")
        .filter_map(peak_kb)
        .max();
    let mib = |kb: f64| format!("{:.1} MiB", kb / 1024.0);
    let mut what_if = Vec::new();
    if r.runs.iter().any(|x| x.target == "serve-nodelay") {
        what_if.push(check(
            "what-if serve-nodelay: overhead p50 ≤ 100 µs (8 conns, non-streaming, small)",
            ix.overhead("serve-nodelay", key, p50),
            100.0,
            true,
            fmt_us,
        ));
        what_if.push(check(
            "what-if serve-nodelay: overhead p99 ≤ 1 ms",
            ix.overhead("serve-nodelay", key, p99),
            1000.0,
            true,
            fmt_us,
        ));
        what_if.push(check(
            "what-if serve-nodelay: TTFT added p50 ≤ 200 µs (8 conns, streaming, small)",
            ix.ttft_added("serve-nodelay", skey, p50),
            200.0,
            true,
            fmt_us,
        ));
    }
    if r.runs.iter().any(|x| x.target == "split-nodelay") {
        what_if.push(check(
            "what-if split-nodelay: overhead p50 ≤ 300 µs (8 conns, non-streaming, small)",
            ix.overhead("split-nodelay", key, p50),
            300.0,
            true,
            fmt_us,
        ));
    }
    let mut floor = Vec::new();
    if r.runs.iter().any(|x| x.target == "passthrough") {
        let info = |what: &str, v: Option<f64>| reference(what, fmt_opt(v, fmt_us));
        floor.push(info(
            "floor: a proxy with no logic, 8 conns, non-streaming, small: overhead p50",
            ix.overhead("passthrough", key, p50),
        ));
        floor.push(info(
            "floor: a proxy with no logic, 8 conns, non-streaming, small: overhead p99",
            ix.overhead("passthrough", key, p99),
        ));
        floor.push(info(
            "floor: a proxy with no logic, 8 conns, streaming, small: TTFT added p50",
            ix.ttft_added("passthrough", skey, p50),
        ));
        let own = |pick: fn(&crate::summary::Summary) -> f64| {
            Some(ix.overhead("serve", key, pick)? - ix.overhead("passthrough", key, pick)?)
        };
        floor.push(info(
            "serve's own overhead above that floor, 8 conns, non-streaming, small: p50",
            own(p50),
        ));
    }
    let mut all = vec![
        check(
            "serve, 8 conns, non-streaming, small: overhead p50 ≤ 100 µs",
            ix.overhead("serve", key, p50),
            100.0,
            true,
            fmt_us,
        ),
        check(
            "serve, 8 conns, non-streaming, small: overhead p99 ≤ 1 ms",
            ix.overhead("serve", key, p99),
            1000.0,
            true,
            fmt_us,
        ),
        check(
            "serve, 8 conns, non-streaming, small: throughput ≥ 50× LiteLLM",
            ix.rps_ratio("serve", key),
            50.0,
            false,
            |v| format!("{v:.1}×"),
        ),
        check(
            "split, 8 conns, non-streaming, small: overhead p50 ≤ 300 µs",
            ix.overhead("split", key, p50),
            300.0,
            true,
            fmt_us,
        ),
        check(
            "serve, 8 conns, streaming, small: TTFT added p50 ≤ 200 µs",
            ix.ttft_added("serve", skey, p50),
            200.0,
            true,
            fmt_us,
        ),
        check(
            "serve idle RSS < 30 MiB",
            serve_idle.map(|k| k as f64),
            30.0 * 1024.0,
            true,
            mib,
        ),
        check(
            "serve peak RSS under 64 connections < 80 MiB",
            serve_peak64.map(|k| k as f64),
            80.0 * 1024.0,
            true,
            mib,
        ),
    ];
    all.extend(split_cpu(&ix));
    all.extend(below_saturation(r, &ix));
    all.extend(crate::report_tokenizers::checks(&ix));
    all.extend(floor);
    all.extend(what_if);
    all
}

/// Split mode's CPU per unstreamed request against `serve`'s (issue 18's target), closed loop at
/// one and at eight connections, and beside it, when measured, `serve` behind the no-logic proxy
/// (target `proxied`): what a second process in a request's path costs on this machine whatever
/// it does, the floor under split mode's ratio.
fn split_cpu(ix: &Index<'_>) -> Vec<Check> {
    let ratio = |target: &str, scenario: &str| {
        Some(cpu_us(ix.get(target, scenario)?)? / cpu_us(ix.get("serve", scenario)?)?)
    };
    let times = |v: f64| format!("{v:.2}×");
    let mut out = Vec::new();
    for c in [1, 8] {
        let scenario = format!("nonstream-small-c{c}");
        let conns = if c == 1 { "1 conn" } else { "8 conns" };
        out.push(check(
            &format!("split, {conns}, non-streaming, small: CPU per request ≤ 1.5× serve's"),
            ratio("split", &scenario),
            1.5,
            true,
            times,
        ));
        if let Some(v) = ratio("proxied", &scenario) {
            out.push(reference(
                &format!(
                    "floor: serve behind a proxy with no logic, {conns}, non-streaming, small: CPU per request × serve's"
                ),
                times(v),
            ));
        }
    }
    out
}

/// The 8-connection latency targets again, measured with the connections paced by an open loop
/// below saturation (`bench/run.sh --open8-rate`): the time a request spends in the target, not
/// the queueing behind every process's work on a machine a closed loop keeps saturated.
fn below_saturation(r: &Results, ix: &Index<'_>) -> Vec<Check> {
    let paced = |stream: bool| {
        r.runs
            .iter()
            .find(|x| x.mode == "open" && x.connections == 8 && x.stream == stream && is_chat(x))
            .map(|x| (x.scenario.clone(), x.rate.unwrap_or(0.0)))
    };
    let mut out = Vec::new();
    if let Some((key, rate)) = paced(false) {
        let at = format!("8 conns paced at {rate:.0} req/s, non-streaming, small");
        out.push(check(
            &format!("serve, {at}: overhead p50 ≤ 100 µs"),
            ix.overhead("serve", &key, p50),
            100.0,
            true,
            fmt_us,
        ));
        out.push(check(
            &format!("serve, {at}: overhead p99 ≤ 1 ms"),
            ix.overhead("serve", &key, p99),
            1000.0,
            true,
            fmt_us,
        ));
        out.push(check(
            &format!("split, {at}: overhead p50 ≤ 300 µs"),
            ix.overhead("split", &key, p50),
            300.0,
            true,
            fmt_us,
        ));
    }
    if let Some((key, rate)) = paced(true) {
        out.push(check(
            &format!(
                "serve, 8 conns paced at {rate:.0} req/s, streaming, small: TTFT added p50 ≤ 200 µs"
            ),
            ix.ttft_added("serve", &key, p50),
            200.0,
            true,
            fmt_us,
        ));
    }
    out
}

fn scenario_label(r: &RunResult) -> String {
    let kind = if r.stream { "stream" } else { "non-stream" };
    let kind = if is_chat(r) {
        kind.to_string()
    } else {
        format!("{} {kind}", r.endpoint)
    };
    match (r.mode.as_str(), r.rate) {
        ("open", Some(rate)) => format!(
            "{kind}, {} prompt, open loop {rate:.0} req/s, ≤ {} conns",
            r.prompt, r.connections
        ),
        _ => format!("{kind}, {} prompt, c={}", r.prompt, r.connections),
    }
}

/// One ratio table: per scenario, each target's overhead, TTFT added, throughput × LiteLLM.
fn ratio_table(out: &mut String, ix: &Index<'_>, scenarios: &[&RunResult], targets: &[&str]) {
    let gateways: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| *t != "litellm")
        .collect();
    let mut head = String::from("| scenario |");
    let mut rule = String::from("|---|");
    for t in targets {
        let _ = write!(head, " {t} overhead p50 / p99 |");
        rule.push_str("---|");
    }
    for t in &gateways {
        let _ = write!(head, " {t} TTFT added p50 |");
        rule.push_str("---|");
    }
    for t in &gateways {
        let _ = write!(head, " {t} ×LiteLLM |");
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for s in scenarios {
        let sc = s.scenario.as_str();
        let mut row = format!("| {} |", scenario_label(s));
        for t in targets {
            let cell = match (ix.overhead(t, sc, p50), ix.overhead(t, sc, p99)) {
                (Some(a), Some(b)) => format!("{} / {}", fmt_us(a), fmt_us(b)),
                _ => "n/a".into(),
            };
            let _ = write!(row, " {cell} |");
        }
        for t in &gateways {
            let cell = if s.stream {
                fmt_opt(ix.ttft_added(t, sc, p50), fmt_us)
            } else {
                "—".into()
            };
            let _ = write!(row, " {cell} |");
        }
        for t in &gateways {
            let cell = fmt_opt(ix.rps_ratio(t, sc), |v| format!("{v:.0}×"));
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
}

/// CPU per request in microseconds, from seconds per 1000 requests.
pub(crate) fn cpu_us(r: &RunResult) -> Option<f64> {
    r.server.cpu_s_per_1000.map(|s| s * 1000.0)
}

/// Per endpoint (chat, Responses, text completions, embeddings, Ollama chat, Anthropic messages): at one connection and paced,
/// the direct p50, each gateway's overhead p50 and its CPU per request beside the floor's.
fn endpoint_table(out: &mut String, ix: &Index<'_>, scenarios: &[&RunResult], targets: &[&str]) {
    let rows: Vec<&RunResult> = scenarios
        .iter()
        .copied()
        .filter(|x| x.prompt == "small")
        .filter(|x| (x.mode == "closed" && x.connections == 1) || x.mode == "open")
        .filter(|x| x.rate.is_none_or(|_| x.connections == 8))
        .collect();
    if !rows.iter().any(|x| !is_chat(x)) {
        return;
    }
    let gateways: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| *t != "litellm")
        .collect();
    let _ = writeln!(
        out,
        "### Per endpoint
"
    );
    let _ = writeln!(
        out,
        "Each endpoint through the gateway against the simulator's own route sent the exact body \
         the gateway sends it (chat and Responses: `/api/chat`; text completions: `/api/generate`; \
         embeddings: `/api/embed`), at one connection and paced below saturation. CPU is the \
         target's processes' user+system time per request (for `direct`, the simulator's).\n"
    );
    let mut head = String::from("| endpoint | load | direct p50 |");
    let mut rule = String::from("|---|---|---|");
    for t in &gateways {
        let _ = write!(head, " {t} p50 | {t} overhead p50 / p99 |");
        rule.push_str("---|---|");
    }
    head.push_str(" direct CPU / req |");
    rule.push_str("---|");
    for t in &gateways {
        let _ = write!(head, " {t} CPU / req |");
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for s in rows {
        let sc = s.scenario.as_str();
        let endpoint = if is_chat(s) { "chat" } else { &s.endpoint };
        let kind = if s.stream { ", streamed" } else { "" };
        let load = match s.rate {
            Some(rate) => format!("8 conns paced at {rate:.0} req/s{kind}"),
            None => format!("1 conn{kind}"),
        };
        let direct = ix.get("direct", sc);
        let mut row = format!(
            "| {endpoint} | {load} | {} |",
            fmt_opt(direct.map(|d| d.latency.p50_us), fmt_us)
        );
        for t in &gateways {
            let p = ix.get(t, sc).map(|x| x.latency.p50_us);
            let ov = match (ix.overhead(t, sc, p50), ix.overhead(t, sc, p99)) {
                (Some(a), Some(b)) => format!("{} / {}", fmt_us(a), fmt_us(b)),
                _ => "n/a".into(),
            };
            let _ = write!(row, " {} | {ov} |", fmt_opt(p, fmt_us));
        }
        let _ = write!(row, " {} |", fmt_opt(direct.and_then(cpu_us), fmt_us));
        for t in &gateways {
            let _ = write!(
                row,
                " {} |",
                fmt_opt(ix.get(t, sc).and_then(cpu_us), fmt_us)
            );
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
}

/// Renders `BENCHMARKS.md`. `appendix` is hand-written Markdown added at the end
/// (methodology, analysis notes).
pub fn render(r: &Results, appendix: &str) -> String {
    let mut out = String::new();
    let ix = Index::new(&r.runs);
    let mut scenarios: Vec<&RunResult> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut sorted: Vec<&RunResult> = r.runs.iter().collect();
    sorted.sort_by_key(|x| (scenario_key(x), target_rank(&x.target)));
    for x in &sorted {
        if seen.insert(x.scenario.clone()) {
            scenarios.push(x);
        }
    }
    let has = |t: &str| r.runs.iter().any(|x| x.target == t && x.requests > 0);

    let _ = writeln!(out, "# Switchyard benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `bench/run.sh` (`make bench`); the raw JSON of this run is under `bench/results/`. \
         Re-running the script rewrites this file.\n"
    );
    if let Some(m) = &r.meta {
        let _ = writeln!(out, "## Machine and run\n");
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| date | {} |", m.date);
        let _ = writeln!(out, "| CPU | {} × {} |", m.nproc, m.cpu_model);
        let _ = writeln!(
            out,
            "| memory | {:.1} GiB |",
            m.mem_total_kb as f64 / 1024.0 / 1024.0
        );
        let _ = writeln!(out, "| kernel | {} |", m.kernel);
        let _ = writeln!(out, "| load average at start | {} |", m.loadavg_at_start);
        let _ = writeln!(
            out,
            "| mode | {} ({} s measured after {} s warm-up per scenario) |",
            m.mode, m.duration_s, m.warmup_s
        );
        let _ = writeln!(out, "| command | `{}` |", m.command);
        for n in &m.notes {
            let _ = writeln!(out, "| note | {n} |");
        }
        let _ = writeln!(out);
    }
    if !r.targets.is_empty() {
        let _ = writeln!(out, "Targets:\n");
        let mut ts: Vec<&TargetInfo> = r.targets.iter().collect();
        ts.sort_by_key(|t| target_rank(&t.target));
        for t in ts {
            let status = if t.status == "ok" {
                String::new()
            } else {
                format!(" — **not measured: {}**", t.status)
            };
            let _ = writeln!(out, "- `{}`: {}{}", t.target, t.description, status);
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Ratios\n");
    let _ = writeln!(
        out,
        "Overhead = target latency − direct latency at the same percentile and scenario. \
         TTFT added = same for time to first content (streams). ×LiteLLM = requests/s ÷ LiteLLM's requests/s.\n"
    );
    let shipped: Vec<&str> = ["passthrough", "serve", "split", "litellm"]
        .into_iter()
        .filter(|t| r.runs.iter().any(|x| x.target == *t))
        .collect();
    let chat: Vec<&RunResult> = scenarios.iter().copied().filter(|x| is_chat(x)).collect();
    ratio_table(&mut out, &ix, &chat, &shipped);
    endpoint_table(&mut out, &ix, &scenarios, &shipped);
    crate::report_tokenizers::table(&mut out, &ix, &r.runs);
    let what_if: Vec<&str> = ["serve-nodelay", "split-nodelay"]
        .into_iter()
        .filter(|t| r.runs.iter().any(|x| x.target == *t))
        .collect();
    if !what_if.is_empty() {
        let _ = writeln!(
            out,
            "What-if builds (not the shipped binary): the same services with `TCP_NODELAY` on accepted sockets \
             (`crates/switchyard-bench/examples/nodelay.rs`), same load:\n"
        );
        let mut with_litellm = what_if.clone();
        if shipped.contains(&"litellm") {
            with_litellm.push("litellm");
        }
        ratio_table(&mut out, &ix, &chat, &with_litellm);
    }

    let _ = writeln!(out, "## Product targets\n");
    let _ = writeln!(out, "| target | measured | verdict |\n|---|---|---|");
    for c in checks(r) {
        let _ = writeln!(out, "| {} | {} | {} |", c.what, c.measured, c.verdict);
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## All numbers\n");
    let _ = writeln!(
        out,
        "Latency is send → last byte; TTFT is send → first body frame with answer text. CPU is the server \
         process(es)' user+system time over the measured window per 1000 successful requests (for `direct` \
         it is the simulator's own cost). Peak RSS is the server's `VmHWM` over the window (reset at its start).\n"
    );
    let _ = writeln!(
        out,
        "| scenario | target | req/s | p50 | p99 | p99.9 | overhead p50 | overhead p99 | TTFT p50 | TTFT p99 | CPU s / 1000 req | peak RSS | errors |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for x in &sorted {
        let ov = |pick: fn(&crate::summary::Summary) -> f64| {
            if x.target == "direct" {
                "—".to_string()
            } else {
                fmt_opt(ix.overhead(&x.target, &x.scenario, pick), fmt_us)
            }
        };
        let tt = |pick: fn(&crate::summary::Summary) -> f64| match &x.ttft {
            Some(t) if t.count > 0 => fmt_us(pick(t)),
            _ => "—".to_string(),
        };
        let errors = if x.errors == 0 {
            "0".to_string()
        } else {
            let kinds: Vec<String> = x
                .error_kinds
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{} ({})", x.errors, kinds.join(", "))
        };
        let lat = |pick: fn(&crate::summary::Summary) -> f64| {
            if x.requests > 0 {
                fmt_us(pick(&x.latency))
            } else {
                "n/a".into()
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            scenario_label(x),
            x.target,
            x.rps,
            lat(p50),
            lat(p99),
            lat(p999),
            ov(p50),
            ov(p99),
            tt(p50),
            tt(p99),
            fmt_opt(x.server.cpu_s_per_1000, |v| format!("{v:.3}")),
            fmt_mb(peak_kb(x)),
            errors,
        );
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## Memory\n");
    let _ = writeln!(
        out,
        "| target | idle RSS | peak RSS, any scenario | peak RSS, 64 connections |\n|---|---|---|---|"
    );
    let mut names: Vec<String> = r.targets.iter().map(|t| t.target.clone()).collect();
    for x in &r.runs {
        if !names.contains(&x.target) {
            names.push(x.target.clone());
        }
    }
    names.sort_by_key(|t| target_rank(t));
    for t in &names {
        let idle = r
            .targets
            .iter()
            .find(|x| &x.target == t)
            .and_then(|x| x.idle_rss_kb);
        let all = r
            .runs
            .iter()
            .filter(|x| &x.target == t)
            .filter_map(peak_kb)
            .max();
        let c64 = r
            .runs
            .iter()
            .filter(|x| &x.target == t && x.connections == 64)
            .filter_map(peak_kb)
            .max();
        let _ = writeln!(
            out,
            "| {t} | {} | {} | {} |",
            fmt_mb(idle),
            fmt_mb(all),
            fmt_mb(c64)
        );
    }
    let _ = writeln!(out);

    let stats: Vec<&TargetInfo> = r
        .targets
        .iter()
        .filter(|t| t.backend_stats.is_some())
        .collect();
    if !stats.is_empty() {
        let _ = writeln!(out, "## Which backend model served\n");
        let _ = writeln!(
            out,
            "Requests the simulator received per model during each target's runs (warm-up and probes included).\n"
        );
        let _ = writeln!(out, "| target | requests per backend model |\n|---|---|");
        for t in stats {
            let mut parts = Vec::new();
            if let Some(Value::Object(m)) = &t.backend_stats {
                for (model, v) in m {
                    let n = v.get("requests").and_then(Value::as_u64).unwrap_or(0);
                    parts.push(format!("{model}: {n}"));
                }
            }
            let _ = writeln!(out, "| {} | {} |", t.target, parts.join(", "));
        }
        let _ = writeln!(out);
    }
    if !has("litellm") {
        let _ = writeln!(
            out,
            "LiteLLM was not measured in this run, so the ×LiteLLM ratios are n/a.\n"
        );
    }
    out.push_str(appendix);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::summary::Summary;

    fn run(target: &str, scenario: &str, p50: f64, rps: f64) -> RunResult {
        RunResult {
            kind: "run".into(),
            target: target.into(),
            scenario: scenario.into(),
            prompt: "small".into(),
            connections: 8,
            mode: "closed".into(),
            requests: 100,
            rps,
            latency: Summary {
                count: 100,
                p50_us: p50,
                p99_us: p50 * 2.0,
                ..Summary::default()
            },
            ..RunResult::default()
        }
    }

    #[test]
    fn overhead_and_checks() {
        let r = Results {
            meta: None,
            targets: vec![TargetInfo {
                kind: "target".into(),
                target: "serve".into(),
                status: "ok".into(),
                idle_rss_kb: Some(10 * 1024),
                ..TargetInfo::default()
            }],
            runs: vec![
                run("direct", "nonstream-small-c8", 100.0, 10_000.0),
                run("serve", "nonstream-small-c8", 180.0, 6000.0),
                run("litellm", "nonstream-small-c8", 20_000.0, 60.0),
            ],
        };
        let c = checks(&r);
        assert_eq!(c[0].measured, "80 µs");
        assert_eq!(c[0].verdict, "holds");
        assert_eq!(c[1].measured, "160 µs");
        assert_eq!(c[2].measured, "100.0×");
        assert_eq!(c[3].verdict, "n/a");
        assert_eq!(c[5].verdict, "holds");
        let md = render(&r, "APPENDIX");
        assert!(
            md.contains("| non-stream, small prompt, c=8 | 80 µs / 160 µs |"),
            "{md}"
        );
        assert!(md.ends_with("APPENDIX"));
    }

    #[test]
    fn paced_eight_connection_runs_get_their_own_target_rows() {
        let paced = |target: &str, p50: f64| RunResult {
            mode: "open".into(),
            rate: Some(2000.0),
            ..run(target, "open2000-nonstream-small-c8", p50, 2000.0)
        };
        let r = Results {
            meta: None,
            targets: Vec::new(),
            runs: vec![
                run("direct", "nonstream-small-c8", 100.0, 10_000.0),
                run("serve", "nonstream-small-c8", 300.0, 6000.0),
                paced("direct", 100.0),
                paced("serve", 190.0),
                paced("split", 450.0),
            ],
        };
        let c = checks(&r);
        let find = |what: &str| c.iter().find(|x| x.what.starts_with(what)).unwrap();
        assert_eq!(find("serve, 8 conns, non-streaming").verdict, "**fails**");
        let serve = find("serve, 8 conns paced at 2000 req/s, non-streaming, small: overhead p50");
        assert_eq!((serve.measured.as_str(), serve.verdict), ("90 µs", "holds"));
        let split = find("split, 8 conns paced at 2000 req/s");
        assert_eq!(
            (split.measured.as_str(), split.verdict),
            ("350 µs", "**fails**")
        );
        // No paced streaming run: no row for it.
        assert!(
            !c.iter()
                .any(|x| x.what.contains("paced") && x.what.contains("TTFT"))
        );
        let md = render(&r, "");
        assert!(md.contains("open loop 2000 req/s, ≤ 8 conns"), "{md}");
    }

    #[test]
    fn the_passthrough_floor_is_reported_beside_the_targets() {
        let r = Results {
            meta: None,
            targets: Vec::new(),
            runs: vec![
                run("direct", "nonstream-small-c8", 100.0, 10_000.0),
                run("passthrough", "nonstream-small-c8", 150.0, 8000.0),
                run("serve", "nonstream-small-c8", 400.0, 6000.0),
            ],
        };
        let c = checks(&r);
        let floor = c
            .iter()
            .find(|x| {
                x.what.starts_with(
                    "floor: a proxy with no logic, 8 conns, non-streaming, small: overhead p50",
                )
            })
            .unwrap();
        assert_eq!(
            (floor.measured.as_str(), floor.verdict),
            ("50 µs", "(reference)")
        );
        let own = c
            .iter()
            .find(|x| x.what.starts_with("serve's own overhead above that floor"))
            .unwrap();
        assert_eq!(own.measured, "250 µs");
        // Not a target: never counted as holding or failing.
        assert!(
            c.iter()
                .filter(|x| x.what.contains("floor"))
                .all(|x| x.verdict == "(reference)")
        );
        let md = render(&r, "");
        assert!(md.contains("| passthrough overhead p50 / p99 |"), "{md}");
    }

    #[test]
    fn split_cpu_is_checked_against_serve_with_the_proxied_floor_beside_it() {
        let cpu = |target: &str, scenario: &str, ms_per_1000: f64| RunResult {
            server: crate::load::ServerCost {
                cpu_s_per_1000: Some(ms_per_1000 / 1000.0),
                ..Default::default()
            },
            ..run(target, scenario, 300.0, 5000.0)
        };
        let r = Results {
            meta: None,
            targets: Vec::new(),
            runs: vec![
                cpu("serve", "nonstream-small-c1", 200.0),
                cpu("split", "nonstream-small-c1", 320.0),
                cpu("proxied", "nonstream-small-c1", 290.0),
                cpu("serve", "nonstream-small-c8", 100.0),
                cpu("split", "nonstream-small-c8", 130.0),
            ],
        };
        let c = checks(&r);
        let find = |prefix: &str| c.iter().find(|x| x.what.starts_with(prefix)).unwrap();
        let one = find("split, 1 conn, non-streaming, small: CPU per request");
        assert_eq!((one.measured.as_str(), one.verdict), ("1.60×", "**fails**"));
        let eight = find("split, 8 conns, non-streaming, small: CPU per request");
        assert_eq!((eight.measured.as_str(), eight.verdict), ("1.30×", "holds"));
        let floor = find("floor: serve behind a proxy with no logic, 1 conn");
        assert_eq!(
            (floor.measured.as_str(), floor.verdict),
            ("1.45×", "(reference)")
        );
        // No proxied run at 8 connections: no floor row for it.
        assert!(
            !c.iter()
                .any(|x| x.what.contains("behind a proxy") && x.what.contains("8 conns"))
        );
    }

    #[test]
    fn endpoint_rows_stay_out_of_the_chat_ratios() {
        let ep = |target: &str, p50: f64| RunResult {
            endpoint: "embeddings".into(),
            connections: 1,
            server: crate::load::ServerCost {
                cpu_s_per_1000: Some(0.05),
                ..Default::default()
            },
            ..run(target, "embeddings-small-c1", p50, 5000.0)
        };
        let r = Results {
            runs: vec![
                run("direct", "nonstream-small-c8", 100.0, 10_000.0),
                run("serve", "nonstream-small-c8", 180.0, 6000.0),
                ep("direct", 60.0),
                ep("serve", 150.0),
            ],
            ..Results::default()
        };
        let md = render(&r, "");
        assert!(md.contains("### Per endpoint"), "{md}");
        assert!(
            md.contains(
                "| embeddings | 1 conn | 60 µs | 150 µs | 90 µs / 180 µs | 50 µs | 50 µs |"
            ),
            "{md}"
        );
        // The chat ratio table has no embeddings row; the full table has one.
        let ratios = md.split("### Per endpoint").next().unwrap();
        assert!(!ratios.contains("embeddings non-stream"), "{md}");
        assert!(
            md.contains("| embeddings non-stream, small prompt, c=1 | serve |"),
            "{md}"
        );
        assert_eq!(checks(&r)[0].measured, "80 µs");
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_us(85.4), "85 µs");
        assert_eq!(fmt_us(1234.0), "1.23 ms");
        assert_eq!(fmt_us(-12.0), "−12 µs");
        assert_eq!(fmt_us(2_500_000.0), "2.50 s");
    }
}
