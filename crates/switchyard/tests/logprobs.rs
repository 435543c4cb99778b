//! Chat `logprobs`/`top_logprobs` pass through `switchyard serve` from both backend kinds
//! (Ollama's native API and llama.cpp's server), whole answers and streams alike, across a
//! continued stream, and the requests OpenAI refuses get the same 400s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

/// A gateway over the reference Ollama simulator (group `local-small`).
async fn over_ollama() -> (SimHandle, common::Serve, &'static str) {
    let sim = common::reference_ollama().await;
    let text = common::seed_config_text(&sim.base_url());
    let gw = common::serve(common::config_from(&text)).await;
    (sim, gw, "local-small")
}

/// A gateway over a llama.cpp server simulator (group `smol`).
async fn over_llamacpp() -> (SimHandle, common::Serve, &'static str) {
    let sim = SimHandle::start(SimConfig::llamacpp(SimModel::new("smol", 8192)))
        .await
        .unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: smol\n    litellm_params: {{model: openai/smol, api_base: \"{}\"}}\n    model_info: {{max_input_tokens: 8192}}\n",
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    (sim, gw, "smol")
}

async fn post(gw: &common::Serve, body: Value) -> reqwest::Response {
    common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Checks a `logprobs.content` list against the text it covers: one entry per token, tokens
/// joined give the text, each with `top` alternatives in OpenAI's shape.
fn check_entries(entries: &[Value], text: &str, top: usize) {
    assert!(!entries.is_empty());
    let joined: String = entries
        .iter()
        .map(|e| e["token"].as_str().unwrap())
        .collect();
    assert_eq!(joined, text);
    for e in entries {
        assert!(e["logprob"].as_f64().unwrap() <= 0.0, "{e}");
        assert!(e["bytes"].is_array() || e["bytes"].is_null(), "{e}");
        let alts = e["top_logprobs"].as_array().unwrap();
        assert_eq!(alts.len(), top, "{e}");
        for a in alts {
            assert!(a["token"].is_string() && a["logprob"].is_number(), "{a}");
        }
    }
}

async fn whole_answer_carries_logprobs(sim: &SimHandle, gw: &common::Serve, model: &str) {
    let r = post(
        gw,
        json!({"model": model, "messages": [{"role": "user", "content": "hi [[tokens=4]]"}],
               "logprobs": true, "top_logprobs": 2}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    let entries = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{v}");
    check_entries(entries, text, 2);
    assert!(v["choices"][0]["logprobs"]["refusal"].is_null());
    let sent = sim.requests().into_iter().last().unwrap();
    assert_eq!(sent.body["logprobs"], true, "{}", sent.body);
    assert_eq!(sent.body["top_logprobs"], 2, "{}", sent.body);

    // Not asked: none sent, `null` answered.
    let r = post(
        gw,
        json!({"model": model, "messages": [{"role": "user", "content": "hi [[tokens=3]]"}]}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert!(v["choices"][0]["logprobs"].is_null(), "{v}");
    let sent = sim.requests().into_iter().last().unwrap();
    assert!(sent.body.get("logprobs").is_none(), "{}", sent.body);
}

/// The payloads of a streamed chat, without `[DONE]`.
async fn stream_chunks(gw: &common::Serve, body: Value) -> Vec<Value> {
    let text = post(gw, body).await.text().await.unwrap();
    let payloads = common::sse_payloads(&text);
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

async fn stream_chunks_carry_their_tokens(gw: &common::Serve, model: &str) {
    let chunks = stream_chunks(
        gw,
        json!({"model": model, "messages": [{"role": "user", "content": "hello [[tokens=5]]"}],
               "stream": true, "logprobs": true, "top_logprobs": 3}),
    )
    .await;
    let mut text = String::new();
    let mut entries = Vec::new();
    for c in &chunks {
        let choice = &c["choices"][0];
        let content = choice["delta"]["content"].as_str().unwrap_or("");
        let lp = choice["logprobs"]["content"].as_array();
        if content.is_empty() {
            // The role chunk and the finish chunk cover no token.
            assert!(choice["logprobs"].is_null(), "{c}");
            continue;
        }
        let lp = lp.unwrap_or_else(|| panic!("content chunk without logprobs: {c}"));
        check_entries(lp, content, 3);
        text.push_str(content);
        entries.extend(lp.iter().cloned());
    }
    assert_eq!(entries.len(), 5);
    check_entries(&entries, &text, 3);
}

#[tokio::test]
async fn ollama_logprobs_reach_whole_answers_and_stream_chunks() {
    let (sim, gw, model) = over_ollama().await;
    whole_answer_carries_logprobs(&sim, &gw, model).await;
    stream_chunks_carry_their_tokens(&gw, model).await;
    let sent = sim.requests().into_iter().last().unwrap();
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.body["top_logprobs"], 3);
}

#[tokio::test]
async fn llamacpp_logprobs_reach_whole_answers_and_stream_chunks() {
    let (sim, gw, model) = over_llamacpp().await;
    whole_answer_carries_logprobs(&sim, &gw, model).await;
    stream_chunks_carry_their_tokens(&gw, model).await;
    let sent = sim.requests().into_iter().last().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["top_logprobs"], 3);
}

#[tokio::test]
async fn logprobs_alone_give_entries_without_alternatives() {
    let (_sim, gw, model) = over_llamacpp().await;
    let r = post(
        &gw,
        json!({"model": model, "messages": [{"role": "user", "content": "hi [[tokens=2]]"}],
               "logprobs": true}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    check_entries(
        v["choices"][0]["logprobs"]["content"].as_array().unwrap(),
        text,
        0,
    );
}

#[tokio::test]
async fn a_continued_stream_keeps_its_logprobs() {
    let (sim, gw, model) = over_ollama().await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 3 },
        Some(1),
    ));
    let chunks = stream_chunks(
        &gw,
        json!({"model": model, "messages": [{"role": "user", "content": "go on [[tokens=8]]"}],
               "stream": true, "logprobs": true, "top_logprobs": 1}),
    )
    .await;
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let entries: Vec<Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["logprobs"]["content"].as_array())
        .flatten()
        .cloned()
        .collect();
    assert_eq!(text.split_whitespace().count(), 8, "{text}");
    check_entries(&entries, &text, 1);
    assert!(sim.requests().len() >= 2);
}

#[tokio::test]
async fn top_logprobs_out_of_range_or_without_logprobs_is_a_400_naming_it() {
    let (sim, gw, model) = over_ollama().await;
    let msgs = json!([{"role": "user", "content": "hi"}]);
    for body in [
        json!({"model": model, "messages": msgs, "logprobs": true, "top_logprobs": 21}),
        json!({"model": model, "messages": msgs, "top_logprobs": 2}),
        json!({"model": model, "messages": msgs, "logprobs": false, "top_logprobs": 2}),
    ] {
        let r = post(&gw, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "top_logprobs", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    assert!(sim.requests().is_empty());
    // 0 alternatives without logprobs asks for nothing: accepted.
    let r = post(
        &gw,
        json!({"model": model, "messages": msgs, "top_logprobs": 0}),
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// Checks a text completion's legacy `logprobs` against the text it covers from `offset`.
fn check_legacy(lp: &Value, text: &str, offset: usize, top: usize) {
    let tokens = lp["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty(), "{lp}");
    let joined: String = tokens.iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(joined, text);
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), tokens.len());
    let offsets = lp["text_offset"].as_array().unwrap();
    assert_eq!(offsets[0], offset, "{lp}");
    for (i, alts) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        let alts = alts.as_object().unwrap();
        assert_eq!(alts.len(), top.max(1), "{lp}");
        assert!(alts.contains_key(tokens[i].as_str().unwrap()), "{lp}");
    }
}

async fn text_completions_carry_legacy_logprobs(sim: &SimHandle, gw: &common::Serve, model: &str) {
    let c = common::client();
    let prompt = "Once upon a time [[tokens=4]]";
    let v: Value = c
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": model, "prompt": prompt, "logprobs": 2, "echo": true, "max_tokens": 20}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = v["choices"][0]["text"].as_str().unwrap();
    let answer = text.strip_prefix(prompt).unwrap();
    check_legacy(&v["choices"][0]["logprobs"], answer, prompt.len(), 2);
    let sent = sim.requests().into_iter().last().unwrap();
    if sent.path == "/api/generate" {
        assert_eq!(sent.body["logprobs"], true);
        assert_eq!(sent.body["top_logprobs"], 2);
    } else {
        assert_eq!(sent.body["logprobs"], 2, "{}", sent.body);
    }

    let body = c
        .post(gw.url("/v1/completions"))
        .json(
            &json!({"model": model, "prompt": "More [[tokens=3]]", "logprobs": 1, "stream": true}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut offset = 0;
    let mut seen = 0;
    for p in common::sse_payloads(&body) {
        if p == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&p).unwrap();
        let choice = &v["choices"][0];
        let text = choice["text"].as_str().unwrap_or("");
        if text.is_empty() {
            assert!(choice["logprobs"].is_null(), "{v}");
            continue;
        }
        check_legacy(&choice["logprobs"], text, offset, 1);
        offset += text.chars().count();
        seen += 1;
    }
    assert_eq!(seen, 3, "{body}");

    let r = c
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": model, "prompt": "x", "logprobs": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "logprobs");
}

#[tokio::test]
async fn text_completions_get_legacy_logprobs_from_ollama() {
    let (sim, gw, model) = over_ollama().await;
    text_completions_carry_legacy_logprobs(&sim, &gw, model).await;
}

#[tokio::test]
async fn text_completions_get_legacy_logprobs_from_llamacpp() {
    let (sim, gw, model) = over_llamacpp().await;
    text_completions_carry_legacy_logprobs(&sim, &gw, model).await;
}

#[tokio::test]
async fn a_stream_continued_through_v1_completions_keeps_its_logprobs() {
    let start = || SimHandle::start(SimConfig::llamacpp(SimModel::new("smol", 8192)));
    let (first, second) = tokio::join!(start(), start());
    let (first, second) = (first.unwrap(), second.unwrap());
    let cfg = format!(
        r#"
deployments:
  - {{group: first, id: first, provider: openai, model: smol, api_base: "{a}", context_window: 8192}}
  - {{group: second, id: second, provider: openai, model: smol, api_base: "{b}", context_window: 8192, continuation: completions, template: chatml}}
fallbacks: [first, second]
routing: {{num_retries: 0, allowed_fails: 100}}
"#,
        a = first.base_url(),
        b = second.base_url(),
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    first.add_fault(FaultRule::for_model(
        "smol",
        Fault::CutAfter { chunks: 4 },
        Some(1),
    ));
    let chunks = stream_chunks(
        &gw,
        json!({"model": "first", "messages": [{"role": "user", "content": "a story [[tokens=10]]"}],
               "stream": true, "logprobs": true, "top_logprobs": 2}),
    )
    .await;
    let mut text = String::new();
    let mut entries = Vec::new();
    for c in &chunks {
        let content = c["choices"][0]["delta"]["content"].as_str().unwrap_or("");
        if content.is_empty() {
            continue;
        }
        let lp = c["choices"][0]["logprobs"]["content"].as_array();
        entries.extend(
            lp.unwrap_or_else(|| panic!("no logprobs: {c}"))
                .iter()
                .cloned(),
        );
        text.push_str(content);
    }
    check_entries(&entries, &text, 2);
    let sent = second.requests();
    let last = sent.last().unwrap();
    assert_eq!(last.path, "/v1/completions");
    assert_eq!(last.body["logprobs"], 2, "{}", last.body);
}
