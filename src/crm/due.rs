//! The due-date checks the schedules run: each open task whose due date has passed emits one
//! `overdue` event, and each one due within the next 24 hours one `due_soon` event, once per
//! due date (moving a task to a new date arms the check again). The events go into the
//! change stream like any change, so notifications and workflows pick them up from there.

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use super::tasks::OPEN_STATUSES;
use crate::error::AppResult;
use crate::jobs::{Job, JobContext};

/// Tasks flagged per statement: bounds one transaction's locks and size.
const BATCH: i64 = 1000;

/// Which check, with its window and marker column (fixed strings, never client input).
#[derive(Debug, Clone, Copy)]
pub enum DueCheck {
    Overdue,
    DueSoon,
}

impl DueCheck {
    fn action(self) -> &'static str {
        match self {
            DueCheck::Overdue => "overdue",
            DueCheck::DueSoon => "due_soon",
        }
    }

    fn marker(self) -> &'static str {
        match self {
            DueCheck::Overdue => "overdue_event_for",
            DueCheck::DueSoon => "due_soon_event_for",
        }
    }

    /// The tasks this check has yet to flag.
    fn unflagged(self) -> String {
        let window = match self {
            DueCheck::Overdue => "due_at < now()",
            DueCheck::DueSoon => "due_at >= now() AND due_at < now() + interval '24 hours'",
        };
        // Open statuses as literals, so the statement matches the partial index
        // `tasks_open_due_idx` (a bound list would not).
        let open: Vec<String> = OPEN_STATUSES
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!(
            "deleted_at IS NULL AND due_at IS NOT NULL AND status IN ({}) \
             AND {window} AND {} IS DISTINCT FROM due_at",
            open.join(", "),
            self.marker()
        )
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many tasks `check` would flag now.
pub async fn pending(conn: &mut AsyncPgConnection, check: DueCheck) -> AppResult<i64> {
    let count: Count = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM tasks WHERE {}",
        check.unflagged()
    ))
    .get_result(conn)
    .await?;
    Ok(count.n)
}

/// Flags one batch of tasks for `check` and writes their events, in one statement. Returns
/// how many were flagged. Concurrent runs skip each other's rows.
pub async fn flag_batch(conn: &mut AsyncPgConnection, check: DueCheck) -> AppResult<i64> {
    let (marker, pending) = (check.marker(), check.unflagged());
    let flagged: Count = diesel::sql_query(format!(
        "WITH due AS ( \
           SELECT id FROM tasks WHERE {pending} ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
         marked AS ( \
           UPDATE tasks t SET {marker} = t.due_at FROM due WHERE t.id = due.id \
           RETURNING t.id, t.workspace_id, t.due_at), \
         events AS ( \
           INSERT INTO record_events (workspace_id, entity, record_id, action, changes) \
           SELECT workspace_id, 'task', id, $1, \
             jsonb_build_object('due_at', jsonb_build_object('old', due_at, 'new', due_at)) \
           FROM marked ORDER BY id RETURNING 1) \
         SELECT count(*) AS n FROM events"
    ))
    .bind::<Text, _>(check.action())
    .bind::<BigInt, _>(BATCH)
    .get_result(conn)
    .await?;
    Ok(flagged.n)
}

/// Flags every task that is due for `check`, reporting progress per batch.
async fn flag_all(ctx: &JobContext, check: DueCheck) -> Result<serde_json::Value, String> {
    let mut conn = ctx.app.db.get().await.map_err(|e| e.to_string())?;
    let expected = pending(&mut conn, check)
        .await
        .map_err(|e| e.to_string())?
        .max(1);
    let mut total = 0;
    loop {
        let n = flag_batch(&mut conn, check)
            .await
            .map_err(|e| e.to_string())?;
        total += n;
        if n < BATCH {
            break;
        }
        // More may have come due since the count: stay below 100 until done.
        let percent = (total * 100 / expected).min(99) as i16;
        let _ = ctx
            .progress(percent, &format!("{total} tasks flagged"))
            .await;
    }
    Ok(serde_json::json!({ "flagged": total }))
}

/// The `tasks.overdue` schedule's job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OverdueTasks {}

impl Job for OverdueTasks {
    const KIND: &'static str = "tasks.overdue";
    const MAX_ATTEMPTS: i32 = 3;
    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        flag_all(&ctx, DueCheck::Overdue).await
    }
}

/// The `tasks.due_soon` schedule's job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DueSoonTasks {}

impl Job for DueSoonTasks {
    const KIND: &'static str = "tasks.due_soon";
    const MAX_ATTEMPTS: i32 = 3;
    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        flag_all(&ctx, DueCheck::DueSoon).await
    }
}
