//! Background work of a process (`mycrm worker`, or in-process in `mycrm serve` unless
//! `--no-workers`): the job workers, the change-stream dispatcher, the schedule clock and the
//! hourly purge of dead sessions and old login failures.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;

const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Sessions and failures are kept this long after they stop mattering, for audit.
fn keep() -> chrono::Duration {
    chrono::Duration::days(7)
}

/// Starts all of it; the handle ends after everything stopped (job workers drain within
/// their grace period).
pub fn spawn(app: Arc<App>, database_url: String, shutdown: CancellationToken) -> JoinHandle<()> {
    let jobs = tokio::spawn(crate::jobs::worker::run(
        app.clone(),
        Arc::new(crate::jobs::registry()),
        app.config.jobs.clone(),
        database_url.clone(),
        shutdown.clone(),
    ));
    let events = tokio::spawn(crate::events::dispatcher::run(
        app.db.clone(),
        crate::events::consumers(&app.config),
        Default::default(),
        database_url,
        shutdown.clone(),
    ));
    let schedules = tokio::spawn(crate::jobs::schedule::run(
        app.scheduler.clone(),
        shutdown.clone(),
    ));
    let purge = spawn_purge(app, shutdown);
    tokio::spawn(async move {
        let _ = tokio::join!(jobs, events, schedules, purge);
    })
}

fn spawn_purge(app: Arc<App>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PURGE_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    match app.auth.purge_dead_sessions(keep()).await {
                        Ok(0) => {}
                        Ok(rows) => tracing::info!(rows, "purged expired sessions and old login failures"),
                        Err(err) => {
                            err.log_if_internal();
                        }
                    }
                    match purge_job_history(&app).await {
                        Ok(0) => {}
                        Ok(rows) => tracing::info!(rows, "purged finished jobs past their retention"),
                        Err(err) => {
                            err.log_if_internal();
                        }
                    }
                }
            }
        }
    })
}

async fn purge_job_history(app: &App) -> crate::error::AppResult<usize> {
    let mut conn = app.db.get().await?;
    crate::jobs::queue::purge_history(&mut conn, app.config.jobs.history_retention).await
}
