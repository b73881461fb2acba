//! The worker loop: claims due jobs up to its concurrency, runs each in its own task (a panic
//! is a failed attempt, not a dead worker), heartbeats their leases, rescues expired leases of
//! any process, wakes on NOTIFY with polling as the fallback, and on shutdown lets running
//! jobs finish within a grace period before releasing the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::queue::{Failure, JobQueue, JobRow, CHANNEL};
use super::{JobContext, Outcome, Registry};
use crate::app::App;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    pub queues: Vec<String>,
    /// How long a claimed job is ours without a heartbeat.
    pub lease: Duration,
    pub heartbeat: Duration,
    /// Polling when no NOTIFY arrives (and the listener may be down).
    pub poll: Duration,
    /// How long shutdown waits for running jobs before releasing them.
    pub grace: Duration,
    pub backoff: super::Backoff,
    /// How long finished jobs (and schedule runs) are kept in `job_history` for the API.
    pub history_retention: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            queues: vec!["default".into()],
            lease: Duration::from_secs(20),
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            backoff: super::Backoff::default(),
            history_retention: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

impl WorkerConfig {
    /// Sets the lease with a heartbeat four times per lease, so a held job survives three
    /// missed beats (a slow database) before anyone may take it.
    pub fn set_lease(&mut self, lease: Duration) {
        self.lease = lease;
        self.heartbeat = lease / 4;
    }
}

/// A unique name for this worker (host, process, a random part): the lease holder.
pub fn worker_id() -> String {
    format!(
        "{}-{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
        std::process::id(),
        &crate::auth::tokens::random_token(6)
    )
}

/// Runs until `shutdown`, then drains. `database_url` is for the LISTEN connection.
pub async fn run(
    app: Arc<App>,
    registry: Arc<Registry>,
    config: WorkerConfig,
    database_url: String,
    shutdown: CancellationToken,
) {
    let pool = match queue_pool(&database_url, config.concurrency) {
        Ok(pool) => pool,
        Err(err) => {
            tracing::error!(error = %err, "job worker could not build its database pool");
            return;
        }
    };
    let mut queue = JobQueue::new(pool.clone(), worker_id(), config.lease);
    queue.backoff = config.backoff;
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(crate::db::listen::wake_on(
        database_url,
        CHANNEL,
        wake.clone(),
        shutdown.clone(),
    ));
    let (completed, completions) = mpsc::unbounded_channel();
    let completer = tokio::spawn(complete_in_batches(queue.clone(), completions));
    let mut running: JoinSet<i64> = JoinSet::new();
    let mut held: HashMap<i64, (JobRow, CancellationToken)> = HashMap::new();
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    // Checking for expired leases a quarter lease apart bounds how long a dead worker's jobs
    // wait: at most a lease after its last heartbeat plus a quarter.
    let mut rescue = tokio::time::interval(config.lease / 4);
    tracing::info!(worker = %queue.worker_id, queues = ?config.queues, concurrency = config.concurrency, "job worker started");

    // Claims come in batches: after a job finishes, wait until half the slots are free (or
    // CLAIM_BATCH_WAIT passed) before claiming again; a wake-up or poll claims at once.
    let claim_batch = (config.concurrency / 2).max(1);
    let mut eager = true;
    loop {
        let free = config.concurrency.saturating_sub(held.len());
        let mut claimed = 0;
        if free > 0 && (eager || free >= claim_batch) && !shutdown.is_cancelled() {
            match queue.claim(&config.queues, free as i64).await {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        let cancel = CancellationToken::new();
                        held.insert(job.id, (job.clone(), cancel.clone()));
                        running.spawn(attempt(
                            app.clone(),
                            registry.clone(),
                            queue.clone(),
                            completed.clone(),
                            job,
                            cancel,
                        ));
                    }
                }
                Err(err) => {
                    err.log_if_internal();
                }
            }
        }
        // A full batch means more may be due: claim again at once.
        if claimed > 0 && claimed == free {
            eager = true;
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok(id) = done {
                    held.remove(&id);
                }
                eager = false;
            }
            _ = wake.notified() => eager = true,
            _ = tokio::time::sleep(config.poll) => eager = true,
            _ = tokio::time::sleep(CLAIM_BATCH_WAIT), if !eager => eager = true,
            _ = heartbeat.tick() => beat(&queue, &held).await,
            _ = rescue.tick() => match queue.rescue_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(jobs = n, "rescued jobs whose lease expired"),
                Err(err) => { err.log_if_internal(); }
            },
        }
    }

    // Shutdown: no new claims; running jobs get the grace period (their leases kept alive),
    // then are cancelled and released for another worker.
    let deadline = tokio::time::Instant::now() + config.grace;
    while !running.is_empty() {
        tokio::select! {
            done = running.join_next() => {
                if let Some(Ok(id)) = done {
                    held.remove(&id);
                }
            }
            _ = heartbeat.tick() => beat(&queue, &held).await,
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    if !held.is_empty() {
        for (_, cancel) in held.values() {
            cancel.cancel();
        }
        running.abort_all();
        let ids: Vec<i64> = held.keys().copied().collect();
        match queue.release(&ids).await {
            Ok(n) => tracing::warn!(jobs = n, "released unfinished jobs at shutdown"),
            Err(err) => {
                err.log_if_internal();
            }
        }
    }
    // Every sender is gone once the attempts are: the completer flushes what is left and ends.
    drop(completed);
    let _ = completer.await;
    listener.abort();
    pool.close();
    tracing::info!(worker = %queue.worker_id, "job worker stopped");
}

/// The worker's own connections, with `synchronous_commit = off`: a claim, heartbeat or
/// outcome lost in a database crash only means the job runs again (delivery is at least
/// once, handlers are idempotent), and not waiting for a WAL flush per job multiplies
/// throughput. Enqueueing stays on the app's durable connections.
fn queue_pool(database_url: &str, concurrency: usize) -> anyhow::Result<crate::db::DbPool> {
    let separator = if database_url.contains('?') { '&' } else { '?' };
    let url = format!("{database_url}{separator}options=-c%20synchronous_commit%3Doff");
    crate::db::build_pool(&url, concurrency.clamp(1, 64) + 2)
}

async fn beat(queue: &JobQueue, held: &HashMap<i64, (JobRow, CancellationToken)>) {
    let ids: Vec<i64> = held.keys().copied().collect();
    match queue.heartbeat(&ids).await {
        Ok(cancel) => {
            for id in cancel {
                if let Some((_, token)) = held.get(&id) {
                    token.cancel();
                }
            }
        }
        Err(err) => {
            err.log_if_internal();
        }
    }
}

/// How long a worker with free slots waits for more jobs to finish before it claims.
const CLAIM_BATCH_WAIT: Duration = Duration::from_millis(5);
/// Most completions moved to history in one statement.
const COMPLETION_BATCH: usize = 256;

/// Moves completed jobs to history in batches: whatever finished while the previous batch was
/// being written goes in the next statement, so a busy worker writes one statement for many
/// jobs and an idle one still completes each job at once. A batch that cannot be written
/// (database down) is retried a few times; after that its jobs' leases expire and they run
/// again (delivery is at least once).
async fn complete_in_batches(
    queue: JobQueue,
    mut completions: mpsc::UnboundedReceiver<(JobRow, serde_json::Value)>,
) {
    let mut batch = Vec::with_capacity(COMPLETION_BATCH);
    while completions.recv_many(&mut batch, COMPLETION_BATCH).await > 0 {
        let mut wait = Duration::from_millis(100);
        for _ in 0..5 {
            match queue.complete_many(&batch).await {
                Ok(moved) => {
                    if moved < batch.len() {
                        // Leases that expired: another worker took those jobs; its results stand.
                        tracing::warn!(
                            dropped = batch.len() - moved,
                            "job outcomes dropped: no longer held here"
                        );
                    }
                    break;
                }
                Err(err) => {
                    err.log_if_internal();
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        batch.clear();
    }
}

/// One attempt of one job, start to finish; returns the job's ID. A completion is handed to
/// the completer; other outcomes are written at once.
async fn attempt(
    app: Arc<App>,
    registry: Arc<Registry>,
    queue: JobQueue,
    completed: mpsc::UnboundedSender<(JobRow, serde_json::Value)>,
    job: JobRow,
    cancel: CancellationToken,
) -> i64 {
    let id = job.id;
    let Some(handler) = registry.handler(&job.kind) else {
        let error = format!("unknown job kind {:?}: no handler is registered", job.kind);
        tracing::warn!(job = id, kind = %job.kind, "discarding a job of unknown kind");
        report(fail(&app, &queue, &job, &error, Failure::Discard).await);
        return id;
    };
    let ctx = JobContext {
        app: app.clone(),
        job_id: id,
        attempt: job.attempt,
        workspace_id: job.workspace_id,
        queue: queue.clone(),
        cancel: cancel.clone(),
    };
    // Its own task, so that a panic ends this attempt and not the worker.
    let outcome = tokio::spawn(handler(job.args.clone(), ctx)).await;
    let finished = match outcome {
        Ok(Outcome::Done(result)) => match completed.send((job, result)) {
            Ok(()) => return id,
            Err(mpsc::error::SendError((job, result))) => queue.complete(&job, result).await,
        },
        Ok(Outcome::Failed(_)) if cancel.is_cancelled() => queue.cancelled(&job).await,
        Ok(Outcome::Failed(error)) => fail(&app, &queue, &job, &error, Failure::Retry).await,
        Ok(Outcome::BadArguments(error)) => {
            fail(&app, &queue, &job, &error, Failure::Discard).await
        }
        Err(join) => {
            let error = match join.try_into_panic() {
                Ok(panic) => format!("the handler panicked: {}", panic_message(&panic)),
                Err(_) => "the handler was aborted".to_string(),
            };
            tracing::warn!(job = id, kind = %job.kind, "{error}");
            fail(&app, &queue, &job, &error, Failure::Retry).await
        }
    };
    report(finished);
    id
}

/// Records a failed attempt; when it ends the job, tells whoever started it.
async fn fail(
    app: &App,
    queue: &JobQueue,
    job: &JobRow,
    error: &str,
    failure: Failure,
) -> crate::error::AppResult<bool> {
    let moved = queue.fail(job, error, failure).await?;
    if moved && super::queue::is_final(job, failure) {
        if let Some(notice) = crate::notifications::system::job_failed(job) {
            if let Err(err) = app.notifications.notify(&notice).await {
                err.log_if_internal();
            }
        }
    }
    Ok(moved)
}

fn report(result: crate::error::AppResult<bool>) {
    match result {
        Ok(true) => {}
        // The lease expired and another worker took the job; its result stands.
        Ok(false) => tracing::warn!("a job's outcome was dropped: it is no longer held here"),
        Err(err) => {
            err.log_if_internal();
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
