//! What the ledger accepts: records must carry an idempotency key; over-long strings are cut
//! rather than refused, so a chatty error message never costs a usage record.

use crate::proto::UsageRecord;

/// Longest accepted `request_id`, in bytes.
pub(crate) const MAX_REQUEST_ID: usize = 128;
/// Identifiers, group names and status codes are cut to this many bytes.
pub(crate) const MAX_LABEL: usize = 256;
/// Attempt messages are cut to this many bytes.
pub(crate) const MAX_MESSAGE: usize = 1024;
/// API names (`openai.chat`, `ollama.generate`, `anthropic.messages`) are cut to this many bytes.
pub(crate) const MAX_API: usize = 64;
/// What an empty `api` means (the proto's rule): the API every request used before it existed.
pub(crate) const DEFAULT_API: &str = "openai.chat";

/// Checks and normalises one record; `Err` carries the reason it is refused.
pub(crate) fn normalise(record: &UsageRecord) -> Result<UsageRecord, String> {
    if record.request_id.is_empty() {
        return Err("request_id is empty".to_owned());
    }
    if record.request_id.len() > MAX_REQUEST_ID {
        return Err(format!("request_id is longer than {MAX_REQUEST_ID} bytes"));
    }
    let mut out = record.clone();
    trim(&mut out);
    if out.api.is_empty() {
        DEFAULT_API.clone_into(&mut out.api);
    }
    Ok(out)
}

/// Cuts over-long strings of `record` in place (the recorder does this before queuing, so a
/// huge error message cannot make a batch too big to send).
pub(crate) fn trim(record: &mut UsageRecord) {
    for field in [
        &mut record.api_key_id,
        &mut record.requested_group,
        &mut record.served_group,
        &mut record.deployment,
        &mut record.backend_model,
        &mut record.status,
    ] {
        cut(field, MAX_LABEL);
    }
    cut(&mut record.api, MAX_API);
    for attempt in &mut record.attempts {
        cut(&mut attempt.deployment, MAX_LABEL);
        cut(&mut attempt.failure_class, MAX_LABEL);
        cut(&mut attempt.message, MAX_MESSAGE);
    }
}

/// Truncates `s` to at most `max` bytes, on a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::proto::Attempt;

    #[test]
    fn refuses_missing_or_long_ids() {
        assert!(normalise(&UsageRecord::default()).is_err());
        let long = UsageRecord {
            request_id: "x".repeat(129),
            ..Default::default()
        };
        assert!(normalise(&long).is_err());
    }

    #[test]
    fn cuts_long_strings_on_char_boundaries() {
        let rec = UsageRecord {
            request_id: "r".into(),
            status: "é".repeat(200),
            attempts: vec![Attempt {
                message: "ü".repeat(1000),
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = normalise(&rec).unwrap();
        assert_eq!(out.status.len(), 256);
        assert!(out.attempts[0].message.len() <= MAX_MESSAGE);
        assert!(out.attempts[0].message.len() >= MAX_MESSAGE - 1);
    }

    #[test]
    fn api_defaults_to_openai_chat_and_is_kept_short() {
        let rec = UsageRecord {
            request_id: "r".into(),
            ..Default::default()
        };
        assert_eq!(normalise(&rec).unwrap().api, "openai.chat");
        let named = UsageRecord {
            api: "ollama.generate".into(),
            ..rec.clone()
        };
        assert_eq!(normalise(&named).unwrap().api, "ollama.generate");
        let long = UsageRecord {
            api: "a".repeat(300),
            ..rec
        };
        assert_eq!(normalise(&long).unwrap().api.len(), MAX_API);
    }
}
