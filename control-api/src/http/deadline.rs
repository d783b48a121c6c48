//! A request body has [`BODY_WITHIN`] to arrive in full. The connection's
//! header timeout (`listener.rs`) ends clients that never finish their
//! headers; this ends those that then send the body a byte at a time, each
//! holding a connection and a task for as long as they like.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// How long a whole request body may take to arrive.
pub const BODY_WITHIN: Duration = Duration::from_secs(10);

/// Read the body (within the body-size limit the layer outside sets) before
/// the handler runs, or answer 408 / 413.
pub async fn body_deadline(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_WITHIN, axum::body::to_bytes(body, usize::MAX)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(e)) if is_too_large(&e) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "10013",
            "Request too large",
            "The request body is too large.",
        )
        .into_response(),
        Ok(Err(_)) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "10001",
            "Malformed request",
            "The request body broke off.",
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "10014",
            "Request timeout",
            format!("The request body did not arrive within {} s.", BODY_WITHIN.as_secs()),
        )
        .into_response(),
    }
}

fn is_too_large(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
