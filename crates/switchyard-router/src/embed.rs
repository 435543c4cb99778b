//! One embeddings request: plan by fit, then try candidates until one serves.
//!
//! The same policy as chat (`chat.rs`), for an answer that comes in one piece: the plan is
//! `switchyard_core::plan::plan` with the longest input as the prompt and no output reserve, so
//! a long input goes straight to a deployment whose window holds it; a virtual key's allow-list
//! cuts it; failures are classified by `FailureClass` (an overflow tries only larger windows, a
//! refused connection the next candidate, a rejection of the request itself ends it once a
//! second deployment agrees). Every request ends in one usage record (prompt tokens, no
//! completion tokens) through the same sink as chat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_backends::{BackendError, EmbedCall, Embedded, takes_token_ids};
use switchyard_core::FailureClass;
use switchyard_core::config::{Mode, Strategy};
use switchyard_core::plan::{PlanError, plan_for_window};
use switchyard_core::tokens::{PromptEstimate, SafetyMargin, TokenCounter};
use switchyard_proto as pb;
use switchyard_proto::embed_input::Input;
use tonic::Status;
use tracing::Instrument;

use crate::allow;
use crate::auth::Identity;
use crate::failures::FailurePolicy;
use crate::route_error;
use crate::shared::{AllDown, RouterAvailability, all_down};
use crate::state::RouterState;
use crate::strategy;
use crate::trace;
use crate::usage::{AttemptUsage, RequestRecord, Timing};

/// Sets what an embeddings request may claim about its caller, as for chat (`Identity::apply`).
pub(crate) fn apply_identity(who: &Identity, req: &mut pb::EmbedRequest) -> Result<(), Status> {
    let mut as_chat = pb::ChatRequest {
        model: std::mem::take(&mut req.model),
        api_key_id: std::mem::take(&mut req.api_key_id),
        allowed_groups: std::mem::take(&mut req.allowed_groups),
        ..Default::default()
    };
    let applied = who.apply(&mut as_chat, true);
    req.model = as_chat.model;
    req.api_key_id = as_chat.api_key_id;
    req.allowed_groups = as_chat.allowed_groups;
    applied
}

/// Runs an embeddings request and accounts for it.
pub(crate) async fn run(
    state: &RouterState,
    req: pb::EmbedRequest,
    incoming_traceparent: Option<String>,
) -> pb::EmbedResponse {
    let timing = Timing::start();
    let mut attempts = Vec::new();
    let result = drive(
        state,
        &req,
        &timing,
        &mut attempts,
        incoming_traceparent.as_deref(),
    )
    .await;
    let mut record = RequestRecord {
        request_id: req.request_id.clone(),
        started_unix_ms: timing.started_unix_ms(),
        api_key_id: req.api_key_id.clone(),
        requested_group: req.model.clone(),
        api: crate::usage::api_or(&req.api, "openai.embeddings"),
        ..RequestRecord::default()
    };
    let response = match result {
        Ok(served) => {
            let dep = state.config.deployments.get(served.deployment);
            let group = dep.and_then(|x| state.config.groups.get(x.group));
            record.deployment = dep.map(|x| x.id.clone());
            record.backend_model = dep.map(|x| x.model.clone());
            record.served_group = group.map(|g| g.name.clone());
            record.prompt_tokens = served.prompt_tokens;
            record.tokens_estimated = served.estimated;
            record.status = "ok".into();
            record.http_status = 200;
            pb::EmbedResponse {
                embeddings: served
                    .embedded
                    .vectors
                    .into_iter()
                    .map(|values| pb::Embedding { values })
                    .collect(),
                group: req.model.clone(),
                served_group: record.served_group.clone().unwrap_or_default(),
                deployment: record.deployment.clone().unwrap_or_default(),
                backend_model: record.backend_model.clone().unwrap_or_default(),
                attempts: attempts.len() as u32,
                prompt_tokens: served.prompt_tokens,
                failed_attempts: served.failed,
                error: None,
            }
        }
        Err(e) => {
            record.status = e.code.clone();
            record.http_status = e.http_status as u16;
            pb::EmbedResponse {
                attempts: e.attempts,
                error: Some(e),
                ..Default::default()
            }
        }
    };
    state.metrics.request(
        &req.model,
        &record.status,
        timing.started.elapsed(),
        None,
        timing.overhead(),
        None,
    );
    record.latency_ms = timing.elapsed_ms();
    record.attempts = attempts;
    if let Some(sink) = &state.usage_sink {
        record.traceparent = incoming_traceparent;
        sink.record(record);
    }
    response
}

/// A served request.
struct Served {
    deployment: usize,
    embedded: Embedded,
    prompt_tokens: u32,
    estimated: bool,
    failed: Vec<pb::AttemptRecord>,
}

/// Token counts of the inputs on one deployment's tokenizer: the longest, the sum, and whether
/// they are exact. Deployments sharing a tokenizer share the work.
struct Counts<'a> {
    inputs: &'a [pb::EmbedInput],
    cache: Vec<(usize, u32, u32, bool)>,
}

impl Counts<'_> {
    fn of(&mut self, counter: &Arc<dyn TokenCounter>) -> (u32, u32, bool) {
        let key = Arc::as_ptr(counter) as *const () as usize;
        if let Some(&(_, longest, sum, exact)) = self.cache.iter().find(|c| c.0 == key) {
            return (longest, sum, exact);
        }
        let mut longest = 0u32;
        let mut sum = 0u32;
        // Token ids are counted exactly whatever the tokenizer.
        let exact = counter.is_exact()
            || self
                .inputs
                .iter()
                .all(|i| matches!(i.input, Some(Input::Tokens(_))));
        for i in self.inputs {
            let n = match &i.input {
                Some(Input::Text(t)) => counter.count(t),
                Some(Input::Tokens(t)) => u32::try_from(t.ids.len()).unwrap_or(u32::MAX),
                None => 0,
            };
            longest = longest.max(n);
            sum = sum.saturating_add(n);
        }
        self.cache.push((key, longest, sum, exact));
        (longest, sum, exact)
    }
}

/// The 400 for an input longer than every window: OpenAI's wording, which clients recognise.
fn no_fit(prompt: u32, largest: u32) -> pb::RouteError {
    pb::RouteError {
        http_status: 400,
        r#type: "invalid_request_error".into(),
        code: "context_length_exceeded".into(),
        message: format!(
            "This model's maximum context length is {largest} tokens. However, you requested \
             {prompt} tokens (the longest input). Please reduce the length of the input."
        ),
        param: Some("input".into()),
        ..Default::default()
    }
}

async fn drive(
    state: &RouterState,
    req: &pb::EmbedRequest,
    timing: &Timing,
    attempts: &mut Vec<AttemptUsage>,
    traceparent: Option<&str>,
) -> Result<Served, pb::RouteError> {
    let cfg = &state.config;
    let group = cfg
        .group(&req.model)
        .ok_or_else(|| route_error::unknown_group(cfg, &req.model))?;
    if cfg.groups.get(group).map(|g| g.mode) != Some(Mode::Embedding) {
        return Err(route_error::invalid_request(
            format!(
                "The model `{}` is a chat model and does not serve embeddings; use an embedding model (model_info.mode: embedding) for /v1/embeddings",
                req.model
            ),
            Some("model"),
        ));
    }
    if req.inputs.is_empty() {
        return Err(route_error::invalid_request(
            "input must not be empty",
            Some("input"),
        ));
    }
    let token_ids = req
        .inputs
        .iter()
        .any(|i| matches!(i.input, Some(Input::Tokens(_))));
    let margin = SafetyMargin {
        ratio: cfg.routing.safety_margin_ratio,
        tokens: cfg.routing.safety_margin_tokens,
    };
    let mut counts = Counts {
        inputs: &req.inputs,
        cache: Vec::new(),
    };
    let mut sums: Vec<(usize, u32, bool)> = Vec::with_capacity(4);
    let mut plan = plan_for_window(
        cfg,
        group,
        &mut |d| {
            let Some(tok) = state.tokens.get(d) else {
                return 0;
            };
            let (longest, sum, exact) = counts.of(&tok.counter());
            sums.push((d, sum, exact));
            PromptEstimate::assemble(longest, 0, exact, margin).total()
        },
        0,
        req.min_context,
        &RouterAvailability(state),
        Instant::now(),
    )
    .map_err(|e| match e {
        PlanError::NoFit {
            prompt, largest, ..
        } => no_fit(prompt, largest),
        other => route_error::from_plan(&other),
    })?;
    let keep = |d: usize| {
        cfg.deployments.get(d).is_some_and(|dep| {
            dep.mode == Mode::Embedding && (!token_ids || takes_token_ids(dep.provider))
        })
    };
    plan.candidates.retain(|c| keep(c.deployment));
    plan.last_resort.retain(|c| keep(c.deployment));
    if plan.candidates.is_empty() && plan.last_resort.is_empty() && token_ids {
        return Err(route_error::invalid_request(
            format!(
                "input: token ids cannot be embedded by the deployments of `{}` (Ollama's /api/embed takes text only); send the text instead (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))",
                req.model
            ),
            Some("input"),
        ));
    }
    let cut = allow::cut_plan(cfg, &req.allowed_groups, &mut plan).groups;
    if plan.candidates.is_empty() {
        return Err(allow::nothing_allowed(&req.model, &cut));
    }
    strategy::order(state, &mut plan.candidates).await;
    let mut num_retries = cfg.routing.num_retries;
    match all_down(state, &plan.candidates) {
        AllDown::No => {}
        AllDown::Fresh => {
            return Err(route_error::nothing_healthy(
                &req.model,
                plan.candidates.len(),
            ));
        }
        AllDown::MaybeStale => {
            plan.candidates.truncate(1);
            num_retries = 0;
        }
    }

    let dimensions = (req.dimensions > 0).then_some(req.dimensions);
    let mut failed: Vec<pb::AttemptRecord> = Vec::new();
    let mut policy = FailurePolicy::default();
    for round in 0..=num_retries {
        if round > 0 {
            let factor = 1u32 << (round - 1).min(10);
            let backoff = cfg
                .routing
                .retry_backoff
                .saturating_mul(factor)
                .min(Duration::from_secs(10));
            tokio::time::sleep(backoff).await;
        }
        let mut tried = false;
        for candidate in &plan.candidates {
            if policy.skips(candidate) {
                continue;
            }
            let d = candidate.deployment;
            let Some(dep) = cfg.deployments.get(d) else {
                continue;
            };
            tried = true;
            let (sum, exact) = sums
                .iter()
                .find(|(x, _, _)| *x == d)
                .map_or((0, false), |(_, s, e)| (*s, *e));
            let span = trace::attempt_span(
                dep,
                cfg.groups.get(dep.group).map_or("", |g| g.name.as_str()),
                attempts.len() + 1,
                sum,
            );
            let attempt_traceparent = switchyard_telemetry::traceparent_of(&span);
            let id = dep.id.as_str();
            let strategy = cfg.routing.strategy;
            if strategy == Strategy::LeastBusy {
                let _ = state.shared.inflight.incr(id).await;
            }
            state.metrics.inflight(id, 1);
            let started = Instant::now();
            let outcome = state
                .backends
                .embed(EmbedCall {
                    deployment: dep,
                    inputs: &req.inputs,
                    dimensions,
                    user: req.user.as_deref(),
                    traceparent: attempt_traceparent.as_deref().or(traceparent),
                    keep_alive_json: req.keep_alive_json.as_deref(),
                })
                .instrument(span.clone())
                .await;
            timing.add_backend(started.elapsed());
            state.metrics.inflight(id, -1);
            if strategy == Strategy::LeastBusy {
                let _ = state.shared.inflight.decr(id).await;
            }
            match outcome {
                Ok(embedded) => {
                    let (prompt_tokens, estimated) = match embedded.prompt_tokens {
                        Some(n) => (n, false),
                        None => (sum, !exact),
                    };
                    state.cooldowns.record_success(d);
                    state.metrics.attempt(id, "ok");
                    state.metrics.tokens(id, prompt_tokens, 0);
                    state.shared.report_success(id).await;
                    if strategy == Strategy::UsageBased {
                        let _ = state.shared.usage.add(id, u64::from(prompt_tokens)).await;
                    }
                    attempts.push(AttemptUsage {
                        deployment: dep.id.clone(),
                        failure_class: None,
                        message: String::new(),
                        prompt_tokens,
                        completion_tokens: 0,
                    });
                    return Ok(Served {
                        deployment: d,
                        embedded,
                        prompt_tokens,
                        estimated,
                        failed,
                    });
                }
                Err(e) => {
                    let ended = policy
                        .failed(state, candidate, e, &span, &mut failed, attempts, &cut)
                        .await;
                    if let Some(end) = ended {
                        return Err(end);
                    }
                }
            }
        }
        if !tried {
            break;
        }
    }
    let last = policy.last_error.unwrap_or_else(|| {
        BackendError::new(
            FailureClass::Overflow,
            "no deployment with a larger context window is left",
        )
    });
    Err(allow::explain_cut(
        route_error::exhausted(&last, failed),
        &cut,
    ))
}
