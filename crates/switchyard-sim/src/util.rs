//! Small helpers shared by the flavors: timestamps, stable fake digests and sizes, embeddings,
//! and framing of NDJSON lines and SSE events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value;

use crate::tokens::fnv1a;

/// Seconds since the Unix epoch.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// RFC 3339 UTC timestamp with Go's trimmed fractional seconds, e.g. `2025-10-26T17:21:21.196249Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut frac = format!(".{:09}", d.subsec_nanos());
    while frac.ends_with('0') {
        frac.pop();
    }
    if frac == "." {
        frac.clear();
    }
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{frac}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Now, formatted for `created_at`.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A stable 64-hex-digit digest for a model name.
pub(crate) fn digest(name: &str) -> String {
    (0u8..4)
        .map(|i| {
            let mut b = name.as_bytes().to_vec();
            b.push(i);
            format!("{:016x}", fnv1a(&b))
        })
        .collect()
}

/// A stable plausible file size (bytes) for a model name.
pub(crate) fn model_size(name: &str) -> u64 {
    700_000_000 + fnv1a(name.as_bytes()) % 4_000_000_000
}

/// A deterministic unit-length 8-dimensional embedding of `text`.
pub(crate) fn embedding(text: &str) -> Vec<f32> {
    let base = fnv1a(text.as_bytes());
    let raw: Vec<f64> = (0u64..8)
        .map(|i| {
            let h = fnv1a(&(base ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
            #[allow(clippy::cast_precision_loss)]
            let x = (h % 2_000_001) as f64 / 1_000_000.0 - 1.0;
            x
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
    #[allow(clippy::cast_possible_truncation)]
    raw.iter().map(|x| (x / norm) as f32).collect()
}

/// Nanoseconds as u64.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One NDJSON line.
pub(crate) fn ndjson(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// One SSE `data:` event.
pub(crate) fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// The SSE end marker.
pub(crate) fn sse_done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        let t = UNIX_EPOCH + Duration::new(1_761_499_281, 196_249_000);
        assert_eq!(rfc3339(t), "2025-10-26T17:21:21.196249Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
