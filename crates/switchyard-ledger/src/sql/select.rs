//! The query side: filters become parameters, `group_by` becomes a `GROUP BY` with totals and
//! each group's share of all matching requests (a window over the groups, so a `LIMIT` does not
//! change the shares). A listing continues after a cursor (see [`super::page`]); every query
//! asks for one row more than its limit, to tell whether more follow.

use super::page::Cursor;
use super::{COLUMNS, Placeholders, Statement, Value};
use crate::error::StoreError;
use crate::proto::{GroupBy, UsageQuery};

/// Query rows returned when the query says 0, and the most it may ask for (records or groups).
pub const DEFAULT_QUERY_LIMIT: u32 = 1000;
pub const MAX_QUERY_LIMIT: u32 = 10_000;
/// Longest `status` filter: statuses are codes (`ok`, `context_length_exceeded`…).
const MAX_STATUS: usize = 64;
const DAY_MS: i64 = 86_400_000;

/// A validated query.
#[derive(Debug)]
pub(crate) struct QuerySpec {
    group_by: GroupBy,
    statement: Statement,
    limit: usize,
}

impl QuerySpec {
    pub(crate) fn group_by(&self) -> GroupBy {
        self.group_by
    }
    pub(crate) fn statement(&self) -> &Statement {
        &self.statement
    }
    /// Rows in a full page (the statement fetches one more).
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

fn invalid(param: &'static str, message: String) -> StoreError {
    StoreError::InvalidQuery { param, message }
}

/// The query's own checks, before any SQL.
fn check(q: &UsageQuery) -> Result<(GroupBy, Option<Cursor>), StoreError> {
    let group_by = GroupBy::try_from(q.group_by)
        .map_err(|_| invalid("group_by", format!("unknown group_by {}", q.group_by)))?;
    if q.limit > MAX_QUERY_LIMIT {
        return Err(invalid(
            "limit",
            format!(
                "limit {} is above the maximum of {MAX_QUERY_LIMIT} (use the cursor to read further)",
                q.limit
            ),
        ));
    }
    if let (Some(from), Some(to)) = (q.from_ms, q.to_ms)
        && from > to
    {
        return Err(invalid(
            "from_ms",
            format!("from_ms {from} is after to_ms {to}"),
        ));
    }
    if let Some(status) = &q.status
        && (status.is_empty()
            || status.len() > MAX_STATUS
            || !status
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    {
        return Err(invalid(
            "status",
            format!(
                "status must be \"ok\" or an error code (a-z, 0-9, _; at most {MAX_STATUS} bytes)"
            ),
        ));
    }
    let cursor = match q.cursor.as_deref() {
        None => None,
        Some(_) if group_by != GroupBy::None => {
            return Err(invalid(
                "cursor",
                "cursor applies to record listings only, not to grouped totals".to_owned(),
            ));
        }
        Some(c) => Some(Cursor::decode(c)?),
    };
    Ok((group_by, cursor))
}

/// Checks `q` and builds its SQL.
pub(crate) fn select(style: Placeholders, q: &UsageQuery) -> Result<QuerySpec, StoreError> {
    let (group_by, cursor) = check(q)?;
    let limit = if q.limit == 0 {
        DEFAULT_QUERY_LIMIT
    } else {
        q.limit
    };

    let mut st = Statement::new(style, String::new(), 8);
    let mut conditions = Vec::new();
    if let Some(from) = q.from_ms {
        conditions.push(format!("time_ms >= {}", st.param(Value::I64(from))));
    }
    if let Some(to) = q.to_ms {
        conditions.push(format!("time_ms < {}", st.param(Value::I64(to))));
    }
    for (column, value) in [
        ("requested_group", &q.group),
        ("deployment", &q.deployment),
        ("api_key_id", &q.api_key_id),
        ("status", &q.status),
        ("api", &q.api),
    ] {
        if let Some(v) = value {
            conditions.push(format!("{column} = {}", st.param(Value::Text(v.clone()))));
        }
    }
    if let Some(c) = cursor {
        let before = st.param(Value::I64(c.time_ms));
        let same = st.param(Value::I64(c.time_ms));
        let id = st.param(Value::Text(c.request_id));
        conditions.push(format!(
            "(time_ms < {before} OR (time_ms = {same} AND request_id < {id}))"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    // One row more than the page, to know whether another page follows.
    let fetch = st.param(Value::I64(i64::from(limit) + 1));

    st.sql = match group_key(group_by) {
        None => format!(
            "SELECT {COLUMNS} FROM usage_records{filter} \
             ORDER BY time_ms DESC, request_id DESC LIMIT {fetch}"
        ),
        Some(key) => {
            let order = if group_by == GroupBy::Day {
                "k ASC"
            } else {
                "requests DESC, k ASC"
            };
            format!(
                "SELECT {key} AS k, COUNT(*) AS requests, \
                 CAST(SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
                 CAST(SUM(prompt_tokens) AS BIGINT) AS prompt, \
                 CAST(SUM(completion_tokens) AS BIGINT) AS completion, \
                 CAST(SUM(COUNT(*)) OVER () AS BIGINT) AS total \
                 FROM usage_records{filter} GROUP BY {key} ORDER BY {order} LIMIT {fetch}"
            )
        }
    };
    Ok(QuerySpec {
        group_by,
        statement: st,
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    })
}

/// The grouping expression, or `None` for a plain listing.
fn group_key(group_by: GroupBy) -> Option<String> {
    match group_by {
        GroupBy::None => None,
        GroupBy::Model => Some("backend_model".to_owned()),
        GroupBy::Group => Some("requested_group".to_owned()),
        GroupBy::Day => Some(format!("(time_ms / {DAY_MS})")),
        GroupBy::Key => Some("api_key_id".to_owned()),
        GroupBy::Deployment => Some("deployment".to_owned()),
        GroupBy::Api => Some("api".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn select_rejects_bad_queries() {
        let bad_group = UsageQuery {
            group_by: 42,
            ..Default::default()
        };
        let too_many = UsageQuery {
            limit: MAX_QUERY_LIMIT + 1,
            ..Default::default()
        };
        let inverted = UsageQuery {
            from_ms: Some(10),
            to_ms: Some(5),
            ..Default::default()
        };
        let bad_status = UsageQuery {
            status: Some("OK; --".into()),
            ..Default::default()
        };
        let grouped_cursor = UsageQuery {
            group_by: GroupBy::Model as i32,
            cursor: Some("31".into()),
            ..Default::default()
        };
        let bad_cursor = UsageQuery {
            cursor: Some("nonsense".into()),
            ..Default::default()
        };
        for (q, want) in [
            (bad_group, "group_by"),
            (too_many, "limit"),
            (inverted, "from_ms"),
            (bad_status, "status"),
            (grouped_cursor, "cursor"),
            (bad_cursor, "cursor"),
        ] {
            match select(Placeholders::Numbered, &q) {
                Err(StoreError::InvalidQuery { param, .. }) => assert_eq!(param, want, "{q:?}"),
                other => panic!("{q:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_cursor_continues_after_its_record_and_fetches_one_more() {
        let cursor = Cursor {
            time_ms: 7,
            request_id: "r".into(),
        };
        let q = UsageQuery {
            limit: 10,
            cursor: Some(cursor.encode()),
            ..Default::default()
        };
        let spec = select(Placeholders::Numbered, &q).unwrap();
        assert!(
            spec.statement()
                .sql
                .contains("(time_ms < $1 OR (time_ms = $2 AND request_id < $3))")
        );
        assert_eq!(spec.statement().values[3], Value::I64(11));
        assert_eq!(spec.limit(), 10);
    }

    #[test]
    fn select_filters_are_parameters_not_text() {
        let q = UsageQuery {
            api_key_id: Some("k'; DROP TABLE usage_records; --".into()),
            group_by: GroupBy::Key as i32,
            ..Default::default()
        };
        let spec = select(Placeholders::Positional, &q).unwrap();
        assert!(!spec.statement().sql.contains("DROP"));
        assert_eq!(spec.statement().values.len(), 2);
    }
}
