//! The benchmark's floor: an HTTP proxy with no logic at all.
//!
//! It reads each request body whole, sends it unchanged to the same path on one upstream over a
//! pooled keep-alive connection, and streams the answer back — what any gateway in front of a
//! local model must do at the least (two HTTP/1.1 hops over loopback instead of one), with none
//! of the work that makes Switchyard a router: no JSON parsing, no token counting, no planning,
//! no translation between API shapes, no usage records, no logs. Measured beside `direct`, it
//! shows how much of a gateway's overhead on a given machine is the price of being a proxy at
//! all; measured beside `serve`, how much is Switchyard's own.
//!
//! Built on hyper and hyper-util directly (the layer reqwest and axum sit on) so it is as cheap
//! as an HTTP proxy in Rust gets without hand-written HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::target::Target;

type UpstreamClient = Client<HttpConnector, Full<Bytes>>;
type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Serves on `listen` forever, forwarding every request to `upstream` (a loopback base URL such
/// as `http://127.0.0.1:11434`). Prints `{"listening":"ADDR"}` on stdout once bound.
pub async fn run(listen: SocketAddr, upstream: &str) -> anyhow::Result<()> {
    let base = Target::parse(upstream)?;
    let listener = TcpListener::bind(listen).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{{\"listening\":\"{}\",\"service\":\"passthrough\"}}",
            listener.local_addr()?
        )?;
        out.flush()?;
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: UpstreamClient = Client::builder(TokioExecutor::new()).build(connector);
    // Parsed once; each request only joins it with its own path.
    let authority: Authority = base.authority.parse()?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let client = client.clone();
        let authority = authority.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| forward(client.clone(), authority.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn forward(
    client: UpstreamClient,
    authority: Authority,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(bad_gateway(format!("reading the request body: {e}"))),
    };
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = match Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path)
        .build()
    {
        Ok(u) => u,
        Err(e) => return Ok(bad_gateway(format!("upstream URI: {e}"))),
    };
    let mut up = Request::builder().method(parts.method).uri(uri);
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        up = up.header(http::header::CONTENT_TYPE, ct);
    }
    let up = match up.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return Ok(bad_gateway(format!("upstream request: {e}"))),
    };
    match client.request(up).await {
        Ok(resp) => Ok(resp.map(Either::Left)),
        Err(e) => Ok(bad_gateway(format!("upstream: {e}"))),
    }
}

fn bad_gateway(message: String) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(message))));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}
