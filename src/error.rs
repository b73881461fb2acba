//! The one error type of the request path.
//!
//! Every layer below `graphql/` and `http/` returns [`AppError`]; those two layers map it to a
//! GraphQL error (`graphql::errors`) or an HTTP response (`http::errors`), each in one place.
//! Internal causes are kept for the logs and never shown to clients.

use std::fmt;

/// Machine-readable error codes, sent as `extensions.code` (GraphQL) or `error.code` (REST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    RateLimited,
    /// The request ran past its time (`MYCRM_REQUEST_TIMEOUT_SECS`, or PostgreSQL's
    /// `statement_timeout`): try a narrower request.
    Timeout,
    /// The database (or another dependency) cannot be reached: retry later. Never an auth
    /// code, so clients keep their tokens through an outage.
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// The record does not exist or the caller may not see it (the two are indistinguishable).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadUserInput { field: String, message: String },
    #[error("{message}")]
    Conflict {
        message: String,
        field: Option<String>,
    },
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// The request ran out of time; the message says which bound.
    #[error("{0}")]
    Timeout(String),
    /// A dependency (the database) is unreachable. The cause is logged.
    #[error("the service is temporarily unavailable; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    /// Anything the client cannot act on. The cause is logged, the client sees "internal error".
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::BadUserInput { .. } => ErrorCode::BadUserInput,
            AppError::Conflict { .. } => ErrorCode::Conflict,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::Timeout(_) => ErrorCode::Timeout,
            AppError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The input field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::BadUserInput { field, .. } => Some(field),
            AppError::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict {
            message: message.into(),
            field: None,
        }
    }

    pub fn conflict_on(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Conflict {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        AppError::Unauthenticated(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(cause.into())
    }

    /// Logs the cause of an internal error or an outage; called by the layer that turns it
    /// into a response.
    pub fn log_if_internal(&self) {
        match self {
            AppError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            AppError::Unavailable(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "dependency unavailable")
            }
            _ => {}
        }
    }

    /// Seconds a client should wait before retrying, for refusals that say so.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            AppError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// What an outage answer suggests as `Retry-After`.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// PostgreSQL's message when `statement_timeout` cancels a statement (SQLSTATE 57014; diesel
/// does not expose the state, so the server's message, English by default, is matched).
const STATEMENT_TIMEOUT: &str = "canceling statement due to statement timeout";

/// Whether a database error means the server could not be reached or dropped the connection,
/// as opposed to refusing the statement.
fn is_connection_failure(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        // diesel-async reports a failure without a SQLSTATE (the socket broke, the server
        // went away mid-statement) as "unable to send command".
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            // What tokio-postgres reports for a socket that broke mid-statement, and the
            // server's own words while it shuts down or starts.
            message.contains("connection closed")
                || message.contains("terminating connection")
                || message.contains("the database system is")
                || message.contains("error communicating with")
        }
        _ => false,
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => AppError::NotFound("record"),
            diesel::result::Error::DatabaseError(_, ref info)
                if info.message().contains(STATEMENT_TIMEOUT) =>
            {
                AppError::Timeout(
                    "the request ran longer than the database allows a statement to run \
                     (statement timeout); narrow it, for example with a filter or a smaller page"
                        .into(),
                )
            }
            other if is_connection_failure(&other) => {
                AppError::Unavailable(anyhow::Error::new(other).context("database connection"))
            }
            other => AppError::Internal(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        use diesel_async::pooled_connection::deadpool::PoolError;
        match err {
            // No connection could be made or none came free in time: the database is down,
            // unreachable or overwhelmed. Clients should retry, not re-authenticate.
            PoolError::Backend(_) | PoolError::Timeout(_) => {
                AppError::Unavailable(anyhow::Error::new(err).context("database pool"))
            }
            other => AppError::Internal(anyhow::Error::new(other).context("database pool")),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        AppError::Internal(anyhow::Error::new(err).context("background task panicked"))
    }
}
