//! The usage page: each model's share of requests and tokens (all time and per day, as SVG
//! charts), usage per day and per key, and CSV exports. Every figure comes from the usage
//! ledger's querier, as `/v1/usage` and `/v1/usage/summary` give it.

use axum::extract::State;
use axum::response::Response;
use switchyard_ledger::{GroupBy, UsageAggregate, UsageQuery};

use super::chart::{self, Column};
use super::html::{self, esc};
use crate::AppState;

/// Days in the per-day chart.
const DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;

async fn aggregates(
    state: &AppState,
    by: GroupBy,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<UsageAggregate>, String> {
    let Some(usage) = &state.usage else {
        return Err("this gateway has no usage ledger".into());
    };
    usage
        .query(UsageQuery {
            group_by: by as i32,
            from_ms: from,
            to_ms: to,
            ..Default::default()
        })
        .await
        .map(|r| r.aggregates)
        .map_err(|e| e.to_string())
}

fn tokens(a: &UsageAggregate) -> f64 {
    (a.prompt_tokens + a.completion_tokens) as f64
}

fn table(caption: &str, first: &str, rows: &[UsageAggregate], id: &str) -> String {
    let body: String = rows
        .iter()
        .map(|a| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(if a.key.is_empty() { "(none)" } else { &a.key }),
                a.requests,
                a.share_of_requests * 100.0,
                a.failed_requests,
                a.prompt_tokens,
                a.completion_tokens
            )
        })
        .collect();
    format!(
        "<div class=\"scroll\"><table id=\"{id}\"><caption>{caption}</caption><thead><tr>\
         <th scope=\"col\">{first}</th><th scope=\"col\">Requests</th><th scope=\"col\">Share</th>\
         <th scope=\"col\">Failed</th><th scope=\"col\">Prompt tokens</th>\
         <th scope=\"col\">Completion tokens</th></tr></thead><tbody>{body}</tbody></table></div>"
    )
}

fn day_label(start_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(start_ms).unwrap_or(0));
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(5..10).unwrap_or(&s).to_owned()
}

/// `GET /ui/usage`
pub(super) async fn page(State(state): State<AppState>) -> Response {
    let body = match render(&state).await {
        Ok(b) => b,
        Err(e) => format!(
            "<p class=\"error\" role=\"alert\">The ledger did not answer: {}</p>",
            esc(&e)
        ),
    };
    html::page("Usage", "/ui/usage", &body)
}

async fn render(state: &AppState) -> Result<String, String> {
    let models = aggregates(state, GroupBy::Model, None, None).await?;
    let series: Vec<String> = models.iter().map(|a| a.key.clone()).collect();
    let index = |k: &str| series.iter().position(|s| s == k);
    let requests: Vec<(usize, String, f64)> = models
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a.key.clone(), a.requests as f64))
        .collect();
    let token_parts: Vec<(usize, String, f64)> = models
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a.key.clone(), tokens(a)))
        .collect();
    let today = crate::keys::now_ms().div_euclid(DAY_MS) * DAY_MS;
    let mut req_cols = Vec::new();
    let mut tok_cols = Vec::new();
    for d in (0..DAYS).rev() {
        let from = today - d * DAY_MS;
        let per = aggregates(state, GroupBy::Model, Some(from), Some(from + DAY_MS)).await?;
        let label = day_label(from);
        req_cols.push(Column {
            label: label.clone(),
            values: per
                .iter()
                .filter_map(|a| Some((index(&a.key)?, a.requests as f64)))
                .collect(),
        });
        tok_cols.push(Column {
            label,
            values: per
                .iter()
                .filter_map(|a| Some((index(&a.key)?, tokens(a))))
                .collect(),
        });
    }
    let days = aggregates(state, GroupBy::Day, None, None).await?;
    let keys = aggregates(state, GroupBy::Key, None, None).await?;
    let total: u64 = models.iter().map(|a| a.requests).sum();
    Ok(format!(
        "<p class=\"hint\">{total} requests recorded. Shares are of requests served by each model.</p>\
         <section aria-labelledby=\"h-share\"><h2 id=\"h-share\">Share of requests, all time</h2>\
         <div id=\"share-requests\">{req_bar}</div></section>\
         <section aria-labelledby=\"h-tshare\"><h2 id=\"h-tshare\">Share of tokens, all time</h2>\
         <div id=\"share-tokens\">{tok_bar}</div></section>\
         <section aria-labelledby=\"h-days\"><h2 id=\"h-days\">Per day, last {DAYS} days (UTC)</h2>{legend}\
         <div class=\"charts\"><figure>{req_days}<figcaption>Requests</figcaption></figure>\
         <figure>{tok_days}<figcaption>Tokens</figcaption></figure></div></section>\
         <section aria-labelledby=\"h-tables\"><h2 id=\"h-tables\">Tables</h2>{t_models}{t_days}{t_keys}</section>\
         <section aria-labelledby=\"h-csv\"><h2 id=\"h-csv\">Export as CSV</h2><ul class=\"links\">\
         <li><a href=\"/ui/api/v1/usage?format=csv&amp;limit=10000\" download=\"usage-records.csv\">Records (latest 10000)</a></li>\
         <li><a href=\"/ui/api/v1/usage?format=csv&amp;group_by=model\" download=\"usage-by-model.csv\">Per model</a></li>\
         <li><a href=\"/ui/api/v1/usage?format=csv&amp;group_by=day\" download=\"usage-by-day.csv\">Per day</a></li>\
         <li><a href=\"/ui/api/v1/usage?format=csv&amp;group_by=key\" download=\"usage-by-key.csv\">Per key</a></li>\
         </ul></section>",
        legend = chart::legend(&series),
        req_bar = chart::share_bar("Share of requests per model", "requests", &requests),
        tok_bar = chart::share_bar("Share of tokens per model", "tokens", &token_parts),
        req_days = chart::stacked_shares("Share of requests per model and day", &series, &req_cols),
        tok_days = chart::stacked_shares("Share of tokens per model and day", &series, &tok_cols),
        t_models = table("Per model", "Model", &models, "by-model"),
        t_days = table("Per day", "Day", &days, "by-day"),
        t_keys = table("Per key", "Key", &keys, "by-key"),
    ))
}
