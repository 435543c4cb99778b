//! The backend's own tokenizer, asked near a window boundary.
//!
//! An OpenAI-compatible deployment without a `tokenizer:` file is routed on the calibrated
//! heuristic plus a safety margin. Far from a window that is enough; but a prompt whose estimate
//! straddles a window's limit (prompt + output reserve against the window) would be sent to a
//! larger model "to be safe" although it fits. Servers that can tokenize (llama.cpp,
//! llama-cpp-python, vLLM: see `switchyard_backends::TokenizeApi`) are asked for the exact count
//! then, and only then, within `routing.backend_tokenize_timeout`; when they do not answer in time
//! the margin decides as before.
//!
//! What a server offers is found out in the background at start, and again when the health view
//! shows the deployment changed state since the last look (a restarted or replaced server), or a
//! minute after a look that could not reach it. The count covers what the backend really
//! evaluates: llama.cpp and vLLM apply the model's own chat template; for llama-cpp-python, which
//! has no template endpoint, the prompt is rendered with the deployment's template family plus the
//! family's default system block, and the difference between that and the prompt size each answer
//! reports is learned per deployment (`offsets`), so a template that differs is corrected after
//! one answer.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_backends::{Backends, PromptText, TokenizeApi};
use switchyard_core::FailureClass;
use switchyard_core::config::{Config, Deployment, DeploymentIx, Provider};
use switchyard_core::template::render_continuation;
use switchyard_health::{HealthView, now_ms};
use switchyard_proto as pb;

/// How long after a look that could not reach the server it is looked at again.
const RETRY_DETECT_MS: u64 = 60_000;
/// How long a detection may take.
const DETECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One deployment's tokenizing endpoint and what was learned about it.
#[derive(Default)]
struct Slot {
    /// An OpenAI-compatible deployment without a tokenizer file (others count by themselves).
    eligible: bool,
    api: RwLock<Option<TokenizeApi>>,
    /// When the last detection started (Unix ms, 0 = never).
    checked_ms: AtomicU64,
    detecting: AtomicBool,
    /// Attempts this router has in flight there (llama-cpp-python is asked only when none).
    busy: AtomicU32,
    /// Learned `reported - counted`, for prompts counted without and with the default system
    /// block added.
    offsets: [AtomicI32; 2],
}

/// An exact count from a backend, as the answer's report will be compared with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RemoteCount {
    /// What the server counted plus the default system block (before the learned offset).
    pub raw: u32,
    /// Which offset applies (see [`Slot::offsets`]).
    pub offset_ix: usize,
}

/// Every deployment's slot, and what is needed to ask the servers.
pub struct BackendCounting {
    /// Shared with the counting of a reloaded config for deployments whose server is the same.
    slots: Arc<[Arc<Slot>]>,
    backends: Backends,
    deployments: Arc<[Deployment]>,
    timeout: Duration,
}

impl BackendCounting {
    pub fn new(config: &Config, backends: Backends) -> Self {
        Self::carried(config, backends, None, &[])
    }

    /// The counting of a reloaded config: deployment `i` keeps what was learned about its
    /// server (`from[i]` in `old`, when the same server and settings), else starts unknown.
    pub(crate) fn carried(
        config: &Config,
        backends: Backends,
        old: Option<&BackendCounting>,
        from: &[Option<DeploymentIx>],
    ) -> Self {
        let timeout = config.routing.backend_tokenize_timeout;
        let slots = config
            .deployments
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let eligible =
                    d.provider == Provider::OpenAi && d.tokenizer.is_none() && !timeout.is_zero();
                let kept = old
                    .zip(from.get(i).copied().flatten())
                    .and_then(|(o, j)| o.slots.get(j))
                    .filter(|s| s.eligible == eligible)
                    .cloned();
                kept.unwrap_or_else(|| {
                    Arc::new(Slot {
                        eligible,
                        ..Slot::default()
                    })
                })
            })
            .collect();
        BackendCounting {
            slots,
            backends,
            deployments: config.deployments.clone().into(),
            timeout,
        }
    }

    /// Looks at every eligible deployment's server in the background (needs a Tokio runtime).
    pub fn detect_all(&self) {
        for d in 0..self.slots.len() {
            if self
                .slots
                .get(d)
                .is_some_and(|s| s.checked_ms.load(Ordering::Acquire) == 0)
            {
                self.spawn_detect(d);
            }
        }
    }

    fn spawn_detect(&self, d: DeploymentIx) {
        let Some(slot) = self.slots.get(d) else {
            return;
        };
        if !slot.eligible || slot.detecting.swap(true, Ordering::AcqRel) {
            return;
        }
        slot.checked_ms.store(now_ms(), Ordering::Release);
        let slot = slot.clone();
        let deployments = self.deployments.clone();
        let backends = self.backends.clone();
        tokio::spawn(async move {
            let Some(dep) = deployments.get(d) else {
                return;
            };
            let deadline = tokio::time::Instant::now() + DETECT_TIMEOUT;
            match backends.detect_tokenize(dep, deadline).await {
                Ok(api) => {
                    match api {
                        Some(a) => {
                            tracing::info!(deployment = %dep.id, api = a.as_str(), "the backend can count prompts near a window boundary")
                        }
                        None => {
                            tracing::debug!(deployment = %dep.id, "the backend offers no tokenize endpoint")
                        }
                    }
                    *slot.api.write().unwrap_or_else(|p| p.into_inner()) = api;
                }
                Err(e) => {
                    tracing::debug!(deployment = %dep.id, error = %e, "could not ask the backend what it can count")
                }
            }
            slot.detecting.store(false, Ordering::Release);
        });
    }

    /// Whether `d` may be asked at all (an OpenAI-compatible deployment without tokenizer file).
    pub(crate) fn eligible(&self, d: DeploymentIx) -> bool {
        self.slots.get(d).is_some_and(|s| s.eligible)
    }

    /// The endpoint `d` offers, looking again in the background when the health view shows the
    /// deployment changed since the last look, or a while after a look found nothing.
    pub(crate) fn api(&self, d: DeploymentIx, view: &HealthView) -> Option<TokenizeApi> {
        let slot = self.slots.get(d).filter(|s| s.eligible)?;
        let api = *slot.api.read().unwrap_or_else(|p| p.into_inner());
        let checked = slot.checked_ms.load(Ordering::Acquire);
        let changed = self
            .deployments
            .get(d)
            .is_some_and(|dep| view.get(&dep.id).last_change_ms > checked);
        if changed || (api.is_none() && now_ms().saturating_sub(checked) > RETRY_DETECT_MS) {
            self.spawn_detect(d);
        }
        api
    }

    /// Counts `req`'s prompt with `d`'s server; `None` when it cannot be asked now or did not
    /// answer within the timeout (the margin then decides).
    pub(crate) async fn count(
        &self,
        d: DeploymentIx,
        api: TokenizeApi,
        req: &pb::ChatRequest,
    ) -> Option<(u32, RemoteCount)> {
        let slot = self.slots.get(d)?;
        let dep = self.deployments.get(d)?;
        if api == TokenizeApi::LlamaCppPython && slot.busy.load(Ordering::Acquire) > 0 {
            // Its tokenize call would wait for the running generation (and cut a stream short).
            return None;
        }
        if !countable(req) {
            return None;
        }
        let messages: Value = req
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content.as_deref().unwrap_or("")}))
            .collect();
        let first_role = req.messages.first().map(|m| m.role.as_str());
        let (rendered, allowance) = if api.needs_rendered_prompt() {
            let pairs = req
                .messages
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_deref().unwrap_or("")));
            (
                Some(render_continuation(dep.template, pairs, "")),
                dep.template.default_system_tokens(first_role),
            )
        } else {
            (None, 0)
        };
        let prompt = PromptText {
            messages: &messages,
            rendered: rendered.as_deref(),
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        match self
            .backends
            .count_prompt(dep, api, &prompt, deadline)
            .await
        {
            Ok(n) => {
                let offset_ix = usize::from(allowance > 0);
                let raw = n.saturating_add(allowance);
                let offset = slot.offsets[offset_ix].load(Ordering::Acquire);
                Some((
                    raw.saturating_add_signed(offset),
                    RemoteCount { raw, offset_ix },
                ))
            }
            Err(e) => {
                tracing::debug!(deployment = %dep.id, error = %e, "the backend did not count the prompt; the margin decides");
                if e.class != FailureClass::Timeout {
                    // Gone or replaced by a server of another kind: look again.
                    *slot.api.write().unwrap_or_else(|p| p.into_inner()) = None;
                    slot.checked_ms.store(now_ms(), Ordering::Release);
                }
                None
            }
        }
    }

    /// Learns from an answer to a prompt `counted` by the backend: the prompt size it reported.
    pub(crate) fn observe(&self, d: DeploymentIx, counted: RemoteCount, reported: u32) {
        let Some(slot) = self.slots.get(d) else {
            return;
        };
        let diff = i64::from(reported) - i64::from(counted.raw);
        // A quarter of the prompt off is a truncated or otherwise broken answer, not a template.
        if diff.unsigned_abs() * 4 > u64::from(counted.raw.max(16)) {
            return;
        }
        if let Some(o) = slot.offsets.get(counted.offset_ix) {
            o.store(diff as i32, Ordering::Release);
        }
    }

    /// An attempt to `d` starts (`+1`) or ends (`-1`).
    pub(crate) fn busy(&self, d: DeploymentIx, delta: i32) {
        if let Some(slot) = self.slots.get(d) {
            if delta > 0 {
                slot.busy.fetch_add(1, Ordering::AcqRel);
            } else {
                let _ = slot
                    .busy
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1));
            }
        }
    }
}

/// Whether the messages alone are the prompt: tool definitions, tool calls and content parts
/// (images) are not sent for counting, so such requests are left to the margin.
fn countable(req: &pb::ChatRequest) -> bool {
    req.prompt.is_none()
        && req.tools.is_empty()
        && req
            .messages
            .iter()
            .all(|m| m.tool_calls.is_empty() && m.content_parts_json.is_none())
}
