//! The Ollama flavor's native API (backends.md §1–4): metadata endpoints, `/api/chat`,
//! `/api/generate` with NDJSON streaming, silent truncation, `num_ctx` reloads, embeddings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::answer::{self, Answer, AnswerParams, Output};
use crate::capacity::{self, Slot};
use crate::config::{SimConfig, SimModel};
use crate::delivery::{self, Frames};
use crate::error::{ApiError, ErrorStyle, OLLAMA_RUNNER_ERROR};
use crate::request::{self, GenRequest};
use crate::server::ConnKill;
use crate::state::{RecordedRequest, SimState, header_text, normalize};
use crate::util;

type Sim = State<Arc<SimState>>;

const STYLE: ErrorStyle = ErrorStyle::Ollama;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/", get(root))
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route("/api/show", post(show))
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
        .route("/api/embed", post(crate::embed::ollama_embed))
        .route("/api/embeddings", post(embeddings_legacy))
        .merge(crate::openai::ollama_routes())
}

async fn root() -> &'static str {
    "Ollama is running"
}

async fn version() -> Json<Value> {
    Json(json!({"version": "0.12.3"}))
}

/// `parameter_size` from a tag like `:1b` / `:3.2b`, else "1B".
fn parameter_size(name: &str) -> String {
    name.rsplit_once(':')
        .map(|(_, tag)| tag.split(['-', '_']).next().unwrap_or(""))
        .filter(|t| {
            t.strip_suffix(['b', 'B'])
                .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok())
        })
        .map_or_else(|| "1B".to_owned(), str::to_uppercase)
}

pub(crate) fn details(m: &SimModel) -> Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": m.architecture,
        "families": [m.architecture],
        "parameter_size": parameter_size(&m.name),
        "quantization_level": "Q4_K_M",
    })
}

async fn tags(State(sim): Sim) -> Json<Value> {
    let modified = util::now_rfc3339();
    let models: Vec<Value> = sim
        .served_models()
        .into_iter()
        .map(|m| {
            let name = normalize(&m.name);
            json!({
                "name": name, "model": name, "modified_at": modified,
                "size": util::model_size(&m.name), "digest": util::digest(&m.name),
                "details": details(&m), "capabilities": m.capabilities(),
            })
        })
        .collect();
    Json(json!({ "models": models }))
}

async fn ps(State(sim): Sim) -> Json<Value> {
    let models: Vec<Value> = sim
        .loaded()
        .into_iter()
        .filter_map(|l| {
            let m = sim.find_model(&l.name)?;
            let name = normalize(&m.name);
            let size = util::model_size(&m.name);
            Some(json!({
                "name": name, "model": name, "size": size, "digest": util::digest(&m.name),
                "details": details(&m),
                "expires_at": util::rfc3339(l.loaded_at + Duration::from_secs(300)),
                "size_vram": size, "context_length": l.num_ctx,
            }))
        })
        .collect();
    Json(json!({ "models": models }))
}

/// The thinking the simulator answers a request with `think` on.
pub(crate) const THINKING: &str = "Let me think about that.";

const TEMPLATE: &str = "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n";

async fn show(State(sim): Sim, body: Bytes) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return ApiError::MissingBody.respond(STYLE);
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::BadRequest(crate::error::go_syntax_error(&body, &e)).respond(STYLE);
        }
    };
    let name = v
        .get("model")
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return ApiError::ModelRequired.respond(STYLE);
    }
    let Some(m) = sim.find_model(name) else {
        return ApiError::ModelNotFound(name.to_owned()).respond(STYLE);
    };
    let arch = &m.architecture;
    let mut info = Map::new();
    info.insert("general.architecture".into(), json!(arch));
    info.insert("general.file_type".into(), json!(15));
    info.insert("general.parameter_count".into(), json!(1_235_814_432_u64));
    info.insert(format!("{arch}.context_length"), json!(m.context_length));
    info.insert(format!("{arch}.embedding_length"), json!(2048));
    info.insert(format!("{arch}.block_count"), json!(16));
    info.insert(format!("{arch}.attention.head_count"), json!(32));
    info.insert(format!("{arch}.attention.head_count_kv"), json!(8));
    info.insert("tokenizer.ggml.model".into(), json!("gpt2"));
    info.insert("tokenizer.ggml.pre".into(), json!("llama-bpe"));
    info.insert("tokenizer.ggml.bos_token_id".into(), json!(128_000));
    info.insert("tokenizer.ggml.eos_token_id".into(), json!(128_009));
    info.insert("tokenizer.ggml.tokens".into(), Value::Null);
    info.insert("tokenizer.ggml.merges".into(), Value::Null);
    info.insert("tokenizer.ggml.token_type".into(), Value::Null);
    Json(json!({
        "license": "",
        "modelfile": format!("# Modelfile generated by switchyard-sim\nFROM /models/{}.gguf\n", m.name),
        "parameters": "",
        "template": TEMPLATE,
        "details": details(&m),
        "model_info": info,
        "tensors": [],
        "capabilities": m.capabilities(),
        "modified_at": util::now_rfc3339(),
    }))
    .into_response()
}

/// Effective num_ctx: the request's or the default, clamped to the trained context (min 4).
pub(crate) fn effective_num_ctx(
    cfg: &SimConfig,
    model: Option<&SimModel>,
    sent: Option<u32>,
) -> u32 {
    let n = sent.unwrap_or(cfg.default_num_ctx);
    let n = model.map_or(n, |m| n.min(m.context_length));
    n.max(4)
}

/// num_predict → output cap; unlimited is capped at 10 × num_ctx (§1.3).
pub(crate) fn output_cap(sent: Option<i64>, num_ctx: u32) -> Option<u32> {
    let unlimited = num_ctx.saturating_mul(10);
    Some(match sent {
        None => unlimited,
        Some(n) if n < 0 => unlimited,
        Some(n) => u32::try_from(n).unwrap_or(unlimited).min(unlimited),
    })
}

/// The parts of a generation that every Ollama response shape needs.
pub(crate) struct Prepared {
    pub g: GenRequest,
    pub model: SimModel,
    pub num_ctx: u32,
    pub evaluated: u32,
    pub loaded_now: bool,
    pub fault: Option<crate::fault::Fault>,
    pub kill: Option<ConnKill>,
    pub started: Instant,
    /// The model's slot, held (with the prompt already processed) until the answer is out.
    pub slot: Option<Slot>,
}

/// The shared front half of every Ollama generation: parse, record, faults, validation, load.
/// `parse` turns the body into a request plus a deferred error.
pub(crate) async fn prepare(
    sim: &Arc<SimState>,
    req: Request,
    style: ErrorStyle,
    parse: impl FnOnce(&Value) -> Result<(GenRequest, Option<ApiError>), ApiError>,
) -> Result<Prepared, Response> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let kill = parts.extensions.get::<ConnKill>().cloned();
    let value = request::read_json(body)
        .await
        .map_err(|e| e.respond(style))?;
    let (g, deferred) = parse(&value).map_err(|e| e.respond(style))?;
    let model = sim.find_model(&g.model);
    let scale = model.as_ref().map_or(1.0, |m| m.token_scale);
    let num_ctx = effective_num_ctx(&sim.config, model.as_ref(), g.num_ctx_sent);
    let size = g.input.fit(scale, num_ctx, g.truncate);
    let recorded_name = model
        .as_ref()
        .map_or_else(|| g.model.clone(), |m| m.name.clone());
    sim.record(RecordedRequest {
        path: parts.uri.path().to_owned(),
        model: recorded_name.clone(),
        stream: g.stream,
        num_ctx: g.num_ctx_sent,
        prompt_tokens: size.prompt_tokens,
        evaluated_tokens: size.evaluated_tokens,
        truncated: size.truncated,
        body: value,
        traceparent: header_text(&parts.headers, "traceparent"),
        authorization: header_text(&parts.headers, http::header::AUTHORIZATION),
    });
    let fault = sim.take_fault(&[&g.model, &recorded_name]);
    let fault = delivery::before_response(fault, style, kill.as_ref()).await?;
    if g.model.is_empty() {
        return Err(ApiError::ModelRequired.respond(style));
    }
    let Some(model) = model else {
        return Err(ApiError::ModelNotFound(g.model.clone()).respond(style));
    };
    if let Some(e) = deferred {
        return Err(e.respond(style));
    }
    let loaded_now = sim.ensure_loaded(&model.name, num_ctx);
    if !g.truncate && size.prompt_tokens > num_ctx && !g.input.is_empty() {
        return Err(ApiError::InputTooLong.respond(style));
    }
    // A slot (waiting in the queue, or 503 past `max_queue`), then the prompt is processed.
    let slot = match sim.gate(&model.name) {
        Some(gate) => Some(
            gate.acquire()
                .await
                .map_err(|_| ApiError::Busy.respond(style))?,
        ),
        None => None,
    };
    let processing = capacity::prompt_time(&model, size.evaluated_tokens);
    if !processing.is_zero() {
        tokio::time::sleep(processing).await;
    }
    Ok(Prepared {
        g,
        model,
        num_ctx,
        evaluated: size.evaluated_tokens,
        loaded_now,
        fault,
        kill,
        started,
        slot,
    })
}

/// Waits as long as generating `tokens` output tokens takes (non-streamed answers), when the
/// model sets a generation speed.
pub(crate) async fn generation_time(model: &SimModel, tokens: u32) {
    if let Some(t) = capacity::token_time(model) {
        tokio::time::sleep(t * tokens).await;
    }
}

/// Produces the answer for a prepared request.
pub(crate) fn answer_for(sim: &SimState, p: &Prepared) -> Answer {
    answer::generate(
        &p.g.input,
        &AnswerParams {
            max_output: output_cap(p.g.max_output, p.num_ctx),
            stops: &p.g.stops,
            json: p.g.json,
            first_tool: p.g.first_tool.as_deref(),
            default_len: sim.config.default_output_tokens,
        },
    )
}

/// Adds Ollama's metric fields (omitting zeros, as Go's `omitempty` does).
fn add_metrics(o: &mut Map<String, Value>, p: &Prepared, eval_count: u32) {
    let load: u64 = if p.loaded_now { 250_000_000 } else { 1_500_000 };
    let prompt_eval = match capacity::prompt_time(&p.model, p.evaluated) {
        d if d.is_zero() => u64::from(p.evaluated) * 200_000,
        d => util::nanos(d),
    };
    let eval = capacity::token_time(&p.model).map_or(u64::from(eval_count) * 10_000_000, |t| {
        util::nanos(t * eval_count)
    });
    let total = util::nanos(p.started.elapsed()).max(load + prompt_eval + eval);
    for (k, v) in [
        ("total_duration", total),
        ("load_duration", load),
        ("prompt_eval_count", u64::from(p.evaluated)),
        ("prompt_eval_duration", prompt_eval),
        ("eval_count", u64::from(eval_count)),
        ("eval_duration", eval),
    ] {
        if v != 0 {
            o.insert(k.to_owned(), json!(v));
        }
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn tool_calls(name: &str, arguments: &Value) -> Value {
    json!([{"id": "call_0", "function": {"index": 0, "name": name, "arguments": arguments}}])
}

async fn chat(State(sim): Sim, req: Request) -> Response {
    generation(sim, req, true).await
}

async fn generate(State(sim): Sim, req: Request) -> Response {
    generation(sim, req, false).await
}

async fn generation(sim: Arc<SimState>, req: Request, is_chat: bool) -> Response {
    let mut p = match prepare(&sim, req, STYLE, |v| request::parse_ollama(v, is_chat)).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let slot = p.slot.take();
    let model = p.g.model.clone();
    let head = |content: &str| {
        let mut o = obj(json!({"model": model, "created_at": util::now_rfc3339()}));
        if is_chat {
            o.insert(
                "message".into(),
                json!({"role": "assistant", "content": content}),
            );
        } else {
            o.insert("response".into(), json!(content));
        }
        o
    };

    // Empty messages / prompt: load (or unload) only.
    if p.g.input.is_empty() {
        let reason = if p.g.keep_alive_zero {
            sim.unload(&p.model.name);
            "unload"
        } else {
            "load"
        };
        let mut o = head("");
        o.insert("done_reason".into(), json!(reason));
        o.insert("done".into(), json!(true));
        return respond_single(&p, Value::Object(o)).await;
    }

    let ans = answer_for(&sim, &p);
    if p.g.keep_alive_zero {
        sim.unload(&p.model.name);
    }
    // Ollama answers `think` apart from the content: `message.thinking` (chat) or `thinking`.
    let put_thinking = |o: &mut Map<String, Value>| {
        if is_chat && let Some(Value::Object(msg)) = o.get_mut("message") {
            msg.insert("thinking".into(), json!(THINKING));
        } else if !is_chat {
            o.insert("thinking".into(), json!(THINKING));
        }
    };
    let done = |content: &str, with_tools: bool| {
        let mut o = head(content);
        if with_tools && p.g.think {
            put_thinking(&mut o);
        }
        if let (true, Output::Tool { name, arguments }) = (with_tools, &ans.output)
            && let Some(Value::Object(msg)) = o.get_mut("message")
        {
            msg.insert("tool_calls".into(), tool_calls(name, arguments));
        }
        o.insert("done".into(), json!(true));
        o.insert("done_reason".into(), json!(ans.finish.ollama()));
        let raw = matches!(
            p.g.input,
            crate::prompt::PromptInput::Text { raw: true, .. }
        );
        if !is_chat && !raw {
            let text = format!("{}{}", p.g.input.render(), ans.text());
            o.insert(
                "context".into(),
                json!(crate::tokens::fake_ids(&text, p.evaluated + ans.eval_count)),
            );
        }
        add_metrics(&mut o, &p, ans.eval_count);
        Value::Object(o)
    };

    if !p.g.stream {
        let mut body = done(&ans.text(), true);
        if let (Some(top), Output::Text(pieces), Value::Object(o)) =
            (p.g.logprobs, &ans.output, &mut body)
        {
            o.insert(
                "logprobs".into(),
                Value::Array(crate::logprobs::entries(pieces, top)),
            );
        }
        let resp = Json(body).into_response();
        generation_time(&p.model, ans.eval_count).await;
        drop(slot);
        return delivery::non_stream(p.fault, STYLE, p.kill.as_ref(), resp).await;
    }

    let mut content = Vec::new();
    if p.g.think {
        let mut o = head("");
        put_thinking(&mut o);
        o.insert("done".into(), json!(false));
        content.push(util::ndjson(&Value::Object(o)));
    }
    match &ans.output {
        Output::Text(pieces) => {
            for piece in pieces {
                let mut o = head(piece);
                o.insert("done".into(), json!(false));
                if let Some(top) = p.g.logprobs {
                    o.insert(
                        "logprobs".into(),
                        json!([crate::logprobs::entry(piece, top)]),
                    );
                }
                content.push(util::ndjson(&Value::Object(o)));
            }
        }
        Output::Tool { name, arguments } => {
            let mut o = head("");
            if let Some(Value::Object(msg)) = o.get_mut("message") {
                msg.insert("tool_calls".into(), tool_calls(name, arguments));
            }
            o.insert("done".into(), json!(false));
            content.push(util::ndjson(&Value::Object(o)));
        }
    }
    let frames = Frames {
        content,
        tail: vec![util::ndjson(&done("", false))],
    };
    let body = delivery::stream_body(
        frames,
        capacity::token_time(&p.model).unwrap_or(sim.config.chunk_delay),
        p.fault,
        util::ndjson(&json!({ "error": OLLAMA_RUNNER_ERROR })),
        p.kill,
        slot,
    );
    delivery::stream_response("application/x-ndjson", body)
}

/// A one-object answer, as NDJSON when streaming was requested.
async fn respond_single(p: &Prepared, v: Value) -> Response {
    let resp = if p.g.stream {
        ([(CONTENT_TYPE, "application/x-ndjson")], util::ndjson(&v)).into_response()
    } else {
        Json(v).into_response()
    };
    delivery::non_stream(p.fault.clone(), STYLE, p.kill.as_ref(), resp).await
}

/// Shared front half of the embedding endpoints: parse, faults, model lookup, load.
pub(crate) async fn embed_prepare(
    sim: &Arc<SimState>,
    req: Request,
    style: ErrorStyle,
    input_key: &str,
) -> Result<
    (
        Value,
        SimModel,
        Vec<String>,
        Option<crate::fault::Fault>,
        Option<ConnKill>,
    ),
    Response,
> {
    let (parts, body) = req.into_parts();
    let kill = parts.extensions.get::<ConnKill>().cloned();
    let v = request::read_json(body)
        .await
        .map_err(|e| e.respond(style))?;
    let name = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let fault = sim.take_fault(&[&name]);
    let fault = delivery::before_response(fault, style, kill.as_ref()).await?;
    if name.is_empty() {
        return Err(ApiError::ModelRequired.respond(style));
    }
    let Some(model) = sim.find_model(&name) else {
        return Err(ApiError::ModelNotFound(name).respond(style));
    };
    let inputs = request::embed_inputs(v.get(input_key));
    let num_ctx = effective_num_ctx(&sim.config, Some(&model), None);
    let too_long = inputs
        .iter()
        .any(|i| crate::tokens::scale(crate::tokens::count(i), model.token_scale) > num_ctx);
    if too_long && v.get("truncate").and_then(Value::as_bool) == Some(false) {
        return Err(ApiError::InputTooLong.respond(style));
    }
    Ok((v, model, inputs, fault, kill))
}

async fn embeddings_legacy(State(sim): Sim, req: Request) -> Response {
    let (_, _, inputs, fault, kill) = match embed_prepare(&sim, req, STYLE, "prompt").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let text = inputs.first().map_or("", String::as_str);
    let resp = Json(json!({ "embedding": util::embedding(text) })).into_response();
    delivery::non_stream(fault, STYLE, kill.as_ref(), resp).await
}
