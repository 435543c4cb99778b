//! Turns fetched rows back into records and totals, generically over the backend's row type.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::days::iso_date;
use crate::error::StoreError;
use crate::proto::{Attempt, GroupBy, UsageAggregate, UsageRecord};

/// Decodes one row of a plain listing.
pub(crate) fn decode_record<R>(row: &R) -> Result<UsageRecord, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let attempts: String = row.try_get(15)?;
    let attempts: Vec<Attempt> = serde_json::from_str(&attempts)
        .map_err(|e| StoreError::Corrupt(format!("attempts column is not valid JSON: {e}")))?;
    Ok(UsageRecord {
        request_id: row.try_get(0)?,
        time_ms: row.try_get(1)?,
        api_key_id: row.try_get(2)?,
        requested_group: row.try_get(3)?,
        served_group: row.try_get(4)?,
        deployment: row.try_get(5)?,
        backend_model: row.try_get(6)?,
        prompt_tokens: to_u32(row.try_get(7)?, "prompt_tokens")?,
        completion_tokens: to_u32(row.try_get(8)?, "completion_tokens")?,
        tokens_estimated: row.try_get(9)?,
        latency_ms: to_u32(row.try_get(10)?, "latency_ms")?,
        ttft_ms: row
            .try_get::<Option<i64>, _>(11)?
            .map(|v| to_u32(v, "ttft_ms"))
            .transpose()?,
        streamed: row.try_get(12)?,
        status: row.try_get(13)?,
        http_status: to_u32(row.try_get(14)?, "http_status")?,
        attempts,
        // Trace context is not stored.
        traceparent: None,
        api: row.try_get(16)?,
    })
}

/// Decodes one row of grouped totals.
pub(crate) fn decode_aggregate<R>(row: &R, group_by: GroupBy) -> Result<UsageAggregate, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let key = if group_by == GroupBy::Day {
        iso_date(row.try_get::<i64, _>(0)?)
    } else {
        row.try_get(0)?
    };
    let requests = to_u64(row.try_get(1)?);
    let total = to_u64(row.try_get(5)?);
    #[allow(clippy::cast_precision_loss)] // a share needs no more than f64's 53 bits
    let share = if total == 0 {
        0.0
    } else {
        requests as f64 / total as f64
    };
    Ok(UsageAggregate {
        key,
        requests,
        failed_requests: to_u64(row.try_get(2)?),
        prompt_tokens: to_u64(row.try_get(3)?),
        completion_tokens: to_u64(row.try_get(4)?),
        share_of_requests: share,
    })
}

fn to_u32(v: i64, column: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} = {v} is out of range")))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
