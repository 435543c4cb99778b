//! Ollama's `/api/embed` as the simulator serves it (backends.md §2.4, client-apis.md §3.3).
//!
//! Like the real server it honours `options.num_ctx` (clamped to the trained context),
//! `truncate` (default true: an over-long input is cut to `num_ctx` silently and
//! `prompt_eval_count` shows it; false: 400 "the input length exceeds the context length"), and
//! `dimensions` (each vector cut to that length and re-normalised). Only a string or an array of
//! strings is an input; anything else is 400 "invalid input type". Every request is recorded,
//! so tests can check what a gateway sent.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::delivery;
use crate::error::{ApiError, ErrorStyle};
use crate::server::ConnKill;
use crate::state::{RecordedRequest, SimState, header_text};
use crate::tokens::{count, scale};
use crate::util;

const STYLE: ErrorStyle = ErrorStyle::Ollama;

/// The inputs of `/api/embed`: a string (an empty one is no input) or strings.
fn inputs(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let invalid = || ApiError::BadRequest("invalid input type".to_owned());
    match v {
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(invalid()),
    }
}

/// A unit vector of the first `n` components of `v` (all of them when `n` is 0 or too large).
fn cut_to(mut v: Vec<f32>, n: usize) -> Vec<f32> {
    if n == 0 || n >= v.len() {
        return v;
    }
    v.truncate(n);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.iter().map(|x| x / norm).collect()
}

pub(crate) async fn ollama_embed(State(sim): State<Arc<SimState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let kill = parts.extensions.get::<ConnKill>().cloned();
    let v = match crate::request::read_json(body).await {
        Ok(v) => v,
        Err(e) => return e.respond(STYLE),
    };
    let name = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let model = sim.find_model(&name);
    let sent_ctx = v
        .pointer("/options/num_ctx")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    let num_ctx = crate::ollama::effective_num_ctx(&sim.config, model.as_ref(), sent_ctx);
    let texts = inputs(v.get("input"));
    let token_scale = model.as_ref().map_or(1.0, |m| m.token_scale);
    let sizes: Vec<u32> = texts
        .as_ref()
        .map(|t| t.iter().map(|i| scale(count(i), token_scale)).collect())
        .unwrap_or_default();
    let truncate = v.get("truncate").and_then(Value::as_bool).unwrap_or(true);
    let too_long = sizes.iter().any(|&n| n > num_ctx);
    let evaluated: u32 = sizes.iter().map(|&n| n.min(num_ctx)).sum();
    sim.record(RecordedRequest {
        path: parts.uri.path().to_owned(),
        model: model
            .as_ref()
            .map_or_else(|| name.clone(), |m| m.name.clone()),
        stream: false,
        num_ctx: sent_ctx,
        prompt_tokens: sizes.iter().sum(),
        evaluated_tokens: evaluated,
        truncated: too_long && truncate,
        body: v.clone(),
        traceparent: header_text(&parts.headers, "traceparent"),
        authorization: header_text(&parts.headers, http::header::AUTHORIZATION),
    });
    let fault =
        match delivery::before_response(sim.take_fault(&[&name]), STYLE, kill.as_ref()).await {
            Ok(f) => f,
            Err(r) => return r,
        };
    if name.is_empty() {
        return ApiError::ModelRequired.respond(STYLE);
    }
    if model.is_none() {
        return ApiError::ModelNotFound(name).respond(STYLE);
    }
    let texts = match texts {
        Ok(t) => t,
        Err(e) => return e.respond(STYLE),
    };
    if too_long && !truncate {
        return ApiError::InputTooLong.respond(STYLE);
    }
    let dimensions = v
        .get("dimensions")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let embeddings: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| cut_to(util::embedding(t), dimensions))
        .collect();
    let resp = Json(json!({
        "model": name,
        "embeddings": embeddings,
        "total_duration": 2_000_000 + u64::from(evaluated) * 100_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": evaluated,
    }))
    .into_response();
    delivery::non_stream(fault, STYLE, kill.as_ref(), resp).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inputs_and_dimensions() {
        assert_eq!(inputs(Some(&json!("a"))).unwrap(), ["a"]);
        assert!(inputs(Some(&json!(""))).unwrap().is_empty());
        assert_eq!(inputs(Some(&json!(["a", "b"]))).unwrap(), ["a", "b"]);
        assert!(inputs(Some(&json!([1, 2]))).is_err());
        let v = cut_to(vec![3.0, 4.0, 5.0], 2);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(cut_to(vec![1.0, 0.0], 0).len(), 2);
    }
}
