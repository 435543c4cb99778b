//! No Docker engine runs on our machines, so the compose file is checked here instead: it parses,
//! it runs the four services, and every Switchyard command in it has the form the integration
//! tests run (services.rs), so what the tests prove is what compose starts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

#[test]
fn compose_runs_the_tested_commands() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker-compose.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let compose: Value = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Yaml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    let services = compose["services"].as_object().unwrap();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for needed in ["redis", "gateway", "router", "prober", "ledger"] {
        assert!(names.contains(needed), "compose lacks {needed}");
    }
    for (name, svc) in services {
        if matches!(
            name.as_str(),
            "redis" | "prometheus" | "grafana" | "otel-collector" | "tempo"
        ) {
            continue;
        }
        let cmd: Vec<&str> = svc["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let flags: BTreeSet<&str> = cmd
            .iter()
            .copied()
            .filter(|a| a.starts_with("--"))
            .collect();
        let (sub, expected) = common::TESTED_FORMS
            .iter()
            .find(|(sub, _)| *sub == cmd[0])
            .unwrap_or_else(|| panic!("{name}: `{}` is not a tested subcommand", cmd[0]));
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(
            flags, expected,
            "{name}: `{sub}` flags differ from the tested form"
        );
        // And the binary accepts that command line.
        let mut args: Vec<&str> = cmd.clone();
        args.push("--help");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The gRPC services check the internal secret; every Switchyard service must be given the same
/// one (empty: derived from the master key in the shared config file).
#[test]
fn compose_gives_every_service_the_internal_secret() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker-compose.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let compose: Value = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Yaml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    for name in ["gateway", "router", "prober", "ledger"] {
        let svc = &compose["services"][name];
        // The environment is shared through a YAML merge key (`<<: *switchyard`).
        let env = if svc["environment"].is_object() {
            &svc["environment"]
        } else {
            &svc["<<"]["environment"]
        };
        assert_eq!(
            env["SWITCHYARD_INTERNAL_SECRET"].as_str(),
            Some("${SWITCHYARD_INTERNAL_SECRET:-}"),
            "{name}: no SWITCHYARD_INTERNAL_SECRET in {svc}"
        );
    }
}
