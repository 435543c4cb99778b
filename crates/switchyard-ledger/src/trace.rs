//! The ledger's part of a request's trace: one `ledger.write` span per record that carries a
//! `traceparent`, open while its batch is written. Nothing is created when tracing is off.

use tracing::Span;

use crate::proto::UsageRecord;

/// Spans for the records of a batch about to be written; drop them when the write is done.
pub(crate) fn write_spans(records: &[UsageRecord]) -> Vec<Span> {
    if !switchyard_telemetry::enabled() {
        return Vec::new();
    }
    records
        .iter()
        .filter_map(|r| {
            let tp = r.traceparent.as_deref()?;
            let span = tracing::info_span!(
                "ledger.write",
                otel.name = "ledger.write",
                otel.kind = "internal",
                "db.operation.name" = "INSERT",
                "db.collection.name" = "requests",
                "switchyard.request_id" = %r.request_id,
                "switchyard.batch_size" = records.len(),
                "gen_ai.usage.input_tokens" = r.prompt_tokens,
                "gen_ai.usage.output_tokens" = r.completion_tokens,
            );
            switchyard_telemetry::adopt_parent(&span, Some(tp), None);
            Some(span)
        })
        .collect()
}
