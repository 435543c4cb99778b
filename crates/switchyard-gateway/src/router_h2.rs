//! The gateway's gRPC transport to the router: HTTP/2 spoken with the `h2` crate by the calling
//! task itself.
//!
//! Split mode pays for every hand-off between tasks and threads twice per request (profiles show
//! the kernel's wake-up paths as the largest item). `tonic::transport::Channel` hands each call
//! to a buffer task, then to hyper's client task, which opens the stream, then to a body task,
//! which sends the message once hyper's connection task has written the headers: the router gets
//! every call as two TCP segments (HEADERS, then DATA), read with two wake-ups. Here the calling
//! task queues the headers and the whole message at once, so the connection task writes them in
//! one segment, and the answer is read by the calling task straight from h2's stream.
//!
//! One HTTP/2 connection per router address, opened on first use and again after it fails (a
//! call whose connection turns out to be dead before anything was sent is retried once on a new
//! one). [`crate::router_replicas`] decides which address a call goes to.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

/// Longest wait for a TCP connection to a router.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keep-alive on router connections (a dead peer behind NAT or conntrack is noticed).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// HTTP/2 flow-control windows (hyper's client defaults, which the tonic channel used).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// Why a call could not reach the router.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to the router at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to the router at {0} timed out")]
    ConnectTimeout(SocketAddr),
    #[error("HTTP/2 with the router: {0}")]
    H2(#[from] h2::Error),
    #[error("the request body: {0}")]
    Body(String),
    #[error("the router's request URI: {0}")]
    Uri(String),
    #[error("cannot look up the router's name {0}: {1}")]
    Resolve(String, #[source] std::io::Error),
}

/// One router address and its connection (opened on first use).
pub(crate) struct Connection {
    addr: SocketAddr,
    authority: http::uri::Authority,
    send: Mutex<Option<h2::client::SendRequest<Bytes>>>,
}

impl Connection {
    pub(crate) fn new(addr: SocketAddr, authority: http::uri::Authority) -> Self {
        Connection {
            addr,
            authority,
            send: Mutex::new(None),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn cached(&self) -> Option<h2::client::SendRequest<Bytes>> {
        self.send.lock().ok().and_then(|s| s.clone())
    }

    fn forget(&self) {
        if let Ok(mut s) = self.send.lock() {
            *s = None;
        }
    }

    async fn open(&self) -> Result<h2::client::SendRequest<Bytes>, TransportError> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(self.addr))
            .await
            .map_err(|_| TransportError::ConnectTimeout(self.addr))?
            .map_err(|source| TransportError::Connect {
                addr: self.addr,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL);
        let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake::<_, Bytes>(tcp)
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "router connection closed");
            }
        });
        if let Ok(mut s) = self.send.lock() {
            *s = Some(send.clone());
        }
        Ok(send)
    }

    /// A sender ready for a new stream: the cached connection's, else a new connection's. A
    /// cached connection found dead is replaced once.
    async fn ready(&self) -> Result<h2::client::SendRequest<Bytes>, TransportError> {
        if let Some(send) = self.cached() {
            match send.ready().await {
                Ok(s) => return Ok(s),
                Err(_) => self.forget(),
            }
        }
        let send = self.open().await?;
        match send.ready().await {
            Ok(s) => Ok(s),
            Err(e) => {
                self.forget();
                Err(e.into())
            }
        }
    }

    /// Sends one gRPC call (its whole message in the same write as its headers) and returns the
    /// router's response, whose body is read from h2's stream by whoever polls it. `hold` lives
    /// as long as that body (the caller's count of calls in flight).
    pub(crate) async fn call<H: Send + Unpin + 'static>(
        &self,
        req: http::Request<tonic::body::Body>,
        hold: H,
    ) -> Result<http::Response<tonic::body::Body>, TransportError> {
        let (mut parts, body) = req.into_parts();
        // tonic's request bodies are the encoded message(s), ready at once.
        let message = body
            .collect()
            .await
            .map_err(|e| TransportError::Body(e.to_string()))?
            .to_bytes();
        // tonic gives the path only; h2 needs the scheme and authority too (no re-parse).
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = Some(self.authority.clone());
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        parts.uri = http::Uri::from_parts(uri).map_err(|e| TransportError::Uri(e.to_string()))?;
        parts.version = http::Version::HTTP_2;
        let mut send = self.ready().await?;
        let request = http::Request::from_parts(parts, ());
        let (response, mut stream) = match send.send_request(request, message.is_empty()) {
            Ok(r) => r,
            Err(e) => {
                self.forget();
                return Err(e.into());
            }
        };
        if !message.is_empty() {
            stream.send_data(message, true)?;
        }
        let response = response.await?;
        let (parts, recv) = response.into_parts();
        Ok(http::Response::from_parts(
            parts,
            tonic::body::Body::new(ResponseBody {
                recv,
                data_done: false,
                _hold: hold,
            }),
        ))
    }
}

/// The router's response body: DATA frames (their flow-control credit returned as they are
/// read), then the trailers that carry the gRPC status.
struct ResponseBody<H> {
    recv: h2::RecvStream,
    data_done: bool,
    _hold: H,
}

impl<H: Unpin> Body for ResponseBody<H> {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}
