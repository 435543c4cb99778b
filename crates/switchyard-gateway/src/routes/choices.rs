//! Requests answered by several routed answers: chat with `n > 1`, and text completions (one
//! answer per prompt and choice).
//!
//! Local servers do not agree on `n` (llama.cpp's server refuses it, others ignore it), so the
//! gateway asks the router for `n` answers of the same request, each planned, fallen back and
//! recorded on its own (request ids `ID-0` … `ID-{n-1}`), and joins them as OpenAI does: one
//! response with `choices[i]`, or one stream whose chunks carry their choice's `index`, one
//! finish chunk per choice, usage summed over the choices, and one `[DONE]`. The key is
//! admitted once, for the whole request. Text completions (`Format::Text`) are written the same
//! way in the `text_completion` shape, with the prompt first when `echo` asked for it.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::future::join_all;
use switchyard_proto as pb;
use switchyard_proto::chat_event::Event;

use super::chat::{KEEPALIVE_COMMENT, collect, whole_body};
use super::dispatch::{First, admit_caller, call_router, first_event, route_headers};
use crate::error::ApiError;
use crate::keys::{Caller, KeyPermit};
use crate::openai::completions::{TextChoice, TextWriter};
use crate::openai::response::ChunkWriter;
use crate::{AppState, EventStream};

fn add_usage(total: &mut pb::Usage, u: &pb::Usage) {
    total.prompt_tokens = total.prompt_tokens.saturating_add(u.prompt_tokens);
    total.completion_tokens = total.completion_tokens.saturating_add(u.completion_tokens);
    total.estimated |= u.estimated;
}

/// How the joined answers are written.
pub(crate) enum Format {
    /// `chat.completion` and its chunks.
    Chat,
    /// `text_completion` and its chunks; per answer, the prompt to echo first.
    Text { echoes: Vec<Option<String>> },
}

/// `choices` copies of `req`, with ids `ID-0` … .
pub(crate) fn copies(req: &pb::ChatRequest, choices: u32) -> Vec<pb::ChatRequest> {
    (0..choices)
        .map(|i| {
            let mut one = req.clone();
            one.request_id = format!("{}-{i}", req.request_id);
            one
        })
        .collect()
}

pub(crate) async fn handle(
    state: AppState,
    caller: Caller,
    mut requests: Vec<pb::ChatRequest>,
    format: Format,
    request_id: String,
    traceparent: Option<String>,
) -> Result<Response, ApiError> {
    let Some(first) = requests.first_mut() else {
        return Err(ApiError::invalid("nothing to answer", None));
    };
    let mut permit = match admit_caller(&state, &caller, first).await {
        Ok(p) => p,
        Err(refused) => return Ok(refused),
    };
    let (api_key_id, allowed) = (first.api_key_id.clone(), first.allowed_groups.clone());
    let priority = first.priority;
    let stream = first.stream;
    let include_usage = first.include_usage;
    let model = first.model.clone();
    let mut all = Vec::with_capacity(requests.len());
    for mut one in requests {
        one.api_key_id.clone_from(&api_key_id);
        one.allowed_groups.clone_from(&allowed);
        one.priority = priority;
        match call_router(&state, one, traceparent.as_deref()).await {
            Ok(events) => all.push(events),
            Err(resp) => return Ok(resp),
        }
    }
    // Every choice must be routed before the head is written: its status is theirs.
    let firsts = join_all(
        all.iter_mut()
            .map(|events| first_event(&state, events, false, &request_id)),
    )
    .await;
    let mut routes = Vec::with_capacity(firsts.len());
    for first in firsts {
        match first {
            Ok(First::Route(r)) => routes.push(r),
            Ok(First::Pending) => {}
            Err(resp) => return Ok(resp),
        }
    }
    let Some(route) = routes.into_iter().next() else {
        return Err(ApiError::router_unavailable(
            "the router ended the stream without an answer",
        ));
    };
    if stream {
        return Ok(streamed(
            &route,
            &model,
            all,
            &format,
            include_usage,
            state.options.sse_keepalive,
            permit,
            &request_id,
        ));
    }
    let done = join_all(all.iter_mut().map(|events| collect(events, &request_id))).await;
    let mut answers = Vec::with_capacity(done.len());
    let mut usage = pb::Usage::default();
    for d in done {
        match d? {
            Ok((answer, u)) => {
                add_usage(&mut usage, &u);
                answers.push(answer);
            }
            Err(resp) => return Ok(resp),
        }
    }
    if let Some(p) = &mut permit {
        p.charge(u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens));
    }
    drop(permit);
    match format {
        Format::Chat => whole_body(&route, &model, &answers, &usage, &request_id),
        Format::Text { echoes } => {
            let texts: Vec<TextChoice> = answers
                .into_iter()
                .zip(echoes)
                .map(|(a, echo)| {
                    let mut text = echo.unwrap_or_default();
                    let offset = text.chars().count();
                    text.push_str(&a.delta.content);
                    TextChoice {
                        text,
                        finish: a.finish,
                        logprobs: a.logprobs,
                        offset,
                    }
                })
                .collect();
            let body = TextWriter::new(&route, &model).whole(&texts, &usage);
            let mut resp = (
                axum::http::StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            route_headers(resp.headers_mut(), &route, &request_id);
            Ok(resp)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn streamed(
    route: &pb::RouteInfo,
    model: &str,
    all: Vec<EventStream>,
    format: &Format,
    include_usage: bool,
    keepalive: std::time::Duration,
    mut permit: Option<KeyPermit>,
    request_id: &str,
) -> Response {
    let writer = ChunkWriter::new(route, model);
    let text = match format {
        Format::Chat => None,
        Format::Text { echoes } => Some((TextWriter::new(route, model), echoes.clone())),
    };
    let choices = all.len() as u32;
    let mut merged = futures::stream::select_all(
        all.into_iter()
            .zip(0u32..)
            .map(|(events, i)| events.map(move |ev| (i, ev))),
    );
    let body = async_stream::stream! {
        for i in 0..choices {
            match &text {
                None => yield Ok::<_, std::convert::Infallible>(writer.role_at(i)),
                Some((t, echoes)) => {
                    if let Some(Some(echo)) = echoes.get(i as usize) {
                        yield Ok(t.text_at(i, echo));
                    }
                }
            }
        }
        let mut usage = pb::Usage::default();
        // Where each choice's next token starts in its text (characters), for `text_offset`.
        let mut offsets: Vec<usize> = (0..choices as usize)
            .map(|i| match &text {
                Some((_, echoes)) => echoes.get(i).and_then(Option::as_ref).map_or(0, |e| e.chars().count()),
                None => 0,
            })
            .collect();
        loop {
            let next = match tokio::time::timeout(keepalive, merged.next()).await {
                Ok(n) => n,
                Err(_) => {
                    yield Ok(bytes::Bytes::from_static(KEEPALIVE_COMMENT));
                    continue;
                }
            };
            match next {
                Some((i, Ok(pb::ChatEvent { event: Some(ev) }))) => match ev {
                    Event::Delta(d) => match &text {
                        None => yield Ok(writer.delta_at(i, &d)),
                        Some((t, _)) => {
                            if !d.content.is_empty() || d.logprobs_json.is_some() {
                                let entries: Option<Vec<serde_json::Value>> = d
                                    .logprobs_json
                                    .as_deref()
                                    .and_then(|j| serde_json::from_str(j).ok());
                                let offset = offsets.get(i as usize).copied().unwrap_or(0);
                                yield Ok(t.text_with_logprobs_at(i, &d.content, entries.as_deref(), offset));
                                if let Some(o) = offsets.get_mut(i as usize) {
                                    *o += d.content.chars().count();
                                }
                            }
                        }
                    },
                    Event::Finish(f) => match &text {
                        None => yield Ok(writer.finish_at(i, &f.reason)),
                        Some((t, _)) => yield Ok(t.finish_at(i, &f.reason)),
                    },
                    Event::Usage(u) => add_usage(&mut usage, &u),
                    Event::Error(e) => {
                        yield Ok(ChunkWriter::error(&ApiError::from_route(&e).body()));
                        break;
                    }
                    Event::Route(_) => {}
                },
                Some((_, Ok(pb::ChatEvent { event: None }))) => {}
                Some((_, Err(status))) => {
                    yield Ok(ChunkWriter::error(&ApiError::router_unavailable(status.message()).body()));
                    break;
                }
                None => {
                    if let Some(p) = &mut permit {
                        p.charge(u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens));
                    }
                    if include_usage {
                        match &text {
                            None => yield Ok(writer.usage(&usage)),
                            Some((t, _)) => yield Ok(t.usage(&usage)),
                        }
                    }
                    break;
                }
            }
        }
        drop(permit);
        yield Ok(ChunkWriter::done());
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    route_headers(&mut headers, route, request_id);
    let mut resp = Response::new(Body::from_stream(body));
    *resp.headers_mut() = headers;
    resp
}
