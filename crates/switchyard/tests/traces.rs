//! OpenTelemetry traces across processes: gateway, router and ledger each export spans by OTLP to
//! a receiver in this test, and one request — sent with the caller's own `traceparent` and
//! falling back once — appears as one trace: gateway → router → two attempts, and the ledger's
//! write, with GenAI and Switchyard attributes. The backend receives the serving attempt's
//! context.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use switchyard_sim::{Fault, FaultRule};

/// A received span with the service that sent it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<KeyValue>,
}

impl Received {
    fn attr(&self, key: &str) -> Option<String> {
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                AnyValue::StringValue(s) => s.clone(),
                AnyValue::IntValue(i) => i.to_string(),
                AnyValue::BoolValue(b) => b.to_string(),
                AnyValue::DoubleValue(d) => d.to_string(),
                other => format!("{other:?}"),
            })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The test's OTLP trace receiver.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    AnyValue::StringValue(s) => s.clone(),
                    _ => String::new(),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    got.push(Received {
                        service: service.clone(),
                        name: s.name,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        attributes: s.attributes,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (receiver, format!("http://{addr}"))
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn one_request_is_one_trace_across_gateway_router_attempts_and_ledger() {
    let (receiver, otlp) = start_receiver().await;
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, common::seed_config_text(&sim.base_url())).unwrap();
    let path = path.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];

    let ledger = common::spawn_switchyard_env(
        &[
            "ledger",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ],
        &otel,
    )
    .await;
    let ledger_url = format!("http://{}", ledger.addr);
    let mut router_env = otel.to_vec();
    router_env.push(("SWITCHYARD__LEDGER__ADDRESS", ledger_url.as_str()));
    let router_metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let router = common::spawn_switchyard_env(
        &[
            "router",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--metrics-listen",
            &router_metrics,
        ],
        &router_env,
    )
    .await;
    let router_url = format!("http://{}", router.addr);
    let gateway = common::spawn_switchyard_env(
        &[
            "gateway",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--router",
            &router_url,
        ],
        &otel,
    )
    .await;

    // The small model fails once: the request falls back to the medium one.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "model runner crashed".into(),
        },
        Some(1),
    ));
    let resp = common::client()
        .post(gateway.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&common::chat_body(
            "local-small",
            "a secret prompt text",
            false,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-attempts"], "2");

    let spans = receiver.0.clone();
    common::eventually(30, "gateway, router, two attempt and ledger spans", || {
        let spans = spans.clone();
        async move {
            let s = spans.lock().unwrap();
            let has = |service: &str, name: &str| {
                s.iter().any(|r| r.service == service && r.name == name)
            };
            has("switchyard-gateway", "POST /v1/chat/completions")
                && has("switchyard-router", "router.chat")
                && s.iter().filter(|r| r.name.starts_with("chat ")).count() >= 2
                && has("switchyard-ledger", "ledger.write")
        }
    })
    .await;

    let s = receiver.0.lock().unwrap().clone();
    for r in &s {
        assert_eq!(
            r.trace_id, CALLER_TRACE,
            "span {} left the caller's trace",
            r.name
        );
        let text = format!("{:?}", r.attributes);
        assert!(
            !text.contains("secret prompt"),
            "prompt text in span {}",
            r.name
        );
    }
    let gateway_span = s
        .iter()
        .find(|r| r.name == "POST /v1/chat/completions")
        .unwrap();
    assert_eq!(gateway_span.parent_span_id, CALLER_SPAN);
    assert_eq!(
        gateway_span.attr("gen_ai.request.model").as_deref(),
        Some("local-small")
    );
    assert_eq!(
        gateway_span.attr("http.response.status_code").as_deref(),
        Some("200")
    );

    let router_span = s.iter().find(|r| r.name == "router.chat").unwrap();
    assert_eq!(router_span.parent_span_id, gateway_span.span_id);
    assert_eq!(
        router_span.attr("switchyard.group").as_deref(),
        Some("local-small")
    );
    assert_eq!(
        router_span.attr("switchyard.served_group").as_deref(),
        Some("local-medium")
    );
    assert_eq!(
        router_span.attr("switchyard.attempts").as_deref(),
        Some("2")
    );
    assert_eq!(router_span.attr("switchyard.status").as_deref(), Some("ok"));

    let mut attempts: Vec<&Received> = s.iter().filter(|r| r.name.starts_with("chat ")).collect();
    attempts.sort_by_key(|r| r.attr("switchyard.attempt"));
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a.parent_span_id, router_span.span_id);
        assert_eq!(a.attr("gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(a.attr("gen_ai.provider.name").as_deref(), Some("ollama"));
        assert!(a.attr("switchyard.prompt_tokens.predicted").is_some());
    }
    let (failed, served) = (attempts[0], attempts[1]);
    assert_eq!(failed.name, "chat llama3.2:1b");
    assert_eq!(failed.attr("switchyard.attempt").as_deref(), Some("1"));
    assert_eq!(
        failed.attr("switchyard.failure_class").as_deref(),
        Some("server_error")
    );
    assert_eq!(served.name, "chat llama3.1:8b");
    assert!(served.attr("switchyard.deployment").is_some());
    assert_eq!(
        served.attr("gen_ai.response.finish_reasons").as_deref(),
        Some("stop")
    );
    assert!(served.attr("gen_ai.usage.input_tokens").is_some());
    assert!(served.attr("gen_ai.usage.output_tokens").is_some());
    assert!(served.attr("switchyard.prompt_tokens.reported").is_some());
    assert!(served.attr("switchyard.failure_class").is_none());

    let ledger_span = s.iter().find(|r| r.name == "ledger.write").unwrap();
    assert_eq!(ledger_span.service, "switchyard-ledger");
    assert_eq!(ledger_span.parent_span_id, router_span.span_id);

    // The latency histogram links to the trace (an exemplar), for a click from a slow bucket.
    let page = common::client()
        .get(format!("http://{router_metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exemplar = page
        .lines()
        .find(|l| l.starts_with("switchyard_request_duration_seconds_bucket") && l.contains(" # {"))
        .unwrap_or_else(|| panic!("no exemplar in:\n{page}"));
    assert!(
        exemplar.contains(&format!("trace_id=\"{CALLER_TRACE}\"")),
        "{exemplar}"
    );

    // Each backend call carried its attempt's context.
    let sent: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| r.traceparent.clone())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], format!("00-{CALLER_TRACE}-{}-01", failed.span_id));
    assert_eq!(sent[1], format!("00-{CALLER_TRACE}-{}-01", served.span_id));

    // Each service, exporter configured, stops cleanly on SIGTERM: the exporter's shutdown
    // runs at exit, when a one-thread runtime only runs inside a `block_on`.
    for mut service in [gateway, router, ledger] {
        common::signal(&service.child, "TERM");
        let status = service.child.wait().await.unwrap();
        assert!(status.success(), "exit on SIGTERM: {status}");
    }
}

#[tokio::test]
async fn without_an_endpoint_the_caller_trace_is_passed_on_and_logged() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, common::seed_config_text(&sim.base_url())).unwrap();
    let path = path.to_str().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "serve",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .arg("--log-json")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = out.next_line().await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let base = format!("http://{}", v["listening"].as_str().unwrap());
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();

    let resp = common::client()
        .post(format!("{base}/v1/chat/completions"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&common::chat_body(
            "local-small",
            "another secret prompt",
            false,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    // With tracing off the caller's context goes to the backend unchanged.
    let sent = sim.requests()[0].traceparent.clone();
    assert_eq!(
        sent.as_deref(),
        Some(format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01").as_str())
    );

    // One JSON log line for the request, with its route decision and trace id.
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let l = err.next_line().await.unwrap().expect("log ended");
            assert!(!l.contains("secret prompt"), "prompt text logged: {l}");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
                continue;
            };
            if v["fields"]["request_id"] == request_id.as_str() {
                return v;
            }
        }
    })
    .await
    .expect("no request log line");
    assert_eq!(line["target"], "switchyard::request");
    assert_eq!(line["fields"]["trace_id"], CALLER_TRACE);
    assert_eq!(line["fields"]["group"], "local-small");
    assert_eq!(line["fields"]["served_group"], "local-small");
    assert_eq!(line["fields"]["status"], "ok");
    assert!(
        line["fields"]["deployment"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}
