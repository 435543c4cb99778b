//! `switchyard-sim`: a deterministic simulator of an Ollama server or a llama.cpp `llama-server`
//! (OpenAI-compatible), with failure injection, for Switchyard's integration tests and benchmarks.
//!
//! Start one with [`SimHandle::start`]; arm failures with [`SimHandle::add_fault`]; inspect what
//! reached it with [`SimHandle::requests`]. Behaviour follows `design/backends.md` §1–6:
//! field names, NDJSON / SSE framing, status codes and error bodies, Ollama's silent truncation and
//! `prompt_eval_count` semantics, llama.cpp's `exceed_context_size_error`.
//!
//! Token counts use the simulator's own tokenizer ("sim tokens"): a run of ASCII letters is 1
//! token (absorbing one preceding space), each digit or other ASCII symbol 1, each non-ASCII char
//! 2, each remaining whitespace run 1; a chat prompt costs `Σcontent + 5 per message + 5` (+ the
//! tools JSON), times the model's `token_scale`. Answers are deterministic word sequences (one word
//! = one output token = one streamed chunk), so a continued answer concatenates to the
//! uninterrupted one. `[[tokens=N]]` in the last user message sets the answer length and
//! `[[tool]]` (with tools sent) makes it a call of the first tool.
//!
//! Capacity (see `SimModel::num_parallel`, `max_queue`, `prompt_tokens_per_s`, `tokens_per_s`):
//! a model serves `num_parallel` generations at once and queues the rest in arrival order;
//! Ollama answers 503 `server busy, please try again.  maximum pending requests exceeded` past
//! `max_queue` waiting (`OLLAMA_MAX_QUEUE`, default 512), llama.cpp queues without bound and
//! reports the slots in `/props` `total_slots` and `/slots`. A slot is held through prompt
//! processing and generation at the model's speeds. Unset, slots are unlimited and instant.
//! `/_sim/stats` counts, per model, requests served, refused as busy and truncated.
//!
//! Only the most recent requests are kept for [`SimHandle::requests`] (see [`RECORD_LIMIT`]);
//! counts cover every request.
//!
//! Faults apply to generation and embedding requests only (never to metadata or health
//! endpoints), after the request has been recorded.

mod answer;
mod capacity;
mod config;
mod control;
mod delivery;
mod embed;
mod error;
mod fault;
mod llamacpp;
mod logprobs;
mod ollama;
mod openai;
mod prompt;
mod request;
mod routes;
mod server;
mod state;
mod tls;
mod tokens;
mod util;

pub use capacity::{OLLAMA_DEFAULT_MAX_QUEUE, SlotStats};
pub use config::{ConfigError, Flavor, SimConfig, SimModel};
pub use fault::{Fault, FaultRule};
pub use server::SimHandle;
pub use state::{RECORD_BYTES, RECORD_LIMIT, RecordedRequest};
pub use tls::SimTls;

/// Counts "sim tokens" of plain text the way the simulator does (before any `token_scale`).
pub fn sim_token_count(text: &str) -> u32 {
    tokens::count(text)
}
