//! The fleet page: every group and deployment with its health, warmth, context window and where
//! the window came from, in-flight attempts, the tokenizer's kind as the last request saw it, and
//! the last failure. The table is re-fetched every [`REFRESH_MS`] by the page's script.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use switchyard_ledger::{GroupBy, UsageQuery, UsageRecord};

use super::html::{self, esc};
use crate::AppState;

/// How often the page refreshes its table.
pub(super) const REFRESH_MS: u32 = 2000;
/// Recent requests read to find each deployment's last failure and tokenizer kind.
const RECENT: u32 = 500;

/// `GET /ui/fleet`
pub(super) async fn page(State(state): State<AppState>) -> Response {
    let table = render(&state).await;
    html::page(
        "Fleet",
        "/ui/fleet",
        &format!(
            "<p class=\"hint\">Refreshed every {} s. Health comes from the prober and from failed \
             requests; “window” is the context the router plans with.</p>\
             <div id=\"fleet\" data-poll=\"/ui/fleet/table\" data-interval=\"{REFRESH_MS}\">{table}</div>",
            REFRESH_MS / 1000
        ),
    )
}

/// `GET /ui/fleet/table`: the part of the page that refreshes.
pub(super) async fn table(State(state): State<AppState>) -> Response {
    Html(render(&state).await).into_response()
}

/// What the recent ledger says about one deployment.
#[derive(Default)]
struct Recent {
    estimated: Option<bool>,
    failure: Option<(i64, String, String)>,
}

async fn recent(state: &AppState) -> HashMap<String, Recent> {
    let mut out: HashMap<String, Recent> = HashMap::new();
    let Some(usage) = &state.usage else {
        return out;
    };
    let q = UsageQuery {
        group_by: GroupBy::None as i32,
        limit: RECENT,
        ..Default::default()
    };
    let Ok(resp) = usage.query(q).await else {
        return out;
    };
    // Newest first: the first sighting of each fact is the latest.
    for r in &resp.records {
        note(&mut out, r);
    }
    out
}

fn note(out: &mut HashMap<String, Recent>, r: &UsageRecord) {
    if !r.deployment.is_empty() {
        let e = out.entry(r.deployment.clone()).or_default();
        if e.estimated.is_none() {
            e.estimated = Some(r.tokens_estimated);
        }
    }
    for a in &r.attempts {
        if a.failure_class.is_empty() || a.failure_class == "ok" {
            continue;
        }
        let e = out.entry(a.deployment.clone()).or_default();
        if e.failure.is_none() {
            e.failure = Some((r.time_ms, a.failure_class.clone(), a.message.clone()));
        }
    }
}

/// Attempts in flight per deployment, read from the router's metrics; `None` when this gateway
/// cannot see them (a separate router process).
fn inflight(state: &AppState) -> Option<HashMap<String, String>> {
    let render = state.metrics.as_ref()?;
    let text = render();
    Some(
        text.lines()
            .filter(|l| l.starts_with("switchyard_inflight{"))
            .filter_map(|l| {
                let (labels, value) = l.rsplit_once(' ')?;
                let dep = labels.split("deployment=\"").nth(1)?.split('"').next()?;
                Some((dep.to_owned(), value.trim().to_owned()))
            })
            .collect(),
    )
}

async fn render(state: &AppState) -> String {
    let models = match state.router.list_models().await {
        Ok(m) => m,
        Err(e) => {
            return format!(
                "<p class=\"error\" role=\"alert\">The router did not answer: {}</p>",
                esc(e.message())
            );
        }
    };
    let recent = recent(state).await;
    let inflight = inflight(state);
    let mut out = String::new();
    if models.state_degraded {
        out.push_str(
            "<p class=\"error\" role=\"status\">Shared state is unreachable: this replica \
             routes on its own view.</p>",
        );
    }
    for g in &models.groups {
        let fallbacks = if g.fallbacks.is_empty() {
            String::from("none")
        } else {
            esc(&g.fallbacks.join(" → "))
        };
        out.push_str(&format!(
            "<section class=\"group\" aria-labelledby=\"g-{id}\"><h2 id=\"g-{id}\">{name}</h2>\
             <p class=\"hint\">window {win} · fallbacks: {fallbacks}</p>\
             <div class=\"scroll\"><table class=\"cards\"><thead><tr><th scope=\"col\">Deployment</th>\
             <th scope=\"col\">Health</th><th scope=\"col\">Warm</th><th scope=\"col\">Window</th>\
             <th scope=\"col\">Tokenizer</th><th scope=\"col\">In flight</th>\
             <th scope=\"col\">Last failure</th></tr></thead><tbody>",
            id = esc(&g.name),
            name = esc(&g.name),
            win = window(g.context_window),
        ));
        for d in &g.deployments {
            let r = recent.get(&d.id);
            let warm = match d.loaded {
                Some(true) => "warm",
                Some(false) => "cold",
                None => "unknown",
            };
            let tokenizer = match r.and_then(|r| r.estimated) {
                Some(false) => "exact",
                Some(true) => "estimated",
                None => "no requests yet",
            };
            let failure = match r.and_then(|r| r.failure.as_ref()) {
                Some((t, class, msg)) => format!(
                    "<span class=\"badge bad\">{}</span> {} <span class=\"hint\">{}</span>",
                    esc(class),
                    html::clock(*t),
                    esc(&truncate(msg, 120))
                ),
                None => "none".into(),
            };
            let source = if d.window_source.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"hint\">({})</span>", esc(&d.window_source))
            };
            out.push_str(&format!(
                "<tr data-deployment=\"{id}\"><th scope=\"row\">{id}<br><span class=\"hint\">{prov} \
                 {model}</span></th><td class=\"health\" data-label=\"Health\"><span class=\"badge {health}\">{health}</span></td>\
                 <td data-label=\"Warm\">{warm}</td><td data-label=\"Window\">{win}{source}</td>\
                 <td data-label=\"Tokenizer\">{tokenizer}</td><td data-label=\"In flight\">{inf}</td>\
                 <td data-label=\"Last failure\">{failure}</td></tr>",
                id = esc(&d.id),
                prov = esc(&d.provider),
                model = esc(&d.backend_model),
                health = esc(&d.health),
                win = window(d.context_window),
                inf = match &inflight {
                    Some(m) => esc(m.get(&d.id).map_or("0", String::as_str)),
                    None => "n/a".into(),
                },
            ));
        }
        out.push_str("</tbody></table></div></section>");
    }
    out
}

fn window(w: u32) -> String {
    if w == 0 {
        "unknown".into()
    } else {
        w.to_string()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}
