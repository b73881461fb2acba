//! Background jobs on the PostgreSQL job table (DESIGN.md "Jobs"): typed jobs, their
//! registry, the queue's state machine (`queue`) and the worker loop (`worker`).

pub mod api;
pub mod queue;
pub mod schedule;
pub mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::error::AppResult;
pub use queue::{Backoff, Failure, JobQueue, JobRow, NewJob};

/// A kind of background job: a stable name (stored in the table, so never renamed), typed
/// arguments and a handler. Handlers must be idempotent: delivery is at least once.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The stable kind name, e.g. `"lead.rescore"`.
    const KIND: &'static str;
    const QUEUE: &'static str = "default";
    const MAX_ATTEMPTS: i32 = 5;

    /// Runs one attempt; the value is stored as the job's result. An error is a failed
    /// attempt (retried with backoff while attempts are left).
    fn run(self, ctx: JobContext)
        -> impl Future<Output = Result<serde_json::Value, String>> + Send;
}

/// A job of kind `J` with these arguments, ready to enqueue (set the optional fields on it).
pub fn new_job<J: Job>(args: &J) -> NewJob {
    let mut job = NewJob::new(
        J::KIND,
        serde_json::to_value(args).unwrap_or(serde_json::Value::Null),
    );
    job.queue = J::QUEUE.to_string();
    job.max_attempts = J::MAX_ATTEMPTS;
    job
}

/// A job a user starts: in their workspace, theirs to see (members see only their own jobs).
pub fn job_for<J: Job>(viewer: &crate::auth::Viewer, args: &J) -> NewJob {
    let mut job = new_job(args);
    job.workspace_id = Some(viewer.workspace_id.0);
    job.created_by = Some(viewer.user_id.0);
    job
}

/// Does nothing: the job kind for queue benchmarks and health checks of the workers.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "system.noop";
    async fn run(self, _: JobContext) -> Result<serde_json::Value, String> {
        Ok(serde_json::Value::Null)
    }
}

/// Waits `seconds` (at most an hour), or until cancelled: for operators checking that workers
/// run jobs, cancellation and lease recovery end to end (and for the fault tests).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Sleep {
    pub seconds: u64,
}

impl Job for Sleep {
    const KIND: &'static str = "system.sleep";
    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        if self.seconds > 3600 {
            return Err("system.sleep sleeps at most 3600 seconds".into());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(self.seconds)) => {
                Ok(serde_json::json!({ "slept": self.seconds }))
            }
            _ = ctx.cancellation().cancelled() => Err("cancelled while sleeping".into()),
        }
    }
}

/// Every job kind this build can run.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry
        .register::<Noop>()
        .register::<Sleep>()
        .register::<crate::crm::due::OverdueTasks>()
        .register::<crate::crm::due::DueSoonTasks>()
        .register::<crate::imports::service::RunImport>()
        .register::<crate::imports::service::UndoImport>()
        .register::<crate::scoring::jobs::ScoreLeads>()
        .register::<crate::scoring::jobs::Retrain>()
        .register::<crate::scoring::jobs::RetrainAll>()
        .register::<crate::workflows::runner::RunWorkflow>()
        .register::<crate::workflows::time_triggers::TimeTriggers>()
        .register::<crate::notifications::delivery::DeliverNotification>()
        .register::<crate::notifications::digest::DigestTick>()
        .register::<crate::notifications::digest::SendDigest>();
    registry
}

/// What a running handler may use.
#[derive(Clone)]
pub struct JobContext {
    pub app: Arc<App>,
    pub job_id: i64,
    pub attempt: i32,
    pub workspace_id: Option<i64>,
    queue: JobQueue,
    cancel: CancellationToken,
}

impl JobContext {
    /// Reports progress (0-100) and what the job is doing, for `job(id)` and `jobUpdated`.
    pub async fn progress(&self, percent: i16, message: &str) -> AppResult<()> {
        self.queue
            .progress(self.job_id, percent, Some(message))
            .await
    }

    /// Cancelled when someone asked to cancel the job (or the worker is shutting down past
    /// its grace period); long handlers should check it between steps and stop.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
}

/// How one attempt of a handler ended.
pub(crate) enum Outcome {
    Done(serde_json::Value),
    Failed(String),
    /// The arguments do not fit the kind: retrying cannot help.
    BadArguments(String),
}

type Handler =
    Arc<dyn Fn(serde_json::Value, JobContext) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// The job kinds this process can run.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<&'static str, Handler>,
}

impl Registry {
    pub fn register<J: Job>(&mut self) -> &mut Self {
        let handler: Handler = Arc::new(|args, ctx| {
            Box::pin(async move {
                match serde_json::from_value::<J>(args) {
                    Err(err) => Outcome::BadArguments(format!(
                        "the arguments do not fit job kind {}: {err}",
                        J::KIND
                    )),
                    Ok(job) => match job.run(ctx).await {
                        Ok(value) => Outcome::Done(value),
                        Err(err) => Outcome::Failed(err),
                    },
                }
            })
        });
        self.handlers.insert(J::KIND, handler);
        self
    }

    pub(crate) fn handler(&self, kind: &str) -> Option<Handler> {
        self.handlers.get(kind).cloned()
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }
}
