//! `/admin/reload`: the config reload of this process (the master key only; the auth middleware
//! checks). `GET` reports the running config's generation and hash and the last reload's result;
//! `POST` reloads the config file and answers what changed, or why the file was refused (422,
//! the running config stays).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

fn unavailable() -> ApiError {
    ApiError::not_found("this process has no config reload (it was started without a config file)")
}

pub async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let admin = state.admin.as_ref().ok_or_else(unavailable)?;
    Ok(Json(admin.status().await))
}

pub async fn reload(State(state): State<AppState>) -> Result<Response, ApiError> {
    let admin = state.admin.as_ref().ok_or_else(unavailable)?;
    Ok(match admin.reload().await {
        Ok(report) => Json(report).into_response(),
        Err(report) => {
            let message = report["error"]
                .as_str()
                .unwrap_or("the configuration was refused; the running one stays")
                .to_string();
            let body = json!({
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": null,
                    "code": "config_invalid",
                },
                "reload": report,
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    })
}
