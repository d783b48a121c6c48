//! The API's error type: Telnyx's error shape, status codes that say what happened,
//! causes logged but never shown to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// One error in Telnyx's `{"errors":[...]}` envelope.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub title: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorSource {
    pub pointer: String,
}

/// The error envelope every failed request answers with.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub errors: Vec<ErrorBody>,
}

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header (a 503 that will pass).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                title: title.to_owned(),
                detail: detail.into(),
                source: None,
            },
            retry_after: None,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "10005", "Resource not found", detail)
    }

    /// A failure inside Bond: logged with its cause, answered without it;
    /// the database out of reach is 503 with Retry-After, worth retrying.
    pub fn internal<E: std::fmt::Display + 'static>(cause: &E) -> Self {
        if database_unavailable(cause) {
            tracing::warn!(error = %cause, "the database cannot be reached");
            let detail = "The database cannot be reached; retry shortly.";
            return Self::new(StatusCode::SERVICE_UNAVAILABLE, "10007", "Service unavailable", detail)
                .with_retry_after(1);
        }
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "10007",
            "Unexpected error",
            "An unexpected error occurred.",
        )
    }

    /// 422 with a pointer to the offending field.
    pub fn unprocessable(code: &str, detail: impl Into<String>, pointer: &str) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Invalid parameter", detail).with_pointer(pointer)
    }

    /// Telnyx's answer to a command on a call that is no longer alive.
    pub fn call_ended() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "90018",
            "Call has already ended",
            "This call is no longer active and can't receive commands.",
        )
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn with_pointer(mut self, pointer: &str) -> Self {
        self.body.source = Some(ErrorSource { pointer: pointer.to_owned() });
        self
    }
}

/// A lookup's answer: the row, 404 with `missing` when there is none, 500 when the database failed.
pub fn found<T>(lookup: Result<Option<T>, bond_store::db::DbError>, missing: &str) -> Result<T, ApiError> {
    lookup.map_err(|e| ApiError::internal(&e))?.ok_or_else(|| ApiError::not_found(missing))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(serde_json::json!({ "errors": [self.body] }))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Whether `cause` is the database being out of reach, alone or inside a call-control error.
fn database_unavailable(cause: &dyn std::any::Any) -> bool {
    match (cause.downcast_ref::<bond_store::db::DbError>(), cause.downcast_ref::<bond_calls::CallError>()) {
        (Some(e), _) | (_, Some(bond_calls::CallError::Store(e))) => e.is_unavailable(),
        _ => false,
    }
}

/// How a call-control error is answered: a wrong field 422 with its pointer,
/// an ended call Telnyx's 90018, a carrier's refusal 502, Bond's own failures
/// 500 (logged with their cause, answered without it).
impl From<bond_calls::CallError> for ApiError {
    fn from(error: bond_calls::CallError) -> Self {
        use bond_calls::CallError;
        match error {
            CallError::Invalid { code, detail, pointer } => Self::unprocessable(code, detail, &pointer),
            CallError::OnAnotherNode { .. } => Self::new(
                StatusCode::MISDIRECTED_REQUEST,
                "10015",
                "Call on another node",
                format!("The {error}."),
            ),
            CallError::NodeUnavailable { node_id } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "10007",
                "Node unavailable",
                format!("Node {node_id}, which carries the other call, is not answering; retry shortly."),
            )
            .with_retry_after(1),
            CallError::UnknownAction(name) => {
                Self::not_found(format!("Unknown call-control action '{name}'."))
            }
            CallError::Ended => Self::call_ended(),
            CallError::NotFound(detail) => Self::not_found(detail),
            CallError::Carrier { detail, pointer } => {
                Self::unprocessable("10015", detail, &pointer).with_status(StatusCode::BAD_GATEWAY)
            }
            CallError::Store(_) | CallError::Engine(_) | CallError::Internal(_) => Self::internal(&error),
        }
    }
}
