//! What tracing costs per request, in allocations and time, with the three settings a user can
//! have: no subscriber at all (`none`), Switchyard's normal logging with traces off (`off`, the
//! default: no OTLP endpoint), and traces exported by OTLP to a collector on loopback (`otlp`).
//!
//! One mode per process (a global subscriber is set once). Every request goes client → gateway →
//! router → zero-latency simulator and back, all in this process, so the figures include the
//! client's and the simulator's own allocations; the difference between modes is tracing's.
//! `bench/tracing_overhead.sh` runs the modes side by side.
//!
//! `cargo run --release -p switchyard --example tracing_overhead -- MODE [REQUESTS]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::alloc::System;
use std::collections::HashMap;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchyard_sim::{SimConfig, SimHandle, SimModel};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A collector that accepts spans and drops them.
struct Sink;

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        _: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "off".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Request log lines are at info; a production setting of warn keeps them off stderr here
    // so the terminal is not the bottleneck (their cost is in `off` either way: they are built
    // only when enabled).
    let telemetry = {
        let _guard = rt.enter();
        match mode.as_str() {
            "none" => None,
            "off" => Some(switchyard_telemetry::init("bench", Default::default()).unwrap()),
            "otlp" => {
                let listener = rt
                    .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                    .unwrap();
                let addr = listener.local_addr().unwrap();
                rt.spawn(
                    tonic::transport::Server::builder()
                        .add_service(TraceServiceServer::new(Sink))
                        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                            listener,
                        )),
                );
                let endpoint = format!("http://{addr}");
                let t = switchyard_telemetry::init_with_endpoint(
                    "bench",
                    Default::default(),
                    &endpoint,
                )
                .unwrap();
                Some(t)
            }
            other => panic!("unknown mode {other}: none, off or otlp"),
        }
    };
    let (allocs, bytes, micros) = rt.block_on(run(n));
    println!(
        "{{\"mode\":\"{mode}\",\"requests\":{n},\"allocs_per_request\":{allocs:.1},\"bytes_per_request\":{bytes:.0},\"us_per_request\":{micros:.1}}}"
    );
    if let Some(t) = telemetry {
        t.shutdown();
    }
}

async fn run(n: usize) -> (f64, f64, f64) {
    let sim = SimHandle::start(SimConfig::ollama(vec![SimModel::new("llama3.2:1b", 8192)]))
        .await
        .unwrap();
    let text = format!(
        "model_list:\n  - {{model_name: small, litellm_params: {{model: ollama/llama3.2:1b, api_base: \"{}\", max_tokens: 2048}}}}\n",
        sim.base_url()
    );
    let config = switchyard_core::config::load_str(
        "bench.yaml",
        &text,
        None,
        &HashMap::<String, String>::new(),
    )
    .unwrap();
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = switchyard::ServeOptions {
        embedded_prober: Some(false),
        ..Default::default()
    };
    let bound = switchyard::serve(config, "127.0.0.1:0".parse().unwrap(), opts, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    let url = format!("http://{}/v1/chat/completions", bound.addr);
    tokio::spawn(bound.serve);
    let http = reqwest::Client::new();
    let body = serde_json::json!({"model": "small", "messages": [{"role": "user", "content": "hello there [[tokens=8]]"}]});
    let one = || async {
        let r = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    };
    for _ in 0..200 {
        one().await; // warm pools, caches and the calibration
    }
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    for _ in 0..n {
        one().await;
    }
    let took = started.elapsed();
    let stats = region.change();
    let per = |x: usize| x as f64 / n as f64;
    (
        per(stats.allocations + stats.reallocations),
        per(stats.bytes_allocated),
        took.as_secs_f64() * 1e6 / n as f64,
    )
}
