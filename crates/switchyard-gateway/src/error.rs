//! Errors as OpenAI clients expect them: `{"error":{"message","type","param","code"}}` with the
//! matching HTTP status. The conversion has no side effects (no logging): the response carries
//! everything a logging layer needs.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_proto as pb;

/// An error answered to an API client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: "invalid_request".into(),
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: "not_found".into(),
            message: message.into(),
            param: None,
        }
    }

    pub fn too_large(limit: usize) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "invalid_request_error",
            code: "request_too_large".into(),
            message: format!(
                "request body exceeds the limit of {limit} bytes (gateway.max_body_bytes)"
            ),
            param: None,
        }
    }

    pub fn router_unavailable(detail: impl std::fmt::Display) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "api_error",
            code: "router_unavailable".into(),
            message: format!("the routing service is not reachable: {detail}"),
            param: None,
        }
    }

    pub fn from_route(e: &pb::RouteError) -> Self {
        let status = u16::try_from(e.http_status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        let kind = match e.r#type.as_str() {
            "invalid_request_error" => "invalid_request_error",
            "authentication_error" => "authentication_error",
            "permission_error" => "permission_error",
            "rate_limit_error" => "rate_limit_error",
            _ => "api_error",
        };
        ApiError {
            status,
            kind,
            code: e.code.clone(),
            message: e.message.clone(),
            param: e.param.clone(),
        }
    }

    /// The JSON body (also used for SSE error events).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
