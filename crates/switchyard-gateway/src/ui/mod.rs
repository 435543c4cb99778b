//! The web console at `/ui`: fleet, recent requests, usage, a playground and key management,
//! rendered by the gateway itself so there is nothing to deploy and no Node toolchain to build.
//!
//! Pages are HTML rendered on the server; charts are SVG drawn on the server ([`chart`]), so the
//! console needs no JavaScript library and makes no request outside the gateway. A few hundred
//! lines of plain JavaScript (`assets/console.js`) add short polling, the playground's stream and
//! the key forms.
//!
//! The console's data calls go to `/ui/api/...`, which runs the very handlers of the public API
//! (`/v1/explain`, `/v1/chat/completions`, `/v1/usage`, `/key/*`) behind the session cookie.
//! See [`session`] for how the cookie is checked.

mod assets;
mod chart;
mod fleet;
mod html;
mod keys_page;
mod playground;
mod requests;
mod session;
mod usage_page;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;
use crate::routes;

/// The console's routes. Merge them after the API's key check: they check the session cookie
/// (or an `Authorization` header) themselves, with the same key lookup.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    // The master key only: everything that shows other keys' traffic or manages keys.
    let admin = Router::new()
        .route("/ui", get(fleet::page))
        .route("/ui/", get(fleet::page))
        .route("/ui/fleet", get(fleet::page))
        .route("/ui/fleet/table", get(fleet::table))
        .route("/ui/requests", get(requests::page))
        .route("/ui/requests/table", get(requests::table))
        .route("/ui/usage", get(usage_page::page))
        .route("/ui/keys", get(keys_page::page))
        .route("/ui/api/v1/usage", get(routes::usage::usage))
        .route("/ui/api/v1/usage/summary", get(routes::usage::summary))
        .route("/ui/api/key/list", get(routes::keys::list))
        .route("/ui/api/key/generate", post(routes::keys::generate))
        .route("/ui/api/key/delete", post(routes::keys::delete))
        .route_layer(axum::middleware::from_fn(session::admin_only));
    // Any key: what its own requests would do.
    let member = Router::new()
        .route("/ui/playground", get(playground::page))
        .route("/ui/api/v1/models", get(routes::models::list))
        .route("/ui/api/v1/explain", post(routes::explain::explain))
        .route(
            "/ui/api/v1/chat/completions",
            post(routes::chat::chat_completions),
        );
    let protected = admin
        .merge(member)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_key,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::from_cookie,
        ));
    let public = Router::new()
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/assets/{name}", get(assets::serve));
    protected
        .merge(public)
        .layer(axum::middleware::from_fn(html::security_headers))
}
