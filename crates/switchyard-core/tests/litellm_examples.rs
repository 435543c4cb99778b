//! LiteLLM's own example configs, read from the installed `litellm` package (never copied here):
//! every one that names an Ollama or OpenAI-compatible model loads, and every entry it cannot
//! serve is listed with a reason. Skipped with a message when the Python venv is absent
//! (`SWITCHYARD_PYTHON` unset), like the other Python-dependent tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use switchyard_core::config::{ConfigError, load_str};

/// The installed `litellm/proxy` directory, found without importing the package (slow).
fn litellm_proxy_dir() -> Option<PathBuf> {
    let Ok(python) = std::env::var("SWITCHYARD_PYTHON") else {
        eprintln!("skipped: SWITCHYARD_PYTHON is not set (make test sets it up)");
        return None;
    };
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import importlib.util as u; print(u.find_spec('litellm').submodule_search_locations[0])",
        ])
        .output()
        .expect("run the venv's python");
    if !out.status.success() {
        eprintln!(
            "skipped: litellm is not installed in {python}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let root = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    Some(root.join("proxy"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    files
}

/// A value for every `os.environ/NAME` the file references: addresses on loopback, a
/// placeholder secret otherwise (the file is only loaded, nothing is called).
fn env_for(text: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for part in text.split("os.environ/").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let value = if name.contains("DATABASE") {
            "postgres://127.0.0.1:5432/none".to_string()
        } else if name.contains("REDIS_URL") {
            "redis://127.0.0.1:6379".to_string()
        } else if name.contains("PORT") {
            "6379".to_string()
        } else if name.contains("HOST") {
            "127.0.0.1".to_string()
        } else if name.contains("BASE") || name.contains("URL") || name.contains("ENDPOINT") {
            "http://127.0.0.1:9".to_string()
        } else {
            "placeholder-value-0123456789".to_string()
        };
        env.insert(name, value);
    }
    // LiteLLM reads OpenAI's key from here for bare names and openai/ without a key.
    env.insert("OPENAI_API_KEY".into(), "sk-placeholder".into());
    env
}

/// The `litellm_params.model` of each `model_list` entry.
fn models_of(text: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_yaml::from_str(text).unwrap_or_default();
    doc["model_list"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    e["litellm_params"]["model"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether LiteLLM would send the model to Ollama or an OpenAI-compatible API.
fn names_local_or_openai(model: &str) -> bool {
    !model.contains('*')
        && (model.starts_with("ollama/")
            || model.starts_with("ollama_chat/")
            || model.starts_with("openai/")
            || model.starts_with("gpt-"))
}

#[test]
fn litellm_example_configs_load_with_the_rest_listed() {
    let Some(proxy) = litellm_proxy_dir() else {
        return;
    };
    let mut files = yaml_files(&proxy.join("example_config_yaml"));
    files.extend(yaml_files(&proxy));
    assert!(
        !files.is_empty(),
        "no example configs under {}",
        proxy.display()
    );
    let mut checked = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let models = models_of(&text);
        if !models.iter().any(|m| names_local_or_openai(m)) {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let env = env_for(&text);
        let config = match load_str(&name, &text, None, &env) {
            Ok(c) => c,
            Err(e @ ConfigError::Invalid { .. }) | Err(e @ ConfigError::MissingEnv { .. }) => {
                panic!("{name}: {e}")
            }
            Err(e) => panic!("{name}: {e}"),
        };
        // Every entry is served, discovered from (a wildcard on a server of the user's), or
        // listed with a reason.
        assert_eq!(
            config.deployments.len() + config.discovery.len() + config.unservable.len(),
            models.len(),
            "{name}: served {:?}, listed {:?}",
            config.deployments.iter().map(|d| &d.id).collect::<Vec<_>>(),
            config.unservable
        );
        assert!(config.unservable.iter().all(|u| !u.reason.is_empty()));
        for (i, m) in models.iter().enumerate() {
            if names_local_or_openai(m) {
                let key = format!("model_list[{i}]");
                let listed = config.unservable.iter().find(|u| u.key == key);
                assert!(listed.is_none(), "{name}: {m} should be served: {listed:?}");
            }
        }
        checked.push(format!(
            "{name}: {} served, {} wildcard (discovery), {} listed",
            config.deployments.len(),
            config.discovery.len(),
            config.unservable.len()
        ));
    }
    eprintln!("{}", checked.join("\n"));
    // aliases_config.yaml has Ollama models, one with `max_tokens: 20` (an output limit).
    assert!(
        checked.iter().any(|c| c.starts_with("aliases_config.yaml")),
        "{checked:#?}"
    );
    let aliases =
        std::fs::read_to_string(proxy.join("example_config_yaml/aliases_config.yaml")).unwrap();
    let c = load_str("aliases_config.yaml", &aliases, None, &env_for(&aliases)).unwrap();
    let g = c.group("gpt-3.5-turbo").unwrap();
    let d = &c.deployments[c.groups[g].deployments[0]];
    assert_eq!(d.max_output_tokens, Some(20));
    assert_eq!(d.context_window, None, "20 tokens is no context window");
}
