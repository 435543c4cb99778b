//! SQL shared by both backends: the schema, the idempotent multi-row insert, the filtered
//! select and the grouped totals. SQLite and PostgreSQL both accept `BIGINT`, `BOOLEAN`,
//! `ON CONFLICT DO NOTHING` and window functions, so one text serves both; only the placeholder
//! style differs (see [`Placeholders`]), and the backends differ in how they connect and lock.

mod decode;
pub(crate) mod keys;
mod page;
mod schema;
mod select;

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

use crate::error::StoreError;
use crate::proto::UsageRecord;

pub use page::MAX_PAGE_BYTES;
pub(crate) use page::collect;
pub(crate) use schema::{MIGRATION_APPLIED, MIGRATION_MARK, MIGRATIONS, MIGRATIONS_TABLE};
pub(crate) use select::select;
pub use select::{DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT};

/// Columns written per record, in insert order (the `recorded_ms` column comes last).
const COLUMNS: &str = "request_id, time_ms, api_key_id, requested_group, served_group, \
    deployment, backend_model, prompt_tokens, completion_tokens, tokens_estimated, latency_ms, \
    ttft_ms, streamed, status, http_status, attempts, api";
const COLUMN_COUNT: usize = 17;

/// Records per INSERT statement: 256 × 18 placeholders stays far below both databases' limits.
pub(crate) const INSERT_CHUNK: usize = 256;

/// How parameters are written in SQL text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?, ?, …` in order of appearance (SQLite: its lookup of numbered parameters is linear
    /// per parameter, which made a 4352-parameter insert spend 85% of its time binding).
    Positional,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    I64(i64),
    OptI64(Option<i64>),
    Text(String),
    Bool(bool),
}

/// SQL text with its parameters, which appear in the text in the order of `values`.
#[derive(Debug)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) values: Vec<Value>,
    style: Placeholders,
}

impl Statement {
    fn new(style: Placeholders, sql: String, capacity: usize) -> Self {
        Self {
            sql,
            values: Vec::with_capacity(capacity),
            style,
        }
    }

    /// Adds a parameter; returns its placeholder, which must be placed after all earlier ones.
    fn param(&mut self, value: Value) -> String {
        self.values.push(value);
        match self.style {
            Placeholders::Numbered => format!("${}", self.values.len()),
            Placeholders::Positional => "?".to_owned(),
        }
    }
}

/// The idempotent insert of `records` (at most [`INSERT_CHUNK`], already normalised).
pub(crate) fn insert(
    style: Placeholders,
    records: &[UsageRecord],
    recorded_ms: i64,
) -> Result<Statement, StoreError> {
    let mut st = Statement::new(
        style,
        format!("INSERT INTO usage_records ({COLUMNS}, recorded_ms) VALUES "),
        records.len() * (COLUMN_COUNT + 1),
    );
    for (i, r) in records.iter().enumerate() {
        let attempts = serde_json::to_string(&r.attempts)
            .map_err(|e| StoreError::Corrupt(format!("attempts not encodable: {e}")))?;
        let row = [
            Value::Text(r.request_id.clone()),
            Value::I64(r.time_ms),
            Value::Text(r.api_key_id.clone()),
            Value::Text(r.requested_group.clone()),
            Value::Text(r.served_group.clone()),
            Value::Text(r.deployment.clone()),
            Value::Text(r.backend_model.clone()),
            Value::I64(i64::from(r.prompt_tokens)),
            Value::I64(i64::from(r.completion_tokens)),
            Value::Bool(r.tokens_estimated),
            Value::I64(i64::from(r.latency_ms)),
            Value::OptI64(r.ttft_ms.map(i64::from)),
            Value::Bool(r.streamed),
            Value::Text(r.status.clone()),
            Value::I64(i64::from(r.http_status)),
            Value::Text(attempts),
            Value::Text(r.api.clone()),
            Value::I64(recorded_ms),
        ];
        let placeholders: Vec<String> = row.into_iter().map(|v| st.param(v)).collect();
        if i > 0 {
            st.sql.push(',');
        }
        st.sql.push('(');
        st.sql.push_str(&placeholders.join(","));
        st.sql.push(')');
    }
    st.sql.push_str(" ON CONFLICT (request_id) DO NOTHING");
    Ok(st)
}

/// Binds `values` to `query` in order.
pub(crate) fn bind<'q, DB>(
    mut query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    values: &'q [Value],
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    for v in values {
        query = match v {
            Value::I64(x) => query.bind(*x),
            Value::OptI64(x) => query.bind(*x),
            Value::Text(x) => query.bind(x.as_str()),
            Value::Bool(x) => query.bind(*x),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn insert_numbers_placeholders_across_rows() {
        let recs = vec![
            UsageRecord {
                request_id: "a".into(),
                ..Default::default()
            },
            UsageRecord {
                request_id: "b".into(),
                ..Default::default()
            },
        ];
        let st = insert(Placeholders::Numbered, &recs, 1).unwrap();
        assert_eq!(st.values.len(), 36);
        assert!(st.sql.contains("($19,"));
        assert!(st.sql.ends_with("$36) ON CONFLICT (request_id) DO NOTHING"));
        let st = insert(Placeholders::Positional, &recs, 1).unwrap();
        assert_eq!(st.sql.matches('?').count(), 36);
        assert!(!st.sql.contains('$'));
    }
}
