//! Serving the gateway's HTTP: connections with limits against slow clients, and a shutdown that
//! lets requests in progress (streams included) finish within a grace period.
//!
//! `axum::serve` has neither a header-read timeout nor a bound on graceful shutdown, so the
//! accept loop is hyper-util's: each connection gets `header_read_timeout` (a client dribbling a
//! request head — slowloris — is cut when it runs out; it also bounds an idle keep-alive
//! connection) and the app gets a request-body timeout. On shutdown the listener closes at once,
//! connections finish their requests and close, and whatever is still running after
//! `shutdown_grace` is cut.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Limits of the HTTP server.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Longest a client may take to send a request head (and longest idle keep-alive wait).
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request body.
    pub body_read_timeout: Duration,
    /// How long requests in progress may run on after shutdown begins.
    pub shutdown_grace: Duration,
    /// Most header fields in one request.
    pub max_headers: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            max_headers: 100,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_read_timeout,
    ));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small SSE writes must not wait for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let open = graceful.count();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(
                grace = ?limits.shutdown_grace,
                "shutdown grace period over: cutting the requests still in progress"
            );
        }
    }
    tracing::info!(connections = open, "HTTP server stopped");
    Ok(())
}
