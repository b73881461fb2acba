//! `COPY ... TO STDOUT` on a dedicated connection outside the pool. diesel-async has no COPY,
//! and a COPY holds its connection for as long as the reader takes, which must not starve
//! the pool; callers bound how many run at once.

use futures_util::{Stream, StreamExt};

/// The rows of a COPY as they arrive, in the statement's format. The stream owns its
/// connection, which closes when the stream is dropped (a client that goes away cancels
/// nothing on the server until the next write fails, which is at most one buffer later).
pub type CopyStream = std::pin::Pin<Box<dyn Stream<Item = Result<Vec<u8>, String>> + Send>>;

/// Connects to `url` and starts `statement`, a `COPY (...) TO STDOUT`. Errors in the statement
/// (a bad plan, a failed cast) are returned here, before any row is read.
pub async fn copy_out(url: &str, statement: &str) -> Result<CopyStream, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting for COPY: {}", describe(&e)))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "COPY connection ended");
        }
    });
    // Inlined literals (`Sql::inline`) double their quotes; that is exact only with standard
    // strings, whatever the server's default. Times and dates are written in one fixed form
    // (UTC, ISO 8601), whatever the server's defaults.
    client
        .batch_execute(
            "SET standard_conforming_strings = on; SET TimeZone = 'UTC'; \
             SET DateStyle = 'ISO, YMD'",
        )
        .await
        .map_err(|e| format!("setting up COPY: {}", describe(&e)))?;
    let rows = client
        .copy_out(statement)
        .await
        .map_err(|e| format!("starting COPY: {}", describe(&e)))?;
    // PostgreSQL sends each row as its own message; passed on one by one they would become a
    // million tiny HTTP chunks. Rows already received are joined into one buffer instead.
    // The stream keeps the client (and so the connection) alive until it is dropped.
    Ok(Box::pin(rows.ready_chunks(ROWS_PER_CHUNK).map(
        move |rows| {
            let _connection = &client;
            let mut joined =
                Vec::with_capacity(rows.iter().map(|r| r.as_ref().map_or(0, |b| b.len())).sum());
            for row in rows {
                joined.extend_from_slice(
                    &row.map_err(|e| format!("reading COPY: {}", describe(&e)))?,
                );
            }
            Ok(joined)
        },
    )))
}

/// Most rows joined into one chunk of the stream.
const ROWS_PER_CHUNK: usize = 512;

/// The server's own message for database errors (tokio-postgres shows only "db error").
fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}
