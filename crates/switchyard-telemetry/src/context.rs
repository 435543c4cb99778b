//! W3C trace context: adopting a caller's `traceparent` as a span's parent, and writing the
//! current span's own `traceparent` for the next hop.
//!
//! When tracing is off nothing here allocates; callers then pass an incoming `traceparent` on
//! unchanged so that logs and backends still see the caller's trace id.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header / metadata key of the W3C trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// Header / metadata key of the W3C trace state.
pub const TRACESTATE: &str = "tracestate";

pub(crate) static ENABLED: AtomicBool = AtomicBool::new(false);
pub(crate) static CAPTURE_CONTENT: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (an OTLP endpoint was configured at start).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether message text may be put on spans (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`;
/// off unless explicitly enabled).
pub fn capture_message_content() -> bool {
    CAPTURE_CONTENT.load(Ordering::Relaxed)
}

struct Incoming<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// Makes the caller's trace (if it sent a valid `traceparent`) the parent of `span`. A no-op when
/// tracing is off or the header is malformed (the span then starts a new trace).
pub fn adopt_parent(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    if !enabled() || span.is_disabled() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Incoming {
        traceparent,
        tracestate,
    });
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` that makes the next hop a child of `span`; `None` when tracing is off.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !enabled() || span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The trace id of `span` (32 hex digits); `None` when tracing is off.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    if !enabled() || span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The trace id inside a `traceparent` value, when it is well formed.
pub fn traceparent_trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    (trace_id.len() == 32
        && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
        && trace_id.bytes().any(|b| b != b'0'))
    .then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_is_read_from_a_well_formed_traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            traceparent_trace_id(tp),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(traceparent_trace_id("00-0000-01"), None);
        assert_eq!(
            traceparent_trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(traceparent_trace_id(""), None);
    }

    #[test]
    fn nothing_is_produced_while_tracing_is_off() {
        let span = tracing::info_span!("x");
        assert_eq!(traceparent_of(&span), None);
        assert_eq!(trace_id_of(&span), None);
        adopt_parent(&span, Some("garbage"), None);
    }
}
