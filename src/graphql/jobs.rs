//! Jobs over GraphQL: `job(id)`, `jobs` (admins), `retryJob`, `cancelJob`, and the
//! `jobUpdated(id)` subscription.

use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::connection::connection_types;
use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::ids::{page_args, parse_id, to_id};
use super::watch::{watch, Watched};
use crate::app::App;
use crate::auth::Viewer;
use crate::jobs::api::{JobFilter as DomainFilter, JobView};

/// Where a job stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum JobState {
    /// Waiting for its run time or a free worker.
    Available,
    /// Claimed by a worker, which holds a lease on it.
    Running,
    /// An attempt failed; it runs again at `runAt`.
    Failed,
    /// Done; see `result`.
    Completed,
    /// Out of attempts, or it could never run (unknown kind, bad arguments); see `errors`.
    Discarded,
    /// Cancelled before or while it ran.
    Cancelled,
}

impl JobState {
    /// Completed, discarded or cancelled: nothing more will happen unless retried.
    fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Discarded | JobState::Cancelled
        )
    }

    pub(crate) fn parse(text: &str) -> JobState {
        match text {
            "available" => JobState::Available,
            "running" => JobState::Running,
            "failed" => JobState::Failed,
            "completed" => JobState::Completed,
            "discarded" => JobState::Discarded,
            _ => JobState::Cancelled,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Completed => "completed",
            JobState::Discarded => "discarded",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// One failed attempt.
#[derive(SimpleObject)]
pub struct JobError {
    /// Which attempt failed.
    pub attempt: i32,
    /// When it failed.
    pub at: Option<DateTime<Utc>>,
    /// What went wrong.
    pub message: String,
}

/// A background job: the "task id" a long operation returns.
pub struct Job(pub JobView);

/// A background job: the "task id" a long operation returns.
#[Object]
impl Job {
    /// The job's ID.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The job's kind, e.g. `system.noop`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// Where it stands.
    async fn state(&self) -> JobState {
        JobState::parse(&self.0.state)
    }
    /// Percent done, 0-100.
    async fn progress(&self) -> i32 {
        self.0.progress.into()
    }
    /// What the job is doing now.
    async fn progress_message(&self) -> Option<&str> {
        self.0.progress_message.as_deref()
    }
    /// The value the job produced, once completed.
    async fn result(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.result.clone().map(async_graphql::Json)
    }
    /// Every failed attempt, oldest first.
    async fn errors(&self) -> Vec<JobError> {
        self.0
            .errors
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| JobError {
                        attempt: e["attempt"].as_i64().unwrap_or(0) as i32,
                        at: e["at"]
                            .as_str()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&Utc)),
                        message: e["error"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Attempts started so far.
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }
    /// Attempts it may have before it is discarded.
    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }
    /// When it (next) runs.
    async fn run_at(&self) -> DateTime<Utc> {
        self.0.run_at
    }
    /// When it was enqueued.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When its first attempt started.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// When it completed, was discarded or was cancelled.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

connection_types!(JobConnection, JobEdge, Job);

/// Jobs per state and kind.
#[derive(SimpleObject)]
pub struct JobCount {
    /// The state.
    pub state: JobState,
    /// The kind.
    pub kind: String,
    /// Jobs in that state of that kind.
    pub count: i64,
}

/// A page of jobs with the overview of all that match.
#[derive(SimpleObject)]
pub struct JobList {
    /// The page of jobs, newest first.
    pub jobs: JobConnection,
    /// All matching jobs by state and kind.
    pub counts: Vec<JobCount>,
    /// Seconds the oldest due, unclaimed job has waited (null when none waits).
    pub oldest_available_seconds: Option<f64>,
}

/// Narrows `jobs`.
#[derive(InputObject, Default)]
pub struct JobFilter {
    /// Only these states.
    pub state: Option<Vec<JobState>>,
    /// Only these kinds.
    pub kind: Option<Vec<String>>,
}

#[derive(Default)]
pub struct JobQuery;

#[Object]
impl JobQuery {
    /// A job of your workspace: managers and admins see all, members those they started.
    async fn job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's ID.")] id: ID,
    ) -> async_graphql::Result<Job> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        Ok(Job(app(ctx).jobs.job(viewer, id).await.gql()?))
    }

    /// Admins: the workspace's jobs, newest first, with counts by state and kind.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(1, 500) as usize * child_complexity"
    )]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Narrow the list.")] filter: Option<JobFilter>,
        #[graphql(desc = "Page size from the start (1-500, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (1-500).")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<JobList> {
        let viewer = viewer(ctx)?;
        let page = page_args(first, after, last, before).gql()?;
        let filter = filter.unwrap_or_default();
        let filter = DomainFilter {
            states: filter
                .state
                .map(|s| s.into_iter().map(|s| s.as_str().to_string()).collect()),
            kinds: filter.kind,
        };
        let overview = app(ctx).jobs.jobs(viewer, &filter, &page).await.gql()?;
        Ok(JobList {
            jobs: JobConnection::from_page(overview.page, |j| j.id, Job),
            counts: overview
                .counts
                .into_iter()
                .map(|c| JobCount {
                    state: JobState::parse(&c.state),
                    kind: c.kind,
                    count: c.count,
                })
                .collect(),
            oldest_available_seconds: overview.oldest_available_seconds,
        })
    }
}

/// The result of a job mutation.
#[derive(SimpleObject)]
pub struct JobPayload {
    /// The job as it is now.
    pub job: Job,
}

#[derive(Default)]
pub struct JobMutation;

#[Object]
impl JobMutation {
    /// Runs a discarded, cancelled or waiting-to-retry job again now with fresh attempts.
    async fn retry_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's ID.")] id: ID,
    ) -> async_graphql::Result<JobPayload> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        let job = app(ctx).jobs.retry(viewer, id).await.gql()?;
        Ok(JobPayload { job: Job(job) })
    }

    /// Cancels a waiting job at once, or asks a running one to stop.
    async fn cancel_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's ID.")] id: ID,
    ) -> async_graphql::Result<JobPayload> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        let job = app(ctx).jobs.cancel(viewer, id).await.gql()?;
        Ok(JobPayload { job: Job(job) })
    }
}

#[derive(Default)]
pub struct JobSubscription;

#[Subscription]
impl JobSubscription {
    /// The job now, then again whenever its state, progress, message or attempt changes;
    /// ends after a final state (completed, discarded, cancelled). Same visibility as `job`.
    async fn job_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's ID.")] id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Job>>> {
        let viewer = viewer(ctx)?.clone();
        let id = parse_id("id", &id).gql()?;
        let app = app(ctx).clone();
        // NOT_FOUND at subscribe time, not as the first event, for a job you may not see.
        let first = app.jobs.job(&viewer, id).await.gql()?;
        let fetch =
            move |app: Arc<App>, viewer: Viewer| async move { app.jobs.job(&viewer, id).await };
        Ok(watch(app, viewer, first, fetch, Job))
    }
}

impl Watched for JobView {
    type Fingerprint = (String, i16, Option<String>, i32);

    fn fingerprint(&self) -> Self::Fingerprint {
        (
            self.state.clone(),
            self.progress,
            self.progress_message.clone(),
            self.attempt,
        )
    }

    fn is_final(&self) -> bool {
        JobState::parse(&self.state).is_final()
    }
}
