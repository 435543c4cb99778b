//! Ollama's API on the gateway's port (`/api/*`), against a live gateway (serve mode) over the
//! Ollama simulator: every route, NDJSON framing, Ollama's error shape and statuses, `num_ctx`
//! routing by fit, fallback and a mid-stream continuation seen through a streamed `/api/chat`.
//! Then the official `ollama` Python client and LangChain's `ChatOllama` (tests/clients/
//! test_ollama_client.py, interpreter from `SWITCHYARD_PYTHON`) and the `ollama` client through
//! Switchyard to a real llama-cpp-python SmolLM2 server (test_ollama_real.py,
//! `SWITCHYARD_E2E_PYTHON`, `SWITCHYARD_E2E_MODEL`); each says it was skipped without its
//! interpreter or model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimHandle};

/// The seed configuration (local-small 2048, local-medium 8192, local-large 32768, falling back
/// in that order) plus an `embed` group, all on the simulator.
fn config_text(sim_url: &str) -> String {
    common::seed_config_text(sim_url).replacen(
        "model_list:\n",
        &format!(
            "model_list:\n  - model_name: embed\n    litellm_params:\n      model: ollama/llama3.2:1b\n      api_base: {sim_url}\n    model_info:\n      mode: embedding\n"
        ),
        1,
    )
}

async fn setup() -> (SimHandle, common::Serve) {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&config_text(&sim.base_url()))).await;
    (sim, gw)
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// The lines of an NDJSON body, each parsed.
fn ndjson(body: &str) -> Vec<Value> {
    assert!(body.ends_with('\n'), "NDJSON ends with a newline: {body:?}");
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
        .collect()
}

fn chat_content(lines: &[Value]) -> String {
    lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect()
}

/// The bodies the simulator received on `path`.
fn sent(sim: &SimHandle, path: &str) -> Vec<Value> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.body)
        .collect()
}

#[tokio::test]
async fn root_version_and_unsupported_routes_answer_as_ollama_does() {
    let (_sim, gw) = setup().await;
    let http = common::client();
    let r = http.get(gw.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "Ollama is running");
    let r = http.head(gw.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = http
        .get(gw.url("/api/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["version"].as_str().unwrap().starts_with("0."));
    for path in ["/api/pull", "/api/push", "/api/create", "/api/copy"] {
        let r = http
            .post(gw.url(path))
            .json(&json!({"model": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 501, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("configuration"),
            "{v}"
        );
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    }
    let r = http
        .delete(gw.url("/api/delete"))
        .json(&json!({"model": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    let r = http.get(gw.url("/api/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].is_string(), "{v}");
}

#[tokio::test]
async fn tags_show_and_ps_present_groups_as_models() {
    let sim = common::reference_ollama().await;
    let text = format!("{}prober: {{interval: 1}}\n", config_text(&sim.base_url()));
    let gw = common::serve_with(
        common::config_from(&text),
        switchyard::ServeOptions {
            embedded_prober: Some(true),
            ..Default::default()
        },
    )
    .await;
    let http = common::client();
    let tags: Value = http
        .get(gw.url("/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = tags["models"].as_array().unwrap();
    let small = models
        .iter()
        .find(|m| m["name"] == "local-small:latest")
        .unwrap_or_else(|| panic!("{tags}"));
    assert_eq!(small["model"], "local-small:latest");
    assert_eq!(small["details"]["family"], "llama");
    assert_eq!(small["details"]["parameter_size"], "1B");
    assert_eq!(small["details"]["format"], "gguf");
    assert_eq!(small["context_length"], 2048);
    assert_eq!(small["digest"].as_str().unwrap().len(), 64);
    assert!(small["modified_at"].as_str().unwrap().ends_with('Z'));

    // `model`, the older `name`, with and without `:latest`.
    for body in [
        json!({"model": "local-medium"}),
        json!({"name": "local-medium:latest"}),
    ] {
        let r = http
            .post(gw.url("/api/show"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["model_info"]["general.architecture"], "llama");
        assert_eq!(v["model_info"]["llama.context_length"], 8192);
        assert_eq!(v["capabilities"], json!(["completion", "tools"]));
        assert!(v["template"].as_str().unwrap().contains(".Messages"));
        assert_eq!(v["details"]["parameter_size"], "8B");
    }
    let v: Value = http
        .post(gw.url("/api/show"))
        .json(&json!({"model": "embed"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["capabilities"], json!(["embedding"]));
    let r = http
        .post(gw.url("/api/show"))
        .json(&json!({"model": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "model 'nope' not found"})
    );

    // A model the prober finds loaded is listed by /api/ps.
    let r = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small", "stream": false,
            "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ps_url = gw.url("/api/ps");
    common::eventually(20, "/api/ps lists local-small", || {
        let http = http.clone();
        let url = ps_url.clone();
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["models"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "local-small:latest" && m["context_length"] == 2048)
        }
    })
    .await;
}

#[tokio::test]
async fn chat_streams_ndjson_by_default_and_answers_one_object_when_asked() {
    let (_sim, gw) = setup().await;
    let http = common::client();
    let r = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small",
            "messages": [{"role": "user", "content": "Tell me a story of 12 words"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/x-ndjson");
    assert_eq!(header(&r, "x-switchyard-group"), "local-small");
    assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    let lines = ndjson(&r.text().await.unwrap());
    assert!(lines.len() > 2, "{lines:?}");
    let (last, rest) = lines.split_last().unwrap();
    for l in rest {
        assert_eq!(l["done"], false, "{l}");
        assert_eq!(l["model"], "local-small");
        assert_eq!(l["message"]["role"], "assistant");
        assert!(l["created_at"].as_str().unwrap().contains('T'));
    }
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert!(last["prompt_eval_count"].as_u64().unwrap() > 0);
    assert!(last["eval_count"].as_u64().unwrap() > 0);
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(last[k].is_u64(), "{k}: {last}");
    }
    assert!(!chat_content(&lines).is_empty());

    let r = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small:latest", "stream": false,
            "options": {"num_predict": 3},
            "messages": [{"role": "user", "content": "Tell me a story of 12 words"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/json");
    assert_eq!(header(&r, "x-switchyard-group"), "local-small");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["done"], true);
    assert_eq!(v["done_reason"], "length");
    assert_eq!(v["eval_count"], 3);
    assert_eq!(v["model"], "local-small:latest");
    assert!(!v["message"]["content"].as_str().unwrap().is_empty());

    // Nothing to say: the model is "loaded" and nothing is sent to a backend.
    let v: Value = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small", "messages": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["done_reason"], "load");
}

#[tokio::test]
async fn chat_passes_tools_images_format_think_and_keep_alive() {
    let (sim, gw) = setup().await;
    let http = common::client();
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]);
    for stream in [false, true] {
        let r = http
            .post(gw.url("/api/chat"))
            .json(
                &json!({"model": "local-small", "stream": stream, "tools": tools,
                "messages": [{"role": "user", "content": "Weather in Paris? [[tool]]"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let msgs: Vec<Value> = if stream {
            ndjson(&text)
        } else {
            vec![serde_json::from_str(&text).unwrap()]
        };
        let call = msgs
            .iter()
            .find_map(|l| l["message"]["tool_calls"].as_array().cloned())
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(call[0]["function"]["name"], "get_weather");
        assert!(call[0]["function"]["arguments"].is_object(), "{text}");
        assert_eq!(msgs.last().unwrap()["done"], true);
    }
    // The tool's answer goes back; a picture and the rest of Ollama's fields are passed on.
    let r = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small", "stream": false, "tools": tools,
            "format": "json", "think": false, "keep_alive": "7m",
            "options": {"temperature": 0.2, "top_k": 5, "seed": 3, "stop": ["zzz"]},
            "messages": [
                {"role": "user", "content": "Weather in Paris?", "images": ["iVBORw0KGgoAAAANSUhEUg=="]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                {"role": "tool", "tool_name": "get_weather", "content": "sunny"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let body = sent(&sim, "/api/chat").pop().unwrap();
    assert_eq!(body["messages"][0]["images"][0], "iVBORw0KGgoAAAANSUhEUg==");
    assert_eq!(
        body["messages"][1]["tool_calls"][0]["function"]["arguments"]["city"],
        "Paris"
    );
    assert_eq!(body["messages"][2]["role"], "tool");
    assert_eq!(body["format"], "json");
    assert_eq!(body["options"]["top_k"], 5);
    assert_eq!(body["options"]["seed"], 3);
    assert_eq!(body["options"]["stop"], json!(["zzz"]));
    assert_eq!(body["options"]["num_ctx"], 2048);
    // `think` and `keep_alive` reach Ollama backends once the backend passes them on (the
    // router/backends side of ChatRequest.think_json / keep_alive_json).
    assert_eq!(body["think"], false, "{body}");
    assert_eq!(body["keep_alive"], "7m", "{body}");
}

#[tokio::test]
async fn think_comes_back_as_thinking() {
    let (_sim, gw) = setup().await;
    let http = common::client();
    let ask = |stream: bool, path: &str| {
        let body = if path == "/api/chat" {
            json!({"model": "local-small", "stream": stream, "think": true,
                "messages": [{"role": "user", "content": "Hi [[tokens=4]]"}]})
        } else {
            json!({"model": "local-small", "stream": stream, "think": "low",
                "prompt": "Hi [[tokens=4]]"})
        };
        http.post(gw.url(path)).json(&body).send()
    };
    let v: Value = ask(false, "/api/chat").await.unwrap().json().await.unwrap();
    assert_eq!(v["message"]["thinking"], "Let me think about that.", "{v}");
    assert_eq!(
        v["message"]["content"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        4
    );
    let lines = ndjson(&ask(true, "/api/chat").await.unwrap().text().await.unwrap());
    let thinking: String = lines
        .iter()
        .filter_map(|l| l["message"]["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "Let me think about that.");
    assert_eq!(chat_content(&lines).split_whitespace().count(), 4);
    let v: Value = ask(false, "/api/generate")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["thinking"], "Let me think about that.", "{v}");
}

#[tokio::test]
async fn logprobs_come_back_per_token() {
    let (_sim, gw) = setup().await;
    let http = common::client();
    let body = |stream: bool| {
        json!({"model": "local-small", "stream": stream, "logprobs": true, "top_logprobs": 2,
            "messages": [{"role": "user", "content": "Hi [[tokens=4]]"}]})
    };
    let v: Value = http
        .post(gw.url("/api/chat"))
        .json(&body(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = v["logprobs"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(entries.len(), 4, "{v}");
    assert!(entries[0]["token"].is_string() && entries[0]["logprob"].is_number());
    assert_eq!(entries[0]["top_logprobs"].as_array().unwrap().len(), 2);
    let text = http
        .post(gw.url("/api/chat"))
        .json(&body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let streamed: usize = ndjson(&text)
        .iter()
        .filter_map(|l| l["logprobs"].as_array().map(Vec::len))
        .sum();
    assert_eq!(streamed, 4, "{text}");
    let r = http
        .post(gw.url("/api/chat"))
        .json(
            &json!({"model": "local-small", "logprobs": true, "top_logprobs": 21,
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn generate_streams_and_answers_whole_and_raw() {
    let (sim, gw) = setup().await;
    let http = common::client();
    let r = http
        .post(gw.url("/api/generate"))
        .json(
            &json!({"model": "local-small", "prompt": "Tell me a story of 8 words",
            "system": "You tell stories."}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/x-ndjson");
    let lines = ndjson(&r.text().await.unwrap());
    let text: String = lines
        .iter()
        .filter_map(|l| l["response"].as_str())
        .collect();
    assert!(!text.is_empty());
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert!(last["eval_count"].as_u64().unwrap() > 0);
    assert!(last.get("message").is_none());

    let r = http
        .post(gw.url("/api/generate"))
        .json(
            &json!({"model": "local-small", "prompt": "Once upon a time", "raw": true,
            "stream": false, "options": {"num_predict": 4}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["done"], true);
    assert_eq!(v["eval_count"], 4);
    assert!(!v["response"].as_str().unwrap().is_empty());
    let body = sent(&sim, "/api/generate").pop().unwrap();
    assert_eq!(body["raw"], true, "{body}");
    assert_eq!(body["prompt"], "Once upon a time");

    // Fill-in-the-middle: the prompt and the suffix go on as they are.
    let r = http
        .post(gw.url("/api/generate"))
        .json(
            &json!({"model": "local-small", "prompt": "def add(a, b):", "suffix": "    return c",
            "stream": false, "options": {"num_predict": 3}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = sent(&sim, "/api/generate").pop().unwrap();
    assert_eq!(body["suffix"], "    return c", "{body}");
    assert_eq!(body["prompt"], "def add(a, b):");

    let v: Value = http
        .post(gw.url("/api/generate"))
        .json(&json!({"model": "local-small"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["done_reason"], "load");
    assert_eq!(v["response"], "");
}

#[tokio::test]
async fn embed_and_legacy_embeddings() {
    let (_sim, gw) = setup().await;
    let http = common::client();
    let r = http
        .post(gw.url("/api/embed"))
        .json(&json!({"model": "embed", "input": ["one", "two words"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-group"), "embed");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "embed");
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert!(!e[0].as_array().unwrap().is_empty());
    assert!(v["prompt_eval_count"].as_u64().unwrap() > 0);
    assert!(v["total_duration"].is_u64());
    let v: Value = http
        .post(gw.url("/api/embed"))
        .json(&json!({"model": "embed:latest", "input": "one"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 1, "{v}");
    let v: Value = http
        .post(gw.url("/api/embeddings"))
        .json(&json!({"model": "embed", "prompt": "one"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!v["embedding"].as_array().unwrap().is_empty(), "{v}");
}

#[tokio::test]
async fn errors_have_ollamas_shape_and_status() {
    let (_sim, gw) = setup().await;
    let http = common::client();
    let r = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(!header(&r, "x-request-id").is_empty());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"error": "model 'nope' not found"}));
    let r = http
        .post(gw.url("/api/embed"))
        .json(&json!({"model": "nope:latest", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"error": "model 'nope:latest' not found"}));
    let r = http
        .post(gw.url("/api/chat"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small", "messages": [{"role": "robot", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("robot"), "{v}");
    let r = http
        .post(gw.url("/api/generate"))
        .json(&json!({"model": "local-small", "prompt": "x", "format": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A prompt larger than every window: the router's refusal, in Ollama's shape.
    let r = http
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small",
            "messages": [{"role": "user", "content": common::words(40000)}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].is_string(), "{v}");
}

#[tokio::test]
async fn num_ctx_routes_to_a_window_that_large_without_a_failed_attempt() {
    let (sim, gw) = setup().await;
    let http = common::client();
    let r = http
        .post(gw.url("/api/chat"))
        .json(
            &json!({"model": "local-small", "stream": false, "options": {"num_ctx": 4096},
            "messages": [{"role": "user", "content": "hello"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    assert_eq!(header(&r, "x-switchyard-group"), "local-medium");
    assert_eq!(header(&r, "x-switchyard-model"), "llama3.1:8b");
    let bodies = sent(&sim, "/api/chat");
    assert_eq!(bodies.len(), 1, "one request to a backend");
    // The window sent is the deployment's own, never the client's num_ctx.
    assert_eq!(bodies[0]["options"]["num_ctx"], 8192);
}

#[tokio::test]
async fn a_fallback_and_a_mid_stream_continuation_read_as_one_stream() {
    let (sim, gw) = setup().await;
    let http = common::client();
    let ask = json!({"model": "local-small",
        "messages": [{"role": "user", "content": "Tell me a story [[tokens=30]]"}]});
    // The small model fails before answering: local-medium answers.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "boom".into(),
        },
        Some(1),
    ));
    let r = http
        .post(gw.url("/api/chat"))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-group"), "local-medium");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    let lines = ndjson(&r.text().await.unwrap());
    assert_eq!(lines.last().unwrap()["done"], true);
    assert!(lines.iter().all(|l| l.get("error").is_none()), "{lines:?}");

    // The stream breaks after a few chunks: the rest comes from another deployment, unseen.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 4 },
        Some(1),
    ));
    let r = http
        .post(gw.url("/api/chat"))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-group"), "local-small");
    let lines = ndjson(&r.text().await.unwrap());
    assert!(lines.iter().all(|l| l.get("error").is_none()), "{lines:?}");
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    let words = chat_content(&lines).split_whitespace().count();
    assert_eq!(words, 30, "{}", chat_content(&lines));
    assert!(sent(&sim, "/api/chat").len() >= 4);
}

#[tokio::test]
async fn a_slow_first_token_opens_the_stream_without_writing_anything_else() {
    let sim = common::reference_ollama().await;
    let text = format!(
        "{}gateway: {{sse_keepalive: 0.1}}\n",
        config_text(&sim.base_url())
    );
    let gw = common::serve(common::config_from(&text)).await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::SlowFirstByte(std::time::Duration::from_millis(600)),
        Some(1),
    ));
    let r = common::client()
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small",
            "messages": [{"role": "user", "content": "Hi [[tokens=5]]"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/x-ndjson");
    // The head went out before the route was known.
    assert_eq!(header(&r, "x-switchyard-group"), "");
    let lines = ndjson(&r.text().await.unwrap());
    assert_eq!(chat_content(&lines).split_whitespace().count(), 5);
    assert_eq!(lines.last().unwrap()["done"], true);
}

#[tokio::test]
async fn a_stream_no_deployment_can_finish_ends_with_an_error_line() {
    let (sim, gw) = setup().await;
    sim.add_fault(FaultRule::always(Fault::CutAfter { chunks: 3 }));
    let r = common::client()
        .post(gw.url("/api/chat"))
        .json(&json!({"model": "local-small",
            "messages": [{"role": "user", "content": "Story [[tokens=40]]"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = ndjson(&r.text().await.unwrap());
    let last = lines.last().unwrap();
    assert!(last["error"].is_string(), "{lines:?}");
    assert_eq!(last.as_object().unwrap().len(), 1);
    assert!(lines.iter().all(|l| l["done"] != true), "{lines:?}");
}

const MASTER: &str = "sk-test-master-key-ollama";

#[tokio::test]
async fn keys_limit_what_an_ollama_client_sees_and_the_ledger_names_the_api() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}general_settings:\n  master_key: {MASTER}\n",
        config_text(&sim.base_url())
    );
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
    // Clients check the server without a key; everything else needs one, in Ollama's shape.
    assert_eq!(http.get(gw.url("/")).send().await.unwrap().status(), 200);
    let r = http.get(gw.url("/api/tags")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let v: Value = http
        .post(gw.url("/key/generate"))
        .bearer_auth(MASTER)
        .json(&json!({"models": ["local-medium", "embed"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = v["key"].as_str().unwrap().to_owned();
    let tags: Value = http
        .get(gw.url("/api/tags"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["embed:latest", "local-medium:latest"]);
    let ask = |model: &str| {
        http.post(gw.url("/api/chat"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "stream": false,
                "messages": [{"role": "user", "content": "hi [[tokens=3]]"}]}))
            .send()
    };
    let r = ask("local-small").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(ask("local-medium:latest").await.unwrap().status(), 200);
    let r = http
        .post(gw.url("/api/generate"))
        .bearer_auth(&key)
        .json(&json!({"model": "local-medium", "stream": false, "prompt": "hi [[tokens=3]]"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(gw.url("/api/embed"))
        .bearer_auth(&key)
        .json(&json!({"model": "embed", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let url = gw.url("/v1/usage");
    common::eventually(20, "three records in the ledger", || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let v: Value = http
                .get(&url)
                .bearer_auth(MASTER)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"].as_array().is_some_and(|d| d.len() >= 3)
        }
    })
    .await;
    let v: Value = http
        .get(&url)
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut apis: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "error" && r["http_status"] == 200)
        .map(|r| r["api"].as_str().unwrap())
        .collect();
    apis.sort_unstable();
    assert_eq!(
        apis,
        ["ollama.chat", "ollama.embed", "ollama.generate"],
        "{v}"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `N word` out of pytest's summary line.
fn count(summary: &str, word: &str) -> usize {
    let words: Vec<&str> = summary
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[1].starts_with(word))
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0)
}

/// Runs pytest on `file` (in tests/clients/) with `envs`; asserts nothing failed and `total`
/// tests passed.
async fn pytest(python: &str, file: &str, envs: &[(&str, String)], total: usize) {
    let out = tokio::process::Command::new(python)
        .args(["-m", "pytest", "-q", "-rsx", "-p", "no:cacheprovider"])
        .args(["-W", "ignore"])
        .arg(repo().join("tests/clients").join(file))
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    eprintln!("pytest {file}: {summary}");
    assert_eq!(count(summary, "passed"), total, "{stdout}");
}

/// Python tests in test_ollama_client.py.
const CLIENT_TESTS: usize = 14;
/// Python tests in test_ollama_real.py.
const REAL_TESTS: usize = 6;

#[tokio::test]
async fn the_ollama_python_client_and_langchain_work_against_the_gateway() {
    let Ok(python) = std::env::var("SWITCHYARD_PYTHON") else {
        eprintln!("skipped: SWITCHYARD_PYTHON is not set (make test sets it up)");
        return;
    };
    let (sim, gw) = setup().await;
    let envs = [
        ("SWITCHYARD_URL", format!("http://{}", gw.addr)),
        ("SWITCHYARD_SIM_URL", sim.base_url()),
    ];
    pytest(&python, "test_ollama_client.py", &envs, CLIENT_TESTS).await;
}

#[tokio::test]
async fn the_ollama_client_works_through_the_gateway_to_a_real_model() {
    let (Ok(python), Ok(model)) = (
        std::env::var("SWITCHYARD_E2E_PYTHON"),
        std::env::var("SWITCHYARD_E2E_MODEL"),
    ) else {
        eprintln!(
            "skipped: SWITCHYARD_E2E_PYTHON / SWITCHYARD_E2E_MODEL not set (make test sets them up)"
        );
        return;
    };
    let server = common::llama_cpp_python::start_with(
        &common::llama_cpp_python::Env {
            python: python.clone(),
            model: model.clone(),
        },
        2048,
        true,
    )
    .await;
    let url = server.url.clone();
    let text = format!(
        "deployments:\n  - {{group: smol, provider: openai, model: smol, api_base: \"{url}\", context_window: 2048, tokenizer: \"{model}\", template: chatml}}\n  - {{group: smol-embed, provider: openai, model: smol, api_base: \"{url}\", context_window: 2048, tokenizer: \"{model}\", mode: embedding}}\nrouting: {{num_retries: 0, idle_timeout: 20, first_byte_timeout: 60}}\n"
    );
    let config = switchyard_core::config::load_str(
        "real.yaml",
        &text,
        None,
        &HashMap::<String, String>::new(),
    )
    .unwrap();
    let gw = common::serve(config).await;
    let envs = [("SWITCHYARD_REAL_URL", format!("http://{}", gw.addr))];
    pytest(&python, "test_ollama_real.py", &envs, REAL_TESTS).await;
}
