//! One page of a query's answer, and the cursor to the next: a listing is read in the select's
//! order (newest first, then `request_id` descending, which is a total order since ids are
//! unique), so the last record of a page — its `(time_ms, request_id)` — is where the next page
//! starts (keyset pagination: no offset to skip, no record seen twice or missed while new ones
//! arrive). Rows are decoded as they stream from the database and the page stops at the
//! limit or at [`MAX_PAGE_BYTES`], so a query never holds more than one page in memory.

use futures::{Stream, TryStreamExt};
use prost::Message;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::decode::{decode_aggregate, decode_record};
use super::select::QuerySpec;
use crate::error::StoreError;
use crate::proto::{GroupBy, UsageQueryResponse};
use crate::validate::MAX_REQUEST_ID;

/// A page stops growing once its records' encoded size reaches this (16 MiB is what a gateway
/// accepts in one gRPC message, so a page always fits).
pub const MAX_PAGE_BYTES: usize = 8 << 20;

const CURSOR_VERSION: &str = "1";

/// Where a listing's next page starts: strictly after this record in the listing's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) time_ms: i64,
    pub(crate) request_id: String,
}

impl Cursor {
    /// The opaque form handed to clients: hex of `1:TIME_MS:REQUEST_ID`.
    pub(crate) fn encode(&self) -> String {
        let plain = format!("{CURSOR_VERSION}:{}:{}", self.time_ms, self.request_id);
        plain.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a cursor made by [`Cursor::encode`].
    pub(crate) fn decode(s: &str) -> Result<Cursor, StoreError> {
        let invalid = || StoreError::InvalidQuery {
            param: "cursor",
            message: "cursor is not one this ledger handed out (pass next_cursor unchanged)"
                .to_owned(),
        };
        if s.is_empty() || !s.len().is_multiple_of(2) || s.len() > 2 * (MAX_REQUEST_ID + 32) {
            return Err(invalid());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)?;
        let plain = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = plain.splitn(3, ':');
        let (Some(CURSOR_VERSION), Some(time), Some(id)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let time_ms = time.parse().map_err(|_| invalid())?;
        if id.is_empty() {
            return Err(invalid());
        }
        Ok(Cursor {
            time_ms,
            request_id: id.to_owned(),
        })
    }
}

/// Reads one page of `spec`'s rows from `rows` (which holds at most one row more than the
/// limit) and stops reading as soon as the page is full.
pub(crate) async fn collect<R, S>(
    mut rows: S,
    spec: &QuerySpec,
) -> Result<UsageQueryResponse, StoreError>
where
    S: Stream<Item = Result<R, sqlx::Error>> + Unpin,
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut out = UsageQueryResponse::default();
    let mut bytes = 0usize;
    let mut taken = 0usize;
    while let Some(row) = rows.try_next().await? {
        if taken == spec.limit() || bytes >= MAX_PAGE_BYTES {
            out.has_more = true;
            break;
        }
        taken += 1;
        if spec.group_by() == GroupBy::None {
            let record = decode_record(&row)?;
            bytes += record.encoded_len();
            out.records.push(record);
        } else {
            let aggregate = decode_aggregate(&row, spec.group_by())?;
            bytes += aggregate.encoded_len();
            out.aggregates.push(aggregate);
        }
    }
    if out.has_more
        && let Some(last) = out.records.last()
    {
        out.next_cursor = Cursor {
            time_ms: last.time_ms,
            request_id: last.request_id.clone(),
        }
        .encode();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            time_ms: -5,
            request_id: "0190:ab é".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "z1", "abc", "313a", "323a313a78", &"31".repeat(400)] {
            assert!(
                matches!(
                    Cursor::decode(bad),
                    Err(StoreError::InvalidQuery {
                        param: "cursor",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
