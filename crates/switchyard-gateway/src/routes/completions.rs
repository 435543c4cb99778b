//! `POST /v1/completions`: the legacy text completion API, routed like chat (fit, fallback,
//! continuation, keys, usage records). Every request goes through `choices`, which also joins
//! a list of prompts and `n` answers per prompt.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use tracing::Instrument;

use super::choices::{self, Format};
use super::dispatch::{new_request_id, record_status, request_span};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::Caller;
use crate::openai::completions::CompletionRequest;

pub async fn create(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let request_id = new_request_id();
    let (span, traceparent) = request_span(
        "POST /v1/completions",
        "text_completion",
        &body.model,
        &request_id,
        &headers,
    );
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let result = async {
        let text = body.into_router_requests(&request_id)?;
        let format = Format::Text {
            echoes: text.echoes,
        };
        let mut requests = text.requests;
        for r in &mut requests {
            r.include_usage = text.include_usage;
        }
        choices::handle(state, caller, requests, format, request_id, traceparent).await
    }
    .instrument(span.clone())
    .await;
    record_status(&span, &result);
    result
}
