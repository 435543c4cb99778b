//! A virtual key's checks before a request is routed: its allow-list, its budget, its rate
//! limits. A refusal is the finished response (a 429 carries `Retry-After`).
//!
//! A tokens-per-minute limit reserves the request's tokens at admission, before any are known:
//! the gateway has no tokenizer, so the prompt is estimated at one token per 4 bytes of its text
//! (rounded up; real tokenizers give fewer for prose, so the estimate errs on the safe side),
//! plus the request's `max_completion_tokens`/`max_tokens` or the routing output reserve.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_proto as pb;

use super::{Caller, KeyPermit, limits_of};
use crate::AppState;
use crate::error::ApiError;

/// A virtual key's checks before routing: its allow-list, its budget, its rate limits. A refusal
/// is the finished response (a 429 carries `Retry-After`).
pub(crate) async fn admit(
    state: &AppState,
    caller: &Caller,
    req: &pb::ChatRequest,
) -> Result<Option<KeyPermit>, Response> {
    let (Caller::Key(k), Some(keys)) = (caller, &state.keys) else {
        return Ok(None);
    };
    check_allowed(caller, &req.model).map_err(IntoResponse::into_response)?;
    crate::routes::keys::check_budget(keys, k)
        .await
        .map_err(IntoResponse::into_response)?;
    let limits = limits_of(k);
    let estimate = if limits.tpm.is_some() {
        estimate_tokens(req, state.options.output_reserve)
    } else {
        0
    };
    match keys.limiter.acquire(&k.key_id, &limits, estimate).await {
        Ok(admission) => Ok(Some(KeyPermit::new(
            keys.clone(),
            k.key_id.clone(),
            limits,
            admission,
        ))),
        Err(denied) => Err(rate_limited(denied)),
    }
}

/// 403 `model_not_allowed` when `caller` is a virtual key whose allow-list lacks `model`.
pub(crate) fn check_allowed(caller: &Caller, model: &str) -> Result<(), ApiError> {
    let allowed = caller.allowed_groups();
    if allowed.is_empty() || allowed.iter().any(|m| m == model) {
        return Ok(());
    }
    Err(ApiError {
        status: StatusCode::FORBIDDEN,
        kind: "permission_error",
        code: "model_not_allowed".into(),
        message: format!(
            "this API key may not use the model `{model}`; it may use: {}",
            allowed.join(", ")
        ),
        param: Some("model".into()),
    })
}

/// Tokens a request may use, estimated without a tokenizer: its text at 4 bytes a token
/// (rounded up, plus a few tokens of framing per message), and its output allowance.
pub(crate) fn estimate_tokens(req: &pb::ChatRequest, output_reserve: u32) -> u64 {
    const PER_MESSAGE: u64 = 4;
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let mut bytes: usize = 0;
    for m in &req.messages {
        bytes += m.role.len() + opt(&m.content) + opt(&m.name) + opt(&m.reasoning);
        if m.content.is_none() {
            bytes += opt(&m.content_parts_json);
        }
        for c in &m.tool_calls {
            bytes += c.name.len() + c.arguments.len();
        }
    }
    for t in &req.tools {
        bytes += t.name.len() + opt(&t.description) + opt(&t.parameters_json);
    }
    let prompt = (bytes as u64).div_ceil(4) + PER_MESSAGE * req.messages.len() as u64;
    let output = req
        .sampling
        .as_ref()
        .and_then(|s| s.max_completion_tokens.or(s.max_tokens))
        .unwrap_or(output_reserve);
    prompt + u64::from(output)
}

fn rate_limited(denied: switchyard_health::LimitDenied) -> Response {
    use switchyard_health::LimitDenied;
    let (message, retry_after) = match denied {
        LimitDenied::Rpm { limit, retry_after } => (
            format!(
                "Rate limit reached: this key may make {limit} requests per minute (sliding window)"
            ),
            retry_after,
        ),
        LimitDenied::Tpm { limit, retry_after } => (
            format!(
                "Rate limit reached: this key may use {limit} tokens per minute (sliding window)"
            ),
            retry_after,
        ),
        LimitDenied::Parallel { limit } => (
            format!("Rate limit reached: this key may have {limit} requests in progress at once"),
            std::time::Duration::from_secs(1),
        ),
    };
    let mut resp = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        kind: "rate_limit_error",
        code: "rate_limit_exceeded".into(),
        message,
        param: None,
    }
    .into_response();
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_text_at_four_bytes_a_token_plus_the_output_allowance() {
        let mut req = pb::ChatRequest {
            messages: vec![pb::Message {
                role: "user".into(),
                content: Some("x".repeat(37)),
                ..Default::default()
            }],
            ..Default::default()
        };
        // (4 + 37) bytes -> 11 tokens, 4 of framing, and the reserve.
        assert_eq!(estimate_tokens(&req, 512), 11 + 4 + 512);
        req.sampling = Some(pb::Sampling {
            max_tokens: Some(20),
            ..Default::default()
        });
        assert_eq!(estimate_tokens(&req, 512), 11 + 4 + 20);
        req.sampling = Some(pb::Sampling {
            max_tokens: Some(20),
            max_completion_tokens: Some(7),
            ..Default::default()
        });
        assert_eq!(estimate_tokens(&req, 512), 11 + 4 + 7);
    }
}
