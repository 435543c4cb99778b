//! The reference scenario of the product brief, as assertions against a running gateway at
//! `base` whose config is the user's seed file pointed at `sim`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use switchyard_sim::{Fault, FaultRule, SimHandle};

use super::{chat_body, client, sse_payloads, sse_text, words};

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub async fn run(base: &str, sim: &SimHandle) {
    let http = client();
    let url = format!("{base}/v1/chat/completions");

    // 1. A short prompt is served by the 1B model, with num_ctx pinned to its window.
    let resp = http
        .post(&url)
        .json(&chat_body("local-small", "hello there", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "llama3.2:1b");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 3
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let reqs = sim.requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.model, "llama3.2:1b");
    assert_eq!(last.num_ctx, Some(2048));
    assert!(!last.truncated);

    // 2. A ~1600-token prompt goes straight to the 8B model: the 1B never sees it.
    let small_before = sim.request_count("llama3.2:1b");
    let resp = http
        .post(&url)
        .json(&chat_body("local-small", &words(1600), false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "llama3.1:8b");
    assert_eq!(header(&resp, "x-switchyard-group"), "local-medium");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "1");
    assert!(
        header(&resp, "x-switchyard-prompt-tokens")
            .parse::<u32>()
            .unwrap()
            >= 1600
    );
    assert_eq!(sim.request_count("llama3.2:1b"), small_before);
    assert_eq!(sim.requests().last().unwrap().num_ctx, Some(8192));

    // 3. A 20,000-token prompt reaches mistral:7b.
    let resp = http
        .post(&url)
        .json(&chat_body("local-small", &words(20_000), false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "mistral:7b");
    let last = sim.requests().last().cloned().unwrap();
    assert_eq!(last.num_ctx, Some(32768));
    assert!(!last.truncated);

    // 4. A 40,000-token prompt is refused before any backend call.
    let before = sim.requests().len();
    let resp = http
        .post(&url)
        .json(&chat_body("local-small", &words(40_000), false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("32768"), "{msg}");
    assert_eq!(sim.requests().len(), before);

    // 5. With the 1B model failing, a short prompt is answered by the 8B model with 200.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "model runner has unexpectedly stopped".into(),
        },
        None,
    ));
    let resp = http
        .post(&url)
        .json(&chat_body("local-small", "hello again", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "llama3.1:8b");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");

    // 6. The same in streaming mode: one clean stream from the 8B model.
    let resp = http
        .post(&url)
        .json(&chat_body("local-small", "stream please", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    assert_eq!(header(&resp, "x-switchyard-model"), "llama3.1:8b");
    let text = resp.text().await.unwrap();
    let payloads = sse_payloads(&text);
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(
        payloads.iter().filter(|p| p.as_str() == "[DONE]").count(),
        1
    );
    assert!(!sse_text(&payloads).is_empty());
    assert!(!text.contains("\"error\""), "{text}");
    sim.clear_faults();
}
