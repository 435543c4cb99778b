//! The console's login: the key a person types is kept in an `HttpOnly`, `SameSite=Strict` cookie
//! (hex-encoded; `Secure` wherever browsers keep such a cookie, see [`secure_transport`]), never in
//! a URL, and checked on every request by the
//! API's own key check ([`crate::auth::require_key`]): [`from_cookie`] turns the cookie into the
//! `Authorization` header that check reads, so a deleted or expired key stops working at once.
//!
//! `SameSite=Strict` keeps other sites from riding the cookie; the console's writes also need a
//! custom header ([`UI_HEADER`]) that a cross-site form cannot send.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower::ServiceExt;

use super::html;
use crate::AppState;
use crate::keys::Caller;

const COOKIE: &str = "switchyard_session";
/// Sent by the console's scripts on every write.
pub(super) const UI_HEADER: &str = "x-switchyard-ui";
/// Largest login form accepted.
const MAX_FORM: usize = 8 * 1024;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The key kept in the request's session cookie.
fn session_key(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| unhex(value))
}

fn is_page(req_path: &str) -> bool {
    !req_path.starts_with("/ui/api/")
}

/// Presents the session cookie's key to the key check, and sends a person without a session to
/// the login page. Writes must carry [`UI_HEADER`].
pub(super) async fn from_cookie(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if req.method() != Method::GET && !req.headers().contains_key(UI_HEADER) {
        return (
            StatusCode::FORBIDDEN,
            "the console's writes need its header",
        )
            .into_response();
    }
    if state.options.master_key.is_some()
        && !req.headers().contains_key(header::AUTHORIZATION)
        && let Some(key) = session_key(&req)
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}"))
    {
        req.headers_mut().insert(header::AUTHORIZATION, v);
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED && is_page(&path) {
        return Redirect::to("/ui/login").into_response();
    }
    resp
}

/// Lets only the master key (or anyone, when the API is open) through.
pub(super) async fn admin_only(req: Request, next: Next) -> Response {
    match req.extensions().get::<Caller>() {
        Some(Caller::Master | Caller::Open) => next.run(req).await,
        _ => html::forbidden(),
    }
}

/// Who `key` is, asked of the API's own key check.
async fn identify(state: &AppState, key: &str) -> Option<&'static str> {
    let probe = Router::new()
        .route(
            "/ui/whoami",
            get(|caller: Option<Extension<Caller>>| async move {
                match caller.map(|c| c.0) {
                    Some(Caller::Master) | Some(Caller::Open) => "master",
                    Some(Caller::Key(_)) => "key",
                    None => "",
                }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_key,
        ))
        .with_state(state.clone());
    let req = Request::builder()
        .uri("/ui/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .ok()?;
    let resp = probe.oneshot(req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = axum::body::to_bytes(resp.into_body(), 64).await.ok()?;
    match &body[..] {
        b"master" => Some("master"),
        b"key" => Some("key"),
        _ => None,
    }
}

/// `GET /ui/login`
pub(super) async fn login_page(State(state): State<AppState>) -> Response {
    if state.options.master_key.is_none() {
        return Redirect::to("/ui").into_response();
    }
    html::login(None, StatusCode::OK)
}

/// The value of field `name` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Whether the cookie can carry `Secure`: the page came over HTTPS (a TLS proxy in front says so
/// in `X-Forwarded-Proto`), or from a loopback host, where browsers keep `Secure` cookies on plain
/// HTTP too. A console opened at `http://gpu-box:4000/ui` on a home network would never stay
/// logged in with `Secure` (browsers drop such cookies on plain HTTP), so there the cookie is
/// `HttpOnly` and `SameSite=Strict` without it.
fn secure_transport(headers: &axum::http::HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    forwarded_https || loopback
}

fn session_cookie(value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { " Secure;" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/ui; HttpOnly;{secure} SameSite=Strict; Max-Age={max_age}"
    ))
    .ok()
}

/// `POST /ui/login` with the form's `key`: sets the session cookie when the key is good.
pub(super) async fn login(State(state): State<AppState>, req: Request) -> Response {
    let secure = secure_transport(req.headers());
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM).await {
        Ok(b) => b,
        Err(_) => return html::login(Some("The form is too large."), StatusCode::BAD_REQUEST),
    };
    let key = form_value(&body, "key")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    if key.is_empty() {
        return html::login(Some("Enter a key."), StatusCode::BAD_REQUEST);
    }
    let Some(who) = identify(&state, &key).await else {
        return html::login(Some("That key was not accepted."), StatusCode::UNAUTHORIZED);
    };
    let target = if who == "master" {
        "/ui"
    } else {
        "/ui/playground"
    };
    let mut resp = Redirect::to(target).into_response();
    if let Some(c) = session_cookie(&hex(&key), 12 * 3600, secure) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// `POST /ui/logout`: forgets the session.
pub(super) async fn logout(headers: axum::http::HeaderMap) -> Response {
    let mut resp = Redirect::to("/ui/login").into_response();
    if let Some(c) = session_cookie("", 0, secure_transport(&headers)) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_cookie_encoding() {
        for k in ["sk-abc", "master key; with=odd chars ✓", ""] {
            assert_eq!(unhex(&hex(k)).as_deref(), Some(k));
        }
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn secure_only_where_browsers_keep_it() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(secure_transport(&h(&[("host", "127.0.0.1:4000")])));
        assert!(secure_transport(&h(&[("host", "localhost")])));
        assert!(secure_transport(&h(&[("host", "[::1]:4000")])));
        assert!(secure_transport(&h(&[
            ("host", "gpu-box:4000"),
            ("x-forwarded-proto", "https")
        ])));
        assert!(!secure_transport(&h(&[("host", "gpu-box:4000")])));
        assert!(!secure_transport(&h(&[("host", "192.168.1.20:4000")])));
    }

    #[test]
    fn form_values_are_percent_decoded() {
        assert_eq!(
            form_value(b"a=1&key=sk-a%2Bb+c", "key").as_deref(),
            Some("sk-a+b c")
        );
        assert_eq!(form_value(b"a=1", "key"), None);
    }
}
