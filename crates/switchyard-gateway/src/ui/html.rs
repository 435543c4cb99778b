//! The console's page shell (navigation, theme switch, stylesheet and script) and HTML escaping.
//!
//! Every page is one HTML document with no inline script or style, so the Content Security
//! Policy can forbid both and allow nothing outside the gateway.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML content and quoted attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pages in the navigation: path, title, master key only.
const NAV: &[(&str, &str, bool)] = &[
    ("/ui/fleet", "Fleet", true),
    ("/ui/requests", "Requests", true),
    ("/ui/usage", "Usage", true),
    ("/ui/playground", "Playground", false),
    ("/ui/keys", "Keys", true),
];

/// A whole page: `current` is the navigation entry's path.
pub(super) fn page(title: &str, current: &str, body: &str) -> Response {
    let nav: String = NAV
        .iter()
        .map(|(path, name, _)| {
            let here = if *path == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<li><a href=\"{path}\"{here}>{name}</a></li>")
        })
        .collect();
    Html(format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Switchyard</title>
<link rel="stylesheet" href="/ui/assets/console.css">
<link rel="icon" href="data:,">
<script src="/ui/assets/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<span class="brand">Switchyard</span>
<nav aria-label="Console pages"><ul>{nav}</ul></nav>
<div class="tools">
<button type="button" id="theme" aria-pressed="false" title="Switch between light and dark">Dark theme</button>
<form method="post" action="/ui/logout"><button type="submit">Log out</button></form>
</div>
</header>
<main id="main">
<h1>{title}</h1>
{body}
</main>
</body>
</html>"##,
        title = esc(title),
    ))
    .into_response()
}

/// The login page, with an error when the last try failed.
pub(super) fn login(error: Option<&str>, status: StatusCode) -> Response {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
                esc(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Switchyard</title>
<link rel="stylesheet" href="/ui/assets/console.css">
<link rel="icon" href="data:,">
<script src="/ui/assets/console.js" defer></script>
</head>
<body>
<main id="main" class="login">
<h1>Switchyard console</h1>
<form method="post" action="/ui/login" class="card">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<p class="hint">The master key shows everything; a virtual key opens the playground.</p>
{error}
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>"##
    );
    (status, Html(body)).into_response()
}

/// 403 for a page the caller's key may not see.
pub(super) fn forbidden() -> Response {
    let mut resp = page(
        "Not for this key",
        "",
        "<p class=\"error\" role=\"alert\">Only the master key may open this page. \
         <a href=\"/ui/playground\">Open the playground</a> or \
         <a href=\"/ui/login\">log in with another key</a>.</p>",
    );
    *resp.status_mut() = StatusCode::FORBIDDEN;
    resp
}

/// Nothing on a console page comes from, or goes to, another origin.
pub(super) async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// A duration in milliseconds, for people.
pub(super) fn ms(v: u32) -> String {
    if v >= 10_000 {
        format!("{:.1} s", f64::from(v) / 1000.0)
    } else {
        format!("{v} ms")
    }
}

/// Unix milliseconds as `HH:MM:SS` UTC (the day is shown where it matters).
pub(super) fn clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}
