//! The exact-tokenizer section of `BENCHMARKS.md`: per prompt size, streamed or not, first or
//! 10th turn, what `serve` adds with the heuristic counter and with each exact vocabulary
//! configured as the deployments' `tokenizer:`, and the CPU each spends per request, so the cost
//! of exact counting is read beside the heuristic's in one run (issue 18's targets).

use std::fmt::Write as _;

use crate::load::RunResult;
use crate::report::{Check, Index, check, cpu_us, fmt_opt, fmt_us, p50};

/// The targets of the exact-tokenizer scenarios, heuristic first.
const TARGETS: [(&str, &str); 3] = [
    ("serve-heuristic", "heuristic"),
    ("serve-llama3", "Llama 3"),
    ("serve-smollm2", "SmolLM2"),
];

/// Label of a scenario's prompt: `32k, turn 10` → (32000, 10).
fn size_turn(prompt: &str) -> (u64, u32) {
    let (size, turn) = prompt.split_once(", turn ").unwrap_or((prompt, "1"));
    let tokens = size
        .strip_suffix('k')
        .and_then(|k| k.parse::<u64>().ok())
        .map(|k| k * 1000)
        .or_else(|| size.parse().ok())
        .unwrap_or(0);
    (tokens, turn.parse().unwrap_or(1))
}

fn scenario(stream: bool, size: &str, turn: u32) -> String {
    let kind = if stream { "stream" } else { "nonstream" };
    format!("tok-{kind}-{size}-t{turn}-c1")
}

fn is_tokenizer(r: &RunResult) -> bool {
    r.endpoint == "tokenizer"
}

/// Writes the section when the run has exact-tokenizer scenarios.
pub(crate) fn table(out: &mut String, ix: &Index<'_>, runs: &[RunResult]) {
    let mut rows: Vec<&RunResult> = runs
        .iter()
        .filter(|r| is_tokenizer(r) && r.target == "direct")
        .collect();
    if rows.is_empty() {
        return;
    }
    rows.sort_by_key(|r| (r.stream, size_turn(&r.prompt)));
    let _ = writeln!(out, "### Exact tokenizers\n");
    let _ = writeln!(
        out,
        "`serve` with a fallback chain of 4k → 16k → 64k → 256k windows (one simulator model), the \
         request naming the 4k group, at one connection; each prompt lands well inside one window \
         by any count, so an exact count is needed only where a cheap one cannot decide. Prompts are the README and ARCHITECTURE text \
         repeated, exactly the size shown by the Llama 3 vocabulary. Turn 1 is one new user message; \
         turn 10 resends 18 earlier messages and adds a new one of a tenth of the tokens. The new \
         message differs on every request, so only the resent history can come from a cache. The \
         exact columns have that vocabulary as every deployment's `model_info.tokenizer`. Overhead \
         is p50 − the simulator's p50 for the body `serve` sends it; CPU is `serve`'s user+system \
         time per request; × heur. is the overhead's ratio to the heuristic counter's.\n"
    );
    let mut head = String::from("| prompt | turn | streamed | direct p50 |");
    let mut rule = String::from("|---|---|---|---|");
    for (i, (_, name)) in TARGETS.iter().enumerate() {
        let _ = write!(head, " {name} overhead p50 | {name} CPU / req |");
        rule.push_str("---|---|");
        if i > 0 {
            let _ = write!(head, " {name} × heur. |");
            rule.push_str("---|");
        }
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for d in rows {
        let sc = d.scenario.as_str();
        let (_, turn) = size_turn(&d.prompt);
        let size = d.prompt.split(',').next().unwrap_or("?");
        let mut row = format!(
            "| {size} | {turn} | {} | {} |",
            if d.stream { "yes" } else { "no" },
            fmt_us(d.latency.p50_us)
        );
        let heuristic = ix.overhead(TARGETS[0].0, sc, p50);
        for (i, (t, _)) in TARGETS.iter().enumerate() {
            let ov = ix.overhead(t, sc, p50);
            let cpu = ix.get(t, sc).and_then(cpu_us);
            let _ = write!(row, " {} | {} |", fmt_opt(ov, fmt_us), fmt_opt(cpu, fmt_us));
            if i > 0 {
                let ratio = match (ov, heuristic) {
                    (Some(a), Some(h)) if h > 0.0 => format!("{:.2}×", a / h),
                    _ => "n/a".into(),
                };
                let _ = write!(row, " {ratio} |");
            }
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
}

/// Issue 18's targets on the exact-tokenizer scenarios (none when they were not run).
pub(crate) fn checks(ix: &Index<'_>) -> Vec<Check> {
    let t1 = scenario(false, "32k", 1);
    if ix.get("direct", &t1).is_none() {
        return Vec::new();
    }
    let t10 = scenario(false, "32k", 10);
    let mut out = Vec::new();
    for (t, name) in &TARGETS[1..] {
        let ratio = match (
            ix.overhead(t, &t1, p50),
            ix.overhead("serve-heuristic", &t1, p50),
        ) {
            (Some(a), Some(h)) if h > 0.0 => Some(a / h),
            _ => None,
        };
        out.push(check(
            &format!(
                "32k prompt, {name} tokenizer, 1 conn, non-streaming, turn 1: overhead p50 ≤ 1.5× the heuristic's"
            ),
            ratio,
            1.5,
            true,
            |v| format!("{v:.2}×"),
        ));
        let turns = match (
            ix.get(t, &t10).and_then(cpu_us),
            ix.get(t, &t1).and_then(cpu_us),
        ) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        out.push(check(
            &format!(
                "32k conversation, {name} tokenizer, non-streaming: turn 10's CPU per request ≤ turn 1's"
            ),
            turns,
            1.0,
            true,
            |v| format!("{v:.2}× turn 1"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::load::ServerCost;
    use crate::report::{Results, render};
    use crate::summary::Summary;

    fn run(target: &str, turn: u32, p50_us: f64, cpu_ms: f64) -> RunResult {
        RunResult {
            kind: "run".into(),
            target: target.into(),
            scenario: scenario(false, "32k", turn),
            endpoint: "tokenizer".into(),
            prompt: format!("32k, turn {turn}"),
            connections: 1,
            mode: "closed".into(),
            requests: 10,
            latency: Summary {
                count: 10,
                p50_us,
                ..Summary::default()
            },
            server: ServerCost {
                cpu_s_per_1000: Some(cpu_ms),
                ..ServerCost::default()
            },
            ..RunResult::default()
        }
    }

    #[test]
    fn the_section_and_its_targets() {
        let r = Results {
            runs: vec![
                run("direct", 1, 1000.0, 0.5),
                run("serve-heuristic", 1, 3000.0, 1.0),
                run("serve-llama3", 1, 4000.0, 2.0),
                run("serve-smollm2", 1, 7000.0, 3.0),
                run("direct", 10, 1000.0, 0.5),
                run("serve-llama3", 10, 1500.0, 1.0),
                run("serve-smollm2", 10, 1500.0, 4.0),
            ],
            ..Results::default()
        };
        let md = render(&r, "");
        assert!(md.contains("### Exact tokenizers"), "{md}");
        assert!(
            md.contains(
                "| 32k | 1 | no | 1.00 ms | 2.00 ms | 1.00 ms | 3.00 ms | 2.00 ms | 1.50× |"
            ),
            "{md}"
        );
        // No chat ratio row for them.
        let ratios = md.split("### Exact tokenizers").next().unwrap();
        assert!(!ratios.contains("tokenizer non-stream"), "{md}");
        let c = crate::report::checks(&r);
        let find = |w: &str| c.iter().find(|x| x.what.starts_with(w)).unwrap();
        let l = find("32k prompt, Llama 3");
        assert_eq!((l.measured.as_str(), l.verdict), ("1.50×", "holds"));
        let s = find("32k prompt, SmolLM2");
        assert_eq!(s.verdict, "**fails**");
        assert_eq!(find("32k conversation, Llama 3").verdict, "holds");
        assert_eq!(find("32k conversation, SmolLM2").verdict, "**fails**");
    }

    #[test]
    fn sizes_and_turns_are_read_from_the_label() {
        assert_eq!(size_turn("100k, turn 10"), (100_000, 10));
        assert_eq!(size_turn("2k"), (2000, 1));
    }
}
