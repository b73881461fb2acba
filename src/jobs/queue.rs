//! The job table's state machine, one SQL statement per transition, no transaction held
//! while a job runs:
//!
//! ```text
//! enqueue ─► available ──claim──► running ──complete──► history (completed)
//!              ▲   ▲                 │ ├──fail, attempts left──► failed ──(run_at)──┐
//!              │   └───────────────────────────────────────────────────────────────┘
//!              │                     │ ├──fail, none left / unknown kind──► history (discarded)
//!              │                     │ └──cancel──► history (cancelled)
//!              └──lease expired (rescue, any process)──┘
//! ```
//!
//! Finishing a job moves its row to `job_history` in the same statement, so `jobs` holds only
//! live work and stays small under sustained load.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::Rng;

use crate::db::DbPool;
use crate::error::AppResult;

/// The channel enqueuing transactions notify; workers listen on it.
pub const CHANNEL: &str = "mycrm_jobs";

/// A live job as stored in `jobs`.
#[derive(Debug, Clone, QueryableByName)]
pub struct JobRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub workspace_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_by: Option<i64>,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub queue: String,
    #[diesel(sql_type = Jsonb)]
    pub args: serde_json::Value,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = SmallInt)]
    pub priority: i16,
    #[diesel(sql_type = Timestamptz)]
    pub run_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Integer)]
    pub max_attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub unique_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub locked_by: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub errors: serde_json::Value,
}

/// Whether a failed attempt ends the job (discarded): it says so, or no attempt is left.
pub fn is_final(job: &JobRow, failure: Failure) -> bool {
    failure == Failure::Discard || job.attempt >= job.max_attempts
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub queue: String,
    pub args: serde_json::Value,
    pub workspace_id: Option<i64>,
    pub created_by: Option<i64>,
    pub priority: i16,
    /// When to run it; now when absent.
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    /// At most one live job per key: enqueueing a second one while the first is waiting or
    /// running does nothing.
    pub unique_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: &str, args: serde_json::Value) -> Self {
        NewJob {
            kind: kind.to_string(),
            queue: "default".into(),
            args,
            workspace_id: None,
            created_by: None,
            priority: 0,
            run_at: None,
            max_attempts: 5,
            unique_key: None,
        }
    }
}

/// Retry delays: exponential from `base`, capped at `max`, with up to ±25% jitter so that
/// jobs failing together do not retry together.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The delay before the retry that follows failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: i32) -> Duration {
        let exponent = attempt.saturating_sub(1).clamp(0, 30) as u32;
        let raw = self.base.saturating_mul(1u32 << exponent.min(20));
        let capped = raw.min(self.max);
        let jitter = rand::thread_rng().gen_range(0.75..=1.25);
        capped.mul_f64(jitter).min(self.max)
    }
}

/// Inserts a job inside the caller's transaction (so a job and the domain write it belongs to
/// commit together) and wakes listening workers when that transaction commits. Returns `None`
/// when a live job with the same unique key exists.
pub async fn enqueue_in(conn: &mut AsyncPgConnection, job: &NewJob) -> AppResult<Option<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    // The wake-up rides in the same statement (one round trip less per enqueue); it is
    // delivered when the transaction commits, never for a rolled-back one.
    let inserted: Option<Id> = diesel::sql_query(
        "WITH inserted AS ( \
           INSERT INTO jobs (kind, queue, args, workspace_id, created_by, priority, run_at, \
             max_attempts, unique_key) \
           VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), $8, $9) \
           ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING \
           RETURNING id, queue) \
         SELECT id, pg_notify($10, queue)::text AS woken FROM inserted",
    )
    .bind::<Text, _>(&job.kind)
    .bind::<Text, _>(&job.queue)
    .bind::<Jsonb, _>(&job.args)
    .bind::<Nullable<BigInt>, _>(job.workspace_id)
    .bind::<Nullable<BigInt>, _>(job.created_by)
    .bind::<SmallInt, _>(job.priority)
    .bind::<Nullable<Timestamptz>, _>(job.run_at)
    .bind::<Integer, _>(job.max_attempts.clamp(1, 100))
    .bind::<Nullable<Text>, _>(&job.unique_key)
    .bind::<Text, _>(CHANNEL)
    .get_result(conn)
    .await
    .optional()?;
    Ok(inserted.map(|r| r.id))
}

/// Inserts many jobs (without unique keys) in one statement inside the caller's transaction,
/// with one wake-up per queue; for consumers starting hundreds of jobs per batch.
pub async fn enqueue_many_in(conn: &mut AsyncPgConnection, jobs: &[NewJob]) -> AppResult<usize> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let column = |f: fn(&NewJob) -> String| jobs.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(
        "WITH inserted AS ( \
           INSERT INTO jobs (kind, queue, args, workspace_id, created_by, priority, run_at, \
             max_attempts) \
           SELECT kind, queue, args, workspace_id, created_by, priority, \
             coalesce(run_at, now()), max_attempts \
           FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::bigint[], $5::bigint[], \
             $6::int2[], $7::timestamptz[], $8::int[]) \
             AS j(kind, queue, args, workspace_id, created_by, priority, run_at, max_attempts) \
           RETURNING queue) \
         SELECT pg_notify($9, queue) FROM (SELECT DISTINCT queue FROM inserted) q",
    )
    .bind::<Array<Text>, _>(column(|j| j.kind.clone()))
    .bind::<Array<Text>, _>(column(|j| j.queue.clone()))
    .bind::<Array<Jsonb>, _>(jobs.iter().map(|j| j.args.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(jobs.iter().map(|j| j.workspace_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(jobs.iter().map(|j| j.created_by).collect::<Vec<_>>())
    .bind::<Array<SmallInt>, _>(jobs.iter().map(|j| j.priority).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(jobs.iter().map(|j| j.run_at).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(
        jobs.iter()
            .map(|j| j.max_attempts.clamp(1, 100))
            .collect::<Vec<_>>(),
    )
    .bind::<Text, _>(CHANNEL)
    .execute(conn)
    .await?;
    Ok(jobs.len())
}

/// Rows deleted per statement by the retention purge: short transactions, no long locks.
const PURGE_BATCH: i64 = 10_000;

/// Deletes finished jobs older than `keep`, and schedule runs as old, in batches. Returns
/// how many jobs were deleted.
pub async fn purge_history(conn: &mut AsyncPgConnection, keep: Duration) -> AppResult<usize> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default();
    let mut total = 0;
    loop {
        let deleted = diesel::sql_query(
            "DELETE FROM job_history WHERE id IN ( \
               SELECT id FROM job_history WHERE finished_at < $1 LIMIT $2)",
        )
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(PURGE_BATCH)
        .execute(conn)
        .await?;
        total += deleted;
        if (deleted as i64) < PURGE_BATCH {
            break;
        }
    }
    diesel::sql_query("DELETE FROM schedule_runs WHERE created_at < $1")
        .bind::<Timestamptz, _>(cutoff)
        .execute(conn)
        .await?;
    Ok(total)
}

/// The queue operations a worker process performs, as `worker_id`.
#[derive(Clone)]
pub struct JobQueue {
    db: DbPool,
    pub worker_id: String,
    pub lease: Duration,
    pub backoff: Backoff,
}

/// How a failed attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Retry after a backoff while attempts are left.
    Retry,
    /// Never retry (unknown kind, arguments that do not deserialize).
    Discard,
}

impl JobQueue {
    pub fn new(db: DbPool, worker_id: String, lease: Duration) -> Self {
        JobQueue {
            db,
            worker_id,
            lease,
            backoff: Backoff::default(),
        }
    }

    pub async fn enqueue(&self, job: &NewJob) -> AppResult<Option<i64>> {
        let mut conn = self.db.get().await?;
        enqueue_in(&mut conn, job).await
    }

    /// Claims up to `limit` due jobs of `queues` in one statement: `FOR UPDATE SKIP LOCKED`
    /// lets concurrent workers take disjoint sets; the attempt is counted now.
    pub async fn claim(&self, queues: &[String], limit: i64) -> AppResult<Vec<JobRow>> {
        let mut conn = self.db.get().await?;
        Ok(diesel::sql_query(
            "WITH picked AS ( \
               SELECT id FROM jobs \
               WHERE state <> 'running' AND queue = ANY($1) AND run_at <= now() \
               ORDER BY queue, priority DESC, run_at, id \
               LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE jobs SET state = 'running', attempt = jobs.attempt + 1, locked_by = $3, \
               lease_expires_at = now() + $4 * interval '1 millisecond', \
               started_at = coalesce(jobs.started_at, now()), updated_at = now() \
             FROM picked WHERE jobs.id = picked.id \
             RETURNING jobs.id, jobs.workspace_id, jobs.created_by, jobs.kind, jobs.queue, \
               jobs.args, jobs.state, jobs.priority, jobs.run_at, jobs.attempt, \
               jobs.max_attempts, jobs.unique_key, jobs.locked_by, jobs.errors",
        )
        .bind::<Array<Text>, _>(queues)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(&self.worker_id)
        .bind::<BigInt, _>(self.lease.as_millis() as i64)
        .load(&mut conn)
        .await?)
    }

    /// Finishes a job this worker holds: moves it to history as completed with `result`.
    /// Returns false when the job is no longer ours (its lease expired and it was rescued).
    pub async fn complete(&self, job: &JobRow, result: serde_json::Value) -> AppResult<bool> {
        self.finish(job, "completed", Some(result), None).await
    }

    /// Records a failed attempt: retry after a backoff, or discard when no attempt is left
    /// (or `failure` says so). Every error is kept.
    pub async fn fail(&self, job: &JobRow, error: &str, failure: Failure) -> AppResult<bool> {
        let entry = error_entry(job.attempt, error);
        if is_final(job, failure) {
            return self.finish(job, "discarded", None, Some(entry)).await;
        }
        let delay = self.backoff.delay(job.attempt);
        let mut conn = self.db.get().await?;
        let changed = diesel::sql_query(
            "UPDATE jobs SET state = 'failed', locked_by = NULL, lease_expires_at = NULL, \
               run_at = now() + $1 * interval '1 millisecond', errors = errors || $2, \
               updated_at = now() \
             WHERE id = $3 AND locked_by = $4 AND attempt = $5 AND state = 'running'",
        )
        .bind::<BigInt, _>(delay.as_millis() as i64)
        .bind::<Jsonb, _>(serde_json::Value::Array(vec![entry]))
        .bind::<BigInt, _>(job.id)
        .bind::<Text, _>(&self.worker_id)
        .bind::<Integer, _>(job.attempt)
        .execute(&mut conn)
        .await?;
        Ok(changed == 1)
    }

    /// Ends a job this worker holds as cancelled (its handler saw the request and stopped).
    pub async fn cancelled(&self, job: &JobRow) -> AppResult<bool> {
        self.finish(job, "cancelled", None, None).await
    }

    /// Moves a job this worker holds to history with its final state, in one statement.
    async fn finish(
        &self,
        job: &JobRow,
        state: &str,
        result: Option<serde_json::Value>,
        error: Option<serde_json::Value>,
    ) -> AppResult<bool> {
        let mut conn = self.db.get().await?;
        let moved = diesel::sql_query(format!(
            "WITH done AS (DELETE FROM jobs WHERE id = $1 AND locked_by = $2 AND attempt = $3 \
               AND state = 'running' RETURNING *) {}",
            insert_history(4)
        ))
        .bind::<BigInt, _>(job.id)
        .bind::<Text, _>(&self.worker_id)
        .bind::<Integer, _>(job.attempt)
        .bind::<Text, _>(state)
        .bind::<Nullable<Jsonb>, _>(result)
        .bind::<Jsonb, _>(serde_json::Value::Array(error.into_iter().collect()))
        .execute(&mut conn)
        .await?;
        Ok(moved == 1)
    }

    /// Completes many jobs this worker holds in one statement (the worker's completion
    /// batches). Returns how many were still ours and moved.
    pub async fn complete_many(&self, done: &[(JobRow, serde_json::Value)]) -> AppResult<usize> {
        if done.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = done.iter().map(|(job, _)| job.id).collect();
        let attempts: Vec<i32> = done.iter().map(|(job, _)| job.attempt).collect();
        let results: Vec<serde_json::Value> = done.iter().map(|(_, r)| r.clone()).collect();
        let mut conn = self.db.get().await?;
        let moved = diesel::sql_query(format!(
            "WITH outcome AS ( \
               SELECT * FROM unnest($1::bigint[], $2::int[], $3::jsonb[]) AS o(id, attempt, result)), \
             done AS ( \
               DELETE FROM jobs j USING outcome o \
               WHERE j.id = o.id AND j.attempt = o.attempt AND j.locked_by = $4 \
                 AND j.state = 'running' \
               RETURNING j.*, o.result AS outcome_result) {}",
            history_insert("'completed'", "outcome_result", "'[]'::jsonb")
        ))
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Integer>, _>(attempts)
        .bind::<Array<Jsonb>, _>(results)
        .bind::<Text, _>(&self.worker_id)
        .execute(&mut conn)
        .await?;
        Ok(moved)
    }

    /// Extends the leases of the jobs this worker runs; returns the IDs whose cancellation
    /// was requested, so their handlers can stop.
    pub async fn heartbeat(&self, ids: &[i64]) -> AppResult<Vec<i64>> {
        #[derive(QueryableByName)]
        struct Beat {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            cancel_requested: bool,
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.db.get().await?;
        let beats: Vec<Beat> = diesel::sql_query(
            "UPDATE jobs SET lease_expires_at = now() + $1 * interval '1 millisecond' \
             WHERE id = ANY($2) AND locked_by = $3 AND state = 'running' \
             RETURNING id, cancel_requested",
        )
        .bind::<BigInt, _>(self.lease.as_millis() as i64)
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Text, _>(&self.worker_id)
        .load(&mut conn)
        .await?;
        Ok(beats
            .into_iter()
            .filter(|b| b.cancel_requested)
            .map(|b| b.id)
            .collect())
    }

    /// Takes back jobs whose lease expired (their worker died or hung): they become due
    /// again at once, or are discarded when that was their last attempt. Any process may run
    /// it; returns how many it rescued.
    pub async fn rescue_expired(&self) -> AppResult<usize> {
        let mut conn = self.db.get().await?;
        let error = "the worker running this attempt stopped renewing its lease";
        let retried = diesel::sql_query(format!(
            "UPDATE jobs SET state = 'failed', locked_by = NULL, lease_expires_at = NULL, \
               run_at = now(), updated_at = now(), errors = errors || {} \
             WHERE state = 'running' AND lease_expires_at < now() AND attempt < max_attempts",
            error_entry_sql("$1")
        ))
        .bind::<Text, _>(error)
        .execute(&mut conn)
        .await?;
        let discarded = diesel::sql_query(format!(
            "WITH done AS (DELETE FROM jobs WHERE state = 'running' AND lease_expires_at < now() \
               AND attempt >= max_attempts RETURNING *) {}",
            history_insert("'discarded'", "NULL::jsonb", &error_entry_sql("$1"))
        ))
        .bind::<Text, _>(error)
        .execute(&mut conn)
        .await?;
        Ok(retried + discarded)
    }

    /// Gives back jobs this worker holds but will not finish (shutdown after the grace
    /// period): due again at once, the interrupted attempt not counted.
    pub async fn release(&self, ids: &[i64]) -> AppResult<usize> {
        let mut conn = self.db.get().await?;
        Ok(diesel::sql_query(
            "UPDATE jobs SET state = 'available', locked_by = NULL, lease_expires_at = NULL, \
               attempt = greatest(attempt - 1, 0), run_at = now(), updated_at = now() \
             WHERE id = ANY($1) AND locked_by = $2 AND state = 'running'",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Text, _>(&self.worker_id)
        .execute(&mut conn)
        .await?)
    }

    /// Stores a running job's progress (0-100) and message.
    pub async fn progress(&self, id: i64, percent: i16, message: Option<&str>) -> AppResult<()> {
        let mut conn = self.db.get().await?;
        diesel::sql_query(
            "UPDATE jobs SET progress = $1, progress_message = $2, updated_at = now() \
             WHERE id = $3 AND locked_by = $4 AND state = 'running'",
        )
        .bind::<SmallInt, _>(percent.clamp(0, 100))
        .bind::<Nullable<Text>, _>(message.map(|m| m.chars().take(500).collect::<String>()))
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(&self.worker_id)
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

/// The INSERT that files the rows of a `done` CTE into history. Its parameters start at
/// `$first`: the final state, the result, errors to append.
pub(crate) fn insert_history(first: usize) -> String {
    let (state, result, errors) = (first, first + 1, first + 2);
    history_insert(
        &format!("${state}"),
        &format!("${result}"),
        &format!("${errors}"),
    )
}

/// Moves the rows of CTE `done` (deleted from `jobs`) into `job_history`; the arguments are
/// SQL expressions for the final state, the result and the errors to append.
fn history_insert(state: &str, result: &str, errors: &str) -> String {
    format!(
        "INSERT INTO job_history (id, workspace_id, created_by, kind, queue, args, state, \
           priority, run_at, attempt, max_attempts, unique_key, progress, progress_message, \
           result, errors, created_at, started_at, finished_at) \
         SELECT id, workspace_id, created_by, kind, queue, args, {state}, priority, run_at, \
           attempt, max_attempts, unique_key, \
           CASE WHEN {state} = 'completed' THEN 100 ELSE progress END, progress_message, \
           {result}, errors || {errors}, created_at, started_at, now() FROM done"
    )
}

/// The same entry built in SQL for each row a statement touches (its own attempt): `[{...}]`.
fn error_entry_sql(error_param: &str) -> String {
    format!(
        "jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), \
           'error', {error_param}::text))"
    )
}

/// One failed attempt as `errors` keeps it.
fn error_entry(attempt: i32, error: &str) -> serde_json::Value {
    serde_json::json!({
        "attempt": attempt,
        "at": Utc::now(),
        "error": error.chars().take(2000).collect::<String>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let backoff = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        for attempt in 1..=3 {
            let d = backoff.delay(attempt).as_secs_f64();
            let nominal = 2f64 * 2f64.powi(attempt - 1);
            assert!(d >= nominal * 0.75 && d <= nominal * 1.25, "{attempt}: {d}");
        }
        assert!(backoff.delay(30) <= Duration::from_secs(60));
        assert!(backoff.delay(30) >= Duration::from_secs(45));
    }
}
