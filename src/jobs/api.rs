//! What users may see and do with jobs: the "task id" every background operation returns.
//! A job is visible to its workspace's managers and admins, and to the member who started it;
//! system jobs (no workspace) are visible to nobody through the API. Live and finished jobs
//! are read as one (`jobs` UNION ALL `job_history`).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::auth::{Role, Viewer};
use crate::crm::sql::{Bind, Sql};
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::pagination::{Page, PageArgs};

/// A job as users see it, live or finished.
#[derive(Debug, Clone, QueryableByName)]
pub struct JobView {
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
    /// available, running, failed (waiting to retry), completed, discarded, cancelled.
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
    #[diesel(sql_type = SmallInt)]
    pub progress: i16,
    #[diesel(sql_type = Nullable<Text>)]
    pub progress_message: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub result: Option<serde_json::Value>,
    #[diesel(sql_type = Jsonb)]
    pub errors: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub started_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, workspace_id, created_by, kind, queue, state, priority, run_at, \
    attempt, max_attempts, progress, progress_message";

/// Live and finished jobs as one relation `j`.
fn all_jobs() -> String {
    format!(
        "(SELECT {COLUMNS}, NULL::jsonb AS result, errors, created_at, started_at, \
           NULL::timestamptz AS finished_at FROM jobs \
          UNION ALL \
          SELECT {COLUMNS}, result, errors, created_at, started_at, finished_at \
          FROM job_history) AS j"
    )
}

/// Who sees which jobs, in one place.
fn scope(viewer: &Viewer) -> Sql {
    let mut sql = Sql::new("j.workspace_id = ");
    sql.bind(Bind::Int(viewer.workspace_id.0));
    if viewer.role == Role::Member {
        sql.push(" AND j.created_by = ")
            .bind(Bind::Int(viewer.user_id.0));
    }
    sql
}

/// `jobs(filter)` input.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub states: Option<Vec<String>>,
    pub kinds: Option<Vec<String>>,
}

/// Jobs per state and kind, for the admin overview.
#[derive(Debug, Clone, QueryableByName)]
pub struct JobCount {
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The admin overview of a workspace's jobs.
#[derive(Debug, Clone)]
pub struct JobOverview {
    pub page: Page<JobView>,
    pub counts: Vec<JobCount>,
    /// How long the oldest due, unclaimed job has waited (a stuck queue shows here).
    pub oldest_available_seconds: Option<f64>,
}

#[derive(Clone)]
pub struct JobService {
    db: DbPool,
}

impl JobService {
    pub fn new(db: DbPool) -> Self {
        JobService { db }
    }

    /// A job the caller may see, or NOT_FOUND.
    pub async fn job(&self, viewer: &Viewer, id: i64) -> AppResult<JobView> {
        let mut sql = Sql::new(&format!("SELECT j.* FROM {} WHERE ", all_jobs()));
        sql.append(scope(viewer))
            .push(" AND j.id = ")
            .bind(Bind::Int(id));
        let mut conn = self.db.get().await?;
        sql.into_query()
            .get_result(&mut conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("job"))
    }

    /// Admins: the workspace's jobs, newest first, with counts by state and kind.
    pub async fn jobs(
        &self,
        viewer: &Viewer,
        filter: &JobFilter,
        page: &PageArgs,
    ) -> AppResult<JobOverview> {
        viewer.require_admin()?;
        let window = page.window()?;
        let mut conditions = scope(viewer);
        if let Some(states) = &filter.states {
            conditions
                .push(" AND j.state = ANY(")
                .bind(Bind::Texts(states.clone()))
                .push(")");
        }
        if let Some(kinds) = &filter.kinds {
            conditions
                .push(" AND j.kind = ANY(")
                .bind(Bind::Texts(kinds.clone()))
                .push(")");
        }
        let mut conn = self.db.get().await?;

        let mut counts = Sql::new(&format!(
            "SELECT j.state, j.kind, count(*) AS count FROM {} WHERE ",
            all_jobs()
        ));
        counts
            .append(conditions.clone())
            .push(" GROUP BY j.state, j.kind ORDER BY j.state, j.kind");
        let counts: Vec<JobCount> = counts.into_query().load(&mut conn).await?;
        let total = counts.iter().map(|c| c.count).sum();

        let mut sql = Sql::new(&format!("SELECT j.* FROM {} WHERE ", all_jobs()));
        sql.append(conditions);
        if let Some(after) = page.after {
            sql.push(" AND j.id < ").bind(Bind::Int(after));
        }
        if let Some(before) = page.before {
            sql.push(" AND j.id > ").bind(Bind::Int(before));
        }
        sql.push(if window.backward {
            " ORDER BY j.id ASC LIMIT "
        } else {
            " ORDER BY j.id DESC LIMIT "
        })
        .bind(Bind::Int(window.fetch()));
        let rows: Vec<JobView> = sql.into_query().load(&mut conn).await?;

        #[derive(QueryableByName)]
        struct Oldest {
            #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
            seconds: Option<f64>,
        }
        let oldest: Oldest = diesel::sql_query(
            "SELECT extract(epoch FROM now() - min(run_at))::float8 AS seconds FROM jobs \
             WHERE workspace_id = $1 AND state = 'available' AND run_at <= now()",
        )
        .bind::<BigInt, _>(viewer.workspace_id.0)
        .get_result(&mut conn)
        .await?;
        Ok(JobOverview {
            page: window.finish(rows, total),
            counts,
            oldest_available_seconds: oldest.seconds,
        })
    }

    /// Runs a discarded, cancelled or waiting-to-retry job again now, with fresh attempts
    /// (its errors are kept). The job's starter, managers and admins may.
    pub async fn retry(&self, viewer: &Viewer, id: i64) -> AppResult<JobView> {
        let current = self.job(viewer, id).await?;
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            let changed =
                match current.state.as_str() {
                    "failed" | "available" => diesel::sql_query(
                        "UPDATE jobs SET state = 'available', run_at = now(), updated_at = now() \
                         WHERE id = $1 AND state <> 'running'",
                    )
                    .bind::<BigInt, _>(id)
                    .execute(conn)
                    .await?,
                    "discarded" | "cancelled" => diesel::sql_query(
                        "WITH back AS (DELETE FROM job_history WHERE id = $1 \
                       AND state IN ('discarded', 'cancelled') RETURNING *) \
                     INSERT INTO jobs (id, workspace_id, created_by, kind, queue, args, state, \
                       priority, run_at, attempt, max_attempts, unique_key, errors, created_at) \
                     OVERRIDING SYSTEM VALUE \
                     SELECT id, workspace_id, created_by, kind, queue, args, 'available', \
                       priority, now(), 0, max_attempts, unique_key, errors, created_at FROM back",
                    )
                    .bind::<BigInt, _>(id)
                    .execute(conn)
                    .await
                    .map_err(|err| match err {
                        diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        ) => AppError::conflict_on(
                            "id",
                            "another job with the same unique key is waiting or running",
                        ),
                        other => other.into(),
                    })?,
                    "running" => {
                        return Err(AppError::conflict_on("id", "the job is running"));
                    }
                    _ => {
                        return Err(AppError::conflict_on(
                            "id",
                            "the job completed; enqueue a new one instead",
                        ));
                    }
                };
            if changed == 0 {
                return Err(AppError::conflict_on(
                    "id",
                    "the job changed meanwhile; try again",
                ));
            }
            diesel::sql_query("SELECT pg_notify($1, queue) FROM jobs WHERE id = $2")
                .bind::<Text, _>(super::queue::CHANNEL)
                .bind::<BigInt, _>(id)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await?;
        self.job(viewer, id).await
    }

    /// Cancels a job: one that waits is cancelled at once; a running one is asked to stop
    /// (its worker sees the request at the next heartbeat and its handler ends it). A
    /// finished job is a CONFLICT.
    pub async fn cancel(&self, viewer: &Viewer, id: i64) -> AppResult<JobView> {
        let current = self.job(viewer, id).await?;
        let mut conn = self.db.get().await?;
        let changed = match current.state.as_str() {
            "available" | "failed" => {
                diesel::sql_query(format!(
                    "WITH done AS (DELETE FROM jobs WHERE id = $1 AND state <> 'running' \
                       RETURNING *) {}",
                    super::queue::insert_history(2)
                ))
                .bind::<BigInt, _>(id)
                .bind::<Text, _>("cancelled")
                .bind::<Nullable<Jsonb>, _>(None::<serde_json::Value>)
                .bind::<Jsonb, _>(serde_json::json!([]))
                .execute(&mut conn)
                .await?
            }
            "running" => {
                diesel::sql_query(
                    "UPDATE jobs SET cancel_requested = TRUE, updated_at = now() \
                     WHERE id = $1 AND state = 'running'",
                )
                .bind::<BigInt, _>(id)
                .execute(&mut conn)
                .await?
            }
            _ => return Err(AppError::conflict_on("id", "the job has already finished")),
        };
        if changed == 0 {
            return Err(AppError::conflict_on(
                "id",
                "the job changed meanwhile; try again",
            ));
        }
        drop(conn);
        self.job(viewer, id).await
    }
}
