//! AppError → HTTP response for the REST routes, in one place:
//! `{"error": {"code", "message", "field"?}}` with a matching status.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::body::BodyError;
use crate::error::{AppError, ErrorCode};

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let code = self.code();
        let mut error = json!({ "code": code.as_str(), "message": self.to_string() });
        if let Some(field) = self.field() {
            error["field"] = json!(field);
        }
        let mut response = (status_of(code), Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after_secs() {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

/// A request larger than a limit, as a REST error (413); `field` names the part at fault.
pub fn payload_too_large(message: String, field: Option<&str>) -> Response {
    let mut error = json!({ "code": "PAYLOAD_TOO_LARGE", "message": message });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({ "error": error })),
    )
        .into_response()
}

/// A body that could not be read, as a REST error.
pub fn rest_body_error(err: BodyError) -> Response {
    match err {
        BodyError::TooLarge { .. } => payload_too_large(err.message(), None),
        other => AppError::bad_input("body", other.message()).into_response(),
    }
}
