//! `POST /v1/embeddings`: check the request, admit the caller's key, hand it to the router's
//! `Embed`, and write OpenAI's list of vectors (float arrays, or base64 as the SDKs ask by
//! default) with the same `x-switchyard-*` route headers as chat.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_proto as pb;
use switchyard_telemetry::TRACEPARENT;
use tracing::Instrument;

use super::dispatch::{error_response, new_request_id, record_status, request_span, route_headers};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, admit};
use crate::openai::embeddings::{EmbeddingRequest, response_json};

pub async fn create(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    let request_id = new_request_id();
    let (span, traceparent) = request_span(
        "POST /v1/embeddings",
        "embeddings",
        &body.model,
        &request_id,
        &headers,
    );
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let result = handle(state, caller, body, request_id, traceparent)
        .instrument(span.clone())
        .await;
    record_status(&span, &result);
    result
}

/// The request as key admission sees it: its texts as one message each (token ids as the bytes
/// they stand for, about 4 a token), and no output.
pub(crate) fn as_chat(req: &pb::EmbedRequest) -> pb::ChatRequest {
    use switchyard_proto::embed_input::Input;
    let messages = req
        .inputs
        .iter()
        .map(|i| pb::Message {
            role: String::new(),
            content: Some(match &i.input {
                Some(Input::Text(t)) => t.clone(),
                Some(Input::Tokens(t)) => " ".repeat(t.ids.len() * 4),
                None => String::new(),
            }),
            ..Default::default()
        })
        .collect();
    pb::ChatRequest {
        request_id: req.request_id.clone(),
        model: req.model.clone(),
        messages,
        sampling: Some(pb::Sampling {
            max_tokens: Some(0),
            ..Default::default()
        }),
        api_key_id: req.api_key_id.clone(),
        allowed_groups: req.allowed_groups.clone(),
        ..Default::default()
    }
}

async fn handle(
    state: AppState,
    caller: Caller,
    body: EmbeddingRequest,
    request_id: String,
    traceparent: Option<String>,
) -> Result<Response, ApiError> {
    let (mut req, encoding) = body.into_router_request(request_id.clone())?;
    req.api_key_id = caller.api_key_id().to_owned();
    req.allowed_groups = caller.allowed_groups().to_vec();
    let mut permit = match admit(&state, &caller, &as_chat(&req)).await {
        Ok(p) => p,
        Err(refused) => return Ok(refused),
    };
    let model = req.model.clone();
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
        return Ok(error_response(e, &request_id));
    }
    if let Some(p) = permit.as_mut() {
        p.charge(u64::from(answer.prompt_tokens));
    }
    let body = response_json(&model, &answer.embeddings, encoding, answer.prompt_tokens);
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    let route = pb::RouteInfo {
        group: answer.group,
        deployment: answer.deployment,
        backend_model: answer.backend_model,
        attempts: answer.attempts,
        prompt_tokens: answer.prompt_tokens,
        served_group: answer.served_group,
        ..Default::default()
    };
    route_headers(resp.headers_mut(), &route, &request_id);
    Ok(resp)
}
