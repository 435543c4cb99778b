//! CORS, so browser clients (chat UIs, notebooks, extensions) can call the API directly, as they
//! can call LiteLLM's proxy. Preflights are answered before authentication (a browser sends them
//! without the key); the request that follows still needs the key when one is set.

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// Response headers a page's script may read: where the request went.
const EXPOSED: [&str; 10] = [
    "x-switchyard-group",
    "x-switchyard-requested-group",
    "x-switchyard-deployment",
    "x-switchyard-model",
    "x-switchyard-attempts",
    "x-switchyard-prompt-tokens",
    "x-switchyard-output-limit",
    "x-switchyard-queued-ms",
    "x-switchyard-spilled",
    "x-request-id",
];

/// The layer for `gateway.cors_allow_origins`: `*` allows any origin; an empty list adds no
/// CORS headers at all (browsers then refuse cross-origin calls).
pub(crate) fn layer(origins: &[String]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        // `*` would not cover `Authorization`; mirroring what the preflight asks for does.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(EXPOSED.map(HeaderName::from_static))
        .max_age(std::time::Duration::from_secs(86_400))
}
