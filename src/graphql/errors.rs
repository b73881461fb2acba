//! AppError → GraphQL error, in one place, plus the codes for errors async-graphql itself
//! raises (see `extension`), so every error a client sees carries `extensions.code`.

use async_graphql::{ErrorExtensionValues, ServerError};

use crate::error::AppError;

/// Codes for failures that happen before any resolver runs.
pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const QUERY_TOO_DEEP: &str = "QUERY_TOO_DEEP";
pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";

pub fn to_graphql_error(err: AppError) -> async_graphql::Error {
    err.log_if_internal();
    let mut gql = async_graphql::Error::new(err.to_string());
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", err.code().as_str());
    if let Some(field) = err.field() {
        ext.set("field", field);
    }
    if let Some(seconds) = err.retry_after_secs() {
        ext.set("retryAfterSeconds", seconds);
    }
    gql.extensions = Some(ext);
    gql
}

/// `service_call().await.gql()?` in resolvers.
pub trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, AppError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql_error)
    }
}

/// Whether an error already carries its code.
pub fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some())
}

/// Adds `code` to an error that has none.
pub fn ensure_code(mut err: ServerError, code: &str) -> ServerError {
    if !has_code(&err) {
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
    err
}

/// A client error raised outside resolvers, with its code.
pub fn server_error(message: impl Into<String>, code: &str) -> ServerError {
    ensure_code(ServerError::new(message, None), code)
}
