//! The binary's command line: `check` explains the seed config; bad configs name the key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn switchyard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    format!("{}/../../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_explains_every_window_of_the_seed_config() {
    let (ok, out, err) = switchyard(&["check", &fixture("seed-config.yaml")]);
    assert!(ok, "{err}");
    for (group, window) in [
        ("local-small", 2048),
        ("local-medium", 8192),
        ("local-large", 32768),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("- {group} (")) && l.contains("context window"))
            .unwrap_or_else(|| panic!("no window line for {group} in:\n{out}"));
        assert!(
            line.contains(&format!(
                "context window {window} from litellm_params.max_tokens"
            )),
            "{line}"
        );
    }
    assert!(
        out.contains("plain list, read as one ordered chain"),
        "{out}"
    );
    assert!(out.contains("usage-based-routing"), "{out}");
}

#[test]
fn check_names_the_offending_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(fixture("seed-config.yaml"))
        .unwrap()
        .replace("max_tokens: 8192", "max_tokens: -3");
    std::fs::write(&path, text).unwrap();
    let (ok, _, err) = switchyard(&["check", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("model_list[1].litellm_params.max_tokens"),
        "{err}"
    );

    let (ok, _, err) = switchyard(&["check", "/nonexistent/switchyard.yaml"]);
    assert!(!ok);
    assert!(err.contains("cannot read config file"), "{err}");
}

#[test]
fn explain_shows_the_route_without_calling_a_model() {
    let prompt = vec!["cat"; 1600].join(" ");
    let (ok, out, err) = switchyard(&[
        "explain",
        "--config",
        &fixture("seed-config.yaml"),
        "--model",
        "local-small",
        "--prompt",
        &prompt,
    ]);
    assert!(ok, "{err}");
    let first = out
        .lines()
        .find(|l| l.trim_start().starts_with("1."))
        .unwrap();
    assert!(first.contains("llama3.1:8b"), "{out}");
    assert!(out.contains("excluded (needs"), "{out}");
    let (ok, out, _) = switchyard(&[
        "explain",
        "--config",
        &fixture("seed-config.yaml"),
        "--model",
        "local-small",
        "--prompt",
        "hi",
        "--max-tokens",
        "40000",
    ]);
    assert!(ok);
    assert!(out.contains("context_length_exceeded"), "{out}");
}
