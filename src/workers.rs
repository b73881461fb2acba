//! In-process background work of `mycrm serve` (off with `--no-workers`). Today: hourly purge
//! of dead sessions and old login failures. The PostgreSQL job queue joins here later.

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

pub fn spawn(app: Arc<App>, shutdown: CancellationToken) -> JoinHandle<()> {
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
                }
            }
        }
    })
}
