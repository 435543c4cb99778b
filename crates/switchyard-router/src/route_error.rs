//! Errors the router returns to its caller, already in OpenAI's vocabulary (status, type, code)
//! so the gateway only has to serialise them.

use switchyard_backends::BackendError;
use switchyard_core::FailureClass;
use switchyard_core::config::Config;
use switchyard_core::plan::PlanError;
use switchyard_proto as pb;

pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> pb::RouteError {
    pb::RouteError {
        http_status: 400,
        r#type: "invalid_request_error".into(),
        code: "invalid_request".into(),
        message: message.into(),
        param: param.map(str::to_string),
        ..Default::default()
    }
}

/// A request for a name that is no group: 404 when the file never named it; 400 naming the
/// reason when it did but none of its deployments can be served (a cloud provider that does not
/// speak the OpenAI API, a hosted model without a key).
pub fn unknown_group(config: &Config, name: &str) -> pb::RouteError {
    match config.unservable_reason(name) {
        Some(reason) => pb::RouteError {
            http_status: 400,
            r#type: "invalid_request_error".into(),
            code: "model_not_servable".into(),
            message: format!(
                "The model `{name}` is in the configuration but Switchyard cannot serve it: {reason}. `switchyard check` lists such deployments."
            ),
            param: Some("model".into()),
            ..Default::default()
        },
        None => from_plan(&PlanError::UnknownGroup(name.to_string())),
    }
}

pub fn from_plan(e: &PlanError) -> pb::RouteError {
    match e {
        PlanError::UnknownGroup(name) => pb::RouteError {
            http_status: 404,
            r#type: "invalid_request_error".into(),
            code: "model_not_found".into(),
            message: format!(
                "The model `{name}` does not exist. Use GET /v1/models to list the model groups."
            ),
            param: Some("model".into()),
            ..Default::default()
        },
        PlanError::NoFit {
            prompt,
            reserve,
            needed,
            largest,
        } => pb::RouteError {
            http_status: 400,
            r#type: "invalid_request_error".into(),
            code: "context_length_exceeded".into(),
            // OpenAI's sentence first: LiteLLM, LangChain and the SDKs recognise an overflow by
            // "This model's maximum context length is" (and by the code); our detail follows.
            message: format!(
                "This model's maximum context length is {largest} tokens. However, you requested \
                 {needed} tokens ({prompt} in the messages, {reserve} in the completion). Please \
                 reduce the length of the messages or completion. (Switchyard: {e}.)"
            ),
            param: Some("messages".into()),
            ..Default::default()
        },
        PlanError::WindowBelowRequested { requested, largest } => pb::RouteError {
            http_status: 400,
            r#type: "invalid_request_error".into(),
            code: "context_length_exceeded".into(),
            message: format!(
                "num_ctx {requested} is larger than every context window this model can be \
                 served with: the largest available is {largest} tokens. Ask for num_ctx \
                 {largest} or less (Switchyard: {e})."
            ),
            param: Some("num_ctx".into()),
            ..Default::default()
        },
    }
}

/// The error after every candidate failed; shaped by the last failure.
pub fn exhausted(last: &BackendError, failed: Vec<pb::AttemptRecord>) -> pb::RouteError {
    let attempts = failed.len() as u32;
    let summary: Vec<String> = failed
        .iter()
        .map(|a| format!("{} ({}: {})", a.deployment, a.failure_class, a.message))
        .collect();
    let (status, ty, code) = match last.class {
        FailureClass::Overflow => (400, "invalid_request_error", "context_length_exceeded"),
        FailureClass::Client => (
            last.status.map(u32::from).unwrap_or(400),
            "invalid_request_error",
            "upstream_rejected",
        ),
        FailureClass::Timeout => (504, "api_error", "upstream_timeout"),
        FailureClass::Busy => (503, "api_error", "upstream_busy"),
        _ => (502, "api_error", "upstream_unavailable"),
    };
    let message = if last.class == FailureClass::Overflow {
        // OpenAI's opening words, which LiteLLM and others match to raise their context-window
        // error; the numbers are only in the backends' own texts that follow.
        format!(
            "This model's maximum context length is too small for this request. Please reduce \
             the length of the messages or completion. (Switchyard: all {attempts} attempt(s) \
             failed: {})",
            summary.join("; ")
        )
    } else if last.class == FailureClass::Client {
        let servers = if attempts > 1 { "servers" } else { "server" };
        format!("the model {servers} rejected the request: {}", last.message)
    } else {
        format!("all {attempts} attempt(s) failed: {}", summary.join("; "))
    };
    pb::RouteError {
        http_status: status,
        r#type: ty.into(),
        code: code.into(),
        message,
        param: (last.class == FailureClass::Overflow).then(|| "messages".to_string()),
        attempts,
        failed_attempts: failed,
        retry_after_ms: None,
    }
}

/// Every candidate is known to be down (the health view), recently enough to be believed: a
/// fast 503 instead of a round of connection refusals. The gateway adds `Retry-After`.
pub fn nothing_healthy(group: &str, down: usize) -> pb::RouteError {
    pb::RouteError {
        http_status: 503,
        r#type: "api_error".into(),
        code: NO_HEALTHY_DEPLOYMENT.into(),
        message: format!(
            "no deployment of `{group}` is up: all {down} that could serve it are down \
             (health probes or failed requests); retry later"
        ),
        param: None,
        attempts: 0,
        failed_attempts: Vec::new(),
        retry_after_ms: None,
    }
}

/// The code of [`nothing_healthy`], for the gateway's `Retry-After`.
pub const NO_HEALTHY_DEPLOYMENT: &str = "no_healthy_deployment";

/// Backends that rejected the request itself (a 4xx that is not about availability, or a 500
/// whose text another deployment repeats): once two deployments agree, another would too, so
/// the loop stops instead of trying every deployment on every retry pass.
#[derive(Default)]
pub(crate) struct Rejections {
    seen: Vec<(usize, BackendError)>,
}

impl Rejections {
    /// Notes deployment `d`'s failure `e`. Returns the error to end the request with when an
    /// earlier rejection by another deployment agrees with it.
    pub(crate) fn agreed(&mut self, d: usize, e: &BackendError) -> Option<BackendError> {
        let candidate = e.class == FailureClass::Client || e.status == Some(500);
        if !candidate {
            return None;
        }
        let agrees = |(x, prev): &(usize, BackendError)| {
            *x != d
                && match e.class {
                    FailureClass::Client => prev.class == FailureClass::Client,
                    _ => prev.status == Some(500) && prev.message == e.message,
                }
        };
        if self.seen.iter().any(agrees) {
            let mut end = e.clone();
            if end.class != FailureClass::Client {
                // The servers crashed on the request, not on their own: the caller's to fix.
                end.class = FailureClass::Client;
                end.status = Some(400);
            }
            return Some(end);
        }
        self.seen.push((d, e.clone()));
        None
    }

    /// Whether `d` rejected the request as invalid (4xx): no retry pass sends it there again.
    pub(crate) fn rejected_by(&self, d: usize) -> bool {
        self.seen
            .iter()
            .any(|(x, e)| *x == d && e.class == FailureClass::Client)
    }
}

/// A failure after the answer already started streaming to the client.
pub fn mid_stream(e: &BackendError, failed: Vec<pb::AttemptRecord>) -> pb::RouteError {
    pb::RouteError {
        http_status: 502,
        r#type: "api_error".into(),
        code: "stream_interrupted".into(),
        message: format!("the model server failed mid-answer: {}", e.message),
        param: None,
        attempts: failed.len() as u32,
        failed_attempts: failed,
        retry_after_ms: None,
    }
}
