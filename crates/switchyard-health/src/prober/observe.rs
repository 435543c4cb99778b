//! What one probe of one host found, per deployment, before it is turned into a state.
//!
//! Shared by the Ollama and llama.cpp probes, and the input of [`super::assess`].

use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder, Response};

/// The probe's findings for one deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Finding {
    pub up: bool,
    pub detail: Option<String>,
    pub latency_ms: Option<u32>,
    pub model_present: Option<bool>,
    pub loaded: Option<bool>,
    pub loaded_context: Option<u32>,
    pub trained_context: Option<u32>,
    /// llama.cpp `/props` `total_slots`.
    pub slots: Option<u32>,
}

impl Finding {
    /// The host failed its liveness check.
    pub fn down(detail: String) -> Self {
        Finding {
            up: false,
            detail: Some(detail),
            ..Finding::default()
        }
    }
}

/// HTTP helper with the per-request deadline and optional bearer token.
pub(crate) struct Http<'a> {
    pub client: &'a Client,
    pub base: &'a str,
    pub api_key: Option<&'a str>,
    pub timeout: Duration,
}

impl Http<'_> {
    fn prepare(&self, rb: RequestBuilder) -> RequestBuilder {
        let rb = rb.timeout(self.timeout);
        match self.api_key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str) -> Result<Response, String> {
        let url = format!("{}{path}", self.base);
        self.prepare(self.client.get(&url))
            .send()
            .await
            .map_err(|e| describe(path, &e))
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Response, String> {
        let url = format!("{}{path}", self.base);
        self.prepare(self.client.post(&url).json(body))
            .send()
            .await
            .map_err(|e| describe(path, &e))
    }

    /// GET returning the parsed JSON body of a 2xx answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let resp = self.get(path).await?;
        json_of(path, resp).await
    }
}

pub(crate) async fn json_of<T: serde::de::DeserializeOwned>(
    path: &str,
    resp: Response,
) -> Result<T, String> {
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("{path}: status {}", status.as_u16()));
    }
    resp.json::<T>()
        .await
        .map_err(|e| format!("{path}: bad body: {e}"))
}

fn describe(path: &str, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect failed"
    } else {
        "request failed"
    };
    format!("{path}: {what}")
}

/// Milliseconds since `start`, saturating.
pub(crate) fn elapsed_ms(start: Instant) -> u32 {
    u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX)
}

/// Ollama's name rule: a name without a tag means `:latest`.
pub(crate) fn normalize_model(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}
