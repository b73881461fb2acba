//! The dispatcher loop every worker process runs: seal newly committed events, then give
//! each consumer its next batch. Several processes may run it at once: the seal and each
//! consumer's cursor are row locks taken with SKIP LOCKED, so one process works on a given
//! consumer at a time and the others move on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{seal, Consumer, RecordEvent, CHANNEL};
use crate::db::DbPool;
use crate::error::{AppError, AppResult};

/// How a dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Events per consumer per transaction.
    pub batch: i64,
    /// Polling when no NOTIFY arrives.
    pub poll: Duration,
    /// Wait after a consumer's first failure; doubles per failure in a row, up to `max_retry`.
    pub retry: Duration,
    pub max_retry: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            batch: 500,
            poll: Duration::from_secs(1),
            retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
        }
    }
}

/// What one delivery attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// This many events were handled and the cursor moved past them (0: nothing new).
    Handled(usize),
    /// Another process is delivering to this consumer right now.
    Busy,
    /// The consumer failed; nothing moved.
    Failed(String),
}

/// Creates the cursors of `consumers` that have none yet, at the end of the sealed stream:
/// a new consumer handles what happens from now on, not the whole history.
pub async fn register(
    conn: &mut AsyncPgConnection,
    consumers: &[Arc<dyn Consumer>],
) -> AppResult<()> {
    for consumer in consumers {
        diesel::sql_query(
            "INSERT INTO event_consumers (name, position) \
             SELECT $1, sealed_seq FROM event_stream ON CONFLICT (name) DO NOTHING",
        )
        .bind::<Text, _>(consumer.name())
        .execute(conn)
        .await?;
    }
    Ok(())
}

enum Failure {
    Db(AppError),
    Consumer(String),
}

impl From<diesel::result::Error> for Failure {
    fn from(err: diesel::result::Error) -> Self {
        Failure::Db(err.into())
    }
}

/// Hands `consumer` the events after its cursor (up to `batch`) in one transaction with the
/// cursor's move.
pub async fn deliver(
    conn: &mut AsyncPgConnection,
    consumer: &dyn Consumer,
    batch: i64,
) -> AppResult<Delivery> {
    #[derive(QueryableByName)]
    struct Cursor {
        #[diesel(sql_type = BigInt)]
        position: i64,
    }
    let name = consumer.name();
    let outcome = conn
        .transaction::<_, Failure, _>(async move |conn| {
            let Some(cursor) = diesel::sql_query(
                "SELECT position FROM event_consumers WHERE name = $1 FOR UPDATE SKIP LOCKED",
            )
            .bind::<Text, _>(name)
            .get_result::<Cursor>(conn)
            .await
            .optional()?
            else {
                return Ok(Delivery::Busy);
            };
            let events: Vec<RecordEvent> = diesel::sql_query(
                "SELECT seq, id, workspace_id, entity, record_id, action, actor_id, changes, \
                   occurred_at, caused_by_run \
                 FROM record_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind::<BigInt, _>(cursor.position)
            .bind::<BigInt, _>(batch)
            .load(conn)
            .await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(Delivery::Handled(0));
            };
            consumer
                .handle(conn, &events)
                .await
                .map_err(Failure::Consumer)?;
            diesel::sql_query(
                "UPDATE event_consumers SET position = $2, failures = 0, last_error = NULL, \
                   updated_at = now() WHERE name = $1",
            )
            .bind::<Text, _>(name)
            .bind::<BigInt, _>(last)
            .execute(conn)
            .await?;
            Ok(Delivery::Handled(events.len()))
        })
        .await;
    match outcome {
        Ok(delivery) => Ok(delivery),
        Err(Failure::Db(err)) => Err(err),
        Err(Failure::Consumer(error)) => {
            // Kept for operators; the message is the consumer's own, capped.
            let error: String = error.chars().take(2000).collect();
            diesel::sql_query(
                "UPDATE event_consumers SET failures = failures + 1, last_error = $2, \
                   updated_at = now() WHERE name = $1",
            )
            .bind::<Text, _>(name)
            .bind::<Text, _>(&error)
            .execute(conn)
            .await?;
            Ok(Delivery::Failed(error))
        }
    }
}

/// Runs until `shutdown`. `database_url` is for the LISTEN connection.
pub async fn run(
    db: DbPool,
    consumers: Vec<Arc<dyn Consumer>>,
    config: DispatcherConfig,
    database_url: String,
    shutdown: CancellationToken,
) {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(crate::db::listen::wake_on(
        database_url,
        CHANNEL,
        wake.clone(),
        shutdown.clone(),
    ));
    let mut registered = false;
    // Consumers that failed: when to try again and how many failures in a row.
    let mut backoff: HashMap<&'static str, (Instant, u32)> = HashMap::new();
    while !shutdown.is_cancelled() {
        let busy = match step(&db, &consumers, &config, &mut registered, &mut backoff).await {
            Ok(busy) => busy,
            Err(err) => {
                err.log_if_internal();
                false
            }
        };
        if busy {
            continue;
        }
        let next_retry = backoff.values().map(|(at, _)| *at).min();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(config.poll) => {}
            _ = sleep_until(next_retry) => {}
        }
    }
    listener.abort();
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One round: seal, then one batch per consumer that is not backing off. Returns true when
/// there is more to do at once (a full batch, or a seal another process held).
async fn step(
    db: &DbPool,
    consumers: &[Arc<dyn Consumer>],
    config: &DispatcherConfig,
    registered: &mut bool,
    backoff: &mut HashMap<&'static str, (Instant, u32)>,
) -> AppResult<bool> {
    let mut conn = db.get().await?;
    if !*registered {
        register(&mut conn, consumers).await?;
        *registered = true;
    }
    let mut more = false;
    if seal::seal(&mut conn).await?.is_none() {
        // Another process is sealing; its seal may not include what woke us.
        tokio::time::sleep(Duration::from_millis(20)).await;
        more = true;
    }
    for consumer in consumers {
        let name = consumer.name();
        if backoff
            .get(name)
            .is_some_and(|(at, _)| *at > Instant::now())
        {
            continue;
        }
        match deliver(&mut conn, consumer.as_ref(), config.batch).await? {
            Delivery::Handled(n) => {
                backoff.remove(name);
                more |= n as i64 == config.batch;
            }
            Delivery::Busy => {}
            Delivery::Failed(error) => {
                let failures = backoff.get(name).map_or(0, |(_, n)| *n) + 1;
                let wait = config
                    .retry
                    .saturating_mul(2u32.saturating_pow(failures - 1))
                    .min(config.max_retry);
                tracing::warn!(consumer = name, failures, retry_in = ?wait, %error, "an event consumer failed");
                backoff.insert(name, (Instant::now() + wait, failures));
            }
        }
    }
    Ok(more)
}
