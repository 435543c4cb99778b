//! The set of HTTP clients, one pooled client per backend host, and the attempt entry point.

use std::collections::HashMap;

use futures::StreamExt;
use switchyard_core::FailureClass;
use switchyard_core::config::{Config, Provider};
use tokio::time::Instant;

use crate::lines::{LineBuffer, MAX_LINE};
use crate::{Attempt, BackendError, EventStream, ollama, openai, timeouts};

/// Longest error body read from a failed response.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// HTTP clients for every backend host in a configuration.
#[derive(Clone)]
pub struct Backends {
    clients: HashMap<String, reqwest::Client>,
    /// Every endpoint URL an attempt can call, parsed once (parsing, with its IDNA pass, was a
    /// measurable share of an attempt's CPU).
    urls: HashMap<String, reqwest::Url>,
}

/// The paths an attempt calls under a deployment's `api_base`.
const ENDPOINT_PATHS: [&str; 3] = ["/api/chat", "/v1/chat/completions", "/v1/completions"];

impl Backends {
    /// Builds one pooled client per distinct `api_base` (keep-alive connections are reused across
    /// requests and deployments of the same host).
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        let mut clients = HashMap::new();
        let mut urls = HashMap::new();
        for d in &config.deployments {
            for path in ENDPOINT_PATHS {
                let url = format!("{}{path}", d.api_base);
                if let Ok(parsed) = reqwest::Url::parse(&url) {
                    urls.insert(url, parsed);
                }
            }
            if clients.contains_key(&d.api_base) {
                continue;
            }
            let client = reqwest::Client::builder()
                .connect_timeout(d.timeouts.connect)
                .pool_idle_timeout(std::time::Duration::from_secs(90))
                .tcp_nodelay(true)
                .build()
                .map_err(|e| {
                    BackendError::new(
                        FailureClass::Protocol,
                        format!("cannot build HTTP client: {e}"),
                    )
                })?;
            clients.insert(d.api_base.clone(), client);
        }
        Ok(Backends { clients, urls })
    }

    /// Sends one attempt. `Err` means it failed before any event; afterwards failures arrive as
    /// the stream's last item.
    pub async fn start(&self, attempt: Attempt<'_>) -> Result<EventStream, BackendError> {
        let started = Instant::now();
        let d = attempt.deployment;
        let client = self.clients.get(&d.api_base).ok_or_else(|| {
            BackendError::new(
                FailureClass::Protocol,
                format!("no client for {}", d.api_base),
            )
        })?;
        let (url, body) = match d.provider {
            Provider::Ollama => ollama::request(&attempt)?,
            Provider::OpenAi => openai::request(&attempt)?,
        };
        let mut rb = match self.urls.get(&url) {
            Some(parsed) => client.post(parsed.clone()),
            None => client.post(url),
        };
        rb = rb
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &d.api_key {
            rb = rb.bearer_auth(key);
        }
        if let Some(tp) = attempt.traceparent {
            rb = rb.header("traceparent", tp);
        }
        // An unstreamed Ollama answer sends its head only when it is complete: only the total
        // timeout applies to it.
        let streamed = d.provider != Provider::Ollama || ollama::whole_answer_streamed(&attempt);
        let first_byte = if streamed {
            d.timeouts.first_byte
        } else {
            d.timeouts.total
        };
        let head_deadline = (started + first_byte).min(started + d.timeouts.total);
        let resp = match tokio::time::timeout_at(head_deadline, rb.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(BackendError::from_transport(&e)),
            Err(_) => {
                return Err(BackendError::new(
                    FailureClass::Timeout,
                    format!("no response head within {:?}", d.timeouts.first_byte),
                ));
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let body = read_bounded(resp, head_deadline).await;
            return Err(BackendError::from_response(status.as_u16(), &body));
        }
        let lines = line_stream(resp);
        let events = match d.provider {
            Provider::Ollama => ollama::events(lines),
            Provider::OpenAi => openai::events(lines),
        };
        let mut t = d.timeouts.clone();
        t.first_byte = first_byte;
        Ok(timeouts::with_deadlines(events, started, &t))
    }
}

async fn read_bounded(resp: reqwest::Response, deadline: Instant) -> String {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(
        deadline.max(Instant::now() + std::time::Duration::from_secs(1)),
        stream.next(),
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

fn line_stream(resp: reqwest::Response) -> LineStream {
    let mut body = resp.bytes_stream();
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
                    let mut err = BackendError::from_transport(&e);
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
