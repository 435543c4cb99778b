//! What every generating route shares once its body is decoded into the router's request: the
//! request's span and trace context, the key's admission, the call to the router, and the wait
//! for the router's first event, which decides the response head.
//!
//! Chat completions and the Responses API differ only in how they write events; the route taken,
//! its headers, errors and keep-alive behaviour are the same, so they live here once.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use switchyard_proto as pb;
use switchyard_proto::chat_event::Event;
use switchyard_telemetry::{TRACEPARENT, TRACESTATE, adopt_parent, traceparent_of};

use crate::error::ApiError;
use crate::keys::{Caller, KeyPermit, admit};
use crate::{AppState, EventStream};

pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

// Header names built once: inserting by `&str` parses and validates the name on every request.
static GROUP: HeaderName = HeaderName::from_static("x-switchyard-group");
static REQUESTED_GROUP: HeaderName = HeaderName::from_static("x-switchyard-requested-group");
static DEPLOYMENT: HeaderName = HeaderName::from_static("x-switchyard-deployment");
static MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
static ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
static PROMPT_TOKENS: HeaderName = HeaderName::from_static("x-switchyard-prompt-tokens");
static OUTPUT_LIMIT: HeaderName = HeaderName::from_static("x-switchyard-output-limit");
static QUEUED_MS: HeaderName = HeaderName::from_static("x-switchyard-queued-ms");
static SPILLED: HeaderName = HeaderName::from_static("x-switchyard-spilled");
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The `x-switchyard-*` headers that say where a request went.
pub(crate) fn route_headers(h: &mut HeaderMap, r: &pb::RouteInfo, request_id: &str) {
    h.reserve(7);
    h.insert(GROUP.clone(), header_value(&r.served_group));
    h.insert(REQUESTED_GROUP.clone(), header_value(&r.group));
    h.insert(DEPLOYMENT.clone(), header_value(&r.deployment));
    h.insert(MODEL.clone(), header_value(&r.backend_model));
    h.insert(ATTEMPTS.clone(), HeaderValue::from(r.attempts));
    h.insert(PROMPT_TOKENS.clone(), HeaderValue::from(r.prompt_tokens));
    h.insert(REQUEST_ID.clone(), header_value(request_id));
    if let Some(n) = r.output_limit {
        h.insert(OUTPUT_LIMIT.clone(), HeaderValue::from(n));
    }
    if r.queued_ms > 0 {
        h.insert(QUEUED_MS.clone(), HeaderValue::from(r.queued_ms));
    }
    if let Some(s) = &r.spilled {
        h.insert(SPILLED.clone(), header_value(s));
    }
}

/// The router's code when every deployment is known to be down.
const NO_HEALTHY_DEPLOYMENT: &str = "no_healthy_deployment";

/// A router error as the finished HTTP response.
pub(crate) fn error_response(e: &pb::RouteError, request_id: &str) -> Response {
    let mut resp = ApiError::from_route(e).into_response();
    let h = resp.headers_mut();
    h.insert(ATTEMPTS.clone(), HeaderValue::from(e.attempts));
    h.insert(REQUEST_ID.clone(), header_value(request_id));
    resp
}

/// The next event in the shape gRPC's `Streaming::message` gives it.
pub(crate) async fn next_message(
    events: &mut EventStream,
) -> Result<Option<pb::ChatEvent>, tonic::Status> {
    events.next().await.transpose()
}

pub(crate) async fn next_event(events: &mut EventStream) -> Result<Option<Event>, ApiError> {
    match events.next().await {
        Some(Ok(ev)) => Ok(ev.event),
        None => Ok(None),
        Some(Err(status)) => Err(ApiError::router_unavailable(status.message())),
    }
}

/// A new request id. Time-ordered (UUIDv7): the ledger's primary key then grows at its right
/// edge, so a batch of records dirties a few index pages instead of one random page per record.
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The server span of one generating request (disabled, and free, unless traces are exported;
/// see switchyard-telemetry) and the `traceparent` to pass on: our span's context when tracing,
/// else the caller's unchanged.
pub(crate) fn request_span(
    route: &'static str,
    operation: &'static str,
    model: &str,
    request_id: &str,
    headers: &HeaderMap,
) -> (tracing::Span, Option<String>) {
    let span = tracing::info_span!(
        "request",
        otel.name = route,
        otel.kind = "server",
        "http.request.method" = "POST",
        "http.route" = route,
        "gen_ai.operation.name" = operation,
        "gen_ai.request.model" = %model,
        "switchyard.request_id" = %request_id,
        "http.response.status_code" = tracing::field::Empty,
    );
    let incoming = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok());
    adopt_parent(
        &span,
        incoming,
        headers.get(TRACESTATE).and_then(|v| v.to_str().ok()),
    );
    let traceparent = traceparent_of(&span).or_else(|| incoming.map(str::to_owned));
    (span, traceparent)
}

/// Records the response status on the request's span.
pub(crate) fn record_status(span: &tracing::Span, result: &Result<Response, ApiError>) {
    let status = match result {
        Ok(r) => r.status(),
        Err(e) => e.status,
    };
    span.record("http.response.status_code", status.as_u16());
}

/// A request the router has accepted: its events, and the key's slot held until it ends.
pub(crate) struct Sent {
    pub events: EventStream,
    pub permit: Option<KeyPermit>,
}

/// Admits the caller's request (allow-list, budget, rate limits) and hands it to the router.
/// `Err` is the finished response: a refusal or the router being unreachable.
pub(crate) async fn send(
    state: &AppState,
    caller: &Caller,
    mut req: pb::ChatRequest,
    traceparent: Option<String>,
) -> Result<Sent, Response> {
    let permit = admit_caller(state, caller, &mut req).await?;
    let events = call_router(state, req, traceparent.as_deref()).await?;
    Ok(Sent { events, permit })
}

/// Stamps the caller's key on the request and runs the key's admission checks.
pub(crate) async fn admit_caller(
    state: &AppState,
    caller: &Caller,
    req: &mut pb::ChatRequest,
) -> Result<Option<KeyPermit>, Response> {
    req.api_key_id = caller.api_key_id().to_owned();
    req.allowed_groups = caller.allowed_groups().to_vec();
    req.priority = crate::priority::of(caller);
    admit(state, caller, req).await
}

/// Hands an admitted request to the router.
pub(crate) async fn call_router(
    state: &AppState,
    req: pb::ChatRequest,
    traceparent: Option<&str>,
) -> Result<EventStream, Response> {
    let mut grpc = tonic::Request::new(req);
    if let Some(v) = traceparent.and_then(|tp| tp.parse().ok()) {
        grpc.metadata_mut().insert(TRACEPARENT, v);
    }
    state
        .router
        .chat(grpc)
        .await
        .map_err(|s| ApiError::router_unavailable(s.message()).into_response())
}

/// How a request's first event decides its response.
pub(crate) enum First {
    /// The router committed to a route: a 200 with the route's headers.
    Route(pb::RouteInfo),
    /// A streamed request still waiting for its first token after the keep-alive interval: the
    /// stream is opened anyway (without route headers) so it can carry keep-alive comments.
    Pending,
}

/// Waits for the router's first event. `Err` is the finished error response.
pub(crate) async fn first_event(
    state: &AppState,
    events: &mut EventStream,
    stream: bool,
    request_id: &str,
) -> Result<First, Response> {
    let first = if stream {
        match tokio::time::timeout(state.options.sse_keepalive, next_event(events)).await {
            Ok(ev) => ev,
            Err(_) => return Ok(First::Pending),
        }
    } else {
        next_event(events).await
    };
    match first {
        Ok(Some(Event::Route(r))) => Ok(First::Route(r)),
        Ok(Some(Event::Error(e))) => {
            let mut resp = error_response(&e, request_id);
            if e.code == NO_HEALTHY_DEPLOYMENT {
                let secs = state.options.unavailable_retry_after.as_secs().max(1);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            } else if let Some(ms) = e.retry_after_ms {
                // The capacity queue was full or the wait too long.
                let secs = u64::from(ms).div_ceil(1000).max(1);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Err(resp)
        }
        Ok(_) => Err(
            ApiError::router_unavailable("the router ended the stream without an answer")
                .into_response(),
        ),
        Err(e) => Err(e.into_response()),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
