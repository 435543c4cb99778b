//! Probing one llama.cpp `llama-server` or other OpenAI-compatible host (backends.md §6.2):
//! `/health` for liveness (503 "Loading model" = down while loading), `/props` for the slot
//! context, `/v1/models` for the model list and `meta.n_ctx_train`.
//!
//! Servers without `/health` (some OpenAI-compatible ones answer 404) are judged live by a 2xx
//! from `/v1/models`.

use std::time::Instant;

use serde::Deserialize;

use super::observe::{Finding, Http, elapsed_ms, json_of};
use super::target::TargetDeployment;

#[derive(Deserialize)]
struct Props {
    #[serde(default)]
    default_generation_settings: Option<GenerationSettings>,
}

#[derive(Deserialize)]
struct GenerationSettings {
    #[serde(default)]
    n_ctx: Option<u32>,
}

#[derive(Deserialize)]
struct Models {
    #[serde(default)]
    data: Vec<ModelCard>,
}

#[derive(Deserialize)]
struct ModelCard {
    #[serde(default)]
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    n_ctx: Option<u32>,
    #[serde(default)]
    n_ctx_train: Option<u32>,
}

enum Liveness {
    Live(u32),
    Loading(u32),
    Dead(String),
}

async fn liveness(http: &Http<'_>) -> Liveness {
    let start = Instant::now();
    match http.get("/health").await {
        Ok(r) if r.status().is_success() => Liveness::Live(elapsed_ms(start)),
        Ok(r) if r.status().as_u16() == 503 => Liveness::Loading(elapsed_ms(start)),
        Ok(r) if r.status().as_u16() == 404 => {
            // No /health on this server: a model list answer is proof of life.
            let start = Instant::now();
            match http.get("/v1/models").await {
                Ok(r) if r.status().is_success() => Liveness::Live(elapsed_ms(start)),
                Ok(r) => Liveness::Dead(format!("/v1/models: status {}", r.status().as_u16())),
                Err(e) => Liveness::Dead(e),
            }
        }
        Ok(r) => Liveness::Dead(format!("/health: status {}", r.status().as_u16())),
        Err(e) => Liveness::Dead(e),
    }
}

/// Probes `http` and returns one finding per deployment, in order.
pub(crate) async fn probe(http: &Http<'_>, deployments: &[TargetDeployment]) -> Vec<Finding> {
    let latency = match liveness(http).await {
        Liveness::Live(ms) => ms,
        Liveness::Loading(ms) => {
            return deployments
                .iter()
                .map(|_| Finding {
                    latency_ms: Some(ms),
                    loaded: Some(false),
                    ..Finding::down("loading model".to_owned())
                })
                .collect();
        }
        Liveness::Dead(e) => {
            return deployments
                .iter()
                .map(|_| Finding::down(e.clone()))
                .collect();
        }
    };
    let slot_ctx = match http.get("/props").await {
        Ok(r) => json_of::<Props>("/props", r)
            .await
            .ok()
            .and_then(|p| p.default_generation_settings)
            .and_then(|g| g.n_ctx),
        Err(_) => None,
    };
    let models: Option<Models> = http.get_json("/v1/models").await.ok();
    deployments
        .iter()
        .map(|d| {
            let card = models.as_ref().and_then(|m| {
                m.data
                    .iter()
                    .find(|c| c.id == d.model || c.aliases.contains(&d.model))
                    // A single-model llama-server answers under any model name.
                    .or(if m.data.len() == 1 {
                        m.data.first()
                    } else {
                        None
                    })
            });
            let meta = card.and_then(|c| c.meta.as_ref());
            let present = models.as_ref().map(|_| card.is_some());
            let up = present != Some(false);
            Finding {
                up,
                detail: (!up).then(|| format!("model {} is not in /v1/models", d.model)),
                latency_ms: Some(latency),
                model_present: present,
                loaded: Some(up),
                loaded_context: slot_ctx.or_else(|| meta.and_then(|m| m.n_ctx)),
                trained_context: meta.and_then(|m| m.n_ctx_train),
            }
        })
        .collect()
}
