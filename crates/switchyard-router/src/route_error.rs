//! Errors the router returns to its caller, already in OpenAI's vocabulary (status, type, code)
//! so the gateway only has to serialise them.

use switchyard_backends::BackendError;
use switchyard_core::FailureClass;
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
        PlanError::NoFit { .. } => pb::RouteError {
            http_status: 400,
            r#type: "invalid_request_error".into(),
            code: "context_length_exceeded".into(),
            message: format!("{e}. Please reduce the length of the messages or max_tokens."),
            param: Some("messages".into()),
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
    let message = if last.class == FailureClass::Client {
        format!("the model server rejected the request: {}", last.message)
    } else {
        format!("all {attempts} attempt(s) failed: {}", summary.join("; "))
    };
    pb::RouteError {
        http_status: status,
        r#type: ty.into(),
        code: code.into(),
        message,
        param: None,
        attempts,
        failed_attempts: failed,
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
    }
}
