//! Ollama flavor: metadata, /api/chat and /api/generate framing, truncation, errors, continuation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{MODEL, client, ndjson_lines, ollama};
use serde_json::{Value, json};
use switchyard_sim::sim_token_count;

#[tokio::test]
async fn metadata_endpoints() {
    let sim = ollama().await;
    let c = client();
    let base = sim.base_url();
    let root = c.get(&base).send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.text().await.unwrap(), "Ollama is running");
    assert_eq!(c.head(&base).send().await.unwrap().status(), 200);
    let v: Value = c
        .get(format!("{base}/api/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"], "0.12.3");

    let tags: Value = c
        .get(format!("{base}/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &tags["models"][0];
    assert_eq!(m["name"], MODEL);
    assert_eq!(m["model"], MODEL);
    assert_eq!(m["details"]["format"], "gguf");
    assert_eq!(m["digest"].as_str().unwrap().len(), 64);
    assert!(
        m["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("tools"))
    );

    let show: Value = c
        .post(format!("{base}/api/show"))
        .json(&json!({"model": MODEL}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["model_info"]["general.architecture"], "llama");
    assert_eq!(show["model_info"]["llama.context_length"], 8192);

    let r = c
        .post(format!("{base}/api/show"))
        .json(&json!({"model": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "model 'nope' not found"})
    );
}

#[tokio::test]
async fn chat_stream_and_non_stream_agree() {
    let sim = ollama().await;
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());
    let messages = json!([{"role": "system", "content": "Be terse."},
                          {"role": "user", "content": "Hello there, 42? [[tokens=5]]"}]);
    let expected_prompt =
        sim_token_count("Be terse.") + sim_token_count("Hello there, 42? [[tokens=5]]") + 2 * 5 + 5;

    // stream omitted = true
    let resp = c
        .post(&url)
        .json(&json!({"model": MODEL, "messages": messages, "options": {"num_ctx": 4096}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson_lines(&resp.text().await.unwrap());
    assert_eq!(lines.len(), 6, "5 words + done");
    let (done, chunks) = lines.split_last().unwrap();
    let mut text = String::new();
    for (i, ch) in chunks.iter().enumerate() {
        assert_eq!(ch["done"], false);
        assert_eq!(ch["model"], MODEL);
        assert!(ch["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(ch["message"]["role"], "assistant");
        let piece = ch["message"]["content"].as_str().unwrap();
        assert_eq!(piece.starts_with(' '), i > 0);
        text.push_str(piece);
    }
    assert_eq!(done["done"], true);
    assert_eq!(done["done_reason"], "stop");
    assert_eq!(done["message"]["content"], "");
    assert_eq!(done["prompt_eval_count"], expected_prompt);
    assert_eq!(done["eval_count"], 5);
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(done[k].as_u64().unwrap() > 0, "{k}");
    }

    let v: Value = c
        .post(&url)
        .json(
            &json!({"model": MODEL, "messages": messages, "stream": false,
                      "options": {"num_ctx": 4096, "num_predict": 3}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["done"], true);
    assert_eq!(v["done_reason"], "length");
    assert_eq!(v["eval_count"], 3);
    let three: Vec<&str> = text.split(' ').take(3).collect();
    assert_eq!(v["message"]["content"], three.join(" "));

    let reqs = sim.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].stream && !reqs[1].stream);
    assert_eq!(reqs[0].num_ctx, Some(4096));
    assert_eq!(reqs[0].prompt_tokens, expected_prompt);
    assert_eq!(reqs[0].path, "/api/chat");
    assert_eq!(sim.request_count(MODEL), 2);
    assert_eq!(sim.reloads(MODEL), 0);
}

#[tokio::test]
async fn silent_truncation_and_reloads() {
    let sim = ollama().await;
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());
    let long = "word ".repeat(300);
    let body = |num_ctx: u32, truncate: Option<bool>| {
        let mut b = json!({"model": MODEL, "stream": false, "options": {"num_ctx": num_ctx},
            "messages": [{"role": "system", "content": "sys"},
                         {"role": "user", "content": long},
                         {"role": "assistant", "content": "ok"},
                         {"role": "user", "content": "and now?"}]});
        if let Some(t) = truncate {
            b["truncate"] = json!(t);
        }
        b
    };
    let v: Value = c
        .post(&url)
        .json(&body(256, None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rec = sim.requests().pop().unwrap();
    assert!(rec.truncated);
    assert!(rec.prompt_tokens > 256);
    assert!(rec.evaluated_tokens <= 256);
    // Stage A dropped the long user message (system, "ok", "and now?" remain).
    let kept = 5 + (1 + 5) + (1 + 5) + (sim_token_count("and now?") + 5);
    assert_eq!(rec.evaluated_tokens, kept);
    assert_eq!(v["prompt_eval_count"], kept);

    // truncate:false → 400 instead; a different num_ctx counts a reload.
    let r = c
        .post(&url)
        .json(&body(300, Some(false)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "the input length exceeds the context length"})
    );
    assert_eq!(sim.reloads(MODEL), 1);
    let ps: Value = c
        .get(format!("{}/api/ps", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ps["models"][0]["context_length"], 300);
    assert_eq!(sim.requests().len(), 2);

    // num_ctx is clamped to the trained context.
    let _ = c
        .post(&url)
        .json(&body(100_000, None))
        .send()
        .await
        .unwrap();
    let ps: Value = c
        .get(format!("{}/api/ps", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ps["models"][0]["context_length"], 8192);
}

#[tokio::test]
async fn request_errors() {
    let sim = ollama().await;
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());
    let err = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        (status, v["error"].as_str().unwrap().to_owned())
    };
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let (s, e) = err(c
        .post(&url)
        .json(&json!({"model": "llama9", "messages": msgs}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!((s, e.as_str()), (404, "model 'llama9' not found"));
    let (s, e) = err(c.post(&url).send().await.unwrap()).await;
    assert_eq!((s, e.as_str()), (400, "missing request body"));
    let (s, e) = err(c.post(&url).body("{nope").send().await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(e.starts_with("invalid character"), "{e}");
    let (s, e) = err(c
        .post(&url)
        .json(&json!({"model": "", "messages": msgs}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!((s, e.as_str()), (400, "model is required"));
    let (s, e) = err(c
        .post(&url)
        .json(&json!({"model": MODEL, "messages": msgs, "options": {"num_ctx": "8k", "bogus": 1}}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(
        (s, e.as_str()),
        (500, "option \"num_ctx\" must be of type integer")
    );
    // Unknown models still reached the server and are recorded.
    assert_eq!(sim.request_count("llama9"), 1);
}

#[tokio::test]
async fn continuation_equals_uninterrupted_answer() {
    let sim = ollama().await;
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());
    let user = json!({"role": "user", "content": "Tell me a story [[tokens=9]]"});
    let full: Value = c
        .post(&url)
        .json(&json!({"model": MODEL, "stream": false, "messages": [user]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let full = full["message"]["content"].as_str().unwrap().to_owned();
    assert_eq!(full.split(' ').count(), 9);
    for k in [1usize, 4, 8] {
        let prefix = full.split(' ').take(k).collect::<Vec<_>>().join(" ");
        let cont: Value = c
            .post(&url)
            .json(&json!({"model": MODEL, "stream": false,
                          "messages": [user, {"role": "assistant", "content": prefix}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rest = cont["message"]["content"].as_str().unwrap();
        assert_eq!(format!("{prefix}{rest}"), full, "k={k}");
    }
}

#[tokio::test]
async fn generate_tools_and_json_mode() {
    let sim = ollama().await;
    let c = client();
    let base = sim.base_url();
    let lines = ndjson_lines(
        &c.post(format!("{base}/api/generate"))
            .json(&json!({"model": "qwen2.5:7b", "prompt": "Why? [[tokens=3]]"}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(lines.len(), 4);
    assert!(lines[0]["response"].is_string());
    assert_eq!(lines[3]["done"], true);
    assert_eq!(
        lines[3]["prompt_eval_count"],
        sim_token_count("Why? [[tokens=3]]") + 5
    );
    assert!(lines[3]["context"].is_array());

    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let v: Value = c
        .post(format!("{base}/api/chat"))
        .json(&json!({"model": MODEL, "stream": false, "tools": tools,
                      "messages": [{"role": "user", "content": "weather? [[tool]]"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let call = &v["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], json!({"city": "Tokyo"}));
    let tools_tokens = sim_token_count(&tools.to_string());
    assert_eq!(
        v["prompt_eval_count"],
        sim_token_count("weather? [[tool]]") + 5 + 5 + tools_tokens
    );

    let v: Value = c
        .post(format!("{base}/api/chat"))
        .json(&json!({"model": MODEL, "stream": false, "format": "json",
                      "messages": [{"role": "user", "content": "json [[tokens=2]]"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inner: Value = serde_json::from_str(v["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(inner["answer"].as_str().unwrap().split(' ').count(), 2);
}

#[tokio::test]
async fn openai_layer_on_ollama() {
    let sim = ollama().await;
    let c = client();
    let base = sim.base_url();
    let models: Value = c
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["owned_by"], "library");
    let v: Value = c
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": MODEL, "max_completion_tokens": 1,
                      "messages": [{"role": "user", "content": "hi [[tokens=4]]"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // max_completion_tokens is ignored by Ollama (§5.1).
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(v["system_fingerprint"], "fp_ollama");
    assert_eq!(sim.requests()[0].num_ctx, None);
    let r = c
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "not_found_error");
}
