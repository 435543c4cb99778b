//! `POST /v1/embeddings` end to end against the simulator: every input shape, base64 vectors,
//! routing by fit (the longest input), fallback, chat/embedding mismatches, usage records, and
//! the same through a router behind real gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchyard_router::{RequestRecord, UsageSink};
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

#[derive(Default)]
struct Collect(Mutex<Vec<RequestRecord>>);

impl UsageSink for Collect {
    fn record(&self, r: RequestRecord) {
        self.0.lock().unwrap().push(r);
    }
}

/// Two Ollama embedding groups (a 128-token window falling back to a 1024-token one), a chat
/// group, and an OpenAI-compatible (llama.cpp) embedding group. `small_ctx` is the context the
/// small model really has on the simulator (its configured window says 128).
struct Setup {
    ollama: SimHandle,
    llama: SimHandle,
    config_text: String,
}

async fn setup(small_ctx: u32) -> Setup {
    let ollama = SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("nomic-embed-text", small_ctx),
        SimModel::new("mxbai-embed-large", 8192),
        SimModel::new("llama3.2:1b", 131072),
    ]))
    .await
    .unwrap();
    let llama = SimHandle::start(SimConfig::llamacpp(SimModel::new("bge-m3", 8192)))
        .await
        .unwrap();
    let config_text = format!(
        r#"
model_list:
  - model_name: embed-small
    litellm_params: {{model: ollama/nomic-embed-text, api_base: "{o}", num_ctx: 128}}
    model_info: {{mode: embedding}}
  - model_name: embed-large
    litellm_params: {{model: ollama/mxbai-embed-large, api_base: "{o}", num_ctx: 1024}}
    model_info: {{mode: embedding}}
  - model_name: chat
    litellm_params: {{model: ollama/llama3.2:1b, api_base: "{o}", max_tokens: 2048}}
deployments:
  - group: embed-openai
    provider: openai
    model: bge-m3
    api_base: "{l}"
    context_window: 8192
    mode: embedding
router_settings:
  num_retries: 0
  fallbacks:
    - embed-small: [embed-large]
"#,
        o = ollama.base_url(),
        l = llama.base_url()
    );
    Setup {
        ollama,
        llama,
        config_text,
    }
}

async fn serve_recording(text: &str) -> (common::Serve, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let gw = common::serve_with(
        common::config_from(text),
        switchyard::ServeOptions {
            usage_sink: Some(sink.clone()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    (gw, sink)
}

async fn post(url: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = common::client().post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let v: Value = r.json().await.unwrap();
    (status, headers, v)
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn b64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A.iter().position(|&a| a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[tokio::test]
async fn strings_lists_and_token_ids_are_embedded() {
    let s = setup(8192).await;
    let (gw, _) = serve_recording(&s.config_text).await;
    let url = gw.url("/v1/embeddings");

    let (status, h, one) = post(
        &url,
        json!({"model": "embed-small", "input": "hello world"}),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["object"], "list");
    assert_eq!(one["model"], "embed-small");
    assert_eq!(one["data"][0]["object"], "embedding");
    assert_eq!(one["data"][0]["index"], 0);
    let v = floats(&one["data"][0]["embedding"]);
    assert_eq!(v.len(), 8);
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    let tokens = switchyard_sim::sim_token_count("hello world");
    assert_eq!(one["usage"]["prompt_tokens"], tokens);
    assert_eq!(one["usage"]["total_tokens"], tokens);
    assert_eq!(header(&h, "x-switchyard-group"), "embed-small");
    assert_eq!(header(&h, "x-switchyard-model"), "nomic-embed-text");
    assert_eq!(header(&h, "x-switchyard-attempts"), "1");
    assert!(!header(&h, "x-request-id").is_empty());

    // What reached Ollama: /api/embed, the inputs as a list, num_ctx pinned, truncate off.
    let sent = s.ollama.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/api/embed");
    assert_eq!(sent.num_ctx, Some(128));
    assert_eq!(sent.body["truncate"], false);
    assert_eq!(sent.body["input"], json!(["hello world"]));

    let (status, _, list) = post(
        &url,
        json!({"model": "embed-small", "input": ["a cat", "hello world", "x"], "user": "u1"}),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
    }
    // Same text, same vector, wherever it stands in the list.
    assert_eq!(floats(&data[1]["embedding"]), v);
    assert_ne!(floats(&data[0]["embedding"]), v);

    // Token ids are cl100k_base ids (what LangChain's OpenAIEmbeddings sends by default):
    // every backend gets their text, Ollama included.
    let (status, _, e) = post(
        &url,
        json!({"model": "embed-small", "input": [15339, 1917]}),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    let sent = s.ollama.requests().last().unwrap().clone();
    assert_eq!(sent.body["input"], json!(["hello world"]));
    assert_eq!(floats(&e["data"][0]["embedding"]), v);
    let (status, h, t) = post(
        &url,
        json!({"model": "embed-openai", "input": [[15339], [1917]]}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["data"].as_array().unwrap().len(), 2);
    assert_eq!(header(&h, "x-switchyard-model"), "bge-m3");
    let (status, _, e) = post(
        &url,
        json!({"model": "embed-small", "input": [[999_999_999]]}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "input");
    drop(s.llama);
}

#[tokio::test]
async fn base64_vectors_decode_to_the_float_ones() {
    let s = setup(8192).await;
    let (gw, _) = serve_recording(&s.config_text).await;
    let url = gw.url("/v1/embeddings");
    let input = json!(["first text", "second"]);
    let (_, _, f) = post(
        &url,
        json!({"model": "embed-small", "input": input, "encoding_format": "float"}),
    )
    .await;
    let (status, _, b) = post(
        &url,
        json!({"model": "embed-small", "input": input, "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200, "{b}");
    for i in 0..2 {
        let text = b["data"][i]["embedding"].as_str().expect("a base64 string");
        let bytes = b64_decode(text);
        assert_eq!(bytes.len(), 8 * 4);
        let decoded: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(decoded, floats(&f["data"][i]["embedding"]));
    }
    let (status, _, e) = post(
        &url,
        json!({"model": "embed-small", "input": "x", "encoding_format": "int8"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["param"], "encoding_format");
}

#[tokio::test]
async fn a_down_embedding_deployment_falls_back_and_is_recorded() {
    let s = setup(8192).await;
    let (gw, sink) = serve_recording(&s.config_text).await;
    let url = gw.url("/v1/embeddings");
    s.ollama.add_fault(FaultRule::for_model(
        "nomic-embed-text",
        Fault::Status {
            code: 500,
            message: "runner crashed".into(),
        },
        Some(1),
    ));
    let (status, h, v) = post(&url, json!({"model": "embed-small", "input": "hello"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(header(&h, "x-switchyard-group"), "embed-large");
    assert_eq!(header(&h, "x-switchyard-requested-group"), "embed-small");
    assert_eq!(header(&h, "x-switchyard-attempts"), "2");

    common::eventually(20, "the usage record", || {
        let sink = sink.clone();
        async move { !sink.0.lock().unwrap().is_empty() }
    })
    .await;
    let r = sink.0.lock().unwrap()[0].clone();
    assert_eq!(r.status, "ok");
    assert_eq!(r.http_status, 200);
    assert_eq!(r.requested_group, "embed-small");
    assert_eq!(r.served_group.as_deref(), Some("embed-large"));
    assert_eq!(r.backend_model.as_deref(), Some("mxbai-embed-large"));
    assert_eq!(
        r.prompt_tokens,
        v["usage"]["prompt_tokens"].as_u64().unwrap() as u32
    );
    assert!(r.prompt_tokens > 0);
    assert_eq!(r.completion_tokens, 0);
    assert!(!r.tokens_estimated);
    assert!(!r.streamed);
    assert_eq!(r.attempts.len(), 2);
    assert_eq!(r.attempts[0].failure_class.as_deref(), Some("server_error"));
    assert_eq!(r.attempts[1].failure_class, None);
}

#[tokio::test]
async fn a_refused_connection_moves_on() {
    let s = setup(8192).await;
    let dead = SimHandle::start(SimConfig::ollama(vec![SimModel::new(
        "nomic-embed-text",
        8192,
    )]))
    .await
    .unwrap();
    let dead_url = dead.base_url();
    dead.shutdown().await;
    // The small group's deployment lives on a server that is gone.
    let text = s.config_text.replacen(&s.ollama.base_url(), &dead_url, 1);
    let (gw, _) = serve_recording(&text).await;
    let (status, h, v) = post(
        &gw.url("/v1/embeddings"),
        json!({"model": "embed-small", "input": ["a", "b"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(header(&h, "x-switchyard-group"), "embed-large");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_longest_input_goes_straight_to_a_window_that_holds_it() {
    let s = setup(8192).await;
    let (gw, _) = serve_recording(&s.config_text).await;
    let url = gw.url("/v1/embeddings");
    let (status, h, v) = post(
        &url,
        json!({"model": "embed-small", "input": ["short", common::words(300)]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(header(&h, "x-switchyard-group"), "embed-large");
    assert_eq!(header(&h, "x-switchyard-attempts"), "1");
    assert_eq!(s.ollama.request_count("nomic-embed-text"), 0);
    assert_eq!(s.ollama.requests().last().unwrap().num_ctx, Some(1024));

    // Longer than every window: 400 in OpenAI's words, and no backend called.
    let before = s.ollama.requests().len();
    let (status, _, e) = post(
        &url,
        json!({"model": "embed-small", "input": common::words(2000)}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["code"], "context_length_exceeded");
    assert_eq!(e["error"]["param"], "input");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("This model's maximum context length is 1024 tokens"),
        "{e}"
    );
    assert_eq!(s.ollama.requests().len(), before);
}

#[tokio::test]
async fn an_overflow_reported_by_ollama_tries_only_larger_windows() {
    // The small model really holds 40 tokens, though its window is configured as 128.
    let s = setup(40).await;
    let (gw, _) = serve_recording(&s.config_text).await;
    let (status, h, v) = post(
        &gw.url("/v1/embeddings"),
        json!({"model": "embed-small", "input": common::words(60)}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(header(&h, "x-switchyard-group"), "embed-large");
    assert_eq!(header(&h, "x-switchyard-attempts"), "2");
    assert_eq!(s.ollama.request_count("nomic-embed-text"), 1);
}

#[tokio::test]
async fn chat_and_embedding_groups_are_not_mixed_up() {
    let s = setup(8192).await;
    let (gw, _) = serve_recording(&s.config_text).await;
    let (status, _, e) = post(
        &gw.url("/v1/embeddings"),
        json!({"model": "chat", "input": "hello"}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert_eq!(e["error"]["param"], "model");
    assert!(e["error"]["message"].as_str().unwrap().contains("`chat`"));

    let (status, _, e) = post(
        &gw.url("/v1/chat/completions"),
        common::chat_body("embed-small", "hello", false),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "model");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embedding")
    );
    assert_eq!(s.ollama.requests().len(), 0);

    let (status, _, e) = post(
        &gw.url("/v1/embeddings"),
        json!({"model": "nope", "input": "hello"}),
    )
    .await;
    assert_eq!(status, 404, "{e}");
    let (status, _, e) = post(&gw.url("/v1/embeddings"), json!({"model": "embed-small"})).await;
    assert_eq!(status, 400, "{e}");
    let (status, _, e) = post(
        &gw.url("/v1/embeddings"),
        json!({"model": "embed-small", "input": []}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "input");
}

#[tokio::test]
async fn in_split_mode_the_router_embeds_over_grpc() {
    let s = setup(8192).await;
    let config: &'static _ = Box::leak(Box::new(common::config_from(&s.config_text)));
    let sink = Arc::new(Collect::default());
    let (_stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let router = switchyard::router(
        config.clone(),
        "127.0.0.1:0".parse().unwrap(),
        switchyard::ServeOptions {
            usage_sink: Some(sink.clone()),
            embedded_prober: Some(false),
            ..Default::default()
        },
        until_stopped(stopped.clone()),
    )
    .await
    .unwrap();
    let router_url: &'static str = Box::leak(format!("http://{}", router.addr).into_boxed_str());
    tokio::spawn(router.serve);
    let gateway = switchyard::gateway(
        config,
        router_url,
        "127.0.0.1:0".parse().unwrap(),
        until_stopped(stopped),
    )
    .await
    .unwrap();
    let url = format!("http://{}/v1/embeddings", gateway.addr);
    tokio::spawn(gateway.serve);

    let (status, h, v) = post(
        &url,
        json!({"model": "embed-small", "input": ["one", "two"], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(header(&h, "x-switchyard-group"), "embed-small");
    assert_eq!(
        b64_decode(v["data"][1]["embedding"].as_str().unwrap()).len(),
        32
    );
    let (status, _, e) = post(&url, json!({"model": "chat", "input": "x"})).await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "model");
    common::eventually(20, "two usage records", || {
        let sink = sink.clone();
        async move { sink.0.lock().unwrap().len() == 2 }
    })
    .await;
}

#[tokio::test]
async fn virtual_keys_admit_embeddings_by_their_allow_list() {
    const MASTER: &str = "sk-test-master-key-embed";
    let s = setup(8192).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = s.config_text.clone();
    text.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    let gw = common::serve_with(
        common::config_from(&text),
        switchyard::ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    let http = common::client();
    let generate = |models: Value| {
        let http = http.clone();
        let url = gw.url("/key/generate");
        async move {
            let r = http
                .post(url)
                .bearer_auth(MASTER)
                .json(&json!({ "models": models }))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{v}");
            (
                v["key"].as_str().unwrap().to_owned(),
                v["key_id"].as_str().unwrap().to_owned(),
            )
        }
    };
    let embed = |key: String, model: &'static str| {
        let http = http.clone();
        let url = gw.url("/v1/embeddings");
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&json!({"model": model, "input": "hello"}))
                .send()
                .await
                .unwrap()
        }
    };

    let r = embed("sk-wrong".into(), "embed-small").await;
    assert_eq!(r.status(), 401);
    let (chat_only, _) = generate(json!(["chat"])).await;
    let r = embed(chat_only, "embed-small").await;
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "model_not_allowed");

    // A key limited to the small group is served there, and its fallback stays cut.
    let (small_only, _) = generate(json!(["embed-small"])).await;
    let r = embed(small_only.clone(), "embed-small").await;
    assert_eq!(r.status(), 200);
    s.ollama.add_fault(FaultRule::for_model(
        "nomic-embed-text",
        Fault::Status {
            code: 500,
            message: "runner crashed".into(),
        },
        Some(1),
    ));
    let r = embed(small_only, "embed-small").await;
    assert_eq!(r.status(), 502);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allow-list"),
        "{e}"
    );
}

#[test]
fn the_config_reads_modes_and_keeps_fallbacks_within_one() {
    let load = |text: &str| {
        switchyard_core::config::load_str(
            "t.yaml",
            text,
            None,
            &std::collections::HashMap::<String, String>::new(),
        )
    };
    let c = load(
        r#"
model_list:
  - model_name: e
    litellm_params: {model: ollama/nomic-embed-text, num_ctx: 2048}
    model_info: {mode: embedding}
  - model_name: c
    litellm_params: {model: ollama/llama3.2:1b, max_tokens: 2048}
    model_info: {mode: chat}
router_settings:
  default_fallbacks: [e, c]
"#,
    )
    .unwrap();
    use switchyard_core::config::Mode;
    let e = c.group("e").unwrap();
    let ch = c.group("c").unwrap();
    assert_eq!(c.groups[e].mode, Mode::Embedding);
    assert_eq!(c.groups[ch].mode, Mode::Chat);
    assert_eq!(c.deployments[0].mode, Mode::Embedding);
    // default_fallbacks would link them; a chat request never goes to an embedding model.
    assert!(c.groups[e].fallbacks.is_empty());
    assert!(c.groups[ch].fallbacks.is_empty());
    assert!(
        c.notes.iter().any(|n| n.contains("an embedding model")),
        "{:?}",
        c.notes
    );

    let mixed = load(
        r#"
model_list:
  - model_name: g
    litellm_params: {model: ollama/nomic-embed-text}
    model_info: {mode: embedding}
  - model_name: g
    litellm_params: {model: ollama/llama3.2:1b}
"#,
    )
    .unwrap_err()
    .to_string();
    assert!(mixed.contains("cannot mix"), "{mixed}");
    let unknown = load(
        r#"
deployments:
  - {group: g, provider: ollama, model: x, mode: image_generation}
"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("deployments[0].mode") && unknown.contains("image_generation"),
        "{unknown}"
    );
}

#[tokio::test]
async fn a_caller_that_leaves_mid_request_still_gets_a_usage_record() {
    let s = setup(8192).await;
    let (gw, sink) = serve_recording(&s.config_text).await;
    s.ollama.add_fault(FaultRule::for_model(
        "nomic-embed-text",
        Fault::SlowFirstByte(std::time::Duration::from_millis(500)),
        Some(1),
    ));
    let url = gw.url("/v1/embeddings");
    let caller = tokio::spawn(async move {
        let _ = common::client()
            .post(url)
            .json(&json!({"model": "embed-small", "input": "hello there"}))
            .send()
            .await;
    });
    common::eventually(20, "the request to reach the backend", || {
        let n = s.ollama.requests().len();
        async move { n == 1 }
    })
    .await;
    caller.abort();
    common::eventually(20, "the usage record", || {
        let sink = sink.clone();
        async move { !sink.0.lock().unwrap().is_empty() }
    })
    .await;
    let r = sink.0.lock().unwrap()[0].clone();
    assert_eq!(r.status, "ok");
    assert_eq!(r.served_group.as_deref(), Some("embed-small"));
    assert!(r.prompt_tokens > 0);
}

#[tokio::test]
async fn dimensions_are_passed_to_ollama() {
    let s = setup(8192).await;
    let (gw, _) = serve_recording(&s.config_text).await;
    let (status, _, v) = post(
        &gw.url("/v1/embeddings"),
        json!({"model": "embed-small", "input": "hello", "dimensions": 4}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let e = floats(&v["data"][0]["embedding"]);
    assert_eq!(e.len(), 4);
    assert!((e.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-4);
    assert_eq!(s.ollama.requests().last().unwrap().body["dimensions"], 4);
    let (status, _, e) = post(
        &gw.url("/v1/embeddings"),
        json!({"model": "embed-small", "input": "hello", "dimensions": 0}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "dimensions");
}
