//! Exact routing at a window boundary without a tokenizer file (issue 18): two llama-cpp-python
//! servers with SmolLM2 at n_ctx 512 and 2048 in one fallback chain, no `tokenizer:` key. The
//! router estimates, sees the estimate straddle the 512 window's limit, and asks the server's own
//! tokenizer (`/extras/tokenize/count`): prompt + `max_tokens` = 512 goes to the 512 server and
//! 513 to the 2048 server, each with one attempt.
//!
//! Needs `SWITCHYARD_E2E_PYTHON` and `SWITCHYARD_E2E_MODEL`; skipped (saying so) without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::llama_cpp_python;

use serde_json::{Value, json};

fn config(small: &str, large: &str) -> String {
    format!(
        r#"
deployments:
  - {{group: smol-512, provider: openai, model: smol, api_base: "{small}", context_window: 512, template: chatml}}
  - {{group: smol-2048, provider: openai, model: smol, api_base: "{large}", context_window: 2048, template: chatml}}
fallbacks: [smol-512, smol-2048]
routing: {{reserve_output_tokens: 64, num_retries: 0, idle_timeout: 20, first_byte_timeout: 60, backend_tokenize_timeout: 5}}
"#
    )
}

fn chat(model: &str, content: &str, max_tokens: u32) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
    })
}

/// Sends `body` through the gateway: the serving group, the attempts, the predicted prompt
/// tokens and the reported ones.
async fn routed(http: &reqwest::Client, url: &str, body: &Value) -> (String, String, u64, u64) {
    let r = http.post(url).json(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = |name: &str| r.headers()[name].to_str().unwrap().to_string();
    let (group, attempts) = (
        header("x-switchyard-group"),
        header("x-switchyard-attempts"),
    );
    let predicted: u64 = header("x-switchyard-prompt-tokens").parse().unwrap();
    let v: Value = r.json().await.unwrap();
    let reported = v["usage"]["prompt_tokens"].as_u64().unwrap();
    (group, attempts, predicted, reported)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backends_tokenizer_decides_at_the_window_boundary() {
    let Some(env) = llama_cpp_python::env() else {
        return;
    };
    let (s512, s2048) = tokio::join!(
        llama_cpp_python::start(&env, 512),
        llama_cpp_python::start(&env, 2048)
    );
    let gw = common::serve(common::config_from(&config(&s512.url, &s2048.url))).await;
    let http = common::client();
    let url = gw.url("/v1/chat/completions");

    // The prompt's real size, from the 512 server itself.
    let text = "Exactly at the edge of the window. ".repeat(56);
    let direct: Value = http
        .post(format!("{}/v1/chat/completions", s512.url))
        .json(&chat("smol", &text, 1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = direct["usage"]["prompt_tokens"].as_u64().unwrap() as u32;
    assert!((400..500).contains(&p), "prompt of {p} tokens");

    // The router learns what the servers can count in the background, at start.
    let (group, attempts, predicted, reported) =
        routed(&http, &url, &chat("smol-512", &text, 512 - p)).await;
    assert_eq!(
        (group.as_str(), attempts.as_str()),
        ("smol-512", "1"),
        "prompt {p} + max_tokens {} = 512 (predicted {predicted})",
        512 - p
    );
    assert_eq!(reported, u64::from(p));
    assert_eq!(predicted, reported, "the backend's count is exact");

    let (group, attempts, predicted, _) =
        routed(&http, &url, &chat("smol-512", &text, 513 - p)).await;
    assert_eq!(
        (group.as_str(), attempts.as_str()),
        ("smol-2048", "1"),
        "prompt {p} + max_tokens {} = 513 (predicted {predicted})",
        513 - p
    );

    // A system message of its own (no default system block): exact as well.
    let body = json!({
        "model": "smol-512",
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": text},
        ],
        "max_tokens": 1,
        "temperature": 0,
    });
    let direct: Value = http
        .post(format!("{}/v1/chat/completions", s512.url))
        .json(&json!({"model": "smol", "messages": body["messages"], "max_tokens": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let q = direct["usage"]["prompt_tokens"].as_u64().unwrap() as u32;
    let mut at_edge = body.clone();
    at_edge["max_tokens"] = json!(512 - q);
    let (group, attempts, predicted, reported) = routed(&http, &url, &at_edge).await;
    assert_eq!((group.as_str(), attempts.as_str()), ("smol-512", "1"));
    assert_eq!((predicted, reported), (u64::from(q), u64::from(q)));
    at_edge["max_tokens"] = json!(513 - q);
    let (group, attempts, _, _) = routed(&http, &url, &at_edge).await;
    assert_eq!((group.as_str(), attempts.as_str()), ("smol-2048", "1"));
    drop((s512, s2048));
}
