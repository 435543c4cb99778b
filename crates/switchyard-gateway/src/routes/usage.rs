//! `GET /v1/usage` and `GET /v1/usage/summary`: the usage ledger, queryable by the user.
//!
//! The summary answers the question the product exists for — which share of the work each model
//! served, and how many tokens — so a user can see which tasks could stay on the small model.
//!
//! Listings come one bounded page at a time (at most `limit` ≤ 10000 records and 8 MiB, see
//! [`switchyard_ledger::MAX_QUERY_LIMIT`]): the answer says `has_more` and gives `next_cursor`
//! (CSV: the `x-has-more` and `x-next-cursor` headers) to pass as `cursor` for the next page.
//! The page is encoded as it is sent, a few hundred records at a time, so a query holds one page
//! of records and one chunk of text. A bad parameter is the caller's mistake (400 naming it);
//! only a ledger that does not answer is 503.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use switchyard_ledger::{
    GroupBy, MAX_QUERY_LIMIT, QueryError, UsageAggregate, UsageQuery, UsageQueryResponse,
    UsageRecord,
};

use crate::AppState;
use crate::error::ApiError;

/// Records encoded per chunk of the response body.
const CHUNK: usize = 256;

fn group_by(s: Option<&str>) -> Result<GroupBy, ApiError> {
    Ok(match s.unwrap_or("none") {
        "none" | "" => GroupBy::None,
        "model" => GroupBy::Model,
        "group" => GroupBy::Group,
        "day" => GroupBy::Day,
        "key" => GroupBy::Key,
        "deployment" => GroupBy::Deployment,
        "api" => GroupBy::Api,
        other => {
            return Err(ApiError::invalid(
                format!(
                    "group_by must be one of none, model, group, day, key, deployment, api; got {other}"
                ),
                Some("group_by"),
            ));
        }
    })
}

fn int(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    format!("{name} must be a whole number (unix milliseconds)"),
                    Some(name),
                )
            })
        })
        .transpose()
}

/// `limit`, when given, is 1..=10000 (the ledger's own default applies when it is absent).
/// Above the maximum the ledger refuses it, the same for every caller.
fn limit(p: &HashMap<String, String>) -> Result<u32, ApiError> {
    let Some(v) = p.get("limit") else {
        return Ok(0);
    };
    match v.parse::<u32>() {
        Ok(0) | Err(_) => Err(ApiError::invalid(
            format!("limit must be a whole number from 1 to {MAX_QUERY_LIMIT}; got {v}"),
            Some("limit"),
        )),
        Ok(n) => Ok(n),
    }
}

fn build_query(p: &HashMap<String, String>) -> Result<UsageQuery, ApiError> {
    Ok(UsageQuery {
        from_ms: int(p, "from")?,
        to_ms: int(p, "to")?,
        group: p.get("group").cloned(),
        deployment: p.get("deployment").cloned(),
        api_key_id: p.get("key").cloned(),
        status: p.get("status").cloned(),
        group_by: group_by(p.get("group_by").map(String::as_str))? as i32,
        limit: limit(p)?,
        cursor: p.get("cursor").cloned(),
        api: p.get("api").cloned(),
    })
}

/// `format=json` (the default) or `format=csv`.
fn is_csv(p: &HashMap<String, String>) -> Result<bool, ApiError> {
    match p.get("format").map(String::as_str) {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            format!("format must be json or csv; got {other}"),
            Some("format"),
        )),
    }
}

/// The query parameter a ledger field comes from.
fn http_param(field: &str) -> &str {
    match field {
        "from_ms" => "from",
        "to_ms" => "to",
        "api_key_id" => "key",
        other => other,
    }
}

fn ledger_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Invalid { param, message } => {
            let param = (!param.is_empty()).then(|| http_param(&param));
            ApiError::invalid(message, param)
        }
        QueryError::Unavailable(detail) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "api_error",
            code: "ledger_unavailable".into(),
            message: format!("the usage ledger did not answer: {detail}"),
            param: None,
        },
    }
}

#[derive(Serialize)]
struct RecordOut<'a> {
    request_id: &'a str,
    time_ms: i64,
    api_key_id: &'a str,
    requested_group: &'a str,
    served_group: &'a str,
    deployment: &'a str,
    backend_model: &'a str,
    prompt_tokens: u32,
    completion_tokens: u32,
    tokens_estimated: bool,
    latency_ms: u32,
    ttft_ms: Option<u32>,
    streamed: bool,
    status: &'a str,
    http_status: u32,
    attempts: Vec<AttemptOut<'a>>,
    /// The client API the request came through (`openai.chat`, `ollama.chat`…).
    api: &'a str,
}

#[derive(Serialize)]
struct AttemptOut<'a> {
    deployment: &'a str,
    failure_class: &'a str,
    message: &'a str,
    prompt_tokens: u32,
    completion_tokens: u32,
}

impl<'a> From<&'a UsageRecord> for RecordOut<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        RecordOut {
            request_id: &r.request_id,
            time_ms: r.time_ms,
            api_key_id: &r.api_key_id,
            requested_group: &r.requested_group,
            served_group: &r.served_group,
            deployment: &r.deployment,
            backend_model: &r.backend_model,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            tokens_estimated: r.tokens_estimated,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            streamed: r.streamed,
            status: &r.status,
            http_status: r.http_status,
            attempts: r
                .attempts
                .iter()
                .map(|a| AttemptOut {
                    deployment: &a.deployment,
                    failure_class: &a.failure_class,
                    message: &a.message,
                    prompt_tokens: a.prompt_tokens,
                    completion_tokens: a.completion_tokens,
                })
                .collect(),
            api: &r.api,
        }
    }
}

fn aggregate_json(a: &UsageAggregate) -> Value {
    json!({
        "key": a.key, "requests": a.requests, "failed_requests": a.failed_requests,
        "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
        "share_of_requests": a.share_of_requests,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

const CSV_RECORDS: &str = "request_id,time_ms,api_key_id,requested_group,served_group,deployment,backend_model,prompt_tokens,completion_tokens,tokens_estimated,latency_ms,ttft_ms,streamed,status,http_status,attempts,api\n";
const CSV_AGGREGATES: &str =
    "key,requests,failed_requests,prompt_tokens,completion_tokens,share_of_requests\n";

fn csv_record(out: &mut Vec<u8>, r: &UsageRecord) {
    let row = [
        csv_field(&r.request_id),
        r.time_ms.to_string(),
        csv_field(&r.api_key_id),
        csv_field(&r.requested_group),
        csv_field(&r.served_group),
        csv_field(&r.deployment),
        csv_field(&r.backend_model),
        r.prompt_tokens.to_string(),
        r.completion_tokens.to_string(),
        r.tokens_estimated.to_string(),
        r.latency_ms.to_string(),
        r.ttft_ms.map(|t| t.to_string()).unwrap_or_default(),
        r.streamed.to_string(),
        csv_field(&r.status),
        r.http_status.to_string(),
        r.attempts.len().to_string(),
        csv_field(&r.api),
    ];
    out.extend_from_slice(row.join(",").as_bytes());
    out.push(b'\n');
}

fn csv_aggregate(out: &mut Vec<u8>, a: &UsageAggregate) {
    out.extend_from_slice(
        format!(
            "{},{},{},{},{},{:.6}\n",
            csv_field(&a.key),
            a.requests,
            a.failed_requests,
            a.prompt_tokens,
            a.completion_tokens,
            a.share_of_requests
        )
        .as_bytes(),
    );
}

/// A body of `head`, then `items` encoded by `write` [`CHUNK`] at a time as the client reads,
/// then `tail`. Each item is dropped once encoded.
fn chunked<T: Send + 'static>(
    head: Vec<u8>,
    items: Vec<T>,
    tail: Vec<u8>,
    mut write: impl FnMut(&mut Vec<u8>, usize, T) + Send + 'static,
) -> Body {
    let mut items = items.into_iter().enumerate();
    let middle = std::iter::from_fn(move || {
        let mut buf = Vec::new();
        for (i, item) in items.by_ref().take(CHUNK) {
            write(&mut buf, i, item);
        }
        (!buf.is_empty()).then_some(buf)
    });
    let parts = std::iter::once(head)
        .chain(middle)
        .chain(std::iter::once(tail))
        .map(|b| Ok::<_, Infallible>(axum::body::Bytes::from(b)));
    Body::from_stream(futures::stream::iter(parts))
}

/// The JSON list of one page of records.
fn json_records(resp: UsageQueryResponse) -> Body {
    let next = (!resp.next_cursor.is_empty()).then_some(resp.next_cursor);
    let tail = format!(
        "],\"has_more\":{},\"next_cursor\":{}}}",
        resp.has_more,
        serde_json::to_string(&next).unwrap_or_else(|_| "null".into())
    );
    chunked(
        b"{\"object\":\"list\",\"data\":[".to_vec(),
        resp.records,
        tail.into_bytes(),
        |buf, i, r| {
            if i > 0 {
                buf.push(b',');
            }
            // Writing to a Vec fails only if serialisation does, which borrowed strings and
            // numbers cannot.
            let _ = serde_json::to_writer(&mut *buf, &RecordOut::from(&r));
        },
    )
}

fn csv_body(resp: UsageQueryResponse, listing: bool) -> Body {
    if listing {
        chunked(CSV_RECORDS.into(), resp.records, Vec::new(), |buf, _, r| {
            csv_record(buf, &r)
        })
    } else {
        chunked(
            CSV_AGGREGATES.into(),
            resp.aggregates,
            Vec::new(),
            |buf, _, a| csv_aggregate(buf, &a),
        )
    }
}

async fn run(state: &AppState, q: UsageQuery) -> Result<UsageQueryResponse, ApiError> {
    let Some(usage) = &state.usage else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "api_error",
            code: "ledger_unavailable".into(),
            message: "this gateway has no usage ledger configured".into(),
            param: None,
        });
    };
    usage.query(q).await.map_err(ledger_error)
}

/// `GET /v1/usage?from=&to=&group=&deployment=&key=&status=&api=&group_by=&limit=&cursor=&format=json|csv`
pub async fn usage(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = build_query(&p)?;
    let csv = is_csv(&p)?;
    let listing = q.group_by == GroupBy::None as i32;
    let resp = run(&state, q).await?;
    if csv {
        let has_more = HeaderValue::from_static(if resp.has_more { "true" } else { "false" });
        let next = HeaderValue::from_str(&resp.next_cursor).ok();
        let mut response = (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv_body(resp, listing),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert("x-has-more", has_more);
        if let Some(next) = next.filter(|v| !v.is_empty()) {
            headers.insert("x-next-cursor", next);
        }
        return Ok(response);
    }
    if listing {
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            json_records(resp),
        )
            .into_response());
    }
    Ok(Json(json!({
        "object": "list",
        "data": resp.aggregates.iter().map(aggregate_json).collect::<Vec<_>>(),
        "has_more": resp.has_more,
        "next_cursor": null,
    }))
    .into_response())
}

/// `GET /v1/usage/summary`: per model, its share of requests and its tokens.
pub async fn summary(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut q = build_query(&p)?;
    q.group_by = GroupBy::Model as i32;
    let resp = run(&state, q).await?;
    let total: u64 = resp.aggregates.iter().map(|a| a.requests).sum();
    Ok(Json(json!({
        "requests": total,
        "models": resp.aggregates.iter().map(|a| json!({
            "model": a.key,
            "requests": a.requests,
            "share_of_requests": a.share_of_requests,
            "failed_requests": a.failed_requests,
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
        })).collect::<Vec<_>>(),
    })))
}
