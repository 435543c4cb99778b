//! `switchyard check` on the README's own examples (the default `switchyard.yaml`, the seed
//! config, the block of Switchyard's own keys) under every routing strategy and with a master
//! key: it must not print statements the code has outgrown ("in this version candidates are
//! tried in fallback-chain order", keys "not used yet").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

/// Phrases of statements that are no longer true.
const STALE: &[&str] = &[
    "in this version",
    "fallback-chain order after",
    "not used yet",
    "master_key: accepted",
    "not used by the ordered strategy",
];

const STRATEGIES: &[&str] = &[
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing",
    "usage-based-routing-v2",
    "warm-first",
    "ordered",
];

fn repo(path: &str) -> String {
    let p = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// `check`'s output for a config text; it must succeed.
fn check(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name}: check failed:\n{stderr}");
    let all = format!("{stdout}{stderr}");
    for stale in STALE {
        assert!(
            !all.contains(stale),
            "{name}: check says {stale:?}, which is no longer true:\n{all}"
        );
    }
    all
}

/// The yaml block that follows `heading` in the README.
fn readme_block(heading: &str) -> String {
    let readme = repo("README.md");
    let at = readme.find(heading).expect("heading in README");
    let rest = &readme[at..];
    let start = rest.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = rest[start..].find("```").expect("the block's end");
    rest[start..start + end].to_string()
}

#[test]
fn check_on_the_readme_examples_prints_no_stale_statement() {
    let default = repo("switchyard.yaml");
    let seed = repo("fixtures/seed-config.yaml");
    check("switchyard.yaml", &default);
    check("seed-config.yaml", &seed);
    let with_key = format!("{default}\ngeneral_settings:\n  master_key: sk-example-master-key\n");
    let out = check("switchyard.yaml with a master key", &with_key);
    assert!(out.contains("master key set"), "{out}");

    // Switchyard's own keys: the README's block names three groups in its chain but defines one.
    let own = readme_block("### Switchyard's own keys").replacen(
        "\nfallbacks:",
        "\n  - {group: local-medium, provider: ollama, model: llama3.1:8b, api_base: http://localhost:11434, context_window: 8192}\n  - {group: local-large, provider: ollama, model: mistral:7b, api_base: http://localhost:11434, context_window: 32768}\nfallbacks:",
        1,
    );
    check("README's own keys", &own);

    // Every strategy is explained as what it does.
    for s in STRATEGIES {
        let text = seed.replace(
            "routing_strategy: usage-based-routing",
            &format!("routing_strategy: {s}"),
        );
        let out = check(s, &text);
        let line = out
            .lines()
            .find(|l| l.contains(&format!("routing_strategy: {s}:")))
            .unwrap_or_else(|| panic!("no note for {s}:\n{out}"));
        assert!(line.contains("within a group"), "{line}");
    }
}
