//! How a response reaches the client: chunk pacing, and the faults that act on delivery
//! (status, reset, slow first byte, cut / error line / stall inside a stream).

use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::capacity::Slot;
use crate::error::{ApiError, ErrorStyle};
use crate::fault::Fault;
use crate::server::ConnKill;

/// The frames of a streamed answer.
pub(crate) struct Frames {
    /// Countable chunks before the end (role chunk, content chunks).
    pub content: Vec<Bytes>,
    /// The end of a successful stream (done chunk, finish/usage chunks, `[DONE]`).
    pub tail: Vec<Bytes>,
}

/// Error yielded to hyper to abort a stream.
#[derive(Debug, thiserror::Error)]
#[error("stream cut by fault injection")]
struct StreamCut;

/// Drops the client's connection without a response.
pub(crate) async fn drop_connection(kill: Option<&ConnKill>) -> Response {
    if let Some(k) = kill {
        k.kill();
        // The connection task drops this future together with the connection.
        std::future::pending::<()>().await;
    }
    // Not served through our accept loop (no connection to kill): the closest we can do.
    axum::http::StatusCode::BAD_GATEWAY.into_response()
}

/// Applies the faults that act before a response is produced. Returns the response to send instead,
/// or the fault left for delivery (cut / error line / stall).
pub(crate) async fn before_response(
    fault: Option<Fault>,
    style: ErrorStyle,
    kill: Option<&ConnKill>,
) -> Result<Option<Fault>, Response> {
    match fault {
        None => Ok(None),
        Some(Fault::Status { code, message }) => Err(ApiError::Injected {
            status: code,
            message,
        }
        .respond(style)),
        Some(Fault::Reset) => Err(drop_connection(kill).await),
        Some(Fault::SlowFirstByte(d)) => {
            tokio::time::sleep(d).await;
            Ok(None)
        }
        Some(other) => Ok(Some(other)),
    }
}

/// Delivers a non-streamed response under a delivery fault.
pub(crate) async fn non_stream(
    fault: Option<Fault>,
    style: ErrorStyle,
    kill: Option<&ConnKill>,
    response: Response,
) -> Response {
    match fault {
        Some(Fault::CutAfter { .. }) => drop_connection(kill).await,
        Some(Fault::ErrorLineAfter { .. }) => {
            let text = match style {
                ErrorStyle::LlamaCpp => crate::error::LLAMA_RUNNER_ERROR,
                ErrorStyle::Ollama | ErrorStyle::OllamaOpenAi => crate::error::OLLAMA_RUNNER_ERROR,
            };
            ApiError::Runner(text.to_owned()).respond(style)
        }
        Some(Fault::StallAfter { stall, .. }) => {
            tokio::time::sleep(stall).await;
            response
        }
        Some(Fault::StallBody { stall }) => trickle(response, stall).await,
        _ => response,
    }
}

/// The response with its head and first body byte sent at once, the rest after `stall`.
async fn trickle(response: Response, stall: Duration) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let stream = async_stream::stream! {
        let split = bytes.len().min(1);
        yield Ok::<Bytes, StreamCut>(bytes.slice(..split));
        tokio::time::sleep(stall).await;
        yield Ok(bytes.slice(split..));
    };
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Builds a streamed body from `frames`, paced by `delay`, under a delivery fault.
/// `error_line` is the flavor's mid-stream error frame. `slot` (the model's slot) is held until
/// the stream ends or the client goes away.
pub(crate) fn stream_body(
    frames: Frames,
    delay: Duration,
    fault: Option<Fault>,
    error_line: Bytes,
    kill: Option<ConnKill>,
    slot: Option<Slot>,
) -> Body {
    let n_content = frames.content.len();
    let all: Vec<Bytes> = frames.content.into_iter().chain(frames.tail).collect();
    let total = all.len();
    let (cut_at, stall) = match &fault {
        Some(Fault::CutAfter { chunks } | Fault::ErrorLineAfter { chunks }) => {
            (Some((*chunks).min(n_content)), None)
        }
        Some(Fault::StallAfter { chunks, stall }) => (None, Some(((*chunks).min(total), *stall))),
        Some(Fault::StallBody { stall }) => (None, Some((1.min(total), *stall))),
        _ => (None, None),
    };
    let stream = async_stream::stream! {
        let _slot = slot;
        for (i, frame) in all.into_iter().enumerate() {
            if cut_at == Some(i) {
                break;
            }
            if let Some((at, d)) = stall && at == i {
                tokio::time::sleep(d).await;
            }
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            yield Ok::<Bytes, StreamCut>(frame);
        }
        match fault {
            Some(Fault::CutAfter { .. }) => {
                // Let hyper flush what was sent, then drop the connection mid-body.
                tokio::time::sleep(Duration::from_millis(5)).await;
                if let Some(k) = &kill {
                    k.kill();
                }
                yield Err(StreamCut);
            }
            Some(Fault::ErrorLineAfter { .. }) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                yield Ok(error_line);
            }
            Some(Fault::StallAfter { .. } | Fault::StallBody { .. }) if stall.is_some_and(|(at, _)| at >= total) => {
                if let Some((_, d)) = stall {
                    tokio::time::sleep(d).await;
                }
            }
            _ => {}
        }
    };
    Body::from_stream(stream)
}

/// A 200 streaming response.
pub(crate) fn stream_response(content_type: &'static str, body: Body) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}
