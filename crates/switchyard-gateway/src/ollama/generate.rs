//! `POST /api/chat` and `POST /api/generate`: the body becomes the router's `ChatRequest` and goes
//! through the same span, admission, router call and first-event wait as OpenAI chat
//! (`routes::dispatch`); the events are written as Ollama's NDJSON lines, or as one object with
//! `stream: false`.
//!
//! NDJSON has no comments, and Ollama clients simply wait for the first token, so while the
//! router has not committed to a route nothing is written; the stream is still opened after
//! `gateway.sse_keepalive` (without route headers), so a cold model does not hold the response
//! head. A continuation after a mid-stream failure is joined by the router: the lines just go on.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_proto as pb;
use switchyard_proto::chat_event::Event;
use tracing::Instrument;

use super::models::group_name;
use super::request::{ChatBody, GenerateBody};
use super::response::{Kind, Writer, error_line, line};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, KeyPermit};
use crate::routes::chat::{check_message_count, collect};
use crate::routes::dispatch::{
    First, REQUEST_ID, Sent, first_event, header_value, new_request_id, next_message,
    record_status, request_span, route_headers, send,
};
use crate::{AppState, EventStream};

const NDJSON: &str = "application/x-ndjson";

/// `POST /api/chat`.
pub(crate) async fn chat(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChatBody>,
) -> Result<Response, ApiError> {
    let (job, span) = Job::start(
        state,
        caller,
        &headers,
        "POST /api/chat",
        "chat",
        &body.common.model,
    );
    let result = async move {
        check_message_count(&job.state, body.messages.len())?;
        let client_model = body.common.model.clone();
        let load_only = body.messages.is_empty();
        let unload = is_zero(body.common.keep_alive.as_ref());
        let mut req = body.into_router_request(job.request_id.clone())?;
        req.model = group_name(&job.state, &job.caller, &req.model).await?;
        if load_only {
            return job
                .load_only(Kind::Chat, &client_model, &req.model, unload)
                .await;
        }
        job.run(Kind::Chat, client_model, req).await
    }
    .instrument(span.clone())
    .await;
    record_status(&span, &result);
    result
}

/// `POST /api/generate`.
pub(crate) async fn generate(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GenerateBody>,
) -> Result<Response, ApiError> {
    let (job, span) = Job::start(
        state,
        caller,
        &headers,
        "POST /api/generate",
        "text_completion",
        &body.common.model,
    );
    let result = async move {
        let client_model = body.common.model.clone();
        let load_only = body.is_load_only();
        let unload = is_zero(body.common.keep_alive.as_ref());
        let mut req = body.into_router_request(job.request_id.clone())?;
        req.model = group_name(&job.state, &job.caller, &req.model).await?;
        if load_only {
            return job
                .load_only(Kind::Generate, &client_model, &req.model, unload)
                .await;
        }
        job.run(Kind::Generate, client_model, req).await
    }
    .instrument(span.clone())
    .await;
    record_status(&span, &result);
    result
}

/// `keep_alive: 0` (or `"0"`, `"0s"`): the client asks for the model to be unloaded.
fn is_zero(keep_alive: Option<&serde_json::Value>) -> bool {
    match keep_alive {
        Some(serde_json::Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(serde_json::Value::String(s)) => matches!(s.as_str(), "0" | "0s" | "0m"),
        _ => false,
    }
}

/// One generating request on its way.
struct Job {
    state: AppState,
    caller: Caller,
    request_id: String,
    traceparent: Option<String>,
    span: tracing::Span,
    started: Instant,
}

impl Job {
    /// The request's id, span and caller, taken as the OpenAI routes take them.
    fn start(
        state: AppState,
        caller: Option<axum::Extension<Caller>>,
        headers: &HeaderMap,
        route: &'static str,
        operation: &'static str,
        model: &str,
    ) -> (Job, tracing::Span) {
        let started = Instant::now();
        let request_id = new_request_id();
        let (span, traceparent) = request_span(route, operation, model, &request_id, headers);
        let job = Job {
            state,
            caller: caller.map_or(Caller::Open, |c| c.0),
            request_id,
            traceparent,
            span: span.clone(),
            started,
        };
        (job, span)
    }

    /// A request with nothing to generate: Ollama (un)loads the model and answers at once. The
    /// group must exist; deployments load on first use, so nothing is sent to a backend.
    async fn load_only(
        self,
        kind: Kind,
        client_model: &str,
        group: &str,
        unload: bool,
    ) -> Result<Response, ApiError> {
        let groups = super::models::groups(&self.state, &self.caller).await?;
        if !groups.iter().any(|g| g.name == group) {
            return Err(ApiError::not_found(format!(
                "model '{client_model}' not found"
            )));
        }
        let w = Writer::new(kind, client_model, self.started);
        let mut resp = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            w.load_only(unload).to_string(),
        )
            .into_response();
        resp.headers_mut()
            .insert(REQUEST_ID.clone(), header_value(&self.request_id));
        Ok(resp)
    }

    async fn run(
        self,
        kind: Kind,
        client_model: String,
        req: pb::ChatRequest,
    ) -> Result<Response, ApiError> {
        let stream = req.stream;
        let Sent { mut events, permit } =
            match send(&self.state, &self.caller, req, self.traceparent.clone()).await {
                Ok(sent) => sent,
                Err(refused) => return Ok(refused),
            };
        let mut writer = Writer::new(kind, &client_model, self.started);
        let route = match first_event(&self.state, &mut events, stream, &self.request_id).await {
            Ok(First::Route(r)) => {
                writer.started_answering();
                Some(r)
            }
            Ok(First::Pending) => None,
            Err(resp) => return Ok(super::unknown_model(resp, &client_model)),
        };
        match route {
            Some(route) if !stream => whole(route, writer, events, &self.request_id, permit).await,
            route => Ok(streamed(
                route,
                writer,
                events,
                &self.request_id,
                permit,
                self.span,
            )),
        }
    }
}

async fn whole(
    route: pb::RouteInfo,
    mut writer: Writer,
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
    let body = writer.whole(&answer, &usage).to_string();
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
    mut writer: Writer,
    mut events: EventStream,
    request_id: &str,
    mut permit: Option<KeyPermit>,
    span: tracing::Span,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    match &route {
        Some(r) => route_headers(&mut headers, r, request_id),
        None => {
            headers.insert(REQUEST_ID.clone(), header_value(request_id));
        }
    }
    let body = async_stream::stream! {
        let _span = span;
        let mut finish = String::new();
        let mut usage = pb::Usage::default();
        loop {
            match next_message(&mut events).await {
                Ok(Some(pb::ChatEvent { event: Some(ev) })) => match ev {
                    Event::Delta(d) => {
                        if let Some(l) = writer.delta(&d) {
                            yield Ok::<_, std::convert::Infallible>(l);
                        }
                    }
                    Event::Finish(f) => finish = f.reason,
                    Event::Usage(u) => {
                        if let Some(p) = &mut permit {
                            p.charge(u64::from(u.prompt_tokens) + u64::from(u.completion_tokens));
                        }
                        usage = u;
                    }
                    Event::Error(e) => {
                        yield Ok(error_line(&ApiError::from_route(&e).message));
                        break;
                    }
                    Event::Route(_) => writer.started_answering(),
                },
                Ok(Some(pb::ChatEvent { event: None })) => {}
                Ok(None) => {
                    if let Some(l) = writer.tool_calls_line() {
                        yield Ok(l);
                    }
                    yield Ok(writer.done(&finish, &usage));
                    break;
                }
                Err(status) => {
                    let e = ApiError::router_unavailable(status.message());
                    yield Ok(line(&serde_json::json!({ "error": e.message })));
                    break;
                }
            }
        }
        drop(permit);
    };
    let mut resp = Response::new(Body::from_stream(body));
    *resp.headers_mut() = headers;
    resp
}
