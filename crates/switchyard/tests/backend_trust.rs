//! Real servers, trusted: unstreamed callers get unstreamed backend calls, a request two servers
//! reject ends there, an overflow reads like OpenAI's, a gateway whose every deployment is down
//! says so at once, a trickling unstreamed answer falls back after the idle timeout, a streamed
//! answer from a truncated prompt is counted, and an unsendable api_key is refused at load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn llamacpp(name: &str, ctx: u32) -> SimHandle {
    SimHandle::start(SimConfig::llamacpp(SimModel::new(name, ctx)))
        .await
        .unwrap()
}

async fn post(url: String, body: &Value) -> reqwest::Response {
    common::client().post(url).json(body).send().await.unwrap()
}

#[tokio::test]
async fn unstreamed_callers_get_unstreamed_calls_to_openai_compatible_servers() {
    let sim = SimHandle::start(SimConfig {
        chunk_delay: Duration::from_millis(5),
        ..SimConfig::llamacpp(SimModel::new("smol", 8192))
    })
    .await
    .unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: chat\n    litellm_params: {{model: openai/smol, api_base: \"{}/v1\", max_tokens: 8192}}\nrouter_settings: {{num_retries: 0}}\n",
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    let calls = (0..4).map(|i| {
        let url = gw.url("/v1/chat/completions");
        async move {
            post(
                url,
                &common::chat_body("chat", &format!("question {i}"), false),
            )
            .await
        }
    });
    for resp in futures::future::join_all(calls).await {
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        assert!(
            !v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    }
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert!(
            !r.stream,
            "an unstreamed caller's backend call was streamed"
        );
        assert!(r.body.get("stream_options").is_none());
    }
    // A streaming caller still gets a stream.
    let resp = post(
        gw.url("/v1/chat/completions"),
        &common::chat_body("chat", "hi", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();
    assert!(sim.requests().last().unwrap().stream);
}

#[tokio::test]
async fn a_request_two_deployments_reject_ends_after_two_calls() {
    // llama-cpp-python answers 500 with the exception's text for a request it cannot serve
    // (a `developer` role, an uncompilable json_schema): the same text on every server.
    let sims = [
        llamacpp("a", 8192).await,
        llamacpp("b", 8192).await,
        llamacpp("c", 8192).await,
    ];
    for s in &sims {
        s.add_fault(FaultRule::always(Fault::Status {
            code: 500,
            message: "System role not supported".into(),
        }));
    }
    let mut cfg = String::from("model_list:\n");
    for (i, s) in sims.iter().enumerate() {
        cfg.push_str(&format!(
            "  - model_name: chat\n    litellm_params: {{model: openai/m{i}, api_base: \"{}/v1\", max_tokens: 8192}}\n",
            s.base_url()
        ));
    }
    cfg.push_str("router_settings: {num_retries: 2, retry_after: 0}\n");
    let gw = common::serve(common::config_from(&cfg)).await;
    let resp = post(
        gw.url("/v1/chat/completions"),
        &common::chat_body("chat", "hi", false),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_rejected", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("System role not supported")
    );
    let calls: usize = sims.iter().map(|s| s.requests().len()).sum();
    assert_eq!(calls, 2, "one more deployment agreeing is enough");

    // A 4xx rejection: the same, and no retry pass goes back to a server that refused.
    for s in &sims {
        s.clear_faults();
        s.add_fault(FaultRule::always(Fault::Status {
            code: 400,
            message: "invalid 'response_format'".into(),
        }));
    }
    let before: usize = sims.iter().map(|s| s.requests().len()).sum();
    let resp = post(
        gw.url("/v1/chat/completions"),
        &common::chat_body("chat", "hi", true),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let after: usize = sims.iter().map(|s| s.requests().len()).sum();
    assert_eq!(after - before, 2);
}

#[tokio::test]
async fn a_prompt_that_fits_nowhere_gets_openais_overflow_error() {
    // Known window (the plan refuses it) and unknown window (the backend does).
    let ollama = common::reference_ollama().await;
    let llama = llamacpp("smol", 2048).await;
    let cfg = format!(
        "model_list:\n  - model_name: known\n    litellm_params: {{model: ollama/llama3.2:1b, api_base: \"{}\", max_tokens: 2048}}\n  - model_name: probed\n    litellm_params: {{model: openai/smol, api_base: \"{}/v1\"}}\nrouter_settings: {{num_retries: 0}}\n",
        ollama.base_url(),
        llama.base_url()
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    for (group, exact) in [("known", true), ("probed", false)] {
        let resp = post(
            gw.url("/v1/chat/completions"),
            &common::chat_body(group, &common::words(4000), false),
        )
        .await;
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        let e = &v["error"];
        assert_eq!(e["code"], "context_length_exceeded");
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"], "messages", "{v}");
        let m = e["message"].as_str().unwrap();
        // What LiteLLM matches to raise ContextWindowExceededError...
        assert!(
            m.starts_with("This model's maximum context length is "),
            "{m}"
        );
        if exact {
            // ...and OpenAI's whole sentence when the numbers are known.
            assert!(
                m.starts_with(
                    "This model's maximum context length is 2048 tokens. However, you requested "
                ),
                "{m}"
            );
            assert!(
                m.contains(
                    " in the completion). Please reduce the length of the messages or completion."
                ),
                "{m}"
            );
        }
    }
    assert!(ollama.requests().is_empty());
}

#[tokio::test]
async fn when_every_deployment_is_known_down_the_answer_is_a_fast_503() {
    // Two ports nobody listens on.
    let mut bases = Vec::new();
    for _ in 0..2 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        bases.push(format!("http://{}", l.local_addr().unwrap()));
    }
    let cfg = format!(
        "model_list:\n  - model_name: chat\n    litellm_params: {{model: ollama/a, api_base: \"{}\", max_tokens: 4096}}\n  - model_name: chat\n    litellm_params: {{model: ollama/b, api_base: \"{}\", max_tokens: 4096}}\nrouter_settings: {{num_retries: 2, retry_after: 0}}\nprober: {{interval: 60}}\n",
        bases[0], bases[1]
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    // The first request finds out (connection refused everywhere: both marked down).
    let resp = post(
        gw.url("/v1/chat/completions"),
        &common::chat_body("chat", "hi", false),
    )
    .await;
    assert_eq!(resp.status(), 502);
    // The next one is refused at once, with no attempt.
    let resp = post(
        gw.url("/v1/chat/completions"),
        &common::chat_body("chat", "hi", false),
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "0");
    // The prober looks again after its interval (60 s here).
    assert_eq!(header(&resp, "retry-after"), "60");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "no_healthy_deployment", "{v}");
}

#[tokio::test]
async fn a_trickling_unstreamed_answer_falls_back_after_the_idle_timeout() {
    let sim = common::reference_ollama().await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::StallBody {
            stall: Duration::from_secs(60),
        },
        Some(1),
    ));
    let cfg = format!(
        "model_list:\n  - model_name: small\n    litellm_params: {{model: ollama/llama3.2:1b, api_base: \"{b}\", max_tokens: 4096}}\n  - model_name: big\n    litellm_params: {{model: ollama/llama3.1:8b, api_base: \"{b}\", max_tokens: 8192}}\nrouter_settings: {{fallbacks: [{{small: [big]}}], num_retries: 0}}\nrouting: {{idle_timeout: 1}}\n",
        b = sim.base_url()
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        post(
            gw.url("/v1/chat/completions"),
            &common::chat_body("small", "hi", false),
        ),
    )
    .await
    .expect("the stalled body was waited on past the idle timeout");
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "llama3.1:8b");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
}

#[tokio::test]
async fn a_streamed_answer_from_a_truncated_prompt_is_counted() {
    // The model really holds 1024 tokens; `truncate: true` lets Ollama cut the prompt silently.
    let sim = SimHandle::start(SimConfig::ollama(vec![SimModel::new("tiny", 1024)]))
        .await
        .unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: small\n    litellm_params: {{model: ollama/tiny, api_base: \"{}\", max_tokens: 2048, truncate: true}}\n",
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    let resp = post(
        gw.url("/v1/chat/completions"),
        &common::chat_body("small", &common::words(1200), true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();
    let metrics = common::client()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_truncated_prompts_total{"))
        .unwrap_or_else(|| panic!("no truncation counter in:\n{metrics}"));
    assert!(
        line.contains("small/tiny") && line.ends_with(" 1"),
        "{line}"
    );
}

#[test]
fn an_api_key_that_cannot_be_a_header_is_refused_at_load() {
    let text = "model_list:\n  - model_name: chat\n    litellm_params: {model: openai/m, api_base: \"http://127.0.0.1:1/v1\", api_key: \"sk-abc\\ndef\"}\n";
    let err =
        switchyard_core::config::load_str("t.yaml", text, None, &HashMap::<String, String>::new())
            .expect_err("a key with a newline was accepted");
    let msg = err.to_string();
    assert!(
        msg.contains("model_list[0].litellm_params.api_key") || msg.contains("api_key"),
        "{msg}"
    );
    assert!(msg.contains("HTTP header"), "{msg}");
    let _ = json!(null);
}
