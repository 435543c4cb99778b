//! `POST /api/embed` (input: a string or a list; `{"embeddings": [[…]]}`) and the older
//! `POST /api/embeddings` (`prompt`; `{"embedding": […]}`), through the router's `Embed` as
//! `/v1/embeddings` goes: the key admitted on the inputs' size, fallback and usage by the router,
//! the same route headers.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_proto as pb;
use switchyard_telemetry::TRACEPARENT;
use tracing::Instrument;

use super::models::group_name;
use super::request::{Options, min_context};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, admit};
use crate::routes::dispatch::{
    error_response, new_request_id, record_status, request_span, route_headers,
};
use crate::routes::embeddings::as_chat;

/// `input`: one text or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Input {
    One(String),
    Many(Vec<String>),
}

/// `POST /api/embed`.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbedBody {
    model: String,
    #[serde(default)]
    input: Option<Input>,
    /// Ollama truncates over-long inputs by default; the router never does (an input that fits
    /// no deployment is an error), so this is accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    truncate: Option<bool>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    keep_alive: Option<Value>,
}

/// `POST /api/embeddings` (legacy).
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingsBody {
    model: String,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    keep_alive: Option<Value>,
}

/// What was embedded, and where.
struct Embedded {
    answer: pb::EmbedResponse,
    route: pb::RouteInfo,
}

/// Admits and routes `texts`; `Err` is the finished response (a refusal or a router error).
async fn embed(
    state: &AppState,
    caller: &Caller,
    request: pb::EmbedRequest,
    traceparent: Option<String>,
    request_id: &str,
) -> Result<Result<Embedded, Response>, ApiError> {
    let mut req = request;
    let client_model = &req.model.clone();
    req.model = group_name(state, caller, &req.model).await?;
    req.api_key_id = caller.api_key_id().to_owned();
    req.allowed_groups = caller.allowed_groups().to_vec();
    let mut permit = match admit(state, caller, &as_chat(&req)).await {
        Ok(p) => p,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut grpc = tonic::Request::new(req);
    if let Some(v) = traceparent.and_then(|tp| tp.parse().ok()) {
        grpc.metadata_mut().insert(TRACEPARENT, v);
    }
    let answer = state
        .router
        .embed(grpc)
        .await
        .map_err(|s| ApiError::router_unavailable(s.message()))?;
    if let Some(e) = &answer.error {
        return Ok(Err(super::unknown_model(
            error_response(e, request_id),
            client_model,
        )));
    }
    if let Some(p) = permit.as_mut() {
        p.charge(u64::from(answer.prompt_tokens));
    }
    let route = pb::RouteInfo {
        group: answer.group.clone(),
        deployment: answer.deployment.clone(),
        backend_model: answer.backend_model.clone(),
        attempts: answer.attempts,
        prompt_tokens: answer.prompt_tokens,
        served_group: answer.served_group.clone(),
        ..Default::default()
    };
    Ok(Ok(Embedded { answer, route }))
}

fn json_response(body: &Value, route: Option<&pb::RouteInfo>, request_id: &str) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(route) = route {
        route_headers(resp.headers_mut(), route, request_id);
    }
    resp
}

fn embed_request(
    request_id: &str,
    model: &str,
    texts: Vec<String>,
    dimensions: Option<u32>,
    options: Option<&Options>,
    keep_alive: Option<&Value>,
) -> pb::EmbedRequest {
    pb::EmbedRequest {
        request_id: request_id.to_owned(),
        model: model.to_owned(),
        inputs: texts
            .into_iter()
            .map(|t| pb::EmbedInput {
                input: Some(pb::embed_input::Input::Text(t)),
            })
            .collect(),
        dimensions: dimensions.unwrap_or(0),
        api: "ollama.embed".into(),
        min_context: min_context(options),
        keep_alive_json: keep_alive.filter(|v| !v.is_null()).map(Value::to_string),
        ..Default::default()
    }
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `POST /api/embed`.
pub(crate) async fn embed_route(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EmbedBody>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let request_id = new_request_id();
    let (span, traceparent) = request_span(
        "POST /api/embed",
        "embeddings",
        &body.model,
        &request_id,
        &headers,
    );
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let result = async {
        if body.model.trim().is_empty() {
            return Err(ApiError::invalid("model is required", Some("model")));
        }
        let texts = match body.input {
            None => Vec::new(),
            Some(Input::One(s)) => vec![s],
            Some(Input::Many(v)) => v,
        };
        if texts.is_empty() {
            // Ollama loads the model and answers no vectors.
            return Ok(json_response(
                &json!({"model": body.model, "embeddings": []}),
                None,
                &request_id,
            ));
        }
        let req = embed_request(
            &request_id,
            &body.model,
            texts,
            body.dimensions,
            body.options.as_ref(),
            body.keep_alive.as_ref(),
        );
        let done = match embed(&state, &caller, req, traceparent, &request_id).await? {
            Ok(done) => done,
            Err(resp) => return Ok(resp),
        };
        let vectors: Vec<&[f32]> = done
            .answer
            .embeddings
            .iter()
            .map(|e| e.values.as_slice())
            .collect();
        let out = json!({
            "model": body.model,
            "embeddings": vectors,
            "total_duration": nanos(started),
            "load_duration": 0,
            "prompt_eval_count": done.answer.prompt_tokens,
        });
        Ok(json_response(&out, Some(&done.route), &request_id))
    }
    .instrument(span.clone())
    .await;
    record_status(&span, &result);
    result
}

/// `POST /api/embeddings` (legacy).
pub(crate) async fn embeddings_route(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EmbeddingsBody>,
) -> Result<Response, ApiError> {
    let request_id = new_request_id();
    let (span, traceparent) = request_span(
        "POST /api/embeddings",
        "embeddings",
        &body.model,
        &request_id,
        &headers,
    );
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let result = async {
        if body.model.trim().is_empty() {
            return Err(ApiError::invalid("model is required", Some("model")));
        }
        let prompt = body.prompt.unwrap_or_default();
        if prompt.is_empty() {
            return Ok(json_response(&json!({"embedding": []}), None, &request_id));
        }
        let req = embed_request(
            &request_id,
            &body.model,
            vec![prompt],
            None,
            body.options.as_ref(),
            body.keep_alive.as_ref(),
        );
        let done = match embed(&state, &caller, req, traceparent, &request_id).await? {
            Ok(done) => done,
            Err(resp) => return Ok(resp),
        };
        let vector = done
            .answer
            .embeddings
            .first()
            .map(|e| e.values.as_slice())
            .unwrap_or_default();
        Ok(json_response(
            &json!({ "embedding": vector }),
            Some(&done.route),
            &request_id,
        ))
    }
    .instrument(span.clone())
    .await;
    record_status(&span, &result);
    result
}
