//! Which tokenizer counts each deployment's prompts, and where it comes from.
//!
//! In order: a tokenizer file named in the config (GGUF or `tokenizer.json`), loaded at start-up;
//! for Ollama deployments, the GGUF metadata Ollama returns from `/api/show` with `verbose`,
//! fetched in the background once per model digest and cached on disk (it is megabytes); else the
//! calibrated heuristic. Deployments naming the same file or digest share one tokenizer, so a
//! request's content is counted once per distinct tokenizer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use switchyard_core::config::{Config, Provider, TlsSettings};
use switchyard_core::tokens::{HeuristicCounter, TemplateFamily, TokenCounter};
use switchyard_health::TlsClients;
use switchyard_tokenizers::Tokenizer;

/// Per-deployment token counting: the tokenizer (replaceable once a better one is found) and the
/// chat-template family.
pub struct DeploymentTokens {
    counter: RwLock<Arc<dyn TokenCounter>>,
    pub family: TemplateFamily,
}

impl DeploymentTokens {
    pub fn counter(&self) -> Arc<dyn TokenCounter> {
        self.counter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, c: Arc<dyn TokenCounter>) {
        *self.counter.write().unwrap_or_else(|p| p.into_inner()) = c;
    }
}

fn load_file(path: &str) -> Result<Tokenizer, String> {
    let r = if path.ends_with(".json") {
        Tokenizer::from_tokenizer_json(path)
    } else {
        Tokenizer::from_gguf_file(path)
    };
    r.map_err(|e| e.to_string())
}

/// Tokenizers from the config's files; the heuristic elsewhere. Failures are logged, not fatal:
/// the heuristic still routes.
pub fn initial(config: &Config) -> Vec<Arc<DeploymentTokens>> {
    carried(config, &|_| None)
}

/// The same for a reloaded config: deployment `i` keeps `kept(i)` (what the running config
/// loaded or discovered for the same model on the same server) instead of starting over.
pub fn carried(
    config: &Config,
    kept: &dyn Fn(usize) -> Option<Arc<DeploymentTokens>>,
) -> Vec<Arc<DeploymentTokens>> {
    let heuristic: Arc<dyn TokenCounter> = Arc::new(HeuristicCounter);
    let mut by_file: HashMap<&str, Arc<dyn TokenCounter>> = HashMap::new();
    config
        .deployments
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if let Some(k) = kept(i).filter(|k| k.family == d.template) {
                return k;
            }
            let counter = match d.tokenizer.as_deref() {
                Some(path) => match by_file.get(path) {
                    Some(c) => c.clone(),
                    None => match load_file(path) {
                        Ok(t) => {
                            tracing::info!(deployment = %d.id, path, vocab = t.vocab_size(), "exact tokenizer loaded");
                            let c: Arc<dyn TokenCounter> = Arc::new(t);
                            by_file.insert(path, c.clone());
                            c
                        }
                        Err(e) => {
                            tracing::warn!(deployment = %d.id, path, error = %e, "tokenizer file unusable; estimating instead");
                            heuristic.clone()
                        }
                    },
                },
                None => heuristic.clone(),
            };
            Arc::new(DeploymentTokens {
                counter: RwLock::new(counter),
                family: d.template,
            })
        })
        .collect()
}

/// Fetches exact tokenizers for Ollama deployments without a configured file, in the background.
/// `skip(i)`: deployment `i` already has what discovery would find (kept over a reload).
pub fn discover_ollama(
    config: &Config,
    tokens: Arc<[Arc<DeploymentTokens>]>,
    cache_dir: Option<PathBuf>,
    skip: &dyn Fn(usize) -> bool,
) {
    let wanted: Vec<(usize, String, String, TlsSettings)> = config
        .deployments
        .iter()
        .enumerate()
        .filter(|(i, d)| d.provider == Provider::Ollama && d.tokenizer.is_none() && !skip(*i))
        .map(|(i, d)| (i, d.api_base.clone(), d.model.clone(), d.tls.clone()))
        .collect();
    if wanted.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let timeout = std::time::Duration::from_secs(60);
        let http = match reqwest::Client::builder().timeout(timeout).build() {
            Ok(c) => c,
            Err(_) => return,
        };
        // An https Ollama is trusted as its deployment says (CA file, ssl_verify, client cert).
        let tls_clients = TlsClients::new(timeout, timeout);
        let mut by_digest: HashMap<String, Arc<dyn TokenCounter>> = HashMap::new();
        for (ix, base, model, tls) in wanted {
            let client = tls_clients.for_host(&base, &tls);
            let http = client.as_ref().unwrap_or(&http);
            match fetch(http, &base, &model, cache_dir.as_deref(), &mut by_digest).await {
                Ok(c) => {
                    if let Some(t) = tokens.get(ix) {
                        t.set(c);
                    }
                    tracing::info!(%model, %base, "exact tokenizer from Ollama's /api/show");
                }
                Err(e) => {
                    tracing::info!(%model, %base, error = %e, "no exact tokenizer from Ollama; estimating")
                }
            }
        }
    });
}

async fn fetch(
    http: &reqwest::Client,
    base: &str,
    model: &str,
    cache_dir: Option<&Path>,
    by_digest: &mut HashMap<String, Arc<dyn TokenCounter>>,
) -> Result<Arc<dyn TokenCounter>, String> {
    let tags: serde_json::Value = http
        .get(format!("{base}/api/tags"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let same =
        |n: &str| n == model || n == format!("{model}:latest") || format!("{n}:latest") == model;
    let digest = tags["models"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"].as_str().is_some_and(same)))
        .and_then(|m| m["digest"].as_str())
        .ok_or("model not in /api/tags")?
        .to_string();
    if let Some(c) = by_digest.get(&digest) {
        return Ok(c.clone());
    }
    let cached = cache_dir.map(|d| d.join(format!("ollama-show-{digest}.json")));
    let show: serde_json::Value = match cached.as_ref().and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string())?,
        None => {
            let body = http
                .post(format!("{base}/api/show"))
                .json(&serde_json::json!({"model": model, "verbose": true}))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            if let Some(p) = &cached {
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::write(p, &body);
            }
            serde_json::from_slice(&body).map_err(|e| e.to_string())?
        }
    };
    let t = tokio::task::spawn_blocking(move || {
        Tokenizer::from_ollama_show(&show).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    let c: Arc<dyn TokenCounter> = Arc::new(t);
    by_digest.insert(digest, c.clone());
    Ok(c)
}
