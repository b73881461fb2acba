//! Schedules (DESIGN.md "Jobs"): cron patterns that enqueue a job per occurrence ("slot").
//!
//! Every process runs a scheduler and ticks every schedule; exactly-once comes from the
//! database, not from the timer: a slot becomes a run by inserting `(schedule, slot)` into
//! `schedule_runs`, and only the process whose insert wins enqueues the job, in the same
//! transaction. The job's unique key is the schedule's name, so while one run is waiting or
//! running the next slot is skipped (recorded, not queued behind it): runs never overlap.
//! A slot missed while every process was down runs once at the next start if it is still
//! within the schedule's grace period. Slots are computed with croner in the schedule's own
//! timezone, so they follow daylight-saving changes; tokio-cron-scheduler is only the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio_util::sync::CancellationToken;

use super::{new_job, queue, Job, NewJob};
use crate::auth::Viewer;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};

/// One schedule: a cron pattern with seconds (`0 */30 * * * *`), its timezone, how late a
/// missed slot may still run, and the job each slot enqueues.
#[derive(Clone)]
pub struct Schedule {
    pub name: &'static str,
    pub pattern: &'static str,
    pub timezone: Tz,
    pub grace: Duration,
    job: fn() -> NewJob,
    cron: Cron,
}

impl Schedule {
    /// A schedule enqueueing `J` with its default arguments. Panics on a malformed pattern:
    /// schedules are defined in code, and a typo must fail the first test, not production.
    pub fn of<J: Job + Default>(name: &'static str, pattern: &'static str, tz: Tz) -> Self {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(pattern)
            .unwrap_or_else(|err| panic!("schedule {name}: bad cron pattern {pattern:?}: {err}"));
        Schedule {
            name,
            pattern,
            timezone: tz,
            grace: Duration::from_secs(30 * 60),
            job: || new_job(&J::default()),
            cron,
        }
    }

    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The latest slot at or before `now`.
    pub fn slot_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Slots are whole seconds; croner would hand back `now` itself, fractions and all,
        // when `now` falls within a matching second.
        let now = now.trunc_subsecs(0);
        self.cron
            .find_previous_occurrence(&now.with_timezone(&self.timezone), true)
            .ok()
            .map(|slot| slot.with_timezone(&Utc))
    }

    /// The first slot after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&now.with_timezone(&self.timezone), false)
            .ok()
            .map(|slot| slot.with_timezone(&Utc))
    }

    fn unique_key(&self) -> String {
        format!("schedule:{}", self.name)
    }
}

/// The schedules of this build. Lead-model retraining (issue 6) and the daily digest (issue 8)
/// join when their jobs exist.
pub fn builtin() -> Vec<Schedule> {
    use crate::crm::due::{DueSoonTasks, OverdueTasks};
    vec![
        Schedule::of::<OverdueTasks>("tasks.overdue", "0 */30 * * * *", Tz::UTC),
        Schedule::of::<DueSoonTasks>("tasks.due_soon", "0 */30 * * * *", Tz::UTC),
        // Monday 02:00 in each workspace's timezone: an hourly UTC tick retrains the
        // workspaces whose local clock reads Monday 02:xx at that slot.
        Schedule::of::<crate::scoring::jobs::RetrainAll>(
            "lead_scoring.retrain",
            "0 0 * * * *",
            Tz::UTC,
        ),
        // Time-based workflow triggers; each workflow reads its moments in its workspace's
        // timezone, so the tick itself is UTC.
        Schedule::of::<crate::workflows::time_triggers::TimeTriggers>(
            "workflows.time_based",
            "0 * * * * *",
            Tz::UTC,
        )
        .with_grace(Duration::from_secs(120)),
        // Digests: each user's slot is in their own timezone, so the tick is every minute.
        Schedule::of::<crate::notifications::digest::DigestTick>(
            "notifications.digests",
            "0 * * * * *",
            Tz::UTC,
        )
        .with_grace(Duration::from_secs(120)),
    ]
}

/// What a schedule's job was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticked {
    /// A tick (or a catch-up) for this slot: a job that serves many timezones from one UTC
    /// tick picks who is due at it.
    Slot(DateTime<Utc>),
    /// An admin's trigger: now, for their workspace only (`None`: a run made without one,
    /// for every workspace).
    Manual { workspace: Option<i64> },
}

/// What the schedule run that made job `job_id` was for (`Manual` for every workspace when
/// no run made it).
pub async fn ticked(conn: &mut AsyncPgConnection, job_id: i64) -> AppResult<Ticked> {
    #[derive(QueryableByName)]
    struct Run {
        #[diesel(sql_type = Text)]
        reason: String,
        #[diesel(sql_type = Timestamptz)]
        slot: DateTime<Utc>,
        #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
        workspace_id: Option<i64>,
    }
    let run: Option<Run> =
        diesel::sql_query("SELECT reason, slot, workspace_id FROM schedule_runs WHERE job_id = $1")
            .bind::<BigInt, _>(job_id)
            .get_result(conn)
            .await
            .optional()?;
    Ok(match run {
        Some(run) if run.reason != Reason::Manual.as_str() => Ticked::Slot(run.slot),
        Some(run) => Ticked::Manual {
            workspace: run.workspace_id,
        },
        None => Ticked::Manual { workspace: None },
    })
}

/// Why a run was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Tick,
    CatchUp,
    Manual,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Tick => "tick",
            Reason::CatchUp => "catch_up",
            Reason::Manual => "manual",
        }
    }
}

/// What firing a slot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// This process made the run; the job's ID.
    Enqueued(i64),
    /// This process made the run, but the previous run is still live: no job.
    Skipped,
    /// Another process (or an earlier life of this one) already made this slot's run.
    AlreadyRun,
}

/// A schedule as the API shows it.
#[derive(Debug, Clone)]
pub struct ScheduleView {
    pub name: String,
    pub pattern: String,
    pub timezone: String,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct LastRun {
    #[diesel(sql_type = Text)]
    pub schedule: String,
    #[diesel(sql_type = Timestamptz)]
    pub slot: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub job_id: Option<i64>,
    /// The job's state; None when the run was skipped (or its history was purged).
    #[diesel(sql_type = Nullable<Text>)]
    pub job_state: Option<String>,
}

/// The schedules of a process and the slots it has fired (so a tick only touches the
/// database when a schedule's slot changes).
pub struct Scheduler {
    db: DbPool,
    schedules: Vec<Schedule>,
    fired: Mutex<HashMap<&'static str, DateTime<Utc>>>,
}

impl Scheduler {
    pub fn new(db: DbPool, schedules: Vec<Schedule>) -> Self {
        Scheduler {
            db,
            schedules,
            fired: Mutex::new(HashMap::new()),
        }
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// Fires every schedule whose latest slot at `now` is within its grace period and not yet
    /// fired by this process. `now` is a parameter so tests can drive a fake clock.
    pub async fn fire_due(&self, now: DateTime<Utc>) -> AppResult<Vec<(&'static str, Fired)>> {
        let mut outcomes = Vec::new();
        for schedule in &self.schedules {
            let Some(slot) = schedule.slot_at(now) else {
                continue;
            };
            let late = (now - slot).to_std().unwrap_or_default();
            let already = self.fired.lock().unwrap().get(schedule.name) == Some(&slot);
            if already || late > schedule.grace {
                continue;
            }
            // A tick arrives within a second or two of its slot; anything later was missed
            // while this process (or all of them) was down.
            let reason = if late <= Duration::from_secs(5) {
                Reason::Tick
            } else {
                Reason::CatchUp
            };
            let fired = self.fire(schedule, slot, reason).await?;
            self.fired.lock().unwrap().insert(schedule.name, slot);
            outcomes.push((schedule.name, fired));
        }
        Ok(outcomes)
    }

    /// Makes the run of `schedule` for `slot`, unless one exists.
    pub async fn fire(
        &self,
        schedule: &Schedule,
        slot: DateTime<Utc>,
        reason: Reason,
    ) -> AppResult<Fired> {
        let mut conn = self.db.get().await?;
        fire_in(&mut conn, schedule, slot, reason, None).await
    }

    /// An admin's "run now". CONFLICT when the previous run is still waiting or running.
    pub async fn trigger(&self, viewer: &Viewer, name: &str) -> AppResult<ScheduleView> {
        viewer.require_admin()?;
        let schedule = self.find(name)?;
        // Milliseconds: two triggers in one instant are one run.
        let now =
            DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now);
        let mut conn = self.db.get().await?;
        let outcome = conn
            .transaction::<_, AppError, _>(async move |conn| {
                let workspace = Some(viewer.workspace_id.0);
                match fire_in(conn, schedule, now, Reason::Manual, workspace).await? {
                    // Roll the run back: a refused trigger leaves no trace.
                    Fired::Skipped => Err(AppError::conflict_on(
                        "name",
                        "this schedule's previous run is still waiting or running",
                    )),
                    fired => Ok(fired),
                }
            })
            .await?;
        tracing::info!(
            schedule = schedule.name,
            user = viewer.user_id.0,
            ?outcome,
            "schedule triggered by hand"
        );
        self.view(viewer, name).await
    }

    /// Every schedule with its next slot and last run (admins only).
    pub async fn list(&self, viewer: &Viewer) -> AppResult<Vec<ScheduleView>> {
        viewer.require_admin()?;
        let names: Vec<&str> = self.schedules.iter().map(|s| s.name).collect();
        let mut conn = self.db.get().await?;
        let runs: Vec<LastRun> = diesel::sql_query(
            "SELECT DISTINCT ON (r.schedule) r.schedule, r.slot, r.reason, r.job_id, \
               coalesce(j.state, h.state) AS job_state \
             FROM schedule_runs r \
             LEFT JOIN jobs j ON j.id = r.job_id \
             LEFT JOIN job_history h ON h.id = r.job_id \
             WHERE r.schedule = ANY($1) \
             ORDER BY r.schedule, r.created_at DESC, r.slot DESC",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(&names)
        .load(&mut conn)
        .await?;
        let mut last: HashMap<String, LastRun> =
            runs.into_iter().map(|r| (r.schedule.clone(), r)).collect();
        let now = Utc::now();
        Ok(self
            .schedules
            .iter()
            .map(|s| ScheduleView {
                name: s.name.to_string(),
                pattern: s.pattern.to_string(),
                timezone: s.timezone.name().to_string(),
                next_run_at: s.next_after(now),
                last_run: last.remove(s.name),
            })
            .collect())
    }

    async fn view(&self, viewer: &Viewer, name: &str) -> AppResult<ScheduleView> {
        self.list(viewer)
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| AppError::NotFound("schedule"))
    }

    fn find(&self, name: &str) -> AppResult<&Schedule> {
        self.schedules
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| AppError::bad_input("name", format!("there is no schedule {name:?}")))
    }
}

/// The run for (`schedule`, `slot`) and its job, in the caller's transaction if it has one.
async fn fire_in(
    conn: &mut AsyncPgConnection,
    schedule: &Schedule,
    slot: DateTime<Utc>,
    reason: Reason,
    workspace: Option<i64>,
) -> AppResult<Fired> {
    #[derive(QueryableByName)]
    struct Made {
        #[diesel(sql_type = Timestamptz)]
        #[allow(dead_code)]
        slot: DateTime<Utc>,
    }
    conn.transaction::<_, AppError, _>(async move |conn| {
        let made: Option<Made> = diesel::sql_query(
            "INSERT INTO schedule_runs (schedule, slot, reason, workspace_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (schedule, slot) DO NOTHING RETURNING slot",
        )
        .bind::<Text, _>(schedule.name)
        .bind::<Timestamptz, _>(slot)
        .bind::<Text, _>(reason.as_str())
        .bind::<diesel::sql_types::Nullable<BigInt>, _>(workspace)
        .get_result(conn)
        .await
        .optional()?;
        if made.is_none() {
            return Ok(Fired::AlreadyRun);
        }
        let mut job = (schedule.job)();
        job.unique_key = Some(schedule.unique_key());
        let Some(job_id) = queue::enqueue_in(conn, &job).await? else {
            return Ok(Fired::Skipped);
        };
        diesel::sql_query("UPDATE schedule_runs SET job_id = $3 WHERE schedule = $1 AND slot = $2")
            .bind::<Text, _>(schedule.name)
            .bind::<Timestamptz, _>(slot)
            .bind::<BigInt, _>(job_id)
            .execute(conn)
            .await?;
        Ok(Fired::Enqueued(job_id))
    })
    .await
}

/// Ticks the scheduler every second on tokio-cron-scheduler's clock until `shutdown` (the
/// first tick, at start, is the catch-up).
pub async fn run(scheduler: Arc<Scheduler>, shutdown: CancellationToken) {
    use tokio_cron_scheduler::{Job as CronJob, JobScheduler};
    let tick = |scheduler: Arc<Scheduler>| async move {
        match scheduler.fire_due(Utc::now()).await {
            Ok(fired) => {
                for (name, fired) in fired {
                    tracing::info!(schedule = name, ?fired, "schedule slot");
                }
            }
            Err(err) => {
                err.log_if_internal();
            }
        }
    };
    tick(scheduler.clone()).await;
    let clock = async {
        let clock = JobScheduler::new().await?;
        let ticking = scheduler.clone();
        clock
            .add(CronJob::new_async("* * * * * *", move |_, _| {
                Box::pin(tick(ticking.clone()))
            })?)
            .await?;
        clock.start().await?;
        Ok::<_, tokio_cron_scheduler::JobSchedulerError>(clock)
    };
    match clock.await {
        Ok(mut clock) => {
            shutdown.cancelled().await;
            let _ = clock.shutdown().await;
        }
        Err(err) => tracing::error!(error = %err, "the schedule clock could not start"),
    }
}
