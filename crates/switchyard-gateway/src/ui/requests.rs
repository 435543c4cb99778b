//! The requests page: the most recent requests from the usage ledger (the same querier as
//! `/v1/usage`), newest first, each opening onto its attempts in try order with their failure
//! classes. The ledger keeps no request bodies, so the route decision is shown as what happened
//! (the attempts), not re-planned.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use switchyard_ledger::{GroupBy, UsageQuery, UsageRecord};

use super::html::{self, esc};
use crate::AppState;

/// Requests listed.
const SHOWN: u32 = 50;
/// How often the list refreshes.
const REFRESH_MS: u32 = 3000;

/// `GET /ui/requests`
pub(super) async fn page(State(state): State<AppState>) -> Response {
    let list = render(&state).await;
    html::page(
        "Requests",
        "/ui/requests",
        &format!(
            "<p class=\"hint\">The last {SHOWN} requests, newest first, refreshed every {} s. \
             Open one to see its attempts.</p>\
             <div id=\"requests\" data-poll=\"/ui/requests/table\" data-interval=\"{REFRESH_MS}\">{list}</div>",
            REFRESH_MS / 1000
        ),
    )
}

/// `GET /ui/requests/table`
pub(super) async fn table(State(state): State<AppState>) -> Response {
    Html(render(&state).await).into_response()
}

async fn render(state: &AppState) -> String {
    let Some(usage) = &state.usage else {
        return "<p class=\"error\">This gateway has no usage ledger, so it keeps no requests.</p>"
            .into();
    };
    let q = UsageQuery {
        group_by: GroupBy::None as i32,
        limit: SHOWN,
        ..Default::default()
    };
    let records = match usage.query(q).await {
        Ok(r) => r.records,
        Err(e) => {
            return format!(
                "<p class=\"error\" role=\"alert\">The ledger did not answer: {}</p>",
                esc(&e.to_string())
            );
        }
    };
    if records.is_empty() {
        return "<p>No requests yet.</p>".into();
    }
    records.iter().map(request).collect()
}

fn request(r: &UsageRecord) -> String {
    let ok = r.status == "ok";
    let failed = r
        .attempts
        .iter()
        .filter(|a| !a.failure_class.is_empty() && a.failure_class != "ok")
        .count();
    // A failed attempt that had already streamed tokens was continued on the next one.
    let continued = r
        .attempts
        .iter()
        .any(|a| !a.failure_class.is_empty() && a.failure_class != "ok" && a.completion_tokens > 0);
    let route = if r.requested_group == r.served_group || r.served_group.is_empty() {
        esc(&r.requested_group)
    } else {
        format!("{} → {}", esc(&r.requested_group), esc(&r.served_group))
    };
    let tokens = format!(
        "{} in / {} out{}",
        r.prompt_tokens,
        r.completion_tokens,
        if r.tokens_estimated { " (est.)" } else { "" }
    );
    let ttft = r.ttft_ms.map(html::ms).unwrap_or_else(|| "—".into());
    let attempts: String = r
        .attempts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let class = if a.failure_class.is_empty() {
                "ok"
            } else {
                a.failure_class.as_str()
            };
            format!(
                "<tr><td>{n}</td><td>{dep}</td><td><span class=\"badge {kind}\">{class}</span></td>\
                 <td>{p} / {c}</td><td>{msg}</td></tr>",
                n = i + 1,
                dep = esc(&a.deployment),
                kind = if class == "ok" { "up" } else { "bad" },
                class = esc(class),
                p = a.prompt_tokens,
                c = a.completion_tokens,
                msg = esc(&a.message),
            )
        })
        .collect();
    format!(
        "<details class=\"req\" data-request=\"{id}\"><summary>\
         <span class=\"when\">{when}</span> <span class=\"route\">{route}</span> \
         <span class=\"dep\">{dep}</span> <span class=\"badge {status_kind}\">{status}</span> \
         <span class=\"attempts\">{n} attempt{s}{failed_note}</span> \
         <span class=\"hint\">{tokens} · {lat} · TTFT {ttft}{stream}</span></summary>\
         <div class=\"detail\"><p class=\"hint\">Request <code>{id}</code> via {api}, HTTP {http}, \
         backend model {model}.</p>\
         <div class=\"scroll\"><table><caption>Attempts in try order</caption><thead><tr>\
         <th scope=\"col\">#</th><th scope=\"col\">Deployment</th><th scope=\"col\">Outcome</th>\
         <th scope=\"col\">Tokens in / out</th><th scope=\"col\">Message</th></tr></thead>\
         <tbody>{attempts}</tbody></table></div></div></details>",
        id = esc(&r.request_id),
        when = html::clock(r.time_ms),
        dep = esc(&r.deployment),
        status_kind = if ok { "up" } else { "bad" },
        status = esc(&r.status),
        n = r.attempts.len(),
        s = if r.attempts.len() == 1 { "" } else { "s" },
        failed_note = match (failed, continued) {
            (0, _) => String::new(),
            (n, false) => format!(", {n} failed"),
            (n, true) => format!(", {n} failed, continued"),
        },
        lat = html::ms(r.latency_ms),
        stream = if r.streamed { " · streamed" } else { "" },
        api = esc(&r.api),
        http = r.http_status,
        model = esc(&r.backend_model),
    )
}
