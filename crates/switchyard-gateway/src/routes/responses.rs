//! `POST /v1/responses`: the OpenAI Responses API, carried over the same router as chat (fit,
//! fallback, continuation, usage record, keys, limits, metrics, traces). The request becomes a
//! chat request; the router's events become the response object or its typed SSE events.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_proto as pb;
use switchyard_proto::chat_event::Event;
use tracing::Instrument;

use super::chat::{KEEPALIVE_COMMENT, check_message_count};
use super::dispatch::{
    First, REQUEST_ID, Sent, first_event, header_value, new_request_id, next_event, next_message,
    record_status, request_span, route_headers, send, unix_now,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, KeyPermit};
use crate::openai::responses_out::ResponseBuilder;
use crate::openai::responses_request::ResponsesRequest;
use crate::{AppState, EventStream};

pub async fn create(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResponsesRequest>,
) -> Result<Response, ApiError> {
    let request_id = new_request_id();
    let (span, traceparent) = request_span(
        "POST /v1/responses",
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
    body: ResponsesRequest,
    request_id: String,
    traceparent: Option<String>,
    span: &tracing::Span,
) -> Result<Response, ApiError> {
    check_message_count(&state, body.item_count())?;
    let (req, echo) = body.into_router_request(request_id.clone())?;
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
    let builder = ResponseBuilder::new(&request_id, unix_now(), echo);
    match route {
        Some(route) if !stream => whole(route, builder, events, &request_id, permit).await,
        route => Ok(streamed(
            route,
            builder,
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
    mut builder: ResponseBuilder,
    mut events: EventStream,
    request_id: &str,
    mut permit: Option<KeyPermit>,
) -> Result<Response, ApiError> {
    while let Some(ev) = next_event(&mut events).await? {
        match ev {
            Event::Delta(d) => {
                builder.delta(&d);
            }
            Event::Finish(f) => builder.finish(&f.reason),
            Event::Usage(u) => {
                if let Some(p) = &mut permit {
                    p.charge(u64::from(u.prompt_tokens) + u64::from(u.completion_tokens));
                }
                builder.usage(&u);
            }
            Event::Error(e) => return Ok(super::dispatch::error_response(&e, request_id)),
            Event::Route(_) => {}
        }
    }
    drop(permit);
    let body = serde_json::to_vec(&builder.response())
        .map_err(|e| ApiError::router_unavailable(format!("cannot encode the response: {e}")))?;
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    route_headers(resp.headers_mut(), &route, request_id);
    Ok(resp)
}

fn streamed(
    route: Option<pb::RouteInfo>,
    mut builder: ResponseBuilder,
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
    let body = async_stream::stream! {
        let _span = span;
        for f in builder.start() {
            yield Ok::<_, std::convert::Infallible>(f);
        }
        loop {
            let next = match tokio::time::timeout(keepalive, next_message(&mut events)).await {
                Ok(n) => n,
                Err(_) => {
                    yield Ok(bytes::Bytes::from_static(KEEPALIVE_COMMENT));
                    continue;
                }
            };
            match next {
                Ok(Some(pb::ChatEvent { event: Some(ev) })) => match ev {
                    Event::Delta(d) => {
                        for f in builder.delta(&d) {
                            yield Ok(f);
                        }
                    }
                    Event::Finish(f) => builder.finish(&f.reason),
                    Event::Usage(u) => {
                        if let Some(p) = &mut permit {
                            p.charge(u64::from(u.prompt_tokens) + u64::from(u.completion_tokens));
                        }
                        builder.usage(&u);
                    }
                    Event::Error(e) => {
                        for f in builder.fail(&ApiError::from_route(&e)) {
                            yield Ok(f);
                        }
                        return;
                    }
                    Event::Route(_) => {}
                },
                Ok(Some(pb::ChatEvent { event: None })) => {}
                Ok(None) => break,
                Err(status) => {
                    for f in builder.fail(&ApiError::router_unavailable(status.message())) {
                        yield Ok(f);
                    }
                    return;
                }
            }
        }
        for f in builder.end() {
            yield Ok(f);
        }
    };
    let mut resp = Response::new(Body::from_stream(body));
    *resp.headers_mut() = headers;
    resp
}
