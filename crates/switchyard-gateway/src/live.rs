//! The gateway's app behind a swap, so a config reload can replace it while it serves.
//!
//! The HTTP server holds one [`LiveApp`] for its whole life; each request is handed to the app
//! current when it arrives, and keeps that app (its options, limits and layers) to its end. A
//! reload builds a new app from the new options and [`LiveApp::replace`]s the old one; the
//! router handle, virtual keys, usage querier and HTTP metrics are the same objects in both.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::Request;
use axum::routing::future::RouteFuture;
use futures::future::BoxFuture;
use tower::Service;

/// What the admin route `/admin/reload` asks of the process it runs in.
pub trait ConfigAdmin: Send + Sync {
    /// The reload status: generation, config hash, last result and error (JSON).
    fn status(&self) -> BoxFuture<'_, serde_json::Value>;
    /// Reloads the config file; `Ok` carries the report of an applied (or unchanged) config,
    /// `Err` the report of a refused one (the running config stays).
    fn reload(&self) -> BoxFuture<'_, Result<serde_json::Value, serde_json::Value>>;
}

/// The app in service, replaceable (see the module docs).
#[derive(Clone)]
pub struct LiveApp(Arc<ArcSwap<Router>>);

impl LiveApp {
    pub fn new(app: Router) -> Self {
        LiveApp(Arc::new(ArcSwap::from_pointee(app)))
    }

    /// Requests arriving from now on go to `app`; those already running keep theirs.
    pub fn replace(&self, app: Router) {
        self.0.store(Arc::new(app));
    }

    /// An app that hands every request to the one current at its arrival (serve this one).
    pub fn router(&self) -> Router {
        Router::new().fallback_service(self.clone())
    }
}

impl Service<Request> for LiveApp {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // An axum `Router` is always ready.
        let mut app = Router::clone(&self.0.load());
        app.call(req)
    }
}
