//! The gateway: Switchyard's HTTP front door for OpenAI's, Ollama's and Anthropic's APIs.
//!
//! It decodes and checks requests, asks the router to run them, and writes each API's responses. It
//! holds no routing logic. The router is a [`RouterHandle`]: a gRPC client over a
//! [`RouterChannel`] in split mode, or in `serve` mode the router's service implementation called
//! directly (the same trait methods the gRPC server calls, without the encoding).
//!
//! [`app`] builds the axum `Router`, so tests can drive it without a socket.

mod anthropic;
mod auth;
mod cors;
pub mod dialect;
mod error;
mod extract;
pub mod keys;
mod live;
mod metrics;
mod ollama;
pub mod openai;
mod priority;
mod router_h2;
mod router_handle;
pub mod router_replicas;
mod routes;
pub mod server;
mod ui;

use std::convert::Infallible;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use switchyard_proto::router_client::RouterClient;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

pub use error::ApiError;
pub use extract::{BodyLimit, parse as parse_json_body};
pub use live::{ConfigAdmin, LiveApp};
pub use metrics::{GatewayMetrics, join_pages};
pub use router_handle::{EventStream, InProcessRouter, RouterHandle};

/// Why the channel to the router failed (a concrete type: tonic's client bounds need one).
#[derive(Debug, thiserror::Error)]
#[error("router channel: {0}")]
pub struct ChannelError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// Any transport that carries gRPC requests to the router.
pub type RouterChannel = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    ChannelError,
>;

/// A channel to a router listening at `addr` (`http://host:port`). Connects lazily and
/// reconnects by itself, so the gateway can start before the router; a name that resolves to
/// several routers spreads the calls over all of them (see [`router_replicas`]). Every call carries
/// `secret` (the internal secret), which tells the router that this gateway has checked the
/// caller's key and that the request's `api_key_id` and `allowed_groups` may be trusted.
pub fn remote_router(
    addr: &str,
    secret: Option<switchyard_proto::auth::InternalSecret>,
) -> Result<RouterChannel, router_replicas::AddressError> {
    let uri: http::Uri = addr
        .parse()
        .map_err(|_| router_replicas::AddressError::Invalid(addr.to_string()))?;
    let channel = router_replicas::channel(&uri, router_replicas::Dns)?;
    let channel = channel.map_request(move |mut req: http::Request<tonic::body::Body>| {
        if let Some(s) = &secret {
            s.attach_http(&mut req);
        }
        req
    });
    Ok(BoxCloneSyncService::new(
        channel.map_err(|e| ChannelError(Box::new(e))),
    ))
}

/// A channel to a router service in this process (no socket; same gRPC encoding).
pub fn local_router<S>(server: S) -> RouterChannel
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(server.map_err(|e: Infallible| -> ChannelError { match e {} }))
}

/// The gateway's own settings.
#[derive(Clone)]
pub struct GatewayOptions {
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// Longest silence on an SSE stream before a keep-alive comment is sent.
    pub sse_keepalive: std::time::Duration,
    /// When set, every API route requires it.
    pub master_key: Option<auth::MasterKey>,
    /// Whether `/metrics` requires the master key.
    pub metrics_require_key: bool,
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Output tokens a request without `max_tokens` is expected to use (the routing reserve);
    /// a key's tokens-per-minute limit reserves them at admission.
    pub output_reserve: u32,
    /// Browser origins allowed by CORS (`*`: any; empty: no CORS).
    pub cors_allow_origins: Vec<String>,
    /// `Retry-After` when no deployment is up: when the prober looks next (`prober.interval`).
    pub unavailable_retry_after: std::time::Duration,
}

pub use auth::MasterKey;

/// Answers usage queries: the ledger's store in process, or the ledger service.
pub trait UsageQuerier: Send + Sync {
    fn query(
        &self,
        q: switchyard_ledger::UsageQuery,
    ) -> futures::future::BoxFuture<
        '_,
        Result<switchyard_ledger::UsageQueryResponse, switchyard_ledger::QueryError>,
    >;
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub router: RouterHandle,
    pub options: GatewayOptions,
    /// The usage ledger, for `/v1/usage`; `None` when this gateway has none.
    pub usage: Option<std::sync::Arc<dyn UsageQuerier>>,
    /// Renders other components' metrics for `/metrics` (the router's, in `serve` mode).
    pub metrics: Option<MetricsRenderer>,
    /// The gateway's own HTTP metrics, always on `/metrics`.
    pub http_metrics: GatewayMetrics,
    /// Virtual keys (with a master key and a ledger); `None`: only the master key exists.
    pub keys: Option<std::sync::Arc<keys::VirtualKeys>>,
    /// The process's config reload, behind `/admin/reload`; `None`: that route answers 404.
    pub admin: Option<std::sync::Arc<dyn ConfigAdmin>>,
}

/// Renders a Prometheus exposition.
pub type MetricsRenderer = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

impl AppState {
    /// A gateway calling the router over `channel` (gRPC).
    pub fn new(channel: RouterChannel, options: GatewayOptions) -> Self {
        Self::with_router(
            RouterHandle::Grpc(
                RouterClient::new(channel)
                    .max_decoding_message_size(64 * 1024 * 1024)
                    .max_encoding_message_size(64 * 1024 * 1024),
            ),
            options,
        )
    }

    /// A gateway calling a router service in this process directly.
    pub fn in_process(router: InProcessRouter, options: GatewayOptions) -> Self {
        Self::with_router(RouterHandle::InProcess(router), options)
    }

    fn with_router(router: RouterHandle, options: GatewayOptions) -> Self {
        AppState {
            router,
            options,
            usage: None,
            metrics: None,
            http_metrics: GatewayMetrics::default(),
            keys: None,
            admin: None,
        }
    }

    /// Adds the config reload route (`/admin/reload`).
    pub fn with_admin(mut self, admin: std::sync::Arc<dyn ConfigAdmin>) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Adds a `/metrics` page.
    pub fn with_metrics(mut self, metrics: MetricsRenderer) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds virtual keys.
    pub fn with_keys(mut self, keys: std::sync::Arc<keys::VirtualKeys>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Adds the usage ledger for `/v1/usage`.
    pub fn with_usage(mut self, usage: std::sync::Arc<dyn UsageQuerier>) -> Self {
        self.usage = Some(usage);
        self
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "no such route; see /v1/chat/completions, /v1/responses, /v1/models, /health/liveness",
    )
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        kind: "invalid_request_error",
        code: "method_not_allowed".into(),
        message: format!("{method} is not allowed on this route"),
        param: None,
    }
}

/// The gateway's HTTP application.
pub fn app(state: AppState) -> Router {
    let max_body_bytes = state.options.max_body_bytes;
    let cors_origins = state.options.cors_allow_origins.clone();
    Router::new()
        .route("/v1/chat/completions", post(routes::chat::chat_completions))
        .route("/chat/completions", post(routes::chat::chat_completions))
        .route("/v1/completions", post(routes::completions::create))
        .route("/completions", post(routes::completions::create))
        .route("/v1/responses", post(routes::responses::create))
        .route("/responses", post(routes::responses::create))
        .route("/v1/embeddings", post(routes::embeddings::create))
        .route("/embeddings", post(routes::embeddings::create))
        .route("/v1/models", get(routes::models::list))
        .route("/models", get(routes::models::list))
        .route("/v1/models/{id}", get(routes::models::get))
        .route("/v1/explain", post(routes::explain::explain))
        .route("/v1/usage", get(routes::usage::usage))
        .route("/v1/usage/summary", get(routes::usage::summary))
        .route("/health/liveness", get(routes::health::liveness))
        .route("/health/liveliness", get(routes::health::liveness))
        .route("/health/readiness", get(routes::health::readiness))
        .route("/metrics", get(routes::health::metrics))
        .route("/key/generate", post(routes::keys::generate))
        .route("/key/info", get(routes::keys::info))
        .route("/key/list", get(routes::keys::list))
        .route("/key/update", post(routes::keys::update))
        .route("/key/delete", post(routes::keys::delete))
        .route(
            "/admin/reload",
            get(routes::admin::status).post(routes::admin::reload),
        )
        .merge(ollama::routes())
        .merge(anthropic::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .merge(ui::routes(state.clone()))
        // `layer`, not `route_layer`: unknown routes (the fallback) are counted too.
        .layer(axum::middleware::from_fn_with_state(
            state.http_metrics.clone(),
            metrics::count,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(BodyLimit(max_body_bytes)))
        // Outside the key check and the body limit, so their errors get the path's shape too.
        .layer(axum::middleware::from_fn(dialect::reshape))
        .layer(cors::layer(&cors_origins))
        .with_state(state)
}
