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
    parse_json(&bytes, expected)
}

/// `bytes` as `T`, in one pass (no intermediate JSON tree): JSON that does not parse is
/// `Malformed`, JSON of the wrong shape `Unexpected`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, BodyError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            BodyError::Unexpected(format!("body must be {expected}"))
        }
        _ => BodyError::Malformed(e.to_string()),
    })
}

/// Bytes an upload body hands on before it lets the reader's task go round again.
const PACE_BYTES: usize = 256 * 1024;

/// An upload's body that stops after `PACE_BYTES` in a row (wakes itself and returns
/// pending). The multipart parser reads its body until the body is pending and buffers all
/// of it, so a fast client on a fast network filled tens of MB of that buffer while the
/// handler was storing an earlier chunk; paced, the buffer stays near `PACE_BYTES`.
pub fn paced(body: Body) -> Body {
    Body::from_stream(Paced {
        inner: body.into_data_stream(),
        since_pending: 0,
    })
}

struct Paced {
    inner: axum::body::BodyDataStream,
    since_pending: usize,
}

impl futures_util::Stream for Paced {
    type Item = Result<axum::body::Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.since_pending >= PACE_BYTES {
            self.since_pending = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(bytes))) => self.since_pending += bytes.len(),
            Poll::Pending => self.since_pending = 0,
            Poll::Ready(_) => {}
        }
        next
    }
}
