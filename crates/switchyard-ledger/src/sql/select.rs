//! The query side: filters become parameters, `group_by` becomes a `GROUP BY` with totals and
//! each group's share of all matching requests (a window over the groups, so a `LIMIT` does not
//! change the shares).

use super::{COLUMNS, Placeholders, Statement, Value};
use crate::error::StoreError;
use crate::proto::{GroupBy, UsageQuery};

/// Query rows returned when the query says 0, and the most it may ask for.
const DEFAULT_LIMIT: u32 = 1000;
const MAX_LIMIT: u32 = 100_000;
const DAY_MS: i64 = 86_400_000;

/// A validated query.
#[derive(Debug)]
pub(crate) struct QuerySpec {
    group_by: GroupBy,
    statement: Statement,
}

impl QuerySpec {
    pub(crate) fn group_by(&self) -> GroupBy {
        self.group_by
    }
    pub(crate) fn statement(&self) -> &Statement {
        &self.statement
    }
}

/// Checks `q` and builds its SQL.
pub(crate) fn select(style: Placeholders, q: &UsageQuery) -> Result<QuerySpec, StoreError> {
    let group_by = GroupBy::try_from(q.group_by)
        .map_err(|_| StoreError::InvalidQuery(format!("unknown group_by {}", q.group_by)))?;
    if q.limit > MAX_LIMIT {
        return Err(StoreError::InvalidQuery(format!(
            "limit {} is above the maximum of {MAX_LIMIT}",
            q.limit
        )));
    }
    if let (Some(from), Some(to)) = (q.from_ms, q.to_ms)
        && from > to
    {
        return Err(StoreError::InvalidQuery(format!(
            "from_ms {from} is after to_ms {to}"
        )));
    }
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };

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
    ] {
        if let Some(v) = value {
            conditions.push(format!("{column} = {}", st.param(Value::Text(v.clone()))));
        }
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let limit = st.param(Value::I64(i64::from(limit)));

    st.sql = match group_key(group_by) {
        None => format!(
            "SELECT {COLUMNS} FROM usage_records{filter} \
             ORDER BY time_ms DESC, request_id DESC LIMIT {limit}"
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
                 FROM usage_records{filter} GROUP BY {key} ORDER BY {order} LIMIT {limit}"
            )
        }
    };
    Ok(QuerySpec {
        group_by,
        statement: st,
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
        assert!(matches!(
            select(Placeholders::Numbered, &bad_group),
            Err(StoreError::InvalidQuery(_))
        ));
        let too_many = UsageQuery {
            limit: MAX_LIMIT + 1,
            ..Default::default()
        };
        assert!(matches!(
            select(Placeholders::Numbered, &too_many),
            Err(StoreError::InvalidQuery(_))
        ));
        let inverted = UsageQuery {
            from_ms: Some(10),
            to_ms: Some(5),
            ..Default::default()
        };
        assert!(matches!(
            select(Placeholders::Numbered, &inverted),
            Err(StoreError::InvalidQuery(_))
        ));
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
