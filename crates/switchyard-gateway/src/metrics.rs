//! The gateway's own Prometheus metrics: HTTP requests by route and status, and requests in
//! progress. Routing metrics live in the router; in `serve` mode `/metrics` shows both.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    code: u16,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct GatewayMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    in_progress: Gauge,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard_gateway");
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status code",
            requests.clone(),
        );
        let in_progress = Gauge::default();
        registry.register(
            "http_requests_in_progress",
            "HTTP requests being answered (a stream counts until its head is sent)",
            in_progress.clone(),
        );
        GatewayMetrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                in_progress,
            }),
        }
    }
}

/// Route labels come from the router's fixed table, never from the request (bounded cardinality).
fn route_label(path: Option<&MatchedPath>) -> &'static str {
    match path.map(MatchedPath::as_str) {
        Some("/v1/chat/completions" | "/chat/completions") => "/v1/chat/completions",
        Some("/v1/responses" | "/responses") => "/v1/responses",
        Some("/v1/embeddings" | "/embeddings") => "/v1/embeddings",
        Some("/v1/completions" | "/completions") => "/v1/completions",
        Some(p) if p.starts_with("/key/") => "/key",
        Some("/v1/models" | "/models") => "/v1/models",
        Some("/v1/models/{id}") => "/v1/models/{id}",
        Some("/v1/explain") => "/v1/explain",
        Some("/v1/usage") => "/v1/usage",
        Some("/v1/usage/summary") => "/v1/usage/summary",
        Some("/v1/messages") => "/v1/messages",
        Some("/v1/messages/count_tokens") => "/v1/messages/count_tokens",
        Some("/api/chat") => "/api/chat",
        Some("/api/generate") => "/api/generate",
        Some("/api/embed" | "/api/embeddings") => "/api/embed",
        Some(p) if p.starts_with("/api/") || p == "/" => "/api",
        Some("/health/liveness" | "/health/liveliness" | "/health/readiness") => "/health",
        Some("/metrics") => "/metrics",
        Some(_) => "other",
        // Unknown routes (404s): one fixed label, whatever the path.
        None => "unknown",
    }
}

impl GatewayMetrics {
    /// The exposition text (OpenMetrics, which Prometheus reads).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.inner.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware counting every request.
pub(crate) async fn count(
    State(metrics): State<GatewayMetrics>,
    req: Request,
    next: Next,
) -> Response {
    let route = route_label(req.extensions().get::<MatchedPath>());
    let m = &metrics.inner;
    m.in_progress.inc();
    let resp = next.run(req).await;
    m.in_progress.dec();
    m.requests
        .get_or_create(&HttpLabels {
            route,
            code: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// Joins OpenMetrics pages into one (a single `# EOF` at the end).
pub fn join_pages(pages: &[String]) -> String {
    let mut out = String::with_capacity(pages.iter().map(String::len).sum());
    for p in pages {
        out.push_str(p.strip_suffix("# EOF\n").unwrap_or(p));
    }
    out.push_str("# EOF\n");
    out
}
