//! What the router holds between requests: the validated config, the backend clients, the
//! cooldown memory and the token counters. Built at start-up and again by a reload (see
//! `reload`), which shares the per-deployment parts of deployments that still exist; nothing
//! here is re-parsed per request.

use std::sync::Arc;

use switchyard_backends::Backends;
use switchyard_core::bound::CountRange;
use switchyard_core::calibration::Calibration;
use switchyard_core::calibration::{Inputs, inputs};
use switchyard_core::config::{Config, DeploymentIx};
use switchyard_core::cooldown::Cooldowns;
use switchyard_core::tokens::{PromptEstimate, SafetyMargin, TextFeatures, TokenCounter};
use switchyard_proto as pb;

use crate::backend_count::{BackendCounting, RemoteCount};
use crate::metrics::RouterMetrics;
use crate::shared::Shared;
use crate::tokenizers::{self, DeploymentTokens};
use crate::usage::UsageSink;

pub struct RouterState {
    pub config: Config,
    pub backends: Backends,
    pub cooldowns: Cooldowns,
    pub tokens: Arc<[Arc<DeploymentTokens>]>,
    /// Per deployment: how estimates compare with what the backend reports.
    pub calibration: Vec<Arc<Calibration>>,
    /// Where finished requests are accounted (the usage ledger); `None` = nowhere.
    pub usage_sink: Option<Arc<dyn UsageSink>>,
    /// Health, in-flight counts and usage shared with the prober and other replicas.
    pub shared: Arc<Shared>,
    pub metrics: RouterMetrics,
    /// Backends' own tokenizers, asked near a window boundary.
    pub backend_counting: BackendCounting,
    /// Slots taken per deployment id (`capacity`); carried over a reload by id.
    pub capacity: Arc<crate::capacity::Slots>,
    /// The capacity queue per group name (`queue`); carried over a reload by name.
    pub queues: Arc<crate::queue::Queues>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StateError(pub(crate) String);

impl RouterState {
    pub fn new(config: Config) -> Result<Self, StateError> {
        let backends = Backends::new(&config).map_err(|e| StateError(e.to_string()))?;
        let cooldowns = Cooldowns::new(
            config.deployments.len(),
            config.routing.allowed_fails,
            config.routing.cooldown_time,
        );
        let tokens: Arc<[Arc<DeploymentTokens>]> = tokenizers::initial(&config).into();
        let shared = Shared::from_settings(&config.state).map_err(|e| StateError(e.to_string()))?;
        let calibration = config
            .deployments
            .iter()
            .map(|_| Arc::new(Calibration::default()))
            .collect();
        let metrics = RouterMetrics::for_config(&config);
        let backend_counting = BackendCounting::new(&config, backends.clone());
        let capacity = Arc::new(crate::capacity::Slots::new(shared.inflight.clone()));
        Ok(RouterState {
            capacity,
            queues: Arc::default(),
            config,
            backends,
            cooldowns,
            tokens,
            calibration,
            usage_sink: None,
            shared: Arc::new(shared),
            metrics,
            backend_counting,
        })
    }

    fn margin(&self) -> SafetyMargin {
        SafetyMargin {
            ratio: self.config.routing.safety_margin_ratio,
            tokens: self.config.routing.safety_margin_tokens,
        }
    }
}

/// Prompts shorter than this (in bytes of text) are counted exactly at once: about 500 tokens,
/// half a millisecond uncached, and exact numbers in every header and record.
const EXACT_BELOW_BYTES: usize = 2048;

/// A prompt's content count with one counter.
#[derive(Clone, Copy, Debug)]
struct Content {
    /// Exact (`lower == upper`) for estimating counters' own count and for exact counts.
    range: CountRange,
    /// For estimating counters: the text features, which calibration re-weights.
    features: Option<TextFeatures>,
}

/// Predicts a request's prompt size per deployment, counting each distinct tokenizer once.
pub struct Estimator<'a> {
    state: &'a RouterState,
    texts: Vec<Vec<&'a str>>,
    roles: Vec<&'a str>,
    tools_text: Option<String>,
    /// Bytes of all that text (what the count costs are measured per).
    content_bytes: usize,
    /// Content count per distinct counter (by pointer), computed on first use.
    content_cache: Vec<(usize, Content)>,
    /// Count exact tokenizers' prompts exactly at once, however long.
    always_exact: bool,
    /// Exact prompt sizes found for deployments near a window boundary (see `boundary`), and
    /// the backend's count behind each one that a backend counted.
    exact: Vec<(DeploymentIx, u32, Option<RemoteCount>)>,
}

impl<'a> Estimator<'a> {
    pub fn new(state: &'a RouterState, req: &'a pb::ChatRequest) -> Self {
        let mut texts = Vec::with_capacity(req.messages.len());
        let mut roles = Vec::with_capacity(req.messages.len());
        for m in &req.messages {
            let mut t: Vec<&str> = Vec::with_capacity(2 + m.tool_calls.len() * 2);
            if let Some(c) = &m.content {
                t.push(c);
            }
            if let Some(r) = &m.reasoning {
                t.push(r);
            }
            for c in &m.tool_calls {
                t.push(&c.name);
                t.push(&c.arguments);
            }
            texts.push(t);
            roles.push(m.role.as_str());
        }
        let tools_text = if req.tools.is_empty() {
            None
        } else {
            let mut s = String::new();
            for t in &req.tools {
                s.push_str(&t.name);
                s.push(' ');
                s.push_str(t.description.as_deref().unwrap_or(""));
                s.push(' ');
                s.push_str(t.parameters_json.as_deref().unwrap_or(""));
                s.push('\n');
            }
            Some(s)
        };
        if req.prompt.is_some() {
            // A text completion is sent as it is: no chat template around it.
            roles.clear();
        }
        let content_bytes = texts.iter().flatten().map(|t| t.len()).sum::<usize>()
            + tools_text.as_ref().map_or(0, String::len);
        Estimator {
            state,
            texts,
            roles,
            tools_text,
            content_bytes,
            content_cache: Vec::new(),
            always_exact: false,
            exact: Vec::new(),
        }
    }

    /// Content count (and, for estimating counters, the text features) with one counter;
    /// deployments sharing a tokenizer share the work. An exact counter's count of a long
    /// prompt starts as a cheap range (see [`CountRange`]) and is made exact only where the range
    /// leaves a routing decision open ([`Estimator::count_exactly`]), while exact counting costs
    /// more than the range (see [`crate::count_cost`]); else it is counted exactly at once.
    fn content(&mut self, counter: &Arc<dyn TokenCounter>) -> Content {
        let key = Arc::as_ptr(counter) as *const () as usize;
        if let Some(&(_, c)) = self.content_cache.iter().find(|(k, _)| *k == key) {
            return c;
        }
        let c = if counter.is_exact() {
            let bytes = self.content_bytes;
            if self.always_exact || bytes < EXACT_BELOW_BYTES || !crate::count_cost::range_first() {
                self.exact_content(counter)
            } else {
                let started = std::time::Instant::now();
                let mut r = CountRange::default();
                for t in self.all_texts() {
                    r.add(CountRange::of(t));
                }
                crate::count_cost::note_range(bytes, started.elapsed());
                Content {
                    range: r,
                    features: None,
                }
            }
        } else {
            let mut f = TextFeatures::default();
            let mut c = 0u32;
            for t in self.all_texts() {
                match counter.features(t) {
                    Some(tf) => {
                        c = c.saturating_add(tf.heuristic_tokens());
                        f.add(&tf);
                    }
                    None => c = c.saturating_add(counter.count(t)),
                }
            }
            Content {
                range: CountRange::exact(c),
                features: Some(f),
            }
        };
        self.content_cache.push((key, c));
        c
    }

    fn all_texts(&self) -> impl Iterator<Item = &str> {
        self.texts
            .iter()
            .flatten()
            .copied()
            .chain(self.tools_text.as_deref())
    }

    fn exact_content(&self, counter: &Arc<dyn TokenCounter>) -> Content {
        let bytes = self.content_bytes;
        let started = (bytes >= EXACT_BELOW_BYTES).then(std::time::Instant::now);
        let c = self
            .all_texts()
            .map(|t| counter.count(t))
            .fold(0u32, u32::saturating_add);
        if let Some(started) = started {
            crate::count_cost::note_exact(bytes, started.elapsed());
        }
        Content {
            range: CountRange::exact(c),
            features: None,
        }
    }

    /// Counts `d`'s prompt with its exact tokenizer when only a range is known (for every
    /// deployment sharing that tokenizer).
    pub(crate) fn count_exactly(&mut self, d: DeploymentIx) {
        let Some(tok) = self.state.tokens.get(d) else {
            return;
        };
        let counter = tok.counter();
        if !counter.is_exact() {
            return;
        }
        let key = Arc::as_ptr(&counter) as *const () as usize;
        if self
            .content_cache
            .iter()
            .any(|(k, c)| *k == key && !c.range.is_exact())
        {
            crate::count_cost::note_range_followed();
        }
        let exact = self.exact_content(&counter);
        self.content_cache.retain(|(k, _)| *k != key);
        self.content_cache.push((key, exact));
    }

    /// Whether `d`'s prompt size is only known as a range of an exact tokenizer's count (see
    /// [`Estimator::count_exactly`]).
    pub(crate) fn is_range(&mut self, d: DeploymentIx) -> bool {
        let Some(tok) = self.state.tokens.get(d) else {
            return false;
        };
        let counter = tok.counter();
        counter.is_exact() && !self.content(&counter).range.is_exact()
    }

    /// Counts exactly however long the prompt (`Explain`, which shows exact numbers).
    pub fn always_exact(mut self) -> Self {
        self.always_exact = true;
        self
    }

    /// Sets `d`'s prompt size to an exact count (`remote`: the backend's, when it counted).
    pub(crate) fn set_exact(&mut self, d: DeploymentIx, tokens: u32, remote: Option<RemoteCount>) {
        self.exact.retain(|(x, _, _)| *x != d);
        self.exact.push((d, tokens, remote));
    }

    /// Whether `d`'s prompt size is known exactly (counted by an exact tokenizer or its backend).
    pub(crate) fn is_exact(&mut self, d: DeploymentIx) -> bool {
        if self.exact.iter().any(|(x, _, _)| *x == d) {
            return true;
        }
        let Some(tok) = self.state.tokens.get(d) else {
            return false;
        };
        let counter = tok.counter();
        counter.is_exact() && self.content(&counter).range.is_exact()
    }

    /// The backend's count behind `d`'s exact size, when a backend counted.
    pub(crate) fn remote_count(&self, d: DeploymentIx) -> Option<RemoteCount> {
        self.exact
            .iter()
            .find(|(x, _, _)| *x == d)
            .and_then(|(_, _, r)| *r)
    }

    /// The estimate for deployment `d`, with the calibration inputs it was computed from.
    pub fn estimate_with_inputs(&mut self, d: DeploymentIx) -> (PromptEstimate, Option<Inputs>) {
        let (mut e, x) = self.estimate_uncorrected(d);
        if let Some(&(_, tokens, _)) = self.exact.iter().find(|(x, _, _)| *x == d) {
            e.predicted = tokens;
            e.margin = 0;
            e.lower = tokens;
        }
        (e, x)
    }

    fn estimate_uncorrected(&mut self, d: DeploymentIx) -> (PromptEstimate, Option<Inputs>) {
        let Some(tok) = self.state.tokens.get(d) else {
            return (PromptEstimate::default(), None);
        };
        let counter = tok.counter();
        let Content { range, features } = self.content(&counter);
        let template = tok.family.overhead(self.roles.iter().copied());
        let base = self.state.margin();
        if counter.is_exact() && !range.is_exact() {
            return (PromptEstimate::within(range, template), None);
        }
        let content = range.estimate;
        match (self.state.calibration.get(d), features) {
            (Some(cal), Some(f)) => {
                let x = inputs(&f, template);
                let margin = SafetyMargin {
                    ratio: cal.margin_ratio(base.ratio),
                    tokens: base.tokens,
                };
                let e =
                    PromptEstimate::calibrated(content, template, false, cal.predict(&x), margin);
                (e, Some(x))
            }
            _ => (
                PromptEstimate::assemble(content, template, counter.is_exact(), base),
                None,
            ),
        }
    }

    /// The estimate for deployment `d`.
    pub fn estimate(&mut self, d: DeploymentIx) -> PromptEstimate {
        self.estimate_with_inputs(d).0
    }
}
