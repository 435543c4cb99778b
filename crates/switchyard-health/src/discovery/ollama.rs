//! Discovery on an Ollama host: `/api/tags` for the models, `/api/show` for each one's window
//! (`<general.architecture>.context_length`), family and capabilities, asked once per digest.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::config::DiscoveredModel;

use super::{ShowCache, lock};
use crate::prober::observe::{Http, json_of};

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    details: Option<Details>,
}

#[derive(Default, Deserialize)]
struct Details {
    #[serde(default)]
    family: Option<String>,
}

#[derive(Deserialize)]
struct Show {
    #[serde(default)]
    model_info: HashMap<String, Value>,
    #[serde(default)]
    details: Option<Details>,
    #[serde(default)]
    capabilities: Vec<String>,
}

/// The host's models, each with what `/api/show` says (a model whose `/api/show` fails is listed
/// without a window, and asked again next round).
pub(super) async fn list(
    http: &Http<'_>,
    shows: &ShowCache,
) -> Result<Vec<DiscoveredModel>, String> {
    let tags: Tags = http.get_json("/api/tags").await?;
    let found = futures::future::join_all(
        tags.models
            .into_iter()
            .filter(|t| !t.name.is_empty() || !t.model.is_empty())
            .map(|t| describe(http, t, shows)),
    )
    .await;
    Ok(found)
}

async fn describe(http: &Http<'_>, t: Tag, shows: &ShowCache) -> DiscoveredModel {
    let name = if t.name.is_empty() { t.model } else { t.name };
    let cache_key = if t.digest.is_empty() {
        format!("{}#{name}", http.base)
    } else {
        format!("{}#{}", t.digest, name)
    };
    if let Some(hit) = lock(shows).get(&cache_key) {
        return hit.clone();
    }
    let tag_family = t.details.and_then(|d| d.family);
    let show = match http.post_json("/api/show", &json!({"model": name})).await {
        Ok(r) => json_of::<Show>("/api/show", r).await,
        Err(e) => Err(e),
    };
    match show {
        Ok(show) => {
            let (context_length, context_source) = match context_of(&show.model_info) {
                Some((n, key)) => (Some(n), Some(format!("/api/show {key}"))),
                None => (None, None),
            };
            let m = DiscoveredModel {
                family: show.details.and_then(|d| d.family).or(tag_family),
                name,
                context_length,
                context_source,
                capabilities: show.capabilities,
            };
            lock(shows).insert(cache_key, m.clone());
            m
        }
        Err(e) => {
            tracing::debug!(model = %name, error = %e, "discovery: /api/show failed");
            DiscoveredModel {
                name,
                family: tag_family,
                ..DiscoveredModel::default()
            }
        }
    }
}

/// `<general.architecture>.context_length` and the key it was read from.
fn context_of(info: &HashMap<String, Value>) -> Option<(u32, String)> {
    let arch = info.get("general.architecture")?.as_str()?;
    let key = format!("{arch}.context_length");
    let n = info.get(&key)?.as_u64()?;
    Some((u32::try_from(n).ok()?, key))
}
