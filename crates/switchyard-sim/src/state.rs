//! Shared, thread-safe state of one simulator: recorded requests, armed faults, loaded models.
//!
//! Locks are std mutexes held only for short, synchronous sections (never across an await).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::{SimConfig, SimModel};
use crate::fault::{Fault, FaultBook, FaultRule};

/// One generation request as it reached the simulator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// URL path, e.g. `/api/chat`.
    pub path: String,
    /// The configured model name it resolved to (or the name sent, when unknown).
    pub model: String,
    /// Whether a stream was requested (with the endpoint's default applied).
    pub stream: bool,
    /// `options.num_ctx` as sent (Ollama native API).
    pub num_ctx: Option<u32>,
    /// Sim-token count of the rendered prompt before truncation.
    pub prompt_tokens: u32,
    /// After truncation: what `prompt_eval_count` / `usage.prompt_tokens` reports.
    pub evaluated_tokens: u32,
    /// Whether the prompt was truncated.
    pub truncated: bool,
    /// The raw request JSON.
    pub body: serde_json::Value,
    /// The W3C `traceparent` header, when one was sent.
    #[serde(default)]
    pub traceparent: Option<String>,
    /// The `Authorization` header, when one was sent (a deployment's `api_key`).
    #[serde(default)]
    pub authorization: Option<String>,
}

/// A request header's value as text, for [`RecordedRequest`].
pub(crate) fn header_text(
    headers: &http::HeaderMap,
    name: impl http::header::AsHeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A model currently loaded (Ollama `/api/ps`).
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub name: String,
    pub num_ctx: u32,
    pub loaded_at: SystemTime,
}

#[derive(Default)]
struct Inner {
    faults: FaultBook,
    requests: Vec<RecordedRequest>,
    loaded: Vec<Loaded>,
    reloads: HashMap<String, u32>,
    /// Models taken away (`ollama rm` / a model that stopped being served).
    stopped: Vec<String>,
}

/// State shared by all connections of one simulator.
pub(crate) struct SimState {
    pub config: SimConfig,
    inner: Mutex<Inner>,
    ids: AtomicU64,
}

/// Ollama-style name equality: `llama3.2` is `llama3.2:latest`.
pub(crate) fn same_model(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// Adds the `:latest` tag when a name has none.
pub(crate) fn normalize(name: &str) -> String {
    if name.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

impl SimState {
    pub(crate) fn new(config: SimConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
            ids: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh number for response ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Ollama: the configured model a request names (none once it was stopped).
    pub(crate) fn find_model(&self, name: &str) -> Option<&SimModel> {
        if self.is_stopped(name) {
            return None;
        }
        self.config
            .models
            .iter()
            .find(|m| same_model(&m.name, name))
    }

    /// The configured models that are still served.
    pub(crate) fn served_models(&self) -> Vec<&SimModel> {
        self.config
            .models
            .iter()
            .filter(|m| !self.is_stopped(&m.name))
            .collect()
    }

    pub(crate) fn is_stopped(&self, name: &str) -> bool {
        self.lock().stopped.iter().any(|s| same_model(s, name))
    }

    /// Stops serving `name` (it leaves `/api/tags`; requests get 404), or serves it again.
    pub(crate) fn set_stopped(&self, name: &str, stopped: bool) {
        let mut inner = self.lock();
        inner.stopped.retain(|s| !same_model(s, name));
        inner
            .loaded
            .retain(|l| !stopped || !same_model(&l.name, name));
        if stopped {
            inner.stopped.push(name.to_owned());
        }
    }

    /// llama.cpp: the single model.
    pub(crate) fn single_model(&self) -> Option<&SimModel> {
        self.config.models.first()
    }

    pub(crate) fn record(&self, req: RecordedRequest) {
        self.lock().requests.push(req);
    }

    pub(crate) fn take_fault(&self, names: &[&str]) -> Option<Fault> {
        self.lock().faults.take(names)
    }

    pub(crate) fn add_fault(&self, rule: FaultRule) {
        self.lock().faults.add(rule);
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub(crate) fn request_count(&self, model: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| same_model(&r.model, model))
            .count()
    }

    pub(crate) fn reloads(&self, model: &str) -> u32 {
        self.lock()
            .reloads
            .iter()
            .filter(|(k, _)| same_model(k, model))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Per-model `(requests, reloads)` for every configured or requested model.
    pub(crate) fn stats(&self) -> Vec<(String, usize, u32)> {
        let inner = self.lock();
        let mut names: Vec<String> = self.config.models.iter().map(|m| m.name.clone()).collect();
        for r in &inner.requests {
            if !names.iter().any(|n| same_model(n, &r.model)) {
                names.push(r.model.clone());
            }
        }
        names
            .into_iter()
            .map(|n| {
                let reqs = inner
                    .requests
                    .iter()
                    .filter(|r| same_model(&r.model, &n))
                    .count();
                let reloads = inner
                    .reloads
                    .iter()
                    .filter(|(k, _)| same_model(k, &n))
                    .map(|(_, v)| *v)
                    .sum();
                (n, reqs, reloads)
            })
            .collect()
    }

    /// Makes sure `name` is loaded with `num_ctx`. Returns true when this request (re)loaded it;
    /// a load with a different `num_ctx` than the resident one counts as a reload (§3.4).
    pub(crate) fn ensure_loaded(&self, name: &str, num_ctx: u32) -> bool {
        let mut inner = self.lock();
        let now = SystemTime::now();
        if let Some(pos) = inner.loaded.iter().position(|l| same_model(&l.name, name)) {
            let same_ctx = inner.loaded.get(pos).is_some_and(|l| l.num_ctx == num_ctx);
            if same_ctx {
                if let Some(l) = inner.loaded.get_mut(pos) {
                    l.loaded_at = now;
                }
                return false;
            }
            inner.loaded.remove(pos);
            *inner.reloads.entry(name.to_owned()).or_insert(0) += 1;
        }
        inner.loaded.push(Loaded {
            name: name.to_owned(),
            num_ctx,
            loaded_at: now,
        });
        true
    }

    /// Unloads `name` (keep_alive 0).
    pub(crate) fn unload(&self, name: &str) {
        self.lock().loaded.retain(|l| !same_model(&l.name, name));
    }

    /// Loaded models, most recently used first.
    pub(crate) fn loaded(&self) -> Vec<Loaded> {
        let mut v = self.lock().loaded.clone();
        v.sort_by_key(|l| std::cmp::Reverse(l.loaded_at));
        v
    }
}
