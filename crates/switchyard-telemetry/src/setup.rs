//! Installs the process's subscriber: a log layer always, an OpenTelemetry layer with an OTLP
//! exporter only when the environment names a collector.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

use crate::context::{CAPTURE_CONTENT, ENABLED};
use crate::linger::Linger;

/// Log lines queued for the writer thread before new ones are dropped (and counted) rather than
/// making a request wait on a slow stderr reader.
const QUEUED_LOG_LINES: usize = 16_384;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP span exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("a global subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Keeps the trace pipeline alive; [`Telemetry::shutdown`] exports what is still buffered.
#[must_use = "dropping it without shutdown() loses the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    endpoint: Option<String>,
    /// Flushes the log lines still queued for stderr when dropped.
    _logs: WorkerGuard,
}

impl Telemetry {
    /// Where spans go, when they are exported at all.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Exports buffered spans and stops the exporter. Call it outside async code, with the
    /// runtime still alive.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            let _ = p.shutdown();
        }
        // `self._logs` drops here, writing out the queued log lines.
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The collector named by the standard variables, unless the SDK is disabled.
fn otlp_endpoint() -> Option<String> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        return None;
    }
    env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// Installs the global subscriber for `service` (the default `service.name`; `OTEL_SERVICE_NAME`
/// wins). Must run inside a Tokio runtime when an OTLP endpoint is configured.
pub fn init(service: &str, format: LogFormat) -> Result<Telemetry, TelemetryError> {
    install(service, format, otlp_endpoint())
}

/// [`init`] with traces exported to `endpoint` whatever the environment says (benchmarks, tests).
pub fn init_with_endpoint(
    service: &str,
    format: LogFormat,
    endpoint: &str,
) -> Result<Telemetry, TelemetryError> {
    install(service, format, Some(endpoint.to_owned()))
}

fn install(
    service: &str,
    format: LogFormat,
    endpoint: Option<String>,
) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs never record spans: with tracing off, a span then has no subscriber interest at all.
    let events_only = filter_fn(|meta| meta.is_event());
    // Lines are formatted on the caller's thread and written by a dedicated one: a write to a
    // pipe (docker, journald) can block, and must not stall the runtime's workers. That thread
    // writes what has queued up together ([`Linger`]) rather than waking for every line.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LOG_LINES)
        .thread_name("switchyard-log")
        .finish(Linger::new(std::io::stderr()));
    let log_layer = match format {
        LogFormat::Text => fmt::layer()
            // Colours only for a person at a terminal, not into files, pipes or journald.
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(writer)
            .with_filter(filter.and(events_only))
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(writer)
            .with_filter(filter.and(events_only))
            .boxed(),
    };
    CAPTURE_CONTENT.store(
        env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        Ordering::Relaxed,
    );
    let Some(endpoint) = endpoint else {
        tracing_subscriber::registry()
            .with(log_layer)
            .try_init()
            .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
        return Ok(Telemetry {
            provider: None,
            endpoint: None,
            _logs: guard,
        });
    };
    if let Some(p) =
        env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        && p != "grpc"
    {
        eprintln!("switchyard: OTLP protocol {p:?} is not supported; exporting over grpc");
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.clone(),
            source,
        })?;
    let resource = if env("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder()
            .with_service_name(service.to_string())
            .build()
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("switchyard");
    // Only Switchyard's own spans: not those of hyper, h2, tonic or sqlx.
    let ours = Targets::new()
        .with_target("switchyard", tracing::Level::INFO)
        .with_target("switchyard_gateway", tracing::Level::INFO)
        .with_target("switchyard_router", tracing::Level::INFO)
        .with_target("switchyard_ledger", tracing::Level::INFO)
        .with_target("switchyard_health", tracing::Level::INFO)
        .with_target("switchyard_backends", tracing::Level::INFO);
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(ours);
    tracing_subscriber::registry()
        .with(log_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Telemetry {
        provider: Some(provider),
        endpoint: Some(endpoint),
        _logs: guard,
    })
}
