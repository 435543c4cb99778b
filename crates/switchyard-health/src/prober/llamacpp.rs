//! Probing one llama.cpp `llama-server` or other OpenAI-compatible host (backends.md §6.2):
//! `/health` for liveness (503 "Loading model" = down while loading), `/props` for the slot
//! context, `/v1/models` for the model list and `meta.n_ctx_train`.
//!
//! Servers without `/health` (llama-cpp-python, some other OpenAI-compatible ones answer 404) are
//! judged live by that answer itself, and nothing else is asked of them. In llama-cpp-python every
//! model route, `/v1/models` included, takes the lock generation holds, and with its default
//! `interrupt_requests` a request waiting for that lock cuts the running stream short (`[DONE]`
//! without a finish reason). A probe of `/v1/models` every interval therefore broke streams,
//! the first cold generation of a fresh server almost always. Passive health still marks such a
//! deployment down on a refused connection or a missing model.

use std::time::Instant;

use serde::Deserialize;

use super::observe::{Finding, Http, elapsed_ms, json_of};
use super::target::TargetDeployment;

#[derive(Deserialize)]
struct Props {
    #[serde(default)]
    default_generation_settings: Option<GenerationSettings>,
    /// How many requests the server runs at once (`--parallel`).
    #[serde(default)]
    total_slots: Option<u32>,
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
    /// Answered, but has no `/health`: ask nothing more (see the module docs).
    LiveWithoutHealth(u32),
    Loading(u32),
    Dead(String),
}

async fn liveness(http: &Http<'_>) -> Liveness {
    let start = Instant::now();
    match http.get("/health").await {
        Ok(r) if r.status().is_success() => Liveness::Live(elapsed_ms(start)),
        Ok(r) if r.status().as_u16() == 503 => Liveness::Loading(elapsed_ms(start)),
        // No /health on this server, but an HTTP answer is proof of life.
        Ok(r) if r.status().as_u16() == 404 => Liveness::LiveWithoutHealth(elapsed_ms(start)),
        Ok(r) => Liveness::Dead(format!("/health: status {}", r.status().as_u16())),
        Err(e) => Liveness::Dead(e),
    }
}

/// Probes `http` and returns one finding per deployment, in order.
pub(crate) async fn probe(http: &Http<'_>, deployments: &[TargetDeployment]) -> Vec<Finding> {
    let latency = match liveness(http).await {
        Liveness::Live(ms) => ms,
        Liveness::LiveWithoutHealth(ms) => {
            return deployments
                .iter()
                .map(|_| Finding {
                    up: true,
                    detail: None,
                    latency_ms: Some(ms),
                    model_present: None,
                    loaded: None,
                    loaded_context: None,
                    trained_context: None,
                    slots: None,
                })
                .collect();
        }
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
    let props = match http.get("/props").await {
        Ok(r) => json_of::<Props>("/props", r).await.ok(),
        Err(_) => None,
    };
    let total_slots = props
        .as_ref()
        .and_then(|p| p.total_slots)
        .filter(|&n| n > 0);
    let slot_ctx = props
        .and_then(|p| p.default_generation_settings)
        .and_then(|g| g.n_ctx);
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
                slots: total_slots,
            }
        })
        .collect()
}
