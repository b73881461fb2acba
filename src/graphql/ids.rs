//! GraphQL `ID`s and opaque cursors ↔ database IDs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{AppError, AppResult};
use crate::pagination::PageArgs;

/// Parses an `ID` argument; `field` names it in the error.
pub fn parse_id(field: &str, id: &async_graphql::ID) -> AppResult<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::bad_input(field, format!("{field} is not a valid ID")))
}

pub fn to_id(id: i64) -> async_graphql::ID {
    async_graphql::ID(id.to_string())
}

const CURSOR_PREFIX: &str = "c:";

/// Cursors are opaque to clients; today they wrap the row ID.
pub fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{id}"))
}

pub fn decode_cursor(field: &str, cursor: &str) -> AppResult<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX)?.parse().ok())
        .ok_or_else(|| AppError::bad_input(field, format!("{field} is not a valid cursor")))
}

/// An `after` argument decoded (for connections that only page forward).
pub fn decode_after(after: Option<&str>) -> AppResult<Option<i64>> {
    after.map(|c| decode_cursor("after", c)).transpose()
}

/// The Relay arguments of a connection field, cursors decoded.
pub fn page_args(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> AppResult<PageArgs> {
    Ok(PageArgs {
        first,
        after: decode_after(after.as_deref())?,
        last,
        before: before
            .as_deref()
            .map(|c| decode_cursor("before", c))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        assert_eq!(decode_cursor("after", &encode_cursor(42)).unwrap(), 42);
        assert!(decode_cursor("after", "not-a-cursor").is_err());
        assert!(parse_id("id", &async_graphql::ID("abc".into())).is_err());
        assert!(parse_id("id", &async_graphql::ID("-3".into())).is_err());
    }
}
