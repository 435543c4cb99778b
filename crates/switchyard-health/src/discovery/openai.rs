//! Discovery on an OpenAI-compatible host: `/v1/models` for the models; the window from
//! llama.cpp's `/props` (`default_generation_settings.n_ctx`, the slot's context, when the
//! server serves one model) or the model card's `meta.n_ctx` / `meta.n_ctx_train`.
//!
//! A server without `/health` (llama-cpp-python) is listed once and then left alone: there every
//! model route takes the lock generation holds, and a request waiting for it cuts the running
//! stream short (see the prober's llama.cpp module).

use serde::Deserialize;
use switchyard_core::config::DiscoveredModel;

use crate::prober::observe::{Http, json_of};

#[derive(Deserialize)]
struct Models {
    #[serde(default)]
    data: Vec<Card>,
}

#[derive(Deserialize)]
struct Card {
    #[serde(default)]
    id: String,
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

#[derive(Deserialize)]
struct Props {
    #[serde(default)]
    default_generation_settings: Option<Settings>,
}

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    n_ctx: Option<u32>,
}

pub(super) async fn list(
    http: &Http<'_>,
    previous: Option<&Vec<DiscoveredModel>>,
) -> Result<Vec<DiscoveredModel>, String> {
    let has_health = match http.get("/health").await {
        Ok(r) => r.status().as_u16() != 404,
        Err(e) => return Err(e),
    };
    if !has_health && let Some(prev) = previous {
        return Ok(prev.clone());
    }
    let models: Models = http.get_json("/v1/models").await?;
    let slot = if has_health && models.data.len() == 1 {
        match http.get("/props").await {
            Ok(r) => json_of::<Props>("/props", r)
                .await
                .ok()
                .and_then(|p| p.default_generation_settings)
                .and_then(|s| s.n_ctx),
            Err(_) => None,
        }
    } else {
        None
    };
    Ok(models
        .data
        .into_iter()
        .filter(|c| !c.id.is_empty())
        .map(|c| {
            let meta = c.meta.as_ref();
            let (context_length, source) = match (slot, meta) {
                (Some(n), _) => (Some(n), "/props n_ctx"),
                (None, Some(Meta { n_ctx: Some(n), .. })) => (Some(*n), "/v1/models meta.n_ctx"),
                (
                    None,
                    Some(Meta {
                        n_ctx_train: Some(n),
                        ..
                    }),
                ) => (Some(*n), "/v1/models meta.n_ctx_train"),
                _ => (None, ""),
            };
            DiscoveredModel {
                name: c.id,
                context_length,
                context_source: context_length.map(|_| source.to_owned()),
                family: None,
                capabilities: Vec::new(),
            }
        })
        .collect())
}
