//! Probing one Ollama host (backends.md §2.5): `/api/version` for liveness and latency,
//! `/api/tags` for the models present, `/api/ps` for what is loaded and with which context,
//! and `/api/show` for the trained context, once per model digest.

use std::collections::HashMap;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use super::TrainedCache;
use super::observe::{Finding, Http, elapsed_ms, json_of, normalize_model};
use super::target::TargetDeployment;

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    digest: String,
    /// `/api/ps` only (Ollama ≥ 0.10).
    #[serde(default)]
    context_length: Option<u32>,
}

impl ModelEntry {
    fn matches(&self, wanted: &str) -> bool {
        normalize_model(&self.name) == wanted || normalize_model(&self.model) == wanted
    }
}

#[derive(Deserialize)]
struct Show {
    #[serde(default)]
    model_info: HashMap<String, Value>,
}

/// Probes `http` and returns one finding per deployment, in order.
pub(crate) async fn probe(
    http: &Http<'_>,
    deployments: &[TargetDeployment],
    trained: &TrainedCache,
) -> Vec<Finding> {
    let start = Instant::now();
    let live = match http.get("/api/version").await {
        Ok(r) if r.status().is_success() => Ok(elapsed_ms(start)),
        Ok(r) => Err(format!("/api/version: status {}", r.status().as_u16())),
        Err(e) => Err(e),
    };
    let latency = match live {
        Ok(ms) => ms,
        Err(e) => {
            return deployments
                .iter()
                .map(|_| Finding::down(e.clone()))
                .collect();
        }
    };
    let tags: ModelList = match http.get_json("/api/tags").await {
        Ok(t) => t,
        Err(e) => {
            return deployments
                .iter()
                .map(|_| Finding::down(e.clone()))
                .collect();
        }
    };
    // `/api/ps` is an extra: without it the deployment is still up, residency unknown.
    let ps: Option<ModelList> = match http.get_json("/api/ps").await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::debug!(host = http.base, error = %e, "ollama /api/ps failed");
            None
        }
    };
    let mut out = Vec::with_capacity(deployments.len());
    for d in deployments {
        let wanted = normalize_model(&d.model);
        let Some(entry) = tags.models.iter().find(|m| m.matches(&wanted)) else {
            out.push(Finding {
                up: false,
                detail: Some(format!("model {} is not in /api/tags", d.model)),
                latency_ms: Some(latency),
                model_present: Some(false),
                loaded: Some(false),
                ..Finding::default()
            });
            continue;
        };
        let running = ps
            .as_ref()
            .map(|p| p.models.iter().find(|m| m.matches(&wanted)));
        out.push(Finding {
            up: true,
            detail: None,
            latency_ms: Some(latency),
            model_present: Some(true),
            loaded: running.map(|r| r.is_some()),
            loaded_context: running
                .flatten()
                .and_then(|r| r.context_length)
                .filter(|&c| c > 0),
            trained_context: trained_context(http, &d.model, &entry.digest, trained).await,
            slots: None,
        });
    }
    out
}

/// The model's trained context from `/api/show`, cached by digest (a digest names immutable
/// weights, so one answer per digest is enough; a re-pulled model gets a new digest).
async fn trained_context(
    http: &Http<'_>,
    model: &str,
    digest: &str,
    cache: &TrainedCache,
) -> Option<u32> {
    let key = if digest.is_empty() {
        format!("{}#{model}", http.base)
    } else {
        digest.to_owned()
    };
    if let Some(hit) = cache.get(&key) {
        return hit;
    }
    let resp = match http.post_json("/api/show", &json!({"model": model})).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(model, error = %e, "ollama /api/show failed");
            return None;
        }
    };
    let show: Show = match json_of("/api/show", resp).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(model, error = %e, "ollama /api/show failed");
            return None;
        }
    };
    let value = context_from_model_info(&show.model_info);
    cache.insert(key, value);
    value
}

/// `<general.architecture>.context_length` from a `model_info` map.
fn context_from_model_info(info: &HashMap<String, Value>) -> Option<u32> {
    let arch = info.get("general.architecture")?.as_str()?;
    let n = info.get(&format!("{arch}.context_length"))?.as_u64()?;
    u32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn trained_context_is_read_from_the_architecture_key() {
        let info: HashMap<String, Value> = serde_json::from_value(json!({
            "general.architecture": "gemma3", "gemma3.context_length": 32768,
            "llama.context_length": 1
        }))
        .unwrap();
        assert_eq!(context_from_model_info(&info), Some(32768));
        assert_eq!(context_from_model_info(&HashMap::new()), None);
    }

    #[test]
    fn names_match_with_the_latest_tag() {
        let e = ModelEntry {
            name: "llama3.2:latest".into(),
            model: String::new(),
            digest: String::new(),
            context_length: None,
        };
        assert!(e.matches(&normalize_model("llama3.2")));
        assert!(!e.matches(&normalize_model("llama3.2:1b")));
    }
}
