//! The llama.cpp flavor's own endpoints (backends.md §6.2–6.3): health, props, models, slots,
//! tokenize and apply-template. Completions live in [`crate::openai`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorStyle};
use crate::state::SimState;
use crate::{request, tokens, util};

type Sim = State<Arc<SimState>>;

const STYLE: ErrorStyle = ErrorStyle::LlamaCpp;
const N_VOCAB: u32 = 128_256;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/health", get(health))
        .route("/v1/health", get(health))
        .route("/props", get(props))
        .route("/slots", get(slots))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/tokenize", post(tokenize))
        .route("/apply-template", post(apply_template))
        .merge(crate::openai::llamacpp_routes())
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn props(State(sim): Sim) -> Response {
    let Some(m) = sim.single_model() else {
        return ApiError::NoModel.respond(STYLE);
    };
    Json(json!({
        "default_generation_settings": {"params": {"n_predict": -1, "temperature": 0.8}, "n_ctx": m.slot_ctx()},
        "total_slots": total_slots(m),
        "model_alias": m.name,
        "model_path": format!("/models/{}.gguf", m.name),
        "modalities": {"vision": false, "video": false, "audio": false},
        "chat_template": "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}",
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "build_info": "b7000-switchyard-sim",
        "is_sleeping": false,
    }))
    .into_response()
}

/// `--parallel`: the configured slots, 1 when unlimited (llama-server's default).
fn total_slots(m: &crate::config::SimModel) -> u32 {
    m.num_parallel.unwrap_or(1).max(1)
}

/// One entry per slot; the first `running` are processing.
async fn slots(State(sim): Sim) -> Json<Value> {
    let Some(m) = sim.single_model() else {
        return Json(json!([]));
    };
    let running = sim.gate_stats(&m.name).running;
    let list: Vec<Value> = (0..total_slots(m))
        .map(|id| {
            let busy = usize::try_from(id).is_ok_and(|i| i < running);
            json!({"id": id, "id_task": if busy { i64::from(id) } else { -1 }, "n_ctx": m.slot_ctx(),
                   "speculative": false, "is_processing": busy})
        })
        .collect();
    Json(Value::Array(list))
}

async fn models(State(sim): Sim) -> Response {
    let Some(m) = sim.single_model() else {
        return ApiError::NoModel.respond(STYLE);
    };
    let size = util::model_size(&m.name);
    Json(json!({
        "object": "list",
        "data": [{
            "id": m.name, "aliases": [m.name], "tags": [], "object": "model",
            "created": util::unix_secs(std::time::SystemTime::now()), "owned_by": "llamacpp",
            "meta": {"vocab_type": 2, "n_vocab": N_VOCAB, "n_ctx": m.slot_ctx(),
                     "n_ctx_train": m.context_length, "n_embd": 2048,
                     "n_params": 1_235_814_432_u64, "size": size},
        }],
    }))
    .into_response()
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MissingBody);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn tokenize(State(sim): Sim, body: Bytes) -> Response {
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return e.respond(STYLE),
    };
    let content = v.get("content").and_then(Value::as_str).unwrap_or("");
    let scale = sim.single_model().map_or(1.0, |m| m.token_scale);
    let n = tokens::scale(tokens::count_rendered(content), scale);
    Json(json!({ "tokens": tokens::fake_ids(content, n) })).into_response()
}

async fn apply_template(body: Bytes) -> Response {
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return e.respond(STYLE),
    };
    let g = match request::parse_openai(&v, true, true) {
        Ok(g) => g,
        Err(e) => return e.respond(STYLE),
    };
    Json(json!({ "prompt": g.input.render() })).into_response()
}
