//! `POST /v1/messages`: the request goes through the same dispatch as chat completions (span,
//! key admission, router call, first event), and the router's events become an Anthropic
//! `message` or its typed SSE stream.
//!
//! Errors before the first token get their real HTTP status (the dialect layer gives them
//! Anthropic's shape); once the stream is open an error is an `error` event.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_proto as pb;
use switchyard_proto::chat_event::Event;
use tracing::Instrument;

use super::request::MessagesRequest;
use super::response::{Meta, message_json};
use super::stream::{self, Blocks};
use crate::dialect::Dialect;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, KeyPermit};
use crate::routes::chat::{check_message_count, collect};
use crate::routes::dispatch::{
    First, REQUEST_ID, Sent, first_event, header_value, new_request_id, next_message,
    record_status, request_span, route_headers, send,
};
use crate::{AppState, EventStream};

/// Anthropic's own request-id header (the SDK shows it as `_request_id`).
static ANTHROPIC_REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

pub async fn create(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MessagesRequest>,
) -> Result<Response, ApiError> {
    let request_id = new_request_id();
    let (span, traceparent) = request_span(
        "POST /v1/messages",
        "chat",
        &body.model,
        &request_id,
        &headers,
    );
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let result = handle(state, caller, body, request_id, traceparent, &span)
        .instrument(span.clone())
        .await;
    record_status(&span, &result);
    result
}

async fn handle(
    state: AppState,
    caller: Caller,
    body: MessagesRequest,
    request_id: String,
    traceparent: Option<String>,
    span: &tracing::Span,
) -> Result<Response, ApiError> {
    check_message_count(&state, body.messages.len())?;
    let meta = Meta::new(&request_id, body.model.clone(), body.wants_thinking());
    let req = body.into_router_request(request_id.clone())?;
    let stream = req.stream;
    let Sent { mut events, permit } = match send(&state, &caller, req, traceparent).await {
        Ok(sent) => sent,
        Err(refused) => return Ok(refused),
    };
    let route = match first_event(&state, &mut events, stream, &request_id).await {
        Ok(First::Route(r)) => Some(r),
        Ok(First::Pending) => None,
        Err(resp) => return Ok(resp),
    };
    match route {
        Some(route) if !stream => whole(route, meta, events, &request_id, permit).await,
        route => Ok(streamed(
            route,
            meta,
            events,
            &request_id,
            permit,
            state.options.sse_keepalive,
            span.clone(),
        )),
    }
}

async fn whole(
    route: pb::RouteInfo,
    meta: Meta,
    mut events: EventStream,
    request_id: &str,
    mut permit: Option<KeyPermit>,
) -> Result<Response, ApiError> {
    let (answer, usage) = match collect(&mut events, request_id).await? {
        Ok(done) => done,
        Err(refused) => return Ok(refused),
    };
    if let Some(p) = &mut permit {
        p.charge(u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens));
    }
    drop(permit);
    let mut resp = (
        StatusCode::OK,
        axum::Json(message_json(&meta, &answer, &usage)),
    )
        .into_response();
    route_headers(resp.headers_mut(), &route, request_id);
    resp.headers_mut()
        .insert(ANTHROPIC_REQUEST_ID.clone(), header_value(&meta.id));
    Ok(resp)
}

/// The SSE response. `route` is `None` when the stream opened before the first token (after
/// the keep-alive interval): `message_start` then goes out at once, without the prompt count,
/// and `ping`s keep the connection alive until tokens come.
fn streamed(
    route: Option<pb::RouteInfo>,
    meta: Meta,
    mut events: EventStream,
    request_id: &str,
    mut permit: Option<KeyPermit>,
    keepalive: std::time::Duration,
    span: tracing::Span,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    match &route {
        Some(r) => route_headers(&mut headers, r, request_id),
        None => {
            headers.insert(REQUEST_ID.clone(), header_value(request_id));
        }
    }
    headers.insert(ANTHROPIC_REQUEST_ID.clone(), header_value(&meta.id));
    let mut blocks = Blocks::new(meta);
    let body = async_stream::stream! {
        let _span = span;
        yield Ok::<_, std::convert::Infallible>(blocks.start(route.as_ref().map_or(0, |r| r.prompt_tokens)));
        yield Ok(stream::ping());
        loop {
            let next = match tokio::time::timeout(keepalive, next_message(&mut events)).await {
                Ok(n) => n,
                Err(_) => {
                    yield Ok(stream::ping());
                    continue;
                }
            };
            match next {
                Ok(Some(pb::ChatEvent { event: Some(ev) })) => match ev {
                    Event::Delta(d) => {
                        if let Some(bytes) = blocks.delta(&d) {
                            yield Ok(bytes);
                        }
                    }
                    Event::Finish(f) => blocks.finish(&f.reason),
                    Event::Usage(u) => {
                        if let Some(p) = &mut permit {
                            p.charge(u64::from(u.prompt_tokens) + u64::from(u.completion_tokens));
                        }
                        blocks.usage(&u);
                    }
                    Event::Error(e) => {
                        yield Ok(stream::error(&Dialect::Anthropic.error_body(&ApiError::from_route(&e))));
                        return;
                    }
                    Event::Route(_) => {}
                },
                Ok(Some(pb::ChatEvent { event: None })) => {}
                Ok(None) => break,
                Err(status) => {
                    let e = ApiError::router_unavailable(status.message());
                    yield Ok(stream::error(&Dialect::Anthropic.error_body(&e)));
                    return;
                }
            }
        }
        yield Ok(blocks.end());
    };
    let mut resp = Response::new(Body::from_stream(body));
    *resp.headers_mut() = headers;
    resp
}
