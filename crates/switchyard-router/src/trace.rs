//! The router's spans: one per request (child of the gateway's, through gRPC metadata) and one
//! per backend attempt, with OpenTelemetry GenAI attribute names where they fit and `switchyard.*`
//! for routing facts. All of them are disabled, and cost nothing but a callsite check, unless
//! traces are exported (see switchyard-telemetry). The per-request log line is written here too.

use switchyard_core::FailureClass;
use switchyard_core::config::{Deployment, Provider};
use switchyard_proto as pb;
use tracing::Span;
use tracing::field::Empty;

use crate::usage::RequestRecord;

/// The request's span: `router.chat`, a gRPC server span.
pub(crate) fn request_span(req: &pb::ChatRequest, incoming_traceparent: Option<&str>) -> Span {
    let span = tracing::info_span!(
        "router.chat",
        otel.name = "router.chat",
        otel.kind = "server",
        "rpc.system" = "grpc",
        "rpc.service" = "switchyard.router.v1.Router",
        "rpc.method" = "Chat",
        "gen_ai.operation.name" = "chat",
        "gen_ai.request.model" = %req.model,
        "gen_ai.request.max_tokens" = req.sampling.as_ref().and_then(|s| s.max_completion_tokens.or(s.max_tokens)),
        "gen_ai.request.temperature" = req.sampling.as_ref().and_then(|s| s.temperature),
        "switchyard.request_id" = %req.request_id,
        "switchyard.group" = %req.model,
        "switchyard.streamed" = req.stream,
        "switchyard.api" = if req.api.is_empty() { "openai.chat" } else { req.api.as_str() },
        "switchyard.served_group" = Empty,
        "switchyard.deployment" = Empty,
        "switchyard.attempts" = Empty,
        "switchyard.status" = Empty,
        "gen_ai.response.model" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "gen_ai.input.messages" = Empty,
        "error.type" = Empty,
        otel.status_code = Empty,
    );
    switchyard_telemetry::adopt_parent(&span, incoming_traceparent, None);
    if switchyard_telemetry::capture_message_content() && !span.is_disabled() {
        let messages: Vec<serde_json::Value> = req
            .messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.content}))
            .collect();
        span.record(
            "gen_ai.input.messages",
            serde_json::Value::Array(messages).to_string(),
        );
    }
    span
}

/// Writes the request's outcome onto its span and logs the one line per request.
pub(crate) fn finish_request(span: &Span, record: &RequestRecord, trace_id: Option<&str>) {
    if !span.is_disabled() {
        span.record("switchyard.status", record.status.as_str());
        span.record("switchyard.attempts", record.attempts.len());
        if let Some(g) = &record.served_group {
            span.record("switchyard.served_group", g.as_str());
        }
        if let Some(d) = &record.deployment {
            span.record("switchyard.deployment", d.as_str());
        }
        if let Some(m) = &record.backend_model {
            span.record("gen_ai.response.model", m.as_str());
        }
        span.record("gen_ai.usage.input_tokens", record.prompt_tokens);
        span.record("gen_ai.usage.output_tokens", record.completion_tokens);
        if record.status != "ok" {
            span.record("error.type", record.status.as_str());
            span.record("otel.status_code", "ERROR");
        }
    }
    let failed: Vec<&str> = record
        .attempts
        .iter()
        .filter_map(|a| a.failure_class.as_deref())
        .collect();
    tracing::info!(
        target: "switchyard::request",
        request_id = %record.request_id,
        trace_id = trace_id.unwrap_or(""),
        api = %record.api,
        group = %record.requested_group,
        served_group = record.served_group.as_deref().unwrap_or(""),
        deployment = record.deployment.as_deref().unwrap_or(""),
        attempts = record.attempts.len(),
        failed = ?failed,
        status = %record.status,
        http_status = record.http_status,
        prompt_tokens = record.prompt_tokens,
        completion_tokens = record.completion_tokens,
        estimated = record.tokens_estimated,
        streamed = record.streamed,
        latency_ms = record.latency_ms,
        ttft_ms = record.ttft_ms,
        "request"
    );
}

fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Ollama => "ollama",
        Provider::OpenAi => "openai",
    }
}

/// One backend attempt: a client span named after the backend model.
pub(crate) fn attempt_span(d: &Deployment, group: &str, number: usize, predicted: u32) -> Span {
    tracing::info_span!(
        "attempt",
        otel.name = %format_args!("chat {}", d.model),
        otel.kind = "client",
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = provider_name(d.provider),
        "gen_ai.request.model" = %d.model,
        "server.address" = %d.api_base,
        "switchyard.deployment" = %d.id,
        "switchyard.group" = group,
        "switchyard.attempt" = number,
        "switchyard.prompt_tokens.predicted" = predicted,
        "switchyard.prompt_tokens.reported" = Empty,
        "switchyard.failure_class" = Empty,
        "switchyard.continuation" = Empty,
        "gen_ai.response.finish_reasons" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "error.type" = Empty,
        otel.status_code = Empty,
    )
}

/// Marks the current attempt span as failed with `class`.
pub(crate) fn attempt_failed(span: &Span, class: FailureClass, interrupted: bool) {
    if span.is_disabled() {
        return;
    }
    span.record("switchyard.failure_class", class.as_str());
    span.record("error.type", class.as_str());
    span.record("otel.status_code", "ERROR");
    if interrupted {
        span.record("switchyard.continuation", true);
    }
}

/// Records a served attempt's result on the current span.
pub(crate) fn attempt_done(finish_reason: &str, reported_prompt: Option<u32>, usage: &pb::Usage) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    span.record("gen_ai.response.finish_reasons", finish_reason);
    if let Some(r) = reported_prompt {
        span.record("switchyard.prompt_tokens.reported", r);
    }
    span.record("gen_ai.usage.input_tokens", usage.prompt_tokens);
    span.record("gen_ai.usage.output_tokens", usage.completion_tokens);
}
