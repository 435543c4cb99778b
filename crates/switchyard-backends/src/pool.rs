//! The set of HTTP clients, one pooled client per backend host, and the attempt entry point.
//!
//! Attempts go out through hyper-util's pooled client directly rather than through reqwest: the
//! hot path needs none of reqwest's conveniences (redirects, cookies, URL re-parsing, response
//! wrappers), and skipping them was a measured share of an attempt's CPU (see BENCHMARKS.md).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::Arc;
use switchyard_core::FailureClass;
use switchyard_core::config::{Config, Provider, TlsSettings};
use tokio::time::Instant;

use crate::lines::{LineBuffer, MAX_LINE};
use crate::{Attempt, BackendError, EventStream, ollama, openai, timeouts};

/// Longest error body read from a failed response.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How long an idle keep-alive connection to a backend is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Plain http or https (rustls) per URL, one pool per backend host.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What an attempt calls under a deployment's `api_base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    OllamaChat,
    ChatCompletions,
    Completions,
    OllamaGenerate,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::OllamaChat,
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::OllamaGenerate,
    ];

    fn path(self) -> &'static str {
        match self {
            Endpoint::OllamaChat => "/api/chat",
            Endpoint::OllamaGenerate => "/api/generate",
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        }
    }
}

/// One backend host: its pooled client and every endpoint URL, parsed once at start-up.
#[derive(Clone)]
struct Host {
    client: HttpClient,
    /// Indexed by `Endpoint as usize`; `Err` holds why the URL does not parse.
    uris: [Result<Uri, String>; 4],
}

/// HTTP clients for every backend host in a configuration.
#[derive(Clone)]
pub struct Backends {
    hosts: HashMap<String, Host>,
    /// `Authorization` values of the deployments that have an `api_key`, by deployment id, built
    /// once. A key that cannot be sent in a header has none, and its attempts fail.
    auth: HashMap<String, HeaderValue>,
    /// Continuation modes found out for deployments without a `continuation` key.
    pub(crate) modes: std::sync::Arc<crate::continuation::Modes>,
    /// Deployments found to take a JSON schema only as `json_object` with a `schema`.
    schema_as_object: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Backends {
    /// Builds one pooled client per distinct `api_base` (keep-alive connections are reused across
    /// requests and deployments of the same host).
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        let mut hosts = HashMap::new();
        let mut auth = HashMap::new();
        let mut tls_configs: HashMap<TlsSettings, Arc<rustls::ClientConfig>> = HashMap::new();
        let plain = Arc::new(
            crate::tls::plain_config()
                .map_err(|e| BackendError::new(FailureClass::Protocol, e.to_string()))?,
        );
        for d in &config.deployments {
            if let Some(key) = &d.api_key
                && let Ok(mut value) = HeaderValue::try_from(format!("Bearer {key}"))
            {
                value.set_sensitive(true);
                auth.insert(d.id.clone(), value);
            }
            if hosts.contains_key(&d.api_base) {
                continue;
            }
            let tls = match tls_configs.get(&d.tls) {
                // Plain http: no roots to read.
                _ if !d.api_base.starts_with("https://") => Arc::clone(&plain),
                Some(c) => Arc::clone(c),
                None => {
                    let c = Arc::new(crate::tls::client_config(&d.tls).map_err(|e| {
                        BackendError::new(FailureClass::Protocol, format!("{}: {e}", d.id))
                    })?);
                    tls_configs.insert(d.tls.clone(), Arc::clone(&c));
                    c
                }
            };
            let client = client(d.timeouts.connect, tls);
            let uris = Endpoint::ALL.map(|e| {
                let url = format!("{}{}", d.api_base, e.path());
                url.parse::<Uri>()
                    .map_err(|err| format!("invalid URL {url}: {err}"))
            });
            hosts.insert(d.api_base.clone(), Host { client, uris });
        }
        Ok(Backends {
            hosts,
            auth,
            modes: Default::default(),
            schema_as_object: Default::default(),
        })
    }

    /// Sends one attempt. `Err` means it failed before any event; afterwards failures arrive as
    /// the stream's last item.
    pub async fn start(&self, attempt: Attempt<'_>) -> Result<EventStream, BackendError> {
        let started = Instant::now();
        let d = attempt.deployment;
        let host = self.hosts.get(&d.api_base).ok_or_else(|| {
            BackendError::new(
                FailureClass::Protocol,
                format!("no client for {}", d.api_base),
            )
        })?;
        let (endpoint, mut body) = match d.provider {
            Provider::Ollama => ollama::request(&attempt)?,
            Provider::OpenAi => {
                let continuation = match attempt.extra_assistant_prefix {
                    Some(_) => self.continuation_mode(d).await,
                    None => d.continuation,
                };
                openai::request(&attempt, continuation)?
            }
        };
        let uri = host.uris[endpoint as usize]
            .clone()
            .map_err(|msg| BackendError::new(FailureClass::Connect, msg))?;
        let mut schema_retry = None;
        // Only a request that asks for a JSON schema is looked at (no scan of every body).
        let asks_schema = attempt
            .request
            .response_format_json
            .as_deref()
            .is_some_and(|f| f.contains("json_schema"));
        if d.provider == Provider::OpenAi
            && asks_schema
            && let Some(translated) = openai::schema_as_json_object(&body)
        {
            if self.takes_schema_as_object(&d.id) {
                body = translated;
            } else {
                schema_retry = Some(translated);
            }
        }
        // An unstreamed answer's head comes only when the answer is complete: only the total
        // timeout applies to it, then the idle timeout between its body's chunks.
        let streamed = crate::streams(&attempt);
        let first_byte = if streamed {
            d.timeouts.first_byte
        } else {
            d.timeouts.total
        };
        let head_deadline = (started + first_byte).min(started + d.timeouts.total);
        let mut body = Bytes::from(body);
        let resp = loop {
            let mut rb = Request::post(uri.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if d.api_key.is_some() {
                let v = self.auth.get(&d.id).cloned().ok_or_else(|| {
                    BackendError::new(
                        FailureClass::Protocol,
                        "the deployment's api_key cannot be sent in an HTTP header",
                    )
                })?;
                rb = rb.header(AUTHORIZATION, v);
            }
            if let Some(tp) = attempt.traceparent
                && let Ok(v) = HeaderValue::from_str(tp)
            {
                rb = rb.header(TRACEPARENT.clone(), v);
            }
            let req = rb.body(Full::new(body.clone())).map_err(|e| {
                BackendError::new(
                    FailureClass::Protocol,
                    format!("cannot build the request: {e}"),
                )
            })?;
            let resp = match tokio::time::timeout_at(head_deadline, host.client.request(req)).await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(BackendError::from_transport(&e)),
                Err(_) => {
                    return Err(BackendError::new(
                        FailureClass::Timeout,
                        format!("no response head within {:?}", first_byte),
                    ));
                }
            };
            let status = resp.status();
            if !status.is_success() {
                let text = read_bounded(resp.into_body(), head_deadline).await;
                // llama-cpp-python takes a schema only as `json_object` with `schema` and answers
                // json_schema with "Input should be 'text' or 'json_object'": send it that way, now
                // and from then on.
                if let Some(translated) = schema_retry.take()
                    && openai::refuses_json_schema(&text)
                {
                    self.learn_schema_as_object(&d.id);
                    body = Bytes::from(translated);
                    continue;
                }
                return Err(BackendError::from_response(status.as_u16(), &text));
            }
            break resp;
        };
        let events = if streamed {
            let lines = line_stream(resp.into_body());
            match d.provider {
                Provider::Ollama => ollama::events(lines),
                Provider::OpenAi => openai::events(lines),
            }
        } else {
            whole_answer(
                resp.into_body(),
                d.provider,
                d.timeouts.idle,
                started + d.timeouts.total,
            )
        };
        let mut t = d.timeouts.clone();
        t.first_byte = first_byte;
        Ok(timeouts::with_deadlines(events, started, &t))
    }
}

/// A pooled client speaking plain http or, for `https://` URLs, TLS with `tls`.
fn client(connect_timeout: Duration, tls: Arc<rustls::ClientConfig>) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    // The TLS layer takes https URLs; the TCP connector must let them through.
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

impl Backends {
    fn takes_schema_as_object(&self, id: &str) -> bool {
        self.schema_as_object
            .lock()
            .map(|s| s.contains(id))
            .unwrap_or(false)
    }

    fn learn_schema_as_object(&self, id: &str) {
        if let Ok(mut s) = self.schema_as_object.lock() {
            s.insert(id.to_owned());
        }
    }

    /// The pooled client of `d`'s host and `d`'s `Authorization` value, for calls that are not
    /// chat attempts (embeddings: see `embed`).
    pub(crate) fn client_of(
        &self,
        d: &switchyard_core::config::Deployment,
    ) -> Option<(&HttpClient, Option<&HeaderValue>)> {
        let host = self.hosts.get(&d.api_base)?;
        Some((&host.client, self.auth.get(&d.id)))
    }
}

/// Reads an unstreamed answer's body whole, failing with a timeout when its chunks stop coming
/// for `idle` (a backend that trickles bytes is as stalled as a silent stream), then decodes it.
fn whole_answer(
    body: Incoming,
    provider: Provider,
    idle: Duration,
    total_deadline: Instant,
) -> EventStream {
    let mut data = body.into_data_stream();
    Box::pin(async_stream::stream! {
        let mut whole = Vec::new();
        loop {
            let deadline = (Instant::now() + idle).min(total_deadline);
            match tokio::time::timeout_at(deadline, data.next()).await {
                Ok(Some(Ok(chunk))) => {
                    whole.extend_from_slice(&chunk);
                    if whole.len() > MAX_LINE {
                        yield Err(BackendError::new(FailureClass::Protocol, "an answer exceeded 16 MiB"));
                        return;
                    }
                }
                Ok(Some(Err(e))) => {
                    let mut err = BackendError::from_body(&e);
                    err.class = FailureClass::StreamBroken;
                    yield Err(err);
                    return;
                }
                Ok(None) => break,
                Err(_) => {
                    let what = if Instant::now() >= total_deadline {
                        "the answer did not arrive within the total timeout".to_string()
                    } else {
                        format!("the answer's body stalled for {idle:?}")
                    };
                    yield Err(BackendError::new(FailureClass::Timeout, what));
                    return;
                }
            }
        }
        let mut events = crate::decode(provider, false, Bytes::from(whole));
        while let Some(ev) = events.next().await {
            yield ev;
        }
    })
}

async fn read_bounded(resp: Incoming, deadline: Instant) -> String {
    let mut body = Vec::new();
    let mut data = resp.into_data_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(
        deadline.max(Instant::now() + Duration::from_secs(1)),
        data.next(),
    )
    .await
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// Complete lines of a streamed body; a transport error ends it with `StreamBroken`.
pub(crate) type LineStream =
    futures::stream::BoxStream<'static, Result<bytes::Bytes, BackendError>>;

fn line_stream(body: Incoming) -> LineStream {
    let mut body = body.into_data_stream();
    Box::pin(async_stream::stream! {
        let mut buf = LineBuffer::default();
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    buf.push(&chunk);
                    while let Some(line) = buf.next_line() {
                        yield Ok(line);
                    }
                    if buf.len() > MAX_LINE {
                        yield Err(BackendError::new(FailureClass::Protocol, "a streamed line exceeded 16 MiB"));
                        break;
                    }
                }
                Some(Err(e)) => {
                    let mut err = BackendError::from_body(&e);
                    err.class = FailureClass::StreamBroken;
                    yield Err(err);
                    break;
                }
                None => {
                    if let Some(rest) = buf.take_rest() {
                        yield Ok(rest);
                    }
                    break;
                }
            }
        }
    })
}
