//! Schedules over GraphQL (admins): `schedules` and `triggerSchedule`.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::jobs::JobState;
use crate::jobs::schedule::ScheduleView;

/// A built-in schedule: a cron pattern that enqueues a job per occurrence, once across all
/// processes.
pub struct Schedule(ScheduleView);

/// A built-in schedule: a cron pattern that enqueues a job per occurrence, once across all
/// processes.
#[Object]
impl Schedule {
    /// The schedule's name, e.g. `tasks.overdue`; also its job's unique key.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Cron pattern with a seconds field (`sec min hour day month weekday`).
    async fn cron(&self) -> &str {
        &self.0.pattern
    }
    /// The IANA timezone the pattern is read in.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
    /// The next occurrence.
    async fn next_run_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_run_at
    }
    /// The occurrence (or manual trigger time) of the latest run.
    async fn last_run_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_run.as_ref().map(|r| r.slot)
    }
    /// How the latest run came about: `tick`, `catch_up` (missed while no process ran) or
    /// `manual`.
    async fn last_run_reason(&self) -> Option<&str> {
        self.0.last_run.as_ref().map(|r| r.reason.as_str())
    }
    /// True when the latest run was skipped because the one before was still waiting or
    /// running (runs of a schedule never overlap).
    async fn last_run_skipped(&self) -> bool {
        self.0.last_run.as_ref().is_some_and(|r| r.job_id.is_none())
    }
    /// The state of the latest run's job.
    async fn last_job_state(&self) -> Option<JobState> {
        self.0
            .last_run
            .as_ref()
            .and_then(|r| r.job_state.as_deref())
            .map(JobState::parse)
    }
}

#[derive(Default)]
pub struct ScheduleQuery;

#[Object]
impl ScheduleQuery {
    /// Admins: the built-in schedules with their next and last runs.
    async fn schedules(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Schedule>> {
        let viewer = viewer(ctx)?;
        let list = app(ctx).scheduler.list(viewer).await.gql()?;
        Ok(list.into_iter().map(Schedule).collect())
    }
}

/// The result of `triggerSchedule`.
#[derive(SimpleObject)]
pub struct SchedulePayload {
    /// The schedule with its new run.
    pub schedule: Schedule,
}

#[derive(Default)]
pub struct ScheduleMutation;

#[Object]
impl ScheduleMutation {
    /// Admins: runs a schedule's job now. CONFLICT (field `name`) while its previous run is
    /// still waiting or running.
    async fn trigger_schedule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The schedule's name.")] name: String,
    ) -> async_graphql::Result<SchedulePayload> {
        let viewer = viewer(ctx)?;
        let schedule = app(ctx).scheduler.trigger(viewer, &name).await.gql()?;
        Ok(SchedulePayload {
            schedule: Schedule(schedule),
        })
    }
}
