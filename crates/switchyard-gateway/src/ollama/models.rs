//! `GET /api/tags`, `POST /api/show` and `GET /api/ps`: the model groups presented as Ollama
//! models, and the model names Ollama clients send resolved to groups.
//!
//! Ollama names models `name:tag` and clients add `:latest` to a bare name, so a group is listed
//! as `<group>:latest` and both `local-small` and `local-small:latest` reach group
//! `local-small`. What a group is shown as (family, parameter size, quantisation, template) is
//! taken from its first deployment: the configured template family and what the backend model's
//! name says (`llama3.2:1b`, `…-Q4_K_M.gguf`); what is not known is left empty.

use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use switchyard_proto as pb;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::Caller;

/// The tag clients add to a bare model name.
const LATEST: &str = ":latest";

pub(crate) use crate::routes::models::groups;

/// The group a client's model name means: the name itself, or without `:latest` when no group
/// has the name with the tag.
pub(crate) fn resolve<'a>(groups: &'a [pb::ModelGroup], name: &str) -> Option<&'a pb::ModelGroup> {
    groups.iter().find(|g| g.name == name).or_else(|| {
        let bare = name.strip_suffix(LATEST)?;
        groups.iter().find(|g| g.name == bare)
    })
}

/// The group name to route `name` to. Only a name with `:latest` needs the group list (to
/// know whether the tag is part of a group's name); anything else goes to the router as it is.
pub(crate) async fn group_name(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<String, ApiError> {
    if !name.ends_with(LATEST) {
        return Ok(name.to_owned());
    }
    let groups = groups(state, caller).await?;
    Ok(resolve(&groups, name).map_or_else(|| name.to_owned(), |g| g.name.clone()))
}

/// How a group is listed: `name:tag`, with `:latest` added to a bare name.
pub(crate) fn listed_name(group: &str) -> String {
    if group.contains(':') {
        group.to_owned()
    } else {
        format!("{group}{LATEST}")
    }
}

/// A stable digest for a group (Ollama's is the manifest's sha256; ours hashes the group's
/// name and deployments, so it changes when the group does).
fn digest(g: &pb::ModelGroup) -> String {
    let mut h = Sha256::new();
    h.update(g.name.as_bytes());
    for d in &g.deployments {
        h.update(b"\0");
        h.update(d.id.as_bytes());
        h.update(b"\0");
        h.update(d.backend_model.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// When the gateway started: the groups' `modified_at` (the configuration they come from).
fn modified_at() -> String {
    static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    let t = *STARTED.get_or_init(SystemTime::now);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The model architecture a backend model name suggests (Ollama's `general.architecture`).
fn architecture(backend_model: &str) -> &'static str {
    let m = backend_model.to_ascii_lowercase();
    [
        ("qwen3", "qwen3"),
        ("qwen", "qwen2"),
        ("gemma3", "gemma3"),
        ("gemma", "gemma2"),
        ("phi", "phi3"),
        ("mistral", "llama"),
        ("nomic", "nomic-bert"),
        ("bert", "bert"),
    ]
    .iter()
    .find(|(needle, _)| m.contains(needle))
    .map_or("llama", |&(_, arch)| arch)
}

/// `1B`, `8B`, `135M`, `3.2B` from a model name (`llama3.2:1b`, `SmolLM2-135M-Instruct`).
fn parameter_size(backend_model: &str) -> String {
    let file = backend_model
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(backend_model);
    file.split([':', '-', '_', '.', ' '])
        .filter_map(|w| {
            let w = w.to_ascii_uppercase();
            let num = w.strip_suffix('B').or_else(|| w.strip_suffix('M'))?;
            (!num.is_empty() && num.chars().all(|c| c.is_ascii_digit())).then_some(w)
        })
        .next_back()
        .unwrap_or_default()
}

/// `Q4_K_M`, `Q8_0`, `F16` from a model name, when it says.
fn quantization(backend_model: &str) -> String {
    let upper = backend_model.to_ascii_uppercase();
    upper
        .split(['-', '.', ':', '/', ' '])
        .find(|w| {
            (w.starts_with('Q') || w.starts_with("IQ"))
                && w.chars()
                    .nth(1)
                    .is_some_and(|c| c.is_ascii_digit() || c == 'Q')
                || matches!(*w, "F16" | "F32" | "BF16")
        })
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Ollama's `details` from the group's first deployment.
fn details(g: &pb::ModelGroup) -> Value {
    let first = g.deployments.first();
    let model = first.map_or("", |d| d.backend_model.as_str());
    // A discovered model's family is what its server reported.
    let family = first
        .and_then(|d| d.family.as_deref())
        .unwrap_or_else(|| architecture(model));
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": parameter_size(model),
        "quantization_level": quantization(model),
    })
}

fn is_embedding(g: &pb::ModelGroup) -> bool {
    g.deployments.first().is_some_and(|d| d.mode == "embedding")
}

/// A group as an entry of `/api/tags`.
fn tag_json(g: &pb::ModelGroup) -> Value {
    let name = listed_name(&g.name);
    let mut v = json!({
        "name": name,
        "model": name,
        "modified_at": modified_at(),
        "size": 0,
        "digest": digest(g),
        "details": details(g),
        "context_length": g.context_window,
    });
    if let Some(from) = g
        .deployments
        .iter()
        .find_map(|d| d.discovered_from.as_ref())
    {
        v["discovered_from"] = json!(from);
    }
    v
}

fn caller_of(caller: Option<Extension<Caller>>) -> Caller {
    caller.map_or(Caller::Open, |c| c.0)
}

/// `GET /api/tags`.
pub(crate) async fn tags(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_of(caller);
    let models: Vec<Value> = groups(&state, &caller)
        .await?
        .iter()
        .map(tag_json)
        .collect();
    Ok(Json(json!({ "models": models })))
}

/// The chat template of a family, in Ollama's Go template syntax (what the deployment's server
/// applies; shown for clients that read it).
fn template(family: &str) -> &'static str {
    match family {
        "llama3" => {
            "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
        }
        "mistral" => {
            "{{- range .Messages }}{{- if eq .Role \"user\" }}[INST] {{ .Content }}[/INST]{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>{{- end }}{{- end }}"
        }
        _ => {
            "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
        }
    }
}

/// `POST /api/show` body: `model`, or the older `name`.
#[derive(Debug, Deserialize)]
pub(crate) struct ShowBody {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/show`.
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(body): ApiJson<ShowBody>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_of(caller);
    let Some(name) = body.model.or(body.name).filter(|n| !n.is_empty()) else {
        return Err(ApiError::invalid("model is required", Some("model")));
    };
    let groups = groups(&state, &caller).await?;
    let g = resolve(&groups, &name)
        .ok_or_else(|| ApiError::not_found(format!("model '{name}' not found")))?;
    let first = g.deployments.first();
    let model = first.map_or("", |d| d.backend_model.as_str());
    let arch = architecture(model);
    let mut info = Map::new();
    info.insert("general.architecture".into(), arch.into());
    info.insert("general.basename".into(), g.name.clone().into());
    info.insert(format!("{arch}.context_length"), g.context_window.into());
    let capabilities = match first.filter(|d| !d.capabilities.is_empty()) {
        // Discovered: what the model's own server says (vision, thinking, …).
        Some(d) => json!(d.capabilities),
        None if is_embedding(g) => json!(["embedding"]),
        None => json!(["completion", "tools"]),
    };
    let family = first.map_or("chatml", |d| d.template.as_str());
    let deployments: Vec<String> = g
        .deployments
        .iter()
        .map(|d| {
            format!(
                "#   {} ({} {}, window {})",
                d.id, d.provider, d.backend_model, d.context_window
            )
        })
        .collect();
    let modelfile = format!(
        "# Switchyard model group {}; its deployments:\n{}\nFROM {model}\nPARAMETER num_ctx {}\n",
        g.name,
        deployments.join("\n"),
        g.context_window
    );
    Ok(Json(json!({
        "modelfile": modelfile,
        "parameters": format!("num_ctx {}", g.context_window),
        "template": template(family),
        "details": details(g),
        "model_info": info,
        "capabilities": capabilities,
        "modified_at": modified_at(),
    })))
}

/// How long a loaded model is said to stay loaded (Ollama's default `keep_alive`).
const EXPIRES_IN: Duration = Duration::from_secs(300);

/// `GET /api/ps`: the groups with a deployment the prober found loaded.
pub(crate) async fn ps(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_of(caller);
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + EXPIRES_IN).to_string();
    let models: Vec<Value> = groups(&state, &caller)
        .await?
        .iter()
        .filter_map(|g| {
            let loaded = g.deployments.iter().find(|d| d.loaded == Some(true))?;
            let name = listed_name(&g.name);
            Some(json!({
                "name": name,
                "model": name,
                "size": 0,
                "digest": digest(g),
                "details": details(g),
                "expires_at": expires,
                "size_vram": 0,
                "context_length": loaded.reported_context.unwrap_or(loaded.context_window),
            }))
        })
        .collect();
    Ok(Json(json!({ "models": models })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_say_size_and_quantisation() {
        assert_eq!(parameter_size("llama3.2:1b"), "1B");
        assert_eq!(parameter_size("/m/SmolLM2-135M-Instruct-Q8_0.gguf"), "135M");
        assert_eq!(quantization("/m/SmolLM2-135M-Instruct-Q8_0.gguf"), "Q8_0");
        assert_eq!(quantization("llama3.2:1b-instruct-q4_K_M"), "Q4_K_M");
        assert_eq!(quantization("llama3.2:1b"), "");
        assert_eq!(architecture("qwen2.5:7b"), "qwen2");
    }

    #[test]
    fn latest_is_stripped_only_when_needed() {
        let g = |n: &str| pb::ModelGroup {
            name: n.into(),
            ..Default::default()
        };
        let groups = vec![g("a"), g("b:latest")];
        assert_eq!(resolve(&groups, "a:latest").unwrap().name, "a");
        assert_eq!(resolve(&groups, "a").unwrap().name, "a");
        assert_eq!(resolve(&groups, "b:latest").unwrap().name, "b:latest");
        assert!(resolve(&groups, "c:latest").is_none());
        assert_eq!(listed_name("a"), "a:latest");
        assert_eq!(listed_name("b:latest"), "b:latest");
    }
}
