//! The listener and connection handling behind [`SimHandle`].
//!
//! Connections are served with hyper directly (not `axum::serve`) so a fault can drop one
//! connection abruptly (`Fault::Reset`, `Fault::CutAfter`) and `shutdown` can close them all.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::capacity::SlotStats;
use crate::config::{SimConfig, SimModel};
use crate::fault::FaultRule;
use crate::state::{RecordedRequest, SimState};
use crate::tls::SimTls;

/// Lets a handler drop the connection it is serving (inserted into each request's extensions).
#[derive(Clone, Debug)]
pub(crate) struct ConnKill(CancellationToken);

impl ConnKill {
    pub(crate) fn kill(&self) {
        self.0.cancel();
    }
}

/// A running simulator. Dropping it stops it like [`SimHandle::shutdown`] (without waiting).
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    https: bool,
}

impl SimHandle {
    /// Starts a simulator on `127.0.0.1:0`. Returns once the listener is bound.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a simulator on `addr`. Returns once the listener is bound.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
        Self::bind(config, addr, None).await
    }

    /// Starts a simulator serving HTTPS on `127.0.0.1:0` (see [`SimTls`]).
    pub async fn start_tls(config: SimConfig, tls: &SimTls) -> std::io::Result<SimHandle> {
        let acceptor = tls.acceptor()?;
        Self::bind(
            config,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Some(acceptor),
        )
        .await
    }

    async fn bind(
        config: SimConfig,
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(config));
        let router = crate::routes::router(Arc::clone(&state));
        let stop = CancellationToken::new();
        let https = tls.is_some();
        let task = tokio::spawn(accept_loop(listener, router, tls, stop.clone()));
        Ok(SimHandle {
            addr,
            state,
            stop,
            task: Some(task),
            https,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://localhost:PORT` when started with TLS: the name the
    /// test certificates are issued for).
    pub fn base_url(&self) -> String {
        if self.https {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Arms a fault.
    pub fn add_fault(&self, rule: FaultRule) {
        self.state.add_fault(rule);
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// Stops serving `model` (Ollama: it leaves `/api/tags` and requests for it get 404), as if
    /// it had been removed from the server.
    pub fn stop_model(&self, model: &str) {
        self.state.set_stopped(model, true);
    }

    /// Serves a stopped model again.
    pub fn start_model(&self, model: &str) {
        self.state.set_stopped(model, false);
    }

    /// Adds a model at runtime, like `ollama pull` (also `POST /_sim/models`).
    pub fn pull_model(&self, model: SimModel) {
        self.state.pull(model);
    }

    /// Removes a model, like `ollama rm` (also `DELETE /_sim/models/{name}`); false when no
    /// such model was served.
    pub fn remove_model(&self, model: &str) -> bool {
        self.state.remove(model)
    }

    /// Generation requests (chat / generate / completions) and Ollama `/api/embed` requests, in
    /// arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Number of generation requests for `model` (`llama3.2` matches `llama3.2:latest`).
    pub fn request_count(&self, model: &str) -> usize {
        self.state.request_count(model)
    }

    /// Slot statistics of the configured model `model`: served,
    /// refused as busy (503), running and queued now, and their peaks.
    pub fn slot_stats(&self, model: &str) -> SlotStats {
        self.state.gate_stats(model)
    }

    /// Times `model` was reloaded because `num_ctx` changed.
    pub fn reloads(&self, model: &str) -> u32 {
        self.state.reloads(model)
    }

    /// Stops like a server process exiting: later connections are refused and every open
    /// connection (idle keep-alive or mid-response) is closed. Returns once that is done.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                match tls.clone() {
                    None => {
                        connections.spawn(serve_connection(stream, router));
                    }
                    Some(acceptor) => {
                        connections.spawn(async move {
                            // A failed handshake (an untrusted certificate) just ends the connection.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_connection(stream, router).await;
                            }
                        });
                    }
                }
            }
            Err(_) => {
                // Out of file descriptors and the like: back off briefly.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
    // Like a server process exiting: every open connection is closed, idle or not.
    connections.shutdown().await;
}

async fn serve_connection<S>(stream: S, router: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kill = ConnKill(CancellationToken::new());
    let for_requests = kill.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(for_requests.clone());
        router.clone().oneshot(req.map(Body::new))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        () = kill.0.cancelled() => {}
    }
}
