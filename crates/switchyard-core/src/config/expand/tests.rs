#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use super::*;
use crate::config::{HostModels, load_str};

fn load(text: &str) -> Config {
    load_str("test.yaml", text, None, &HashMap::<String, String>::new()).unwrap()
}

fn model(name: &str, ctx: Option<u32>, caps: &[&str]) -> DiscoveredModel {
    DiscoveredModel {
        name: name.into(),
        context_length: ctx,
        context_source: ctx.map(|_| "/api/show llama.context_length".into()),
        family: Some("llama".into()),
        capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn catalog(hosts: &[(&str, Vec<DiscoveredModel>)]) -> Catalog {
    let mut c = Catalog::default();
    for (base, models) in hosts {
        c.hosts.insert(
            Catalog::key(Provider::Ollama, base),
            HostModels {
                provider: "ollama".into(),
                api_base: (*base).into(),
                models: models.clone(),
            },
        );
    }
    c
}

fn five() -> Vec<DiscoveredModel> {
    vec![
        model("gemma3:4b", Some(131072), &["completion", "vision"]),
        model("llama3.2:1b", Some(2048), &["completion", "tools"]),
        model("nomic-embed-text:latest", Some(2048), &["embedding"]),
        model(
            "qwen3:latest",
            Some(40960),
            &["completion", "tools", "thinking"],
        ),
        model("smollm2:135m", Some(8192), &["completion"]),
    ]
}

const LITELLM: &str = r#"
model_list:
  - model_name: "ollama/*"
    litellm_params: {model: "ollama/*", api_base: "http://gpu:11434"}
"#;

#[test]
fn a_wildcard_entry_is_a_spec_not_a_group() {
    let c = load(LITELLM);
    assert!(c.groups.is_empty());
    assert!(c.deployments.is_empty());
    assert_eq!(c.discovery.len(), 1);
    let s = &c.discovery[0];
    assert_eq!(s.name_template, "ollama/*");
    assert_eq!(s.api_base(), "http://gpu:11434");
    assert_eq!(s.label(), "ollama/* at http://gpu:11434 (model_list[0])");
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("discovery: one group per model")),
        "{:#?}",
        c.notes
    );
}

#[test]
fn five_models_make_five_groups_with_their_windows() {
    let base = load(LITELLM);
    let c = expand(&base, &catalog(&[("http://gpu:11434", five())]));
    let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ollama/gemma3:4b",
            "ollama/llama3.2:1b",
            "ollama/nomic-embed-text",
            "ollama/qwen3",
            "ollama/smollm2:135m"
        ]
    );
    let windows: Vec<_> = c.deployments.iter().map(|d| d.context_window).collect();
    assert_eq!(
        windows,
        [
            Some(131072),
            Some(2048),
            Some(2048),
            Some(40960),
            Some(8192)
        ]
    );
    let g = c.group("ollama/nomic-embed-text").unwrap();
    assert_eq!(c.groups[g].mode, Mode::Embedding);
    let d = &c.deployments[c.groups[g].deployments[0]];
    assert_eq!(d.id, "nomic-embed-text:latest@gpu:11434");
    assert_eq!(d.model, "nomic-embed-text:latest");
    let disc = d.discovered.as_ref().unwrap();
    assert_eq!(disc.from, "ollama/* at http://gpu:11434 (model_list[0])");
    assert_eq!(disc.capabilities, ["embedding"]);
    assert!(matches!(&d.window_source, WindowSource::Discovered(s) if s.contains("/api/show")));
    // No chain unless asked for.
    assert!(c.groups.iter().all(|g| g.fallbacks.is_empty()));
    // The file's own config is untouched.
    assert!(base.groups.is_empty());
}

#[test]
fn max_context_caps_and_by_context_chains_smallest_first() {
    let base = load(
        r#"
deployments:
  - group: "local-*"
    provider: ollama
    model: "*"
    api_base: http://gpu:11434
    discovery: {max_context: 32768, auto_fallbacks: by_context, exclude: ["gemma*"]}
"#,
    );
    let c = expand(&base, &catalog(&[("http://gpu:11434", five())]));
    let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "local-llama3.2:1b",
            "local-nomic-embed-text",
            "local-qwen3",
            "local-smollm2:135m"
        ]
    );
    let qwen = &c.deployments[c.groups[c.group("local-qwen3").unwrap()].deployments[0]];
    assert_eq!(qwen.context_window, Some(32768));
    assert!(
        matches!(&qwen.window_source, WindowSource::Discovered(s) if s.contains("capped at 32768 by max_context")),
        "{:?}",
        qwen.window_source
    );
    let chain = |n: &str| -> Vec<&str> {
        c.groups[c.group(n).unwrap()]
            .fallbacks
            .iter()
            .map(|&f| c.groups[f].name.as_str())
            .collect()
    };
    assert_eq!(
        chain("local-llama3.2:1b"),
        ["local-smollm2:135m", "local-qwen3"]
    );
    assert_eq!(chain("local-smollm2:135m"), ["local-qwen3"]);
    assert!(chain("local-qwen3").is_empty());
    // Embedding groups never join a chat chain.
    assert!(chain("local-nomic-embed-text").is_empty());
}

#[test]
fn a_pattern_and_include_filter_the_models() {
    let base = load(
        r#"
model_list:
  - model_name: "*"
    litellm_params: {model: "ollama/*", api_base: "http://gpu:11434"}
    model_info: {discovery: {include: ["llama*", "qwen3"]}}
  - model_name: "small-*"
    litellm_params: {model: "ollama/smol*", api_base: "http://gpu:11434"}
"#,
    );
    let c = expand(&base, &catalog(&[("http://gpu:11434", five())]));
    let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["llama3.2:1b", "qwen3", "small-smollm2:135m"]);
}

#[test]
fn a_configured_group_wins_over_a_discovered_name() {
    let base = load(
        r#"
model_list:
  - model_name: "llama3.2:1b"
    litellm_params: {model: "ollama/llama3.2:1b", api_base: "http://other:11434", max_tokens: 1024}
  - model_name: "*"
    litellm_params: {model: "ollama/*", api_base: "http://gpu:11434"}
"#,
    );
    let c = expand(&base, &catalog(&[("http://gpu:11434", five())]));
    let g = c.group("llama3.2:1b").unwrap();
    assert_eq!(c.groups[g].deployments.len(), 1);
    assert_eq!(
        c.deployments[c.groups[g].deployments[0]].context_window,
        Some(1024)
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("the configured one is kept"))
    );
    assert_eq!(c.groups.len(), 5);
}

#[test]
fn the_same_model_on_two_hosts_is_one_group_with_two_deployments() {
    let base = load(
        r#"
model_list:
  - model_name: "*"
    litellm_params: {model: "ollama/*", api_base: "http://a:11434"}
  - model_name: "*"
    litellm_params: {model: "ollama/*", api_base: "http://b:11434"}
"#,
    );
    let m = vec![model("llama3.2:1b", Some(2048), &["completion"])];
    let c = expand(
        &base,
        &catalog(&[("http://a:11434", m.clone()), ("http://b:11434", m)]),
    );
    assert_eq!(c.groups.len(), 1);
    let ids: Vec<_> = c.groups[0]
        .deployments
        .iter()
        .map(|&d| c.deployments[d].id.as_str())
        .collect();
    assert_eq!(ids, ["llama3.2:1b@a:11434", "llama3.2:1b@b:11434"]);
}

#[test]
fn a_host_not_yet_listed_adds_nothing_and_says_so() {
    let base = load(LITELLM);
    let c = expand(&base, &Catalog::default());
    assert!(c.groups.is_empty());
    assert!(c.notes.iter().any(|n| n.contains("nothing discovered yet")));
}

#[test]
fn a_model_without_a_window_takes_the_configured_one() {
    let base = load(
        r#"
model_list:
  - model_name: "*"
    litellm_params: {model: "openai/*", api_base: "http://llama:8080"}
    model_info: {max_input_tokens: 4096}
"#,
    );
    let mut cat = Catalog::default();
    cat.hosts.insert(
        Catalog::key(Provider::OpenAi, "http://llama:8080"),
        HostModels {
            provider: "openai".into(),
            api_base: "http://llama:8080".into(),
            models: vec![model("a", None, &[]), model("b", Some(16384), &[])],
        },
    );
    let c = expand(&base, &cat);
    let windows: Vec<_> = c.deployments.iter().map(|d| d.context_window).collect();
    assert_eq!(windows, [Some(4096), Some(4096)]);
}

#[test]
fn wildcard_mistakes_are_errors_naming_the_key() {
    let bad = |text: &str| {
        load_str("t.yaml", text, None, &HashMap::<String, String>::new())
            .unwrap_err()
            .to_string()
    };
    let e = bad(r#"
model_list:
  - model_name: "everything"
    litellm_params: {model: "ollama/*"}
"#);
    assert!(e.contains("model_list[0].model_name"), "{e}");
    let e = bad(r#"
model_list:
  - model_name: "*"
    litellm_params: {model: "ollama/*"}
    model_info: {discovery: {auto_fallbacks: by_size}}
"#);
    assert!(e.contains("model_list[0].discovery.auto_fallbacks"), "{e}");
}
