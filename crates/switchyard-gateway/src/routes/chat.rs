//! `POST /v1/chat/completions`: hand the request to the router, turn its events into an OpenAI
//! response or SSE stream.
//!
//! The response head waits for the router's first event: either the route it committed to (so
//! the `x-switchyard-*` headers are true) or an error (so it gets its real HTTP status even when
//! the client asked for a stream).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use switchyard_proto as pb;
use switchyard_proto::chat_event::Event;
use switchyard_telemetry::{TRACEPARENT, TRACESTATE, adopt_parent, traceparent_of};
use tracing::Instrument;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, KeyPermit, limits_of};
use crate::openai::request::ChatCompletionRequest;
use crate::openai::response::{ChunkWriter, completion_json};
use crate::{AppState, EventStream};

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

// Header names built once: inserting by `&str` parses and validates the name on every request.
static GROUP: HeaderName = HeaderName::from_static("x-switchyard-group");
static REQUESTED_GROUP: HeaderName = HeaderName::from_static("x-switchyard-requested-group");
static DEPLOYMENT: HeaderName = HeaderName::from_static("x-switchyard-deployment");
static MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
static ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
static PROMPT_TOKENS: HeaderName = HeaderName::from_static("x-switchyard-prompt-tokens");
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn route_headers(h: &mut HeaderMap, r: &pb::RouteInfo, request_id: &str) {
    h.reserve(7);
    h.insert(GROUP.clone(), header_value(&r.served_group));
    h.insert(REQUESTED_GROUP.clone(), header_value(&r.group));
    h.insert(DEPLOYMENT.clone(), header_value(&r.deployment));
    h.insert(MODEL.clone(), header_value(&r.backend_model));
    h.insert(ATTEMPTS.clone(), HeaderValue::from(r.attempts));
    h.insert(PROMPT_TOKENS.clone(), HeaderValue::from(r.prompt_tokens));
    h.insert(REQUEST_ID.clone(), header_value(request_id));
}

fn error_response(e: &pb::RouteError, request_id: &str) -> Response {
    let mut resp = ApiError::from_route(e).into_response();
    let h = resp.headers_mut();
    h.insert(ATTEMPTS.clone(), HeaderValue::from(e.attempts));
    h.insert(REQUEST_ID.clone(), header_value(request_id));
    resp
}

/// The next event in the shape gRPC's `Streaming::message` gives it.
async fn next_message(events: &mut EventStream) -> Result<Option<pb::ChatEvent>, tonic::Status> {
    events.next().await.transpose()
}

async fn next_event(events: &mut EventStream) -> Result<Option<Event>, ApiError> {
    match events.next().await {
        Some(Ok(ev)) => Ok(ev.event),
        None => Ok(None),
        Some(Err(status)) => Err(ApiError::router_unavailable(status.message())),
    }
}

pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    // Time-ordered (UUIDv7): the ledger's primary key then grows at its right edge, so a batch
    // of records dirties a few index pages instead of one random page per record.
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    // Disabled (and free) unless traces are exported; see switchyard-telemetry.
    let span = tracing::info_span!(
        "chat",
        otel.name = "POST /v1/chat/completions",
        otel.kind = "server",
        "http.request.method" = "POST",
        "http.route" = "/v1/chat/completions",
        "gen_ai.operation.name" = "chat",
        "gen_ai.request.model" = %body.model,
        "switchyard.request_id" = %request_id,
        "http.response.status_code" = tracing::field::Empty,
    );
    let incoming = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok());
    adopt_parent(
        &span,
        incoming,
        headers.get(TRACESTATE).and_then(|v| v.to_str().ok()),
    );
    // Our own span's context when tracing, else the caller's passed on unchanged.
    let traceparent = traceparent_of(&span).or_else(|| incoming.map(str::to_owned));
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let result = handle(state, caller, body, request_id, traceparent, &span)
        .instrument(span.clone())
        .await;
    let status = match &result {
        Ok(r) => r.status(),
        Err(e) => e.status,
    };
    span.record("http.response.status_code", status.as_u16());
    result
}

async fn handle(
    state: AppState,
    caller: Caller,
    body: ChatCompletionRequest,
    request_id: String,
    traceparent: Option<String>,
    span: &tracing::Span,
) -> Result<Response, ApiError> {
    if body.messages.len() > state.options.max_messages {
        return Err(ApiError::invalid(
            format!(
                "messages: {} messages is more than this gateway accepts in one request ({}, gateway.max_messages)",
                body.messages.len(),
                state.options.max_messages
            ),
            Some("messages"),
        ));
    }
    let mut req = body.into_router_request(request_id.clone())?;
    req.api_key_id = caller.api_key_id().to_owned();
    req.allowed_groups = caller.allowed_groups().to_vec();
    let permit = match admit(&state, &caller, &req.model).await {
        Ok(p) => p,
        Err(refused) => return Ok(refused),
    };
    let stream = req.stream;
    let include_usage = req.include_usage;
    let model = req.model.clone();
    let mut grpc = tonic::Request::new(req);
    if let Some(v) = traceparent.and_then(|tp| tp.parse().ok()) {
        grpc.metadata_mut().insert(TRACEPARENT, v);
    }
    let mut events = state
        .router
        .chat(grpc)
        .await
        .map_err(|s| ApiError::router_unavailable(s.message()))?;
    let first = if stream {
        // A long prompt can take a while to reach its first token; past the keep-alive interval
        // the stream is opened anyway (without route headers) so it can carry keep-alive comments.
        match tokio::time::timeout(state.options.sse_keepalive, next_event(&mut events)).await {
            Ok(ev) => ev?,
            Err(_) => {
                let sse = Sse {
                    route: None,
                    model,
                    include_usage,
                    keepalive: state.options.sse_keepalive,
                    span: span.clone(),
                    permit,
                };
                return Ok(sse.response(events, &request_id));
            }
        }
    } else {
        next_event(&mut events).await?
    };
    let route = match first {
        Some(Event::Route(r)) => r,
        Some(Event::Error(e)) => return Ok(error_response(&e, &request_id)),
        _ => {
            return Err(ApiError::router_unavailable(
                "the router ended the stream without an answer",
            ));
        }
    };
    if stream {
        let sse = Sse {
            route: Some(route),
            model,
            include_usage,
            keepalive: state.options.sse_keepalive,
            span: span.clone(),
            permit,
        };
        Ok(sse.response(events, &request_id))
    } else {
        whole_response(route, model, events, &request_id, permit).await
    }
}

/// A virtual key's checks before routing: its allow-list, its budget, its rate limits. A refusal
/// is the finished response (a 429 carries `Retry-After`).
async fn admit(
    state: &AppState,
    caller: &Caller,
    model: &str,
) -> Result<Option<KeyPermit>, Response> {
    let (Caller::Key(k), Some(keys)) = (caller, &state.keys) else {
        return Ok(None);
    };
    if !k.models.is_empty() && !k.models.iter().any(|m| m == model) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "permission_error",
            code: "model_not_allowed".into(),
            message: format!(
                "this API key may not use the model `{model}`; it may use: {}",
                k.models.join(", ")
            ),
            param: Some("model".into()),
        }
        .into_response());
    }
    crate::routes::keys::check_budget(keys, k)
        .await
        .map_err(IntoResponse::into_response)?;
    let limits = limits_of(k);
    match keys.limiter.acquire(&k.key_id, &limits).await {
        Ok(()) => Ok(Some(KeyPermit::new(keys.clone(), k.key_id.clone(), limits))),
        Err(denied) => Err(rate_limited(denied)),
    }
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

async fn whole_response(
    route: pb::RouteInfo,
    model: String,
    mut events: EventStream,
    request_id: &str,
    mut permit: Option<KeyPermit>,
) -> Result<Response, ApiError> {
    let mut delta = pb::Delta::default();
    let mut finish = String::from("stop");
    let mut usage = pb::Usage::default();
    while let Some(ev) = next_event(&mut events).await? {
        match ev {
            Event::Delta(d) => {
                delta.content.push_str(&d.content);
                if let Some(r) = d.reasoning {
                    delta.reasoning.get_or_insert_with(String::new).push_str(&r);
                }
                delta.tool_calls.extend(d.tool_calls);
            }
            Event::Finish(f) => finish = f.reason,
            Event::Usage(u) => usage = u,
            Event::Error(e) => return Ok(error_response(&e, request_id)),
            Event::Route(_) => {}
        }
    }
    if let Some(p) = &mut permit {
        p.charge(u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens));
    }
    drop(permit);
    let body = completion_json(&route, &model, &delta, &finish, &usage)
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

const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

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
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
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
