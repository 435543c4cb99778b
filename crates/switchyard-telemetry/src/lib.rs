//! Logs and traces for every Switchyard service, set up the same way in each process.
//!
//! Logs go to stderr (text, or JSON lines when asked), written by a dedicated thread so a slow
//! reader never blocks a request, in batches ([`linger`]); past 16,384 queued lines new ones are
//! dropped. Traces are exported by OTLP/gRPC only when
//! the standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables
//! name a collector; otherwise no exporter, no OpenTelemetry layer and no span data exist (the log
//! layer never records spans, so a disabled span costs a callsite check and nothing else).
//!
//! W3C trace context crosses every hop as a `traceparent` string: HTTP headers at the gateway and
//! towards backends, gRPC metadata between gateway and router, a field of the usage record towards
//! the ledger. [`context`] holds the helpers that read and write it.

pub mod context;
mod linger;
mod setup;

pub use context::{
    TRACEPARENT, TRACESTATE, adopt_parent, capture_message_content, enabled, trace_id_of,
    traceparent_of, traceparent_trace_id,
};
pub use setup::{LogFormat, Telemetry, TelemetryError, init, init_with_endpoint};
