//! Reading a JSON request body with the configured size limit. The GraphQL and REST handlers
//! render the failures in their own error shapes.

use axum::body::Body;
use serde::de::DeserializeOwned;

pub enum BodyError {
    TooLarge {
        limit: usize,
    },
    /// Not JSON at all (the message says where it broke).
    Malformed(String),
    /// JSON, but not the expected shape.
    Unexpected(String),
}

impl BodyError {
    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge { limit } => {
                format!("request body is larger than the limit of {limit} bytes")
            }
            BodyError::Malformed(detail) => format!("malformed JSON body: {detail}"),
            BodyError::Unexpected(detail) => detail.clone(),
        }
    }
}

/// Reads at most `limit` bytes and parses them as JSON into `T`.
pub async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    expected: &str,
) -> Result<T, BodyError> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| BodyError::TooLarge { limit })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| BodyError::Malformed(e.to_string()))?;
    serde_json::from_value(value)
        .map_err(|_| BodyError::Unexpected(format!("body must be {expected}")))
}
