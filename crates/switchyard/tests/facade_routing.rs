//! What the router does for the fields the Ollama and Anthropic facades set: a requested window
//! (`min_context`, Ollama's `options.num_ctx`) routes past smaller windows with no failed
//! attempt, or is refused with a 400 naming the largest window; and every usage record names
//! the API its request came through, from the router's record to `/v1/usage`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::{Value, json};
use switchyard_proto as pb;
use switchyard_proto::router_server::Router;
use switchyard_router::{RequestRecord, RouterService, UsageSink};
use switchyard_sim::{SimConfig, SimHandle, SimModel};
use tonic::Request;

#[derive(Default)]
struct Collect(Mutex<Vec<RequestRecord>>);

impl UsageSink for Collect {
    fn record(&self, r: RequestRecord) {
        self.0.lock().unwrap().push(r);
    }
}

impl Collect {
    async fn wait_for(&self, n: usize) -> Vec<RequestRecord> {
        common::eventually(20, "the usage records", || async {
            self.0.lock().unwrap().len() >= n
        })
        .await;
        self.0.lock().unwrap().clone()
    }
}

/// A router in process over `config_text`, its usage records collected.
fn router(config_text: &str) -> (RouterService, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let svc = RouterService::with_usage_sink(
        common::config_from(config_text),
        Some(sink.clone() as Arc<dyn UsageSink>),
    )
    .unwrap();
    (svc, sink)
}

fn chat_request(min_context: Option<u32>) -> pb::ChatRequest {
    pb::ChatRequest {
        request_id: format!("req-{}", uuid::Uuid::new_v4().simple()),
        model: "local-small".into(),
        messages: vec![pb::Message {
            role: "user".into(),
            content: Some("hello [[tokens=5]]".into()),
            ..Default::default()
        }],
        api: "ollama.chat".into(),
        min_context,
        ..Default::default()
    }
}

/// The route and the error (if any) of a chat request.
async fn chat(
    svc: &RouterService,
    req: pb::ChatRequest,
) -> (Option<pb::RouteInfo>, Option<pb::RouteError>) {
    let mut events = svc.chat(Request::new(req)).await.unwrap().into_inner();
    let (mut route, mut error) = (None, None);
    while let Some(ev) = events.next().await {
        match ev.unwrap().event {
            Some(pb::chat_event::Event::Route(r)) => route = Some(r),
            Some(pb::chat_event::Event::Error(e)) => error = Some(e),
            _ => {}
        }
    }
    (route, error)
}

#[tokio::test]
async fn a_requested_window_routes_past_smaller_ones_without_a_failed_attempt() {
    let sim = common::reference_ollama().await;
    let (svc, sink) = router(&common::seed_config_text(&sim.base_url()));

    // 4096 is above local-small's 2048 window and within local-medium's 8192.
    let (route, error) = chat(&svc, chat_request(Some(4096))).await;
    assert!(error.is_none(), "{error:?}");
    let route = route.unwrap();
    assert_eq!(route.backend_model, "llama3.1:8b");
    assert_eq!(route.served_group, "local-medium");
    assert_eq!(route.attempts, 1);
    assert!(route.failed_attempts.is_empty());
    // Above local-medium's too: local-large, still at once.
    let (route, _) = chat(&svc, chat_request(Some(16_384))).await;
    let route = route.unwrap();
    assert_eq!(
        (route.backend_model.as_str(), route.attempts),
        ("mistral:7b", 1)
    );
    // Within the small window: the small model, as without one.
    let (route, _) = chat(&svc, chat_request(Some(2048))).await;
    assert_eq!(route.unwrap().backend_model, "llama3.2:1b");

    let records = sink.wait_for(3).await;
    assert!(records.iter().all(|r| r.attempts.len() == 1), "{records:?}");
    // Each model got its own window as num_ctx, never the one asked for.
    let sent: Vec<(String, Option<u32>)> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/chat")
        .map(|r| (r.model, r.num_ctx))
        .collect();
    assert_eq!(
        sent,
        [
            ("llama3.1:8b".to_owned(), Some(8192)),
            ("mistral:7b".to_owned(), Some(32768)),
            ("llama3.2:1b".to_owned(), Some(2048)),
        ]
    );
    assert!(records.iter().all(|r| r.api == "ollama.chat"));

    // The dry run shows why the small model is left out.
    let plan = svc.explain_local(&chat_request(Some(4096)));
    assert!(plan.error.is_none(), "{:?}", plan.error);
    let small = plan
        .verdicts
        .iter()
        .find(|v| v.group == "local-small")
        .unwrap();
    assert_eq!(small.verdict, "excluded");
    assert!(
        small.reason.starts_with("window_below_requested"),
        "{}",
        small.reason
    );
    let first = plan.verdicts.iter().find(|v| v.rank == 1).unwrap();
    assert_eq!(first.group, "local-medium");
    assert!(
        first
            .reason
            .contains("window >= the 4096 asked for (num_ctx)"),
        "{}",
        first.reason
    );
}

#[tokio::test]
async fn a_window_larger_than_any_is_a_400_naming_the_largest() {
    let sim = common::reference_ollama().await;
    let (svc, sink) = router(&common::seed_config_text(&sim.base_url()));
    let (route, error) = chat(&svc, chat_request(Some(65_536))).await;
    assert!(route.is_none());
    let e = error.unwrap();
    assert_eq!(
        (e.http_status, e.code.as_str()),
        (400, "context_length_exceeded")
    );
    assert!(e.message.contains("num_ctx 65536"), "{}", e.message);
    assert!(e.message.contains("32768"), "{}", e.message);
    assert_eq!(e.attempts, 0);
    let records = sink.wait_for(1).await;
    assert_eq!(records[0].status, "context_length_exceeded");
    assert!(records[0].attempts.is_empty());
    // Explain says the same.
    let plan = svc.explain_local(&chat_request(Some(65_536)));
    assert_eq!(plan.error.unwrap().code, "context_length_exceeded");
    // Nothing was sent to a model.
    assert!(
        sim.requests().iter().all(|r| r.path != "/api/chat"),
        "{:?}",
        sim.requests()
    );
}

#[tokio::test]
async fn embeddings_honour_a_requested_window_too() {
    let sim = SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("nomic-embed-text", 2048),
        SimModel::new("mxbai-embed-large", 8192),
    ]))
    .await
    .unwrap();
    let text = format!(
        r#"
model_list:
  - model_name: embed-small
    litellm_params: {{model: ollama/nomic-embed-text, api_base: "{o}", num_ctx: 512}}
    model_info: {{mode: embedding}}
  - model_name: embed-large
    litellm_params: {{model: ollama/mxbai-embed-large, api_base: "{o}", num_ctx: 4096}}
    model_info: {{mode: embedding}}
router_settings:
  fallbacks:
    - embed-small: [embed-large]
"#,
        o = sim.base_url()
    );
    let (svc, sink) = router(&text);
    let embed = |min_context: Option<u32>, api: &str| pb::EmbedRequest {
        request_id: format!("req-{}", uuid::Uuid::new_v4().simple()),
        model: "embed-small".into(),
        inputs: vec![pb::EmbedInput {
            input: Some(pb::embed_input::Input::Text("hello".into())),
        }],
        api: api.into(),
        min_context,
        ..Default::default()
    };
    let r = svc
        .embed(Request::new(embed(Some(1024), "ollama.embed")))
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(
        (r.backend_model.as_str(), r.attempts),
        ("mxbai-embed-large", 1)
    );
    assert!(r.failed_attempts.is_empty());
    let r = svc
        .embed(Request::new(embed(None, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.backend_model, "nomic-embed-text");
    let r = svc
        .embed(Request::new(embed(Some(100_000), "ollama.embed")))
        .await
        .unwrap()
        .into_inner();
    let e = r.error.unwrap();
    assert_eq!(
        (e.http_status, e.code.as_str()),
        (400, "context_length_exceeded")
    );
    assert!(e.message.contains("4096"), "{}", e.message);

    let records = sink.wait_for(3).await;
    let apis: Vec<&str> = records.iter().map(|r| r.api.as_str()).collect();
    assert_eq!(apis, ["ollama.embed", "openai.embeddings", "ollama.embed"]);
}

/// `switchyard serve` with its own ledger (SQLite in `dir`) over the seed config.
async fn serve_with_ledger(sim: &SimHandle, dir: &std::path::Path) -> common::Serve {
    common::serve_with(
        common::config_from(&common::seed_config_text(&sim.base_url())),
        switchyard::ServeOptions {
            data_dir: Some(dir.to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn the_usage_ledger_names_the_api_of_each_request() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = serve_with_ledger(&sim, dir.path()).await;
    let http = common::client();
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("local-small", "hi [[tokens=3]]", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "local-small", "input": "hi [[tokens=3]]"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let url = gw.url("/v1/usage");
    common::eventually(20, "two records in the ledger", || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let v: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
            v["data"].as_array().is_some_and(|d| d.len() == 2)
        }
    })
    .await;
    let v: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    let mut apis: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["api"].as_str().unwrap())
        .collect();
    apis.sort_unstable();
    assert_eq!(apis, ["openai.chat", "openai.responses"]);

    let csv = http
        .get(format!("{url}?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "api").unwrap();
    let mut apis: Vec<String> = lines
        .map(|l| l.split(',').nth(col).unwrap().to_owned())
        .collect();
    apis.sort_unstable();
    assert_eq!(apis, ["openai.chat", "openai.responses"]);
}
