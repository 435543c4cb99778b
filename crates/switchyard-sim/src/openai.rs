//! OpenAI-compatible endpoints, shared by both flavors: Ollama's compatibility layer (§5) and
//! llama.cpp's `llama-server` (§6.4–6.6). Differences (error shape, ids, fingerprints, whether
//! `max_completion_tokens` is read, truncation vs. 400, timings) are selected by [`Host`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::answer::{self, Answer, AnswerParams, Output};
use crate::capacity::{self, Slot};
use crate::delivery::{self, Frames};
use crate::error::{ApiError, ErrorStyle, LLAMA_RUNNER_ERROR, llama_type};
use crate::fault::Fault;
use crate::request::{self, GenRequest};
use crate::server::ConnKill;
use crate::state::{RecordedRequest, SimState, header_text, normalize};
use crate::util;

type Sim = State<Arc<SimState>>;

/// Which server's OpenAI layer is imitated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Ollama,
    LlamaCpp,
}

impl Host {
    fn style(self) -> ErrorStyle {
        match self {
            Self::Ollama => ErrorStyle::OllamaOpenAi,
            Self::LlamaCpp => ErrorStyle::LlamaCpp,
        }
    }

    fn fingerprint(self) -> &'static str {
        match self {
            Self::Ollama => "fp_ollama",
            Self::LlamaCpp => "b7000-switchyard-sim",
        }
    }
}

pub(crate) fn ollama_routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v1/chat/completions", post(ollama_chat))
        .route("/v1/completions", post(ollama_completions))
        .route("/v1/embeddings", post(ollama_embeddings))
        .route("/v1/models", get(ollama_models))
        .route("/v1/models/{*model}", get(ollama_model))
}

pub(crate) fn llamacpp_routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v1/chat/completions", post(llama_chat))
        .route("/chat/completions", post(llama_chat))
        .route("/v1/completions", post(llama_completions))
        .route("/completions", post(llama_completions))
        .route("/v1/embeddings", post(llama_embeddings))
        .route("/embeddings", post(llama_embeddings))
}

/// Everything needed to write the response of one generation.
struct Reply {
    host: Host,
    chat: bool,
    model: String,
    prompt_tokens: u32,
    stream: bool,
    include_usage: bool,
    /// Alternatives per token when log probabilities were asked for.
    logprobs: Option<u32>,
    fault: Option<Fault>,
    kill: Option<ConnKill>,
    id: String,
    /// The model's slot, held until the answer is out.
    slot: Option<Slot>,
    /// Time per output token, when the model sets a generation speed.
    token_time: Option<std::time::Duration>,
}

// ---------- Ollama /v1 ----------

async fn ollama_chat(State(sim): Sim, req: Request) -> Response {
    ollama_generation(sim, req, true).await
}

async fn ollama_completions(State(sim): Sim, req: Request) -> Response {
    ollama_generation(sim, req, false).await
}

async fn ollama_generation(sim: Arc<SimState>, req: Request, chat: bool) -> Response {
    let host = Host::Ollama;
    let parse = |v: &Value| {
        let g = request::parse_openai(v, chat, false)?;
        if chat && g.input.is_empty() {
            return Err(ApiError::BadRequest(
                "[] is too short - 'messages'".to_owned(),
            ));
        }
        Ok((g, None))
    };
    let mut p = match crate::ollama::prepare(&sim, req, host.style(), parse).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let slot = p.slot.take();
    let ans = crate::ollama::answer_for(&sim, &p);
    let n = sim.next_id() % 999;
    let reply = Reply {
        host,
        chat,
        model: p.g.model.clone(),
        prompt_tokens: p.evaluated,
        stream: p.g.stream,
        include_usage: p.g.include_usage,
        logprobs: p.g.logprobs,
        fault: p.fault,
        kill: p.kill,
        id: if chat {
            format!("chatcmpl-{n}")
        } else {
            format!("cmpl-{n}")
        },
        slot,
        token_time: capacity::token_time(&p.model),
    };
    respond(&sim, reply, &ans).await
}

async fn ollama_models(State(sim): Sim) -> Json<Value> {
    let created = util::unix_secs(std::time::SystemTime::now());
    let data: Vec<Value> = sim
        .served_models()
        .iter()
        .map(|m| json!({"id": normalize(&m.name), "object": "model", "created": created, "owned_by": "library"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn ollama_model(State(sim): Sim, Path(model): Path<String>) -> Response {
    match sim.find_model(&model) {
        Some(m) => Json(json!({
            "id": normalize(&m.name), "object": "model",
            "created": util::unix_secs(std::time::SystemTime::now()), "owned_by": "library"}))
        .into_response(),
        None => ApiError::ModelNotFound(model).respond(ErrorStyle::OllamaOpenAi),
    }
}

async fn ollama_embeddings(State(sim): Sim, req: Request) -> Response {
    let style = ErrorStyle::OllamaOpenAi;
    let (v, model, inputs, fault, kill) =
        match crate::ollama::embed_prepare(&sim, req, style, "input").await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let name = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let resp = embeddings_body(&name, &inputs, model.token_scale);
    delivery::non_stream(fault, style, kill.as_ref(), resp).await
}

// ---------- llama.cpp ----------

async fn llama_chat(State(sim): Sim, req: Request) -> Response {
    llama_generation(sim, req, true).await
}

async fn llama_completions(State(sim): Sim, req: Request) -> Response {
    llama_generation(sim, req, false).await
}

async fn llama_generation(sim: Arc<SimState>, req: Request, chat: bool) -> Response {
    let host = Host::LlamaCpp;
    let style = host.style();
    let (parts, body) = req.into_parts();
    let kill = parts.extensions.get::<ConnKill>().cloned();
    let value = match request::read_json(body).await {
        Ok(v) => v,
        Err(e) => return e.respond(style),
    };
    let g: GenRequest = match request::parse_openai(&value, chat, true) {
        Ok(g) => g,
        Err(e) => return e.respond(style),
    };
    let model = sim.single_model().cloned();
    let scale = model.as_ref().map_or(1.0, |m| m.token_scale);
    let prompt_tokens = g.input.size(scale);
    let alias = model.as_ref().map_or_else(String::new, |m| m.name.clone());
    sim.record(RecordedRequest {
        path: parts.uri.path().to_owned(),
        model: alias.clone(),
        stream: g.stream,
        num_ctx: None,
        prompt_tokens,
        evaluated_tokens: prompt_tokens,
        truncated: false,
        body: value,
        traceparent: header_text(&parts.headers, "traceparent"),
        authorization: header_text(&parts.headers, http::header::AUTHORIZATION),
    });
    let fault = sim.take_fault(&[&alias, &g.model]);
    let fault = match delivery::before_response(fault, style, kill.as_ref()).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(model) = model else {
        return ApiError::NoModel.respond(style);
    };
    if chat && g.input.is_empty() {
        return ApiError::BadRequest("'messages' must be a non-empty array".to_owned())
            .respond(style);
    }
    let n_ctx = model.slot_ctx();
    if prompt_tokens >= n_ctx {
        return ApiError::ExceedContext {
            n_prompt: prompt_tokens,
            n_ctx,
        }
        .respond(style);
    }
    // llama.cpp defers a task until a slot frees (never 503), then processes the prompt.
    let slot = match sim.gate(&model.name) {
        Some(gate) => match gate.acquire().await {
            Ok(s) => Some(s),
            Err(_) => return ApiError::Busy.respond(style),
        },
        None => None,
    };
    let processing = capacity::prompt_time(&model, prompt_tokens);
    if !processing.is_zero() {
        tokio::time::sleep(processing).await;
    }
    let ans = answer::generate(
        &g.input,
        &AnswerParams {
            max_output: g.max_output.and_then(|m| u32::try_from(m).ok()),
            stops: &g.stops,
            json: g.json,
            first_tool: g.first_tool.as_deref(),
            default_len: sim.config.default_output_tokens,
        },
    );
    let id_hash = crate::tokens::fnv1a(&sim.next_id().to_le_bytes());
    let id = format!(
        "{}{:016x}{:016x}",
        if chat { "chatcmpl-" } else { "cmpl-" },
        id_hash,
        crate::tokens::fnv1a(&id_hash.to_le_bytes())
    );
    let reply = Reply {
        host,
        chat,
        model: model.name.clone(),
        prompt_tokens,
        stream: g.stream,
        include_usage: g.include_usage,
        logprobs: g.logprobs,
        fault,
        kill,
        id,
        slot,
        token_time: capacity::token_time(&model),
    };
    respond(&sim, reply, &ans).await
}

async fn llama_embeddings(State(sim): Sim, req: Request) -> Response {
    let style = ErrorStyle::LlamaCpp;
    let (parts, body) = req.into_parts();
    let kill = parts.extensions.get::<ConnKill>().cloned();
    let v = match request::read_json(body).await {
        Ok(v) => v,
        Err(e) => return e.respond(style),
    };
    let Some(model) = sim.single_model().cloned() else {
        return ApiError::NoModel.respond(style);
    };
    let requested = v.get("model").and_then(Value::as_str).unwrap_or("");
    let fault = sim.take_fault(&[&model.name, requested]);
    let fault = match delivery::before_response(fault, style, kill.as_ref()).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let inputs = request::embed_inputs(v.get("input").or_else(|| v.get("content")));
    let resp = embeddings_body(&model.name, &inputs, model.token_scale);
    delivery::non_stream(fault, style, kill.as_ref(), resp).await
}

// ---------- shared response writing ----------

fn embeddings_body(model: &str, inputs: &[String], scale: f32) -> Response {
    let tokens: u32 = inputs
        .iter()
        .map(|i| crate::tokens::scale(crate::tokens::count(i), scale))
        .sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "embedding": util::embedding(t), "index": i}))
        .collect();
    Json(json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

fn usage(r: &Reply, completion: u32) -> Value {
    let mut u = json!({
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": r.prompt_tokens + completion,
    });
    if r.host == Host::LlamaCpp
        && let Some(o) = u.as_object_mut()
    {
        o.insert("prompt_tokens_details".into(), json!({"cached_tokens": 0}));
    }
    u
}

fn timings(r: &Reply, completion: u32) -> Value {
    let prompt_ms = f64::from(r.prompt_tokens) * 0.2;
    let predicted_ms = f64::from(completion) * 10.0;
    json!({
        "cache_n": 0, "prompt_n": r.prompt_tokens, "prompt_ms": prompt_ms,
        "prompt_per_token_ms": 0.2, "prompt_per_second": 5000.0,
        "predicted_n": completion, "predicted_ms": predicted_ms,
        "predicted_per_token_ms": 10.0, "predicted_per_second": 100.0,
    })
}

fn openai_tool_calls(name: &str, arguments: &Value) -> Value {
    json!([{"index": 0, "id": "call_0", "type": "function",
            "function": {"name": name, "arguments": arguments.to_string()}}])
}

/// The envelope shared by every chunk / response of one reply.
fn envelope(r: &Reply, created: u64, object: &str, choices: Value) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("choices".into(), choices);
    o.insert("created".into(), json!(created));
    o.insert("id".into(), json!(r.id));
    o.insert("model".into(), json!(r.model));
    o.insert("system_fingerprint".into(), json!(r.host.fingerprint()));
    o.insert("object".into(), json!(object));
    o
}

async fn respond(sim: &SimState, mut r: Reply, ans: &Answer) -> Response {
    let slot = r.slot.take();
    let created = util::unix_secs(std::time::SystemTime::now());
    let completion = ans.eval_count;
    let finish = ans.finish.openai();
    let style = r.host.style();

    // Both servers write chat's `{content: [...]}`, for text completions too (llama.cpp's
    // `probs_to_json`, Ollama's `ChoiceLogprobs`).
    let logprobs = |pieces: &[String]| match (r.logprobs, pieces.is_empty()) {
        (Some(top), false) => json!({"content": crate::logprobs::entries(pieces, top)}),
        _ => Value::Null,
    };
    if !r.stream {
        let pieces = match &ans.output {
            Output::Text(p) => p.as_slice(),
            Output::Tool { .. } => &[],
        };
        let choice = if r.chat {
            let message = match &ans.output {
                Output::Text(_) => json!({"role": "assistant", "content": ans.text()}),
                Output::Tool { name, arguments } => json!({"role": "assistant", "content": null,
                    "tool_calls": openai_tool_calls(name, arguments)}),
            };
            let mut c = json!({"index": 0, "message": message, "finish_reason": finish});
            if r.logprobs.is_some()
                && let Value::Object(o) = &mut c
            {
                o.insert("logprobs".into(), logprobs(pieces));
            }
            c
        } else {
            json!({"index": 0, "text": ans.text(), "logprobs": logprobs(pieces), "finish_reason": finish})
        };
        let object = if r.chat {
            "chat.completion"
        } else {
            "text_completion"
        };
        let mut o = envelope(&r, created, object, json!([choice]));
        o.insert("usage".into(), usage(&r, completion));
        if r.host == Host::LlamaCpp {
            o.insert("timings".into(), timings(&r, completion));
        }
        let resp = Json(Value::Object(o)).into_response();
        if let Some(t) = r.token_time {
            tokio::time::sleep(t * completion).await;
        }
        drop(slot);
        return delivery::non_stream(r.fault, style, r.kill.as_ref(), resp).await;
    }

    let object = if r.chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = |choices: Value| util::sse(&Value::Object(envelope(&r, created, object, choices)));
    let delta = |d: Value, reason: Value| {
        let piece = d
            .get("content")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        let lp = piece.map_or(Value::Null, |p| logprobs(&[p.to_owned()]));
        if r.chat {
            let mut c = json!({"finish_reason": reason, "index": 0, "delta": d});
            if !lp.is_null()
                && let Value::Object(o) = &mut c
            {
                o.insert("logprobs".into(), lp);
            }
            json!([c])
        } else {
            let text = d.get("content").cloned().unwrap_or(json!(""));
            json!([{"text": text, "index": 0, "logprobs": lp, "finish_reason": reason}])
        }
    };

    let mut content = Vec::new();
    if r.chat {
        let first = match r.host {
            Host::LlamaCpp => json!({"role": "assistant", "content": null}),
            Host::Ollama => json!({"role": "assistant", "content": ""}),
        };
        content.push(chunk(delta(first, Value::Null)));
    }
    match &ans.output {
        Output::Text(pieces) => {
            for p in pieces {
                content.push(chunk(delta(json!({ "content": p }), Value::Null)));
            }
        }
        Output::Tool { name, arguments } => {
            content.push(chunk(delta(
                json!({ "tool_calls": openai_tool_calls(name, arguments) }),
                Value::Null,
            )));
        }
    }

    let mut finish_chunk = envelope(&r, created, object, delta(json!({}), json!(finish)));
    if r.chat {
        // Legacy completions put the finish on a chunk with empty text; chat uses an empty delta.
    } else if let Some(Value::Array(c)) = finish_chunk.get_mut("choices")
        && let Some(Value::Object(c0)) = c.first_mut()
    {
        c0.insert("text".into(), json!(""));
    }
    let mut tail_objs = vec![finish_chunk];
    if r.include_usage {
        let mut u = envelope(&r, created, object, json!([]));
        u.insert("usage".into(), usage(&r, completion));
        tail_objs.push(u);
    }
    if r.host == Host::LlamaCpp
        && let Some(last) = tail_objs.last_mut()
    {
        last.insert("timings".into(), timings(&r, completion));
    }
    let mut tail: Vec<_> = tail_objs
        .into_iter()
        .map(|o| util::sse(&Value::Object(o)))
        .collect();
    tail.push(util::sse_done());

    let error_line = match r.host {
        Host::LlamaCpp => util::sse(&json!({"error": {
            "code": 500, "message": LLAMA_RUNNER_ERROR, "type": llama_type(500)}})),
        // Ollama re-emits a mid-stream error as an empty-content chunk (§5.4).
        Host::Ollama => chunk(delta(json!({ "content": "" }), Value::Null)),
    };
    let body = delivery::stream_body(
        Frames { content, tail },
        r.token_time.unwrap_or(sim.config.chunk_delay),
        r.fault,
        error_line,
        r.kill,
        slot,
    );
    delivery::stream_response("text/event-stream", body)
}
