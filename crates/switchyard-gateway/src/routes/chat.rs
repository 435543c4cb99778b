//! `POST /v1/chat/completions`: hand the request to the router, turn its events into an OpenAI
//! response or SSE stream.
//!
//! The response head waits for the router's first event: either the route it committed to (so
//! the `x-switchyard-*` headers are true) or an error (so it gets its real HTTP status even when
//! the client asked for a stream).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_proto as pb;
use switchyard_proto::chat_event::Event;
use tracing::Instrument;

use super::dispatch::{
    First, REQUEST_ID, Sent, error_response, first_event, header_value, new_request_id, next_event,
    next_message, record_status, request_span, route_headers, send, unix_now,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, KeyPermit};
use crate::openai::request::ChatCompletionRequest;
use crate::openai::response::{Answer, ChunkWriter, completion_json};
use crate::{AppState, EventStream};

pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let request_id = new_request_id();
    let (span, traceparent) = request_span(
        "POST /v1/chat/completions",
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

/// The `messages` limit of `gateway.max_messages`.
pub(crate) fn check_message_count(state: &AppState, count: usize) -> Result<(), ApiError> {
    if count > state.options.max_messages {
        return Err(ApiError::invalid(
            format!(
                "messages: {count} messages is more than this gateway accepts in one request ({}, gateway.max_messages)",
                state.options.max_messages
            ),
            Some("messages"),
        ));
    }
    Ok(())
}

async fn handle(
    state: AppState,
    caller: Caller,
    body: ChatCompletionRequest,
    request_id: String,
    traceparent: Option<String>,
    span: &tracing::Span,
) -> Result<Response, ApiError> {
    check_message_count(&state, body.messages.len())?;
    let choices = body.choices();
    let req = body.into_router_request(request_id.clone())?;
    if choices > 1 {
        let requests = super::choices::copies(&req, choices);
        let format = super::choices::Format::Chat;
        return super::choices::handle(state, caller, requests, format, request_id, traceparent)
            .await;
    }
    let stream = req.stream;
    let include_usage = req.include_usage;
    let model = req.model.clone();
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
        Some(route) if !stream => whole_response(route, model, events, &request_id, permit).await,
        route => {
            let sse = Sse {
                route,
                model,
                include_usage,
                keepalive: state.options.sse_keepalive,
                span: span.clone(),
                permit,
            };
            Ok(sse.response(events, &request_id))
        }
    }
}

async fn whole_response(
    route: pb::RouteInfo,
    model: String,
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
    whole_body(&route, &model, &[answer], &usage, request_id)
}

/// Reads a committed unstreamed answer to its end. The inner `Err` is a router error as the
/// finished response.
pub(crate) async fn collect(
    events: &mut EventStream,
    request_id: &str,
) -> Result<Result<(Answer, pb::Usage), Response>, ApiError> {
    let mut answer = Answer::default();
    let mut usage = pb::Usage::default();
    while let Some(ev) = next_event(events).await? {
        match ev {
            Event::Delta(d) => answer.push(d),
            Event::Finish(f) => answer.finish = f.reason,
            Event::Usage(u) => usage = u,
            Event::Error(e) => return Ok(Err(error_response(&e, request_id))),
            Event::Route(_) => {}
        }
    }
    Ok(Ok((answer, usage)))
}

/// A whole `chat.completion` response with the route's headers.
pub(crate) fn whole_body(
    route: &pb::RouteInfo,
    model: &str,
    answers: &[Answer],
    usage: &pb::Usage,
    request_id: &str,
) -> Result<Response, ApiError> {
    let body = completion_json(route, model, answers, usage)
        .map_err(|e| ApiError::router_unavailable(format!("cannot encode the response: {e}")))?;
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    route_headers(resp.headers_mut(), route, request_id);
    Ok(resp)
}

/// An SSE response in the making.
struct Sse {
    /// The committed route, or `None` when the stream was opened before the first token.
    route: Option<pb::RouteInfo>,
    model: String,
    include_usage: bool,
    keepalive: std::time::Duration,
    /// The request's span, kept open until the stream ends.
    span: tracing::Span,
    /// The key's rate-limit slot, held until the stream ends.
    permit: Option<KeyPermit>,
}

pub(crate) const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

impl Sse {
    fn response(self, mut events: EventStream, request_id: &str) -> Response {
        let Sse {
            route,
            model,
            include_usage,
            keepalive,
            span,
            mut permit,
        } = self;
        let fallback_route = pb::RouteInfo {
            response_id: format!("chatcmpl-{request_id}"),
            created: unix_now(),
            ..Default::default()
        };
        let writer = ChunkWriter::new(route.as_ref().unwrap_or(&fallback_route), &model);
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
            let mut role_sent = false;
            if route.is_some() {
                role_sent = true;
                yield Ok::<_, std::convert::Infallible>(writer.role());
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
                    Ok(Some(pb::ChatEvent { event: Some(ev) })) => {
                        if !role_sent && matches!(ev, Event::Route(_) | Event::Delta(_)) {
                            role_sent = true;
                            yield Ok(writer.role());
                        }
                        match ev {
                            Event::Delta(d) => yield Ok(writer.delta(&d)),
                            Event::Finish(f) => yield Ok(writer.finish(&f.reason)),
                            Event::Usage(u) => {
                                if let Some(p) = &mut permit {
                                    p.charge(u64::from(u.prompt_tokens) + u64::from(u.completion_tokens));
                                }
                                if include_usage {
                                    yield Ok(writer.usage(&u));
                                }
                            }
                            Event::Error(e) => {
                                yield Ok(ChunkWriter::error(&ApiError::from_route(&e).body()));
                                break;
                            }
                            Event::Route(_) => {}
                        }
                    }
                    Ok(Some(pb::ChatEvent { event: None })) => {}
                    Ok(None) => break,
                    Err(status) => {
                        yield Ok(ChunkWriter::error(&ApiError::router_unavailable(status.message()).body()));
                        break;
                    }
                }
            }
            yield Ok(ChunkWriter::done());
        };
        let mut resp = Response::new(Body::from_stream(body));
        *resp.headers_mut() = headers;
        resp
    }
}
