//! The fallback loop of one chat request: plan, then try candidates until one serves.
//!
//! Policy comes from the failure class: a rejection of the request itself (the caller's 4xx, or
//! a 500 another deployment repeats word for word) ends the loop once a second deployment agrees
//! (another model would reject it too); an overflow skips every candidate whose window is not
//! larger; anything else moves to the next candidate and counts towards that deployment's
//! cooldown. After a full pass in which everything failed, `num_retries` further passes follow,
//! with backoff. When every candidate is known to be down, the request fails fast (503).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_backends::BackendError;
use switchyard_core::FailureClass;
use switchyard_core::calibration::Inputs;
use switchyard_core::config::Strategy;
use switchyard_core::plan::{PlanError, plan_for_window};
use switchyard_core::tokens::PromptEstimate;
use switchyard_proto as pb;
use tracing::Instrument;

use crate::allow;
use crate::attempt::{self, AttemptCtx, Carry, EventTx, Outcome, event};
use crate::boundary;
use crate::failures::{FailurePolicy, attempt_record, deployment_id};
use crate::route_error;
use crate::shared::RouterAvailability;
use crate::state::{Estimator, RouterState};
use crate::strategy;
use crate::trace;
use crate::usage::{AttemptUsage, RequestRecord, Timing};

/// Runs a chat request, sending its events (or one error) to `tx`, then hands its accounting to
/// the usage sink.
pub(crate) async fn run(
    state: &RouterState,
    req: pb::ChatRequest,
    tx: EventTx,
    incoming_traceparent: Option<String>,
) {
    let timing = Timing::start();
    let mut attempts = Vec::new();
    let span = tracing::Span::current();
    // Our own span's context when tracing, else the caller's passed on unchanged.
    let traceparent = switchyard_telemetry::traceparent_of(&span).or(incoming_traceparent);
    let result = drive(
        state,
        &req,
        &tx,
        &timing,
        &mut attempts,
        traceparent.as_deref(),
    )
    .await;
    let mut record = RequestRecord {
        request_id: req.request_id.clone(),
        started_unix_ms: timing.started_unix_ms(),
        api_key_id: req.api_key_id.clone(),
        requested_group: req.model.clone(),
        streamed: req.stream,
        api: crate::usage::api_or(&req.api, "openai.chat"),
        ..RequestRecord::default()
    };
    let mut error = None;
    match result {
        Ok(Ended::Answered(d, usage)) => {
            served_by(state, &mut record, d, &usage);
            record.status = "ok".into();
            record.http_status = 200;
        }
        Ok(Ended::ClientGone(served)) => {
            // The backend may have worked on it (and the key spent tokens) all the same.
            if let Some((d, usage)) = served {
                served_by(state, &mut record, d, &usage);
            }
            record.status = "client_disconnected".into();
            record.http_status = 499;
        }
        Err(e) => {
            record.status = e.code.clone();
            record.http_status = e.http_status as u16;
            error = Some(e);
        }
    }
    let trace_id = switchyard_telemetry::trace_id_of(&span).or_else(|| {
        traceparent
            .as_deref()
            .and_then(switchyard_telemetry::traceparent_trace_id)
            .map(str::to_owned)
    });
    // Recorded before the last event goes out, so a caller that has its answer can rely on the
    // record existing.
    state.metrics.request(
        &req.model,
        &record.status,
        timing.started.elapsed(),
        timing.ttft(),
        timing.overhead(),
        trace_id.as_deref(),
    );
    record.latency_ms = timing.elapsed_ms();
    record.ttft_ms = timing.ttft_ms();
    record.attempts = attempts;
    trace::finish_request(&span, &record, trace_id.as_deref());
    if let Some(sink) = &state.usage_sink {
        record.traceparent = traceparent;
        sink.record(record);
    }
    if let Some(e) = error {
        let _ = tx.send(Ok(event(pb::chat_event::Event::Error(e)))).await;
    }
}

/// Fills in the deployment that served (or was serving) the request, and its usage.
fn served_by(state: &RouterState, record: &mut RequestRecord, d: usize, usage: &pb::Usage) {
    let dep = state.config.deployments.get(d);
    record.deployment = dep.map(|x| x.id.clone());
    record.backend_model = dep.map(|x| x.model.clone());
    record.served_group = dep
        .and_then(|x| state.config.groups.get(x.group))
        .map(|g| g.name.clone());
    record.prompt_tokens = usage.prompt_tokens;
    record.completion_tokens = usage.completion_tokens;
    record.tokens_estimated = usage.estimated;
}

/// How a request that did not fail ended.
enum Ended {
    /// Answered in full by this deployment, with this usage (all attempts summed).
    Answered(usize, pb::Usage),
    /// The caller went away; with the deployment that was at work and the usage so far
    /// (estimated) when an attempt had been sent.
    ClientGone(Option<(usize, pb::Usage)>),
}

/// The least room for an answer that makes a window worth sending a prompt to when the full
/// output reserve fits nowhere.
const MIN_OUTPUT_ROOM: u32 = 64;

/// How the usage record flags an answer limited to the room its window left.
pub(crate) const OUTPUT_LIMITED: &str = "output_limited";

pub(crate) fn output_reserve(state: &RouterState, req: &pb::ChatRequest) -> (Option<u32>, u32) {
    let requested = req
        .sampling
        .as_ref()
        .and_then(|s| s.max_completion_tokens.or(s.max_tokens));
    (
        requested,
        requested.unwrap_or(state.config.routing.reserve_output_tokens),
    )
}

/// Serves the request, or says how it ended without an error. Every attempt is appended to
/// `attempts`.
async fn drive(
    state: &RouterState,
    req: &pb::ChatRequest,
    tx: &EventTx,
    timing: &Timing,
    attempts: &mut Vec<AttemptUsage>,
    traceparent: Option<&str>,
) -> Result<Ended, pb::RouteError> {
    let cfg = &state.config;
    let group = cfg
        .group(&req.model)
        .ok_or_else(|| route_error::unknown_group(cfg, &req.model))?;
    if cfg.groups.get(group).map(|g| g.mode) == Some(switchyard_core::config::Mode::Embedding) {
        return Err(route_error::invalid_request(
            format!(
                "The model `{}` is an embedding model and does not serve chat; send it to /v1/embeddings",
                req.model
            ),
            Some("model"),
        ));
    }
    if req.messages.is_empty() {
        return Err(route_error::invalid_request(
            "messages must contain at least one message",
            Some("messages"),
        ));
    }
    let (requested_max, mut reserve) = output_reserve(state, req);
    let mut estimator = Estimator::new(state, req);
    let mut estimates: Vec<(usize, PromptEstimate, Option<Inputs>)> = Vec::with_capacity(4);
    // Exact counts where an estimate leaves a window's fit test undecided.
    boundary::refine(state, req, &mut estimator, group, reserve, false).await;
    let plan_with = |reserve: u32, estimates: &mut Vec<_>, estimator: &mut Estimator<'_>| {
        estimates.clear();
        plan_for_window(
            cfg,
            group,
            &mut |d| {
                let (e, x) = estimator.estimate_with_inputs(d);
                estimates.push((d, e, x));
                e.total()
            },
            reserve,
            req.min_context,
            &RouterAvailability(state),
            Instant::now(),
        )
    };
    // The output reserve is a reason to prefer a larger model, not to refuse a prompt that fits:
    // when nothing fits with it and the caller set no limit, the prompt goes to the first model
    // it fits with room for an answer, limited to that room (`Candidate::output_room`).
    let mut limited = false;
    let mut plan = match plan_with(reserve, &mut estimates, &mut estimator) {
        Err(e @ PlanError::NoFit { .. })
            if requested_max.is_none() && reserve > MIN_OUTPUT_ROOM =>
        {
            boundary::refine(state, req, &mut estimator, group, MIN_OUTPUT_ROOM, true).await;
            match plan_with(MIN_OUTPUT_ROOM, &mut estimates, &mut estimator) {
                Ok(p) => {
                    limited = true;
                    reserve = MIN_OUTPUT_ROOM;
                    p
                }
                Err(_) => return Err(route_error::from_plan(&e)),
            }
        }
        other => other.map_err(|e| route_error::from_plan(&e))?,
    };
    let cut = allow::cut(state, req, &mut plan);
    if plan.candidates.is_empty() {
        return Err(allow::nothing_allowed(&req.model, &cut));
    }
    strategy::order(state, &mut plan.candidates).await;
    let mut num_retries = cfg.routing.num_retries;
    match crate::shared::all_down(state, &plan.candidates) {
        crate::shared::AllDown::No => {}
        crate::shared::AllDown::Fresh => {
            return Err(route_error::nothing_healthy(
                &req.model,
                plan.candidates.len(),
            ));
        }
        crate::shared::AllDown::MaybeStale => {
            // The newest down-mark is older than a probe interval: one attempt, to find out.
            plan.candidates.truncate(1);
            num_retries = 0;
        }
    }
    // A slot for the first attempt: at once, after a wait in the capacity queue, or on a later
    // group of the chain (`spill`).
    let admitted = match crate::spill::admit(state, req, &plan.candidates, tx).await {
        Ok(a) => a,
        Err(crate::spill::Refused::ClientGone) => return Ok(Ended::ClientGone(None)),
        Err(crate::spill::Refused::Rejected(e)) => return Err(e),
    };
    let crate::spill::Admitted {
        slot: mut first_slot,
        queued,
        spilled,
        share: _share,
    } = admitted;
    if let Some((d, _)) = &first_slot
        && let Some(i) = plan.candidates.iter().position(|c| c.deployment == *d)
    {
        let c = plan.candidates.remove(i);
        plan.candidates.insert(0, c);
    }
    let queue_note = crate::spill::record_note(queued, spilled.as_ref());
    let queued_ms = u32::try_from(queued.as_millis()).unwrap_or(u32::MAX);

    let response_id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut failed: Vec<pb::AttemptRecord> = Vec::new();
    let mut policy = FailurePolicy::default();
    // Set once the client has part of the answer: later attempts continue it.
    let mut carry: Option<Carry> = None;
    let continuable = !is_json_mode(req);

    for round in 0..=num_retries {
        if round > 0 {
            let factor = 1u32 << (round - 1).min(10);
            let backoff = cfg
                .routing
                .retry_backoff
                .saturating_mul(factor)
                .min(Duration::from_secs(10));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = tx.closed() => return Ok(Ended::ClientGone(None)),
            }
        }
        let mut tried = false;
        for candidate in &plan.candidates {
            if policy.skips(candidate) {
                continue;
            }
            let (estimate, inputs) = estimates
                .iter()
                .find(|(d, _, _)| *d == candidate.deployment)
                .map(|(_, e, x)| (*e, *x))
                .unwrap_or_default();
            let produced = carry.as_ref().map_or(0, |c| c.completion_tokens);
            // Limited to the room this window leaves when the full reserve fitted nowhere.
            let room = candidate
                .window
                .filter(|_| limited)
                .map(|w| w.saturating_sub(estimate.total()));
            let max_tokens = requested_max.or(room).map(|m| m.saturating_sub(produced));
            if max_tokens == Some(0) {
                // The interrupted attempts already produced everything that was asked for.
                let usage = finish_without_backend(tx, carry.as_ref()).await;
                return Ok(Ended::Answered(candidate.deployment, usage));
            }
            if carry.is_some() {
                // The continuation's prompt has grown by the partial answer.
                let remaining = max_tokens.unwrap_or(reserve);
                let needed = estimate
                    .total()
                    .saturating_add(produced)
                    .saturating_add(remaining);
                if candidate.window.is_some_and(|w| needed > w) {
                    continue;
                }
            }
            tried = true;
            let span = match cfg.deployments.get(candidate.deployment) {
                Some(dep) => trace::attempt_span(
                    dep,
                    cfg.groups.get(dep.group).map_or("", |g| g.name.as_str()),
                    attempts.len() + 1,
                    estimate.predicted(),
                ),
                None => tracing::Span::none(),
            };
            let attempt_traceparent = switchyard_telemetry::traceparent_of(&span);
            let ctx = AttemptCtx {
                state,
                request: req,
                tx,
                candidate,
                estimate,
                response_id: &response_id,
                created,
                failed: &failed,
                max_tokens,
                output_limited: room.is_some(),
                carry: carry.as_ref(),
                timing,
                inputs,
                remote_count: estimator.remote_count(candidate.deployment),
                traceparent: attempt_traceparent.as_deref().or(traceparent),
                queued_ms,
                spilled: spilled.as_ref().map(|s| s.detail.as_str()),
            };
            let d = candidate.deployment;
            let id: &str = cfg.deployments.get(d).map_or("", |x| x.id.as_str());
            let strategy = cfg.routing.strategy;
            // The first attempt's slot came from admission; later ones go without waiting.
            let slot = match first_slot.take_if(|(fd, _)| *fd == d) {
                Some((_, s)) => s,
                None => crate::capacity::force_take(state, d).await,
            };
            state.metrics.inflight(id, 1);
            state.backend_counting.busy(d, 1);
            let attempt_started = Instant::now();
            let outcome = attempt::run(&ctx).instrument(span.clone()).await;
            timing.add_backend(attempt_started.elapsed());
            state.backend_counting.busy(d, -1);
            state.metrics.inflight(id, -1);
            slot.release().await;
            match outcome {
                Outcome::Served { usage, truncated } => {
                    if truncated.is_some() {
                        state.metrics.truncated_prompt(id);
                    }
                    state.cooldowns.record_success(d);
                    state.metrics.attempt(id, "ok");
                    state
                        .metrics
                        .tokens(id, usage.prompt_tokens, usage.completion_tokens);
                    state.shared.report_success(id).await;
                    if strategy == Strategy::UsageBased || crate::capacity::counts_usage(state, d) {
                        let tokens =
                            u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens);
                        let _ = state.shared.usage.add(id, tokens).await;
                    }
                    let note = match (truncated, room) {
                        (Some(t), _) => t,
                        (None, Some(r)) => format!(
                            "{OUTPUT_LIMITED}: max_tokens {r}, the room the {} window left (the prompt fitted no window with routing.reserve_output_tokens {})",
                            candidate.window.unwrap_or(0),
                            cfg.routing.reserve_output_tokens
                        ),
                        (None, None) => String::new(),
                    };
                    let note = match (&queue_note, note.is_empty()) {
                        (None, _) => note,
                        (Some(q), true) => q.clone(),
                        (Some(q), false) => format!("{note}; {q}"),
                    };
                    attempts.push(AttemptUsage {
                        deployment: deployment_id(state, d),
                        failure_class: None,
                        // Empty, or the flag of an answer made from a truncated prompt or
                        // limited to the room its window left.
                        message: note,
                        prompt_tokens: usage
                            .prompt_tokens
                            .saturating_sub(carry.as_ref().map_or(0, |c| c.prompt_tokens)),
                        completion_tokens: usage
                            .completion_tokens
                            .saturating_sub(carry.as_ref().map_or(0, |c| c.completion_tokens)),
                    });
                    return Ok(Ended::Answered(d, usage));
                }
                Outcome::ClientGone { chunks } => {
                    attempts.push(AttemptUsage {
                        deployment: deployment_id(state, d),
                        failure_class: Some("client_disconnected".into()),
                        message: "the caller went away".into(),
                        prompt_tokens: estimate.predicted(),
                        completion_tokens: chunks,
                    });
                    let usage = ctx.usage_when_abandoned(chunks);
                    return Ok(Ended::ClientGone(Some((d, usage))));
                }
                Outcome::Interrupted {
                    error,
                    text,
                    chunks,
                    streamed_tool_calls,
                } => {
                    tracing::info!(deployment = id, class = %error.class, "stream interrupted after the first token; continuing elsewhere");
                    trace::attempt_failed(&span, error.class, true);
                    state.cooldowns.record_failure(d, Instant::now());
                    state.shared.report_failure(id, error.class).await;
                    state.metrics.attempt(id, error.class.as_str());
                    failed.push(attempt_record(state, d, &error));
                    attempts.push(AttemptUsage {
                        deployment: deployment_id(state, d),
                        failure_class: Some(error.class.as_str().to_string()),
                        message: error.message.clone(),
                        prompt_tokens: estimate.predicted(),
                        completion_tokens: chunks,
                    });
                    if streamed_tool_calls || !continuable {
                        // A half-sent tool call or JSON document cannot be continued faithfully.
                        return Err(route_error::mid_stream(&error, failed));
                    }
                    state.metrics.continuation(error.class.as_str());
                    let c = carry.get_or_insert_with(Carry::default);
                    c.completion_tokens = c.completion_tokens.saturating_add(chunks);
                    c.prompt_tokens = c.prompt_tokens.saturating_add(estimate.predicted());
                    c.text.push_str(&text);
                    policy.last_error = Some(error);
                }
                Outcome::Failed(e) => {
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
    if let (Some(_), Some(e)) = (&carry, &policy.last_error) {
        return Err(allow::explain_cut(route_error::mid_stream(e, failed), &cut));
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

/// JSON-mode answers are not continued: a spliced document could be invalid.
fn is_json_mode(req: &pb::ChatRequest) -> bool {
    req.response_format_json
        .as_deref()
        .is_some_and(|f| f.contains("json_object") || f.contains("json_schema"))
}

/// Ends a continued stream whose output budget was used up by the interrupted attempts.
async fn finish_without_backend(tx: &EventTx, carry: Option<&Carry>) -> pb::Usage {
    let usage = pb::Usage {
        prompt_tokens: carry.map_or(0, |c| c.prompt_tokens),
        completion_tokens: carry.map_or(0, |c| c.completion_tokens),
        estimated: true,
    };
    let _ = tx
        .send(Ok(event(pb::chat_event::Event::Finish(pb::Finish {
            reason: "length".into(),
        }))))
        .await;
    let _ = tx
        .send(Ok(event(pb::chat_event::Event::Usage(usage))))
        .await;
    usage
}
