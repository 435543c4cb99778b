//! Shared, thread-safe state of one simulator: recorded requests, armed faults, loaded models,
//! each model's slots.
//!
//! Locks are std mutexes held only for short, synchronous sections (never across an await).
//!
//! Only the most recent requests are kept ([`RECORD_LIMIT`] of them, at most [`RECORD_BYTES`] of
//! text): a long benchmark sends millions, and keeping every body once cost a run 12 GB. Per-model
//! counts are kept apart, so `request_count` and `/_sim/stats` still count every request.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::capacity::{Gate, SlotStats};
use crate::config::{Flavor, SimConfig, SimModel};
use crate::fault::{Fault, FaultBook, FaultRule};

/// Most recorded requests kept (the oldest are dropped first).
pub const RECORD_LIMIT: usize = 1000;
/// Most text (strings of the recorded bodies, summed) kept; the newest request is always kept.
pub const RECORD_BYTES: usize = 64 * 1024 * 1024;

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

/// What `/_sim/stats` reports for one model.
pub(crate) struct ModelStats {
    pub name: String,
    /// Generation requests recorded (whatever became of them).
    pub requests: usize,
    /// Of those, prompts Ollama truncated silently.
    pub truncated: usize,
    pub reloads: u32,
    pub gate: SlotStats,
}

/// A model currently loaded (Ollama `/api/ps`).
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub name: String,
    pub num_ctx: u32,
    pub loaded_at: SystemTime,
}

/// Per-model counts of everything ever recorded (kept apart from the bounded list).
#[derive(Default, Clone, Copy)]
struct Counts {
    requests: usize,
    truncated: usize,
}

#[derive(Default)]
struct Inner {
    faults: FaultBook,
    /// The most recent requests, with the text size of each.
    requests: VecDeque<(RecordedRequest, usize)>,
    recorded_bytes: usize,
    /// Every request's model, in first-seen order, with its counts.
    counts: Vec<(String, Counts)>,
    loaded: Vec<Loaded>,
    reloads: HashMap<String, u32>,
    /// Models taken away (`ollama rm` / a model that stopped being served).
    stopped: Vec<String>,
    /// Models added at runtime (`ollama pull`), served before configured ones of the same name.
    pulled: Vec<SimModel>,
}

/// State shared by all connections of one simulator.
pub(crate) struct SimState {
    pub config: SimConfig,
    inner: Mutex<Inner>,
    ids: AtomicU64,
    /// One gate per configured model, in `config.models` order.
    gates: Vec<Gate>,
}

/// Bytes of text in a JSON value (string contents and keys), to bound what is kept.
fn text_size(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::String(s) => s.len(),
        serde_json::Value::Array(a) => a.iter().map(text_size).sum(),
        serde_json::Value::Object(o) => o.iter().map(|(k, v)| k.len() + text_size(v)).sum(),
        _ => 8,
    }
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
        let bounded = config.flavor == Flavor::Ollama;
        let gates = config
            .models
            .iter()
            .map(|m| Gate::new(m, bounded))
            .collect();
        Self {
            config,
            inner: Mutex::new(Inner::default()),
            ids: AtomicU64::new(0),
            gates,
        }
    }

    /// The gate of the configured model `name` (`llama3.2` is `llama3.2:latest`).
    pub(crate) fn gate(&self, name: &str) -> Option<&Gate> {
        let i = self
            .config
            .models
            .iter()
            .position(|m| same_model(&m.name, name))?;
        self.gates.get(i)
    }

    /// Slot statistics of the configured model `name`.
    pub(crate) fn gate_stats(&self, name: &str) -> SlotStats {
        self.gate(name).map(Gate::stats).unwrap_or_default()
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

    /// Ollama: the pulled or configured model a request names (none once it was stopped).
    pub(crate) fn find_model(&self, name: &str) -> Option<SimModel> {
        let inner = self.lock();
        if inner.stopped.iter().any(|s| same_model(s, name)) {
            return None;
        }
        inner
            .pulled
            .iter()
            .chain(&self.config.models)
            .find(|m| same_model(&m.name, name))
            .cloned()
    }

    /// The pulled and configured models that are still served, each name once.
    pub(crate) fn served_models(&self) -> Vec<SimModel> {
        let inner = self.lock();
        let mut out: Vec<SimModel> = Vec::new();
        for m in inner.pulled.iter().chain(&self.config.models) {
            let stopped = inner.stopped.iter().any(|s| same_model(s, &m.name));
            if !stopped && !out.iter().any(|o| same_model(&o.name, &m.name)) {
                out.push(m.clone());
            }
        }
        out
    }

    /// Adds (or replaces) a model at runtime, like `ollama pull`: it appears in `/api/tags`
    /// and `/api/show` describes it.
    pub(crate) fn pull(&self, model: SimModel) {
        let mut inner = self.lock();
        inner.stopped.retain(|s| !same_model(s, &model.name));
        inner.pulled.retain(|m| !same_model(&m.name, &model.name));
        inner.pulled.push(model);
    }

    /// Removes a model, like `ollama rm`: it leaves `/api/tags` and requests for it get 404.
    /// Returns whether it was served.
    pub(crate) fn remove(&self, name: &str) -> bool {
        let served = self.find_model(name).is_some();
        self.lock().pulled.retain(|m| !same_model(&m.name, name));
        self.set_stopped(name, true);
        served
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
        let size = text_size(&req.body) + req.path.len() + req.model.len();
        let mut inner = self.lock();
        match inner
            .counts
            .iter_mut()
            .find(|(n, _)| same_model(n, &req.model))
        {
            Some((_, c)) => {
                c.requests += 1;
                c.truncated += usize::from(req.truncated);
            }
            None => {
                let c = Counts {
                    requests: 1,
                    truncated: usize::from(req.truncated),
                };
                inner.counts.push((req.model.clone(), c));
            }
        }
        inner.recorded_bytes += size;
        inner.requests.push_back((req, size));
        while inner.requests.len() > 1
            && (inner.requests.len() > RECORD_LIMIT || inner.recorded_bytes > RECORD_BYTES)
        {
            if let Some((_, old)) = inner.requests.pop_front() {
                inner.recorded_bytes -= old;
            }
        }
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
        self.lock()
            .requests
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    pub(crate) fn request_count(&self, model: &str) -> usize {
        self.lock()
            .counts
            .iter()
            .filter(|(n, _)| same_model(n, model))
            .map(|(_, c)| c.requests)
            .sum()
    }

    pub(crate) fn reloads(&self, model: &str) -> u32 {
        self.lock()
            .reloads
            .iter()
            .filter(|(k, _)| same_model(k, model))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Per-model statistics for every configured or requested model.
    pub(crate) fn stats(&self) -> Vec<ModelStats> {
        let inner = self.lock();
        let mut names: Vec<String> = self.config.models.iter().map(|m| m.name.clone()).collect();
        for (n, _) in &inner.counts {
            if !names.iter().any(|m| same_model(m, n)) {
                names.push(n.clone());
            }
        }
        names
            .into_iter()
            .map(|n| {
                let counts = inner.counts.iter().filter(|(m, _)| same_model(m, &n)).fold(
                    Counts::default(),
                    |a, (_, c)| Counts {
                        requests: a.requests + c.requests,
                        truncated: a.truncated + c.truncated,
                    },
                );
                let reloads = inner
                    .reloads
                    .iter()
                    .filter(|(k, _)| same_model(k, &n))
                    .map(|(_, v)| *v)
                    .sum();
                let gate = self.gate_stats(&n);
                ModelStats {
                    name: n,
                    requests: counts.requests,
                    truncated: counts.truncated,
                    reloads,
                    gate,
                }
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
