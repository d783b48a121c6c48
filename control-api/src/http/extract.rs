//! Request extractors that answer bad input in Telnyx's error shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::ApiError;
use crate::state::AppState;
use bond_store::Page;

/// `Json<T>` whose rejection is a Telnyx error (400 for bad JSON, 422 for a bad field, 413 too large).
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    /// An empty body is `{}` whatever its content type: Telnyx's SDK and curl
    /// users send actions such as `hangup` with no body at all.
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "10013", "Request too large", e.to_string())
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return typed(serde_json::Value::Object(serde_json::Map::new())).map(Self);
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

/// A body already read as JSON, as `T`; a bad field is a 422 pointing at it
/// (what [`Body`] answers, for handlers that also need the raw JSON).
pub fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    Ok(bond_calls::action::fields::parse(&value)?)
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            let pointer = text
                .split(": ")
                .nth(1)
                .and_then(|rest| rest.split(':').next())
                .filter(|p| !p.contains(' '))
                .map(|p| format!("/{}", p.replace('.', "/")))
                .unwrap_or_else(|| "/".to_owned());
            ApiError::unprocessable("10002", text, &pointer)
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "10006", "Unsupported media type", text)
        }
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "10013", "Request too large", text)
        }
        _ => ApiError::new(StatusCode::BAD_REQUEST, "10001", "Malformed request", text),
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(rename = "page[number]")]
    number: Option<i64>,
    #[serde(rename = "page[size]")]
    size: Option<i64>,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Query(q) = axum::extract::Query::<PageQuery>::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| ApiError::unprocessable("10002", e.body_text(), "/page"))?;
        let number = q.number.unwrap_or(1);
        let size = q.size.unwrap_or(20);
        if number < 1 {
            return Err(ApiError::unprocessable("10002", "page[number] starts at 1", "/page/number"));
        }
        if !(1..=250).contains(&size) {
            return Err(ApiError::unprocessable(
                "10002",
                "page[size] must be between 1 and 250",
                "/page/size",
            ));
        }
        Ok(Page { number, size })
    }
}

/// A list answer: `data` and Telnyx's pagination `meta`.
pub fn page_json(data: impl serde::Serialize, page: Page, total: i64) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "data": data,
        "meta": {
            "page_number": page.number,
            "page_size": page.size,
            "total_pages": (total + page.size - 1) / page.size,
            "total_results": total,
        },
    }))
}
