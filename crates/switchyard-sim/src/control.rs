//! Control endpoints under `/_sim/` so a test in another process (driving the binary) can arm
//! faults and read what the simulator saw.
//!
//! `/_sim/stats` gives per model: `requests` (recorded), `truncated` (silently), `reloads`,
//! `served` (got a slot and generated), `busy` (503 past `max_queue`), `running` / `queued` now
//! and their peaks.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use crate::config::SimModel;
use crate::fault::FaultRule;
use crate::state::{RecordedRequest, SimState};

type Sim = State<Arc<SimState>>;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/faults", post(add_fault).delete(clear_faults))
        .route("/_sim/requests", get(requests))
        .route("/_sim/stats", get(stats))
        .route("/_sim/models/{name}/stop", post(stop_model))
        .route("/_sim/models/{name}/start", post(start_model))
        .route("/_sim/models", post(pull_model))
        .route("/_sim/models/{name}", delete(remove_model))
}

/// `POST /_sim/models {name, context_length, architecture?, capabilities?}`: `ollama pull`.
async fn pull_model(State(sim): Sim, Json(model): Json<SimModel>) -> StatusCode {
    sim.pull(model);
    StatusCode::NO_CONTENT
}

/// `DELETE /_sim/models/{name}`: `ollama rm` (404 when no such model is served).
async fn remove_model(State(sim): Sim, Path(name): Path<String>) -> StatusCode {
    if sim.remove(&name) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn stop_model(State(sim): Sim, Path(name): Path<String>) -> StatusCode {
    sim.set_stopped(&name, true);
    StatusCode::NO_CONTENT
}

async fn start_model(State(sim): Sim, Path(name): Path<String>) -> StatusCode {
    sim.set_stopped(&name, false);
    StatusCode::NO_CONTENT
}

async fn add_fault(State(sim): Sim, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.add_fault(rule);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(sim): Sim) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

async fn requests(State(sim): Sim) -> Json<Vec<RecordedRequest>> {
    Json(sim.requests())
}

async fn stats(State(sim): Sim) -> Json<Value> {
    let map: Map<String, Value> = sim
        .stats()
        .into_iter()
        .map(|s| {
            let g = s.gate;
            let v = json!({
                "requests": s.requests, "reloads": s.reloads, "truncated": s.truncated,
                "served": g.served, "busy": g.busy, "running": g.running, "queued": g.queued,
                "peak_running": g.peak_running, "peak_queued": g.peak_queued,
            });
            (s.name, v)
        })
        .collect();
    Json(Value::Object(map))
}
