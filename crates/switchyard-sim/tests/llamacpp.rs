//! llama.cpp flavor: metadata, exceed_context_size_error, SSE framing, token counting endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, llamacpp, sse_events};
use serde_json::{Value, json};

#[tokio::test]
async fn exceed_context_is_a_400_even_when_streaming() {
    let sim = llamacpp(64).await;
    let c = client();
    let long = "word ".repeat(100);
    let r = c
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&json!({"model": "whatever", "stream": true,
                      "messages": [{"role": "user", "content": long}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let n = sim.requests()[0].prompt_tokens;
    assert!(n >= 64);
    assert_eq!(
        v,
        json!({"error": {"code": 400,
            "message": format!("request ({n} tokens) exceeds the available context size (64 tokens), try increasing it"),
            "type": "exceed_context_size_error", "n_prompt_tokens": n, "n_ctx": 64}})
    );
    assert_eq!(sim.request_count("smol"), 1);
}

#[tokio::test]
async fn sse_stream_with_and_without_usage() {
    let sim = llamacpp(4096).await;
    let c = client();
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let msgs = json!([{"role": "user", "content": "count to three [[tokens=3]]"}]);
    let r = c
        .post(&url)
        .json(&json!({"model": "x", "stream": true, "messages": msgs,
                      "stream_options": {"include_usage": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = sse_events(&r.text().await.unwrap());
    // role, 3 content, finish, usage, [DONE]
    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(events[6], "[DONE]");
    let chunks: Vec<Value> = events[..6]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for ch in &chunks {
        assert_eq!(ch["id"], id);
        assert_eq!(ch["created"], chunks[0]["created"]);
        assert_eq!(ch["object"], "chat.completion.chunk");
        assert_eq!(ch["model"], "smol");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null})
    );
    let text: String = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text.split(' ').count(), 3);
    assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    let usage = &chunks[5]["usage"];
    assert_eq!(usage["completion_tokens"], 3);
    assert_eq!(usage["prompt_tokens"], sim.requests()[0].prompt_tokens);
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + 3
    );
    assert!(chunks[5]["timings"].is_object());

    // Without include_usage: no usage chunk; max_completion_tokens caps → "length".
    let r = c
        .post(&url)
        .json(&json!({"stream": true, "messages": msgs, "max_completion_tokens": 2}))
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.len(), 5, "{events:?}");
    let finish: Value = serde_json::from_str(&events[3]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert!(finish.get("usage").is_none());
    assert_eq!(events[4], "[DONE]");
}

#[tokio::test]
async fn metadata_and_token_counting_agree() {
    let sim = llamacpp(2048).await;
    let c = client();
    let base = sim.base_url();
    let h: Value = c
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h, json!({"status": "ok"}));
    let props: Value = c
        .get(format!("{base}/props"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(props["default_generation_settings"]["n_ctx"], 2048);
    assert_eq!(props["total_slots"], 1);
    assert_eq!(props["model_alias"], "smol");
    let models: Value = c
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &models["data"][0];
    assert_eq!(
        (m["id"].as_str(), m["owned_by"].as_str()),
        (Some("smol"), Some("llamacpp"))
    );
    assert_eq!(m["meta"]["n_ctx"], 2048);
    assert_eq!(m["meta"]["n_ctx_train"], 8192);
    assert_eq!(m["meta"]["vocab_type"], 2);

    let msgs = json!([{"role": "system", "content": "You are terse."},
                      {"role": "user", "content": "Héllo,  world 123!"}]);
    let prompt: Value = c
        .post(format!("{base}/apply-template"))
        .json(&json!({"messages": msgs}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let toks: Value = c
        .post(format!("{base}/tokenize"))
        .json(&json!({"content": prompt["prompt"], "add_special": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v: Value = c
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"messages": msgs}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        toks["tokens"].as_array().unwrap().len() as u64,
        v["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 8);

    let v: Value = c
        .post(format!("{base}/v1/completions"))
        .json(&json!({"prompt": "Once upon [[tokens=2]]", "max_tokens": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(
        v["choices"][0]["text"].as_str().unwrap().split(' ').count(),
        2
    );

    let e = c.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(e.status(), 404);
}

#[tokio::test]
async fn token_scale_inflates_prompt_counts() {
    let mut m = switchyard_sim::SimModel::new("big", 8192);
    m.token_scale = 1.5;
    let sim = switchyard_sim::SimHandle::start(switchyard_sim::SimConfig::llamacpp(m))
        .await
        .unwrap();
    let v: Value = client()
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&json!({"messages": [{"role": "user", "content": "one two three four five"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // (5 + 5 + 5) × 1.5 = 22.5 → 23
    assert_eq!(v["usage"]["prompt_tokens"], 23);
}
