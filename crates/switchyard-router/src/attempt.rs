//! One attempt against one deployment, and the commit point that makes fallback invisible.
//!
//! Nothing reaches the caller until the attempt *commits*: for a streaming request, when the first
//! delta arrives; for a non-streaming one, when the whole answer has arrived intact (so a broken
//! stream or a silently truncated prompt can still fall back). Before the commit point a failure
//! is returned to the fallback loop and the caller never learns of it.

use futures::StreamExt;
use switchyard_backends::{Attempt, BackendError, BackendEvent, Completion, EventStream};
use switchyard_core::FailureClass;
use switchyard_core::config::Deployment;
use switchyard_core::plan::Candidate;
use switchyard_core::tokens::PromptEstimate;
use switchyard_proto as pb;
use tokio::sync::mpsc;
use tonic::Status;

use switchyard_core::calibration::Inputs;

use crate::state::RouterState;
use crate::usage::Timing;

pub(crate) type EventTx = mpsc::Sender<Result<pb::ChatEvent, Status>>;

/// Fewest prompt tokens a backend must have left out for an answer to count as made from a
/// truncated prompt (besides `routing.truncation_ratio`).
const MIN_TRUNCATED_TOKENS: u32 = 64;

/// How the usage record's serving attempt is flagged (its message) when a streamed answer turned
/// out to be made from a truncated prompt.
pub(crate) const TRUNCATED_PROMPT: &str = "truncated_prompt";

/// How an attempt ended.
pub(crate) enum Outcome {
    /// The answer reached the caller in full, with this (summed) usage. `truncated` says why
    /// the answer is suspect: it was committed (streamed) before the backend's usage report
    /// showed a silently truncated prompt.
    Served {
        usage: pb::Usage,
        truncated: Option<String>,
    },
    /// The caller went away; stop everything. `chunks` content deltas had reached it (or been
    /// buffered for it) by then: the best count of the tokens the backend produced.
    ClientGone { chunks: u32 },
    /// Failed before the commit point: the loop may try another candidate.
    Failed(BackendError),
    /// Failed after the caller had part of the answer. `text` is what this attempt added to it;
    /// the loop may continue the answer elsewhere unless tool calls were streamed.
    Interrupted {
        error: BackendError,
        text: String,
        /// Content deltas received: backends stream one token per chunk, so this is the best
        /// count of the tokens produced when no usage report arrives.
        chunks: u32,
        streamed_tool_calls: bool,
    },
}

/// What earlier attempts of the same request already produced (a continuation carries it on).
#[derive(Clone, Debug, Default)]
pub(crate) struct Carry {
    /// The answer so far, as the client has received it.
    pub text: String,
    /// Prompt tokens of the interrupted attempts (our count).
    pub prompt_tokens: u32,
    /// Completion tokens of the interrupted attempts (our count).
    pub completion_tokens: u32,
}

/// Everything one attempt needs from the request's loop.
pub(crate) struct AttemptCtx<'a> {
    pub state: &'a RouterState,
    pub request: &'a pb::ChatRequest,
    pub tx: &'a EventTx,
    pub candidate: &'a Candidate,
    pub estimate: PromptEstimate,
    pub response_id: &'a str,
    pub created: i64,
    pub failed: &'a [pb::AttemptRecord],
    pub max_tokens: Option<u32>,
    /// `max_tokens` is the room this window left, not the caller's limit (reported to them).
    pub output_limited: bool,
    /// Set when this attempt continues an answer the client is already receiving.
    pub carry: Option<&'a Carry>,
    pub timing: &'a Timing,
    /// What the estimate was computed from, for calibration (estimating counters only).
    pub inputs: Option<Inputs>,
    /// The backend's own count of the prompt, when it was asked (near a window boundary).
    pub remote_count: Option<crate::backend_count::RemoteCount>,
    /// W3C `traceparent` for the backend call (this attempt's span, or the caller's trace).
    pub traceparent: Option<&'a str>,
    /// Time the request waited in the capacity queue.
    pub queued_ms: u32,
    /// Why a later group serves, when the preferred one was full.
    pub spilled: Option<&'a str>,
}

impl AttemptCtx<'_> {
    fn deployment(&self) -> Option<&Deployment> {
        self.state.config.deployments.get(self.candidate.deployment)
    }

    fn route_info(&self) -> pb::ChatEvent {
        let d = self.deployment();
        let served_group = d
            .and_then(|d| self.state.config.groups.get(d.group))
            .map(|g| g.name.clone())
            .unwrap_or_default();
        event(pb::chat_event::Event::Route(pb::RouteInfo {
            group: self.request.model.clone(),
            deployment: d.map(|d| d.id.clone()).unwrap_or_default(),
            backend_model: d.map(|d| d.model.clone()).unwrap_or_default(),
            attempts: self.failed.len() as u32 + 1,
            prompt_tokens: self.estimate.predicted(),
            response_id: self.response_id.to_string(),
            created: self.created,
            failed_attempts: self.failed.to_vec(),
            served_group,
            output_limit: self.max_tokens.filter(|_| self.output_limited),
            queued_ms: self.queued_ms,
            spilled: self.spilled.map(str::to_owned),
        }))
    }

    /// Whether the backend evaluated noticeably fewer prompt tokens than the request has: the
    /// signature of Ollama's silent truncation (backends.md §3.2).
    ///
    /// The shortfall must also be large in tokens, not only as a share: an estimating counter's
    /// fixed template overhead can be several times a short prompt's real size ("hello" is ~10
    /// tokens to llama.cpp, ~30 to a heuristic), while a prompt that short cannot have overflowed
    /// any real model's window.
    fn truncated(&self, reported: Option<u32>) -> bool {
        let ratio = self.state.config.routing.truncation_ratio;
        // The least the prompt can be: a range's lower end, else the prediction.
        let predicted = self.estimate.lower;
        reported.is_some_and(|r| {
            (r as f32) < predicted as f32 * ratio
                && predicted.saturating_sub(r) >= MIN_TRUNCATED_TOKENS
        })
    }

    /// Feeds an intact answer's reported prompt size back into the deployment's calibration.
    fn learn(&self, c: &Completion) {
        if self.carry.is_some() {
            return; // the prompt carried a partial answer: not comparable
        }
        if let (Some(reported), Some(counted)) = (c.prompt_tokens, self.remote_count) {
            self.state
                .backend_counting
                .observe(self.candidate.deployment, counted, reported);
        }
        // Calibration inputs exist only for estimating counters: an exact one has nothing to learn.
        if let (Some(reported), Some(cal), Some(x)) = (
            c.prompt_tokens,
            self.state.calibration.get(self.candidate.deployment),
            &self.inputs,
        ) {
            cal.observe(x, reported);
        }
    }

    /// Our estimate of what an attempt the caller walked away from had used (no report came),
    /// plus whatever interrupted attempts before it produced.
    pub(crate) fn usage_when_abandoned(&self, chunks: u32) -> pb::Usage {
        self.usage(&Completion::default(), chunks)
    }

    /// Usage of this attempt plus whatever interrupted attempts before it produced.
    fn usage(&self, c: &Completion, chunks: u32) -> pb::Usage {
        let estimated =
            c.prompt_tokens.is_none() || c.completion_tokens.is_none() || self.carry.is_some();
        let (carried_prompt, carried_completion) = self
            .carry
            .map(|k| (k.prompt_tokens, k.completion_tokens))
            .unwrap_or((0, 0));
        let prompt = c.prompt_tokens.unwrap_or_else(|| self.estimate.predicted());
        // Backends stream one token per chunk: the best count when none is reported.
        let completion = c.completion_tokens.unwrap_or(chunks);
        pb::Usage {
            prompt_tokens: prompt.saturating_add(carried_prompt),
            completion_tokens: completion.saturating_add(carried_completion),
            estimated,
        }
    }
}

pub(crate) fn event(e: pb::chat_event::Event) -> pb::ChatEvent {
    pb::ChatEvent { event: Some(e) }
}

/// Runs one attempt to its outcome.
pub(crate) async fn run(ctx: &AttemptCtx<'_>) -> Outcome {
    let Some(deployment) = ctx.deployment() else {
        return Outcome::Failed(BackendError::new(
            FailureClass::Protocol,
            "deployment vanished",
        ));
    };
    let attempt = Attempt {
        deployment,
        request: ctx.request,
        extra_assistant_prefix: ctx.carry.map(|c| crate::seam::prefix_to_send(&c.text)),
        max_tokens: ctx.max_tokens,
        traceparent: ctx.traceparent,
    };
    let started = tokio::select! {
        r = ctx.state.backends.start(attempt) => r,
        _ = ctx.tx.closed() => return Outcome::ClientGone { chunks: 0 },
    };
    let stream = match started {
        Ok(s) => s,
        Err(e) if ctx.carry.is_some() => {
            return Outcome::Interrupted {
                error: e,
                text: String::new(),
                chunks: 0,
                streamed_tool_calls: false,
            };
        }
        Err(e) => return Outcome::Failed(e),
    };
    if ctx.request.stream {
        relay(ctx, stream).await
    } else {
        buffered(ctx, stream).await
    }
}

async fn send(ctx: &AttemptCtx<'_>, ev: pb::ChatEvent) -> bool {
    ctx.tx.send(Ok(ev)).await.is_ok()
}

/// Streaming: commit at the first delta, then forward every event as it comes. A continuation is
/// committed from the start: the client already has the beginning of the answer. Its opening
/// whitespace is held back until its first word shows how the seam joins (`seam::join`).
async fn relay(ctx: &AttemptCtx<'_>, mut stream: EventStream) -> Outcome {
    let mut committed = ctx.carry.is_some();
    let received = ctx.carry.map_or("", |c| c.text.as_str());
    // The continuation's opening while the seam is still open (whitespace only so far).
    let mut opening: Option<String> = ctx.carry.map(|_| String::new());
    let mut text = String::new();
    let mut streamed_tool_calls = false;
    let mut chunks = 0u32;
    loop {
        let item = tokio::select! {
            i = stream.next() => i,
            _ = ctx.tx.closed() => return Outcome::ClientGone { chunks },
        };
        match item {
            Some(Ok(BackendEvent::Delta(mut d))) => {
                if let Some(held) = opening.as_mut() {
                    held.push_str(&d.content);
                    if held.trim_start().is_empty() {
                        if d.reasoning.is_none()
                            && d.tool_calls.is_empty()
                            && d.logprobs_json.is_none()
                        {
                            chunks += 1;
                            continue;
                        }
                        d.content.clear();
                    } else {
                        d.content = crate::seam::join(received, held);
                        opening = None;
                    }
                }
                if !committed {
                    committed = true;
                    if !send(ctx, ctx.route_info()).await {
                        return Outcome::ClientGone { chunks };
                    }
                }
                text.push_str(&d.content);
                chunks += 1;
                streamed_tool_calls |= !d.tool_calls.is_empty();
                ctx.timing.first_token();
                if !send(ctx, event(pb::chat_event::Event::Delta(d))).await {
                    return Outcome::ClientGone { chunks };
                }
            }
            Some(Ok(BackendEvent::Done(c))) => {
                let mut truncated = None;
                if !committed {
                    if ctx.truncated(c.prompt_tokens) {
                        return Outcome::Failed(truncation_error(ctx, &c));
                    }
                    ctx.learn(&c);
                    if !send(ctx, ctx.route_info()).await {
                        return Outcome::ClientGone { chunks };
                    }
                } else if ctx.truncated(c.prompt_tokens) {
                    tracing::warn!(
                        deployment = %ctx.deployment().map(|d| d.id.as_str()).unwrap_or(""),
                        reported = ?c.prompt_tokens,
                        predicted = ctx.estimate.predicted(),
                        "backend reported fewer prompt tokens than sent: the streamed answer was made from a truncated prompt"
                    );
                    truncated = Some(format!(
                        "{TRUNCATED_PROMPT}: {}",
                        truncation_error(ctx, &c).message
                    ));
                } else {
                    ctx.learn(&c);
                }
                if let Some(held) = opening.take() {
                    // The continuation ended before any word: only whitespace the client lacks.
                    let content = crate::seam::join(received, &held);
                    if !content.is_empty() {
                        text.push_str(&content);
                        let d = pb::Delta {
                            content,
                            ..Default::default()
                        };
                        if !send(ctx, event(pb::chat_event::Event::Delta(d))).await {
                            return Outcome::ClientGone { chunks };
                        }
                    }
                }
                let finish = event(pb::chat_event::Event::Finish(pb::Finish {
                    reason: c.finish_reason.clone(),
                }));
                let usage = ctx.usage(&c, chunks);
                crate::trace::attempt_done(&c.finish_reason, c.prompt_tokens, &usage);
                let usage_event = event(pb::chat_event::Event::Usage(usage));
                if !send(ctx, finish).await || !send(ctx, usage_event).await {
                    return Outcome::ClientGone { chunks };
                }
                return Outcome::Served { usage, truncated };
            }
            Some(Err(e)) if !committed => return Outcome::Failed(e),
            Some(Err(error)) => {
                return Outcome::Interrupted {
                    error,
                    text,
                    chunks,
                    streamed_tool_calls,
                };
            }
            None if !committed => {
                return Outcome::Failed(BackendError::new(
                    FailureClass::StreamBroken,
                    "stream ended early",
                ));
            }
            None => {
                let error = BackendError::new(FailureClass::StreamBroken, "stream ended early");
                return Outcome::Interrupted {
                    error,
                    text,
                    chunks,
                    streamed_tool_calls,
                };
            }
        }
    }
}

fn truncation_error(ctx: &AttemptCtx<'_>, c: &Completion) -> BackendError {
    BackendError::new(
        FailureClass::Overflow,
        format!(
            "the backend evaluated {} prompt tokens of about {} sent: it truncated the prompt",
            c.prompt_tokens.unwrap_or(0),
            ctx.estimate.predicted()
        ),
    )
}

/// Non-streaming: read the whole answer first, so any failure — including a truncated prompt —
/// can still fall back, then hand it over in one piece.
async fn buffered(ctx: &AttemptCtx<'_>, mut stream: EventStream) -> Outcome {
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls: Vec<pb::ToolCallDelta> = Vec::new();
    let mut logprobs_json: Option<String> = None;
    let mut chunks = 0u32;
    loop {
        let item = tokio::select! {
            i = stream.next() => i,
            _ = ctx.tx.closed() => return Outcome::ClientGone { chunks },
        };
        match item {
            Some(Ok(BackendEvent::Delta(d))) => {
                chunks += 1;
                content.push_str(&d.content);
                if let Some(r) = d.reasoning {
                    reasoning.get_or_insert_with(String::new).push_str(&r);
                }
                merge_tool_calls(&mut tool_calls, d.tool_calls);
                switchyard_backends::append_logprobs(&mut logprobs_json, d.logprobs_json);
            }
            Some(Ok(BackendEvent::Done(c))) => {
                if ctx.truncated(c.prompt_tokens) {
                    return Outcome::Failed(truncation_error(ctx, &c));
                }
                ctx.learn(&c);
                let usage = ctx.usage(&c, chunks);
                crate::trace::attempt_done(&c.finish_reason, c.prompt_tokens, &usage);
                let events = [
                    ctx.route_info(),
                    event(pb::chat_event::Event::Delta(pb::Delta {
                        content,
                        reasoning,
                        tool_calls,
                        logprobs_json,
                    })),
                    event(pb::chat_event::Event::Finish(pb::Finish {
                        reason: c.finish_reason,
                    })),
                    event(pb::chat_event::Event::Usage(usage)),
                ];
                ctx.timing.first_token();
                for ev in events {
                    if !send(ctx, ev).await {
                        return Outcome::ClientGone { chunks };
                    }
                }
                return Outcome::Served {
                    usage,
                    truncated: None,
                };
            }
            Some(Err(e)) => return Outcome::Failed(e),
            None => {
                return Outcome::Failed(BackendError::new(
                    FailureClass::StreamBroken,
                    "stream ended early",
                ));
            }
        }
    }
}

/// Folds streamed tool-call fragments (OpenAI sends name first, arguments in pieces) by index.
fn merge_tool_calls(acc: &mut Vec<pb::ToolCallDelta>, parts: Vec<pb::ToolCallDelta>) {
    for p in parts {
        match acc.iter_mut().find(|c| c.index == p.index) {
            Some(c) => {
                if c.id.is_none() {
                    c.id = p.id;
                }
                if c.name.is_none() {
                    c.name = p.name;
                }
                c.arguments.push_str(&p.arguments);
            }
            None => acc.push(p),
        }
    }
}
