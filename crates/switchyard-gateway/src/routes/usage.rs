//! `GET /v1/usage` and `GET /v1/usage/summary`: the usage ledger, queryable by the user.
//!
//! The summary answers the question the product exists for — which share of the work each model
//! served, and how many tokens — so a user can see which tasks could stay on the small model.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_ledger::{GroupBy, UsageAggregate, UsageQuery, UsageRecord};

use crate::AppState;
use crate::error::ApiError;

fn group_by(s: Option<&str>) -> Result<GroupBy, ApiError> {
    Ok(match s.unwrap_or("none") {
        "none" | "" => GroupBy::None,
        "model" => GroupBy::Model,
        "group" => GroupBy::Group,
        "day" => GroupBy::Day,
        "key" => GroupBy::Key,
        "deployment" => GroupBy::Deployment,
        other => {
            return Err(ApiError::invalid(
                format!(
                    "group_by must be one of none, model, group, day, key, deployment; got {other}"
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

fn build_query(p: &HashMap<String, String>) -> Result<UsageQuery, ApiError> {
    let limit = p
        .get("limit")
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| ApiError::invalid("limit must be a whole number", Some("limit")))
        })
        .transpose()?
        .unwrap_or(0);
    Ok(UsageQuery {
        from_ms: int(p, "from")?,
        to_ms: int(p, "to")?,
        group: p.get("group").cloned(),
        deployment: p.get("deployment").cloned(),
        api_key_id: p.get("key").cloned(),
        status: p.get("status").cloned(),
        group_by: group_by(p.get("group_by").map(String::as_str))? as i32,
        limit,
    })
}

fn record_json(r: &UsageRecord) -> Value {
    json!({
        "request_id": r.request_id, "time_ms": r.time_ms, "api_key_id": r.api_key_id,
        "requested_group": r.requested_group, "served_group": r.served_group,
        "deployment": r.deployment, "backend_model": r.backend_model,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "tokens_estimated": r.tokens_estimated, "latency_ms": r.latency_ms, "ttft_ms": r.ttft_ms,
        "streamed": r.streamed, "status": r.status, "http_status": r.http_status,
        "attempts": r.attempts.iter().map(|a| json!({
            "deployment": a.deployment, "failure_class": a.failure_class, "message": a.message,
            "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
        })).collect::<Vec<_>>(),
    })
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

fn csv(records: &[UsageRecord], aggregates: &[UsageAggregate]) -> String {
    let mut out = String::new();
    if aggregates.is_empty() {
        out.push_str("request_id,time_ms,api_key_id,requested_group,served_group,deployment,backend_model,prompt_tokens,completion_tokens,tokens_estimated,latency_ms,ttft_ms,streamed,status,http_status,attempts\n");
        for r in records {
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
            ];
            out.push_str(&row.join(","));
            out.push('\n');
        }
    } else {
        out.push_str(
            "key,requests,failed_requests,prompt_tokens,completion_tokens,share_of_requests\n",
        );
        for a in aggregates {
            out.push_str(&format!(
                "{},{},{},{},{},{:.6}\n",
                csv_field(&a.key),
                a.requests,
                a.failed_requests,
                a.prompt_tokens,
                a.completion_tokens,
                a.share_of_requests
            ));
        }
    }
    out
}

async fn run(
    state: &AppState,
    q: UsageQuery,
) -> Result<switchyard_ledger::UsageQueryResponse, ApiError> {
    let Some(usage) = &state.usage else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "api_error",
            code: "ledger_unavailable".into(),
            message: "this gateway has no usage ledger configured".into(),
            param: None,
        });
    };
    usage.query(q).await.map_err(|e| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "api_error",
        code: "ledger_unavailable".into(),
        message: format!("the usage ledger did not answer: {e}"),
        param: None,
    })
}

/// `GET /v1/usage?from=&to=&group=&deployment=&key=&status=&group_by=&limit=&format=json|csv`
pub async fn usage(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = build_query(&p)?;
    let resp = run(&state, q).await?;
    if p.get("format").map(String::as_str) == Some("csv") {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv(&resp.records, &resp.aggregates),
        )
            .into_response());
    }
    let body = if resp.aggregates.is_empty() && p.get("group_by").is_none_or(|g| g == "none") {
        json!({"object": "list", "data": resp.records.iter().map(record_json).collect::<Vec<_>>()})
    } else {
        json!({"object": "list", "data": resp.aggregates.iter().map(aggregate_json).collect::<Vec<_>>()})
    };
    Ok(Json(body).into_response())
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
