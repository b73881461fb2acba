//! The workflow tables' SQL: definitions and their versions, runs and their steps.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::definition::Definition;
use crate::error::AppResult;

#[derive(Debug, Clone, QueryableByName)]
pub struct WorkflowRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub workspace_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Integer)]
    pub version: i32,
    #[diesel(sql_type = Text)]
    pub entity: String,
    #[diesel(sql_type = Jsonb)]
    pub trigger: Value,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub conditions: Option<Value>,
    #[diesel(sql_type = Jsonb)]
    pub actions: Value,
    #[diesel(sql_type = Text)]
    pub webhook_secret: String,
    #[diesel(sql_type = BigInt)]
    pub created_by: i64,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

impl WorkflowRow {
    /// The stored definition, parsed (it was checked on save).
    pub fn definition(&self) -> AppResult<Definition> {
        Definition::parse(
            &self.entity,
            &self.trigger,
            self.conditions.as_ref(),
            &self.actions,
        )
    }
}

const WORKFLOW_COLUMNS: &str = "id, workspace_id, name, description, status, version, entity, \
    trigger, conditions, actions, webhook_secret, created_by, created_at, updated_at";

pub async fn insert(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    created_by: i64,
    name: &str,
    description: Option<&str>,
    definition: &Definition,
    secret: &str,
) -> AppResult<WorkflowRow> {
    let row: WorkflowRow = diesel::sql_query(format!(
        "INSERT INTO workflows (workspace_id, name, description, entity, trigger, conditions, \
           actions, webhook_secret, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {WORKFLOW_COLUMNS}"
    ))
    .bind::<BigInt, _>(workspace_id)
    .bind::<Text, _>(name)
    .bind::<Nullable<Text>, _>(description)
    .bind::<Text, _>(definition.entity.name())
    .bind::<Jsonb, _>(definition.trigger_json())
    .bind::<Nullable<Jsonb>, _>(definition.conditions_json())
    .bind::<Jsonb, _>(definition.actions_json())
    .bind::<Text, _>(secret)
    .bind::<BigInt, _>(created_by)
    .get_result(conn)
    .await?;
    save_version(conn, &row, created_by).await?;
    Ok(row)
}

/// Keeps the workflow's current definition as its version.
async fn save_version(conn: &mut AsyncPgConnection, row: &WorkflowRow, by: i64) -> AppResult<()> {
    diesel::sql_query(
        "INSERT INTO workflow_versions (workflow_id, version, entity, trigger, conditions, \
           actions, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind::<BigInt, _>(row.id)
    .bind::<Integer, _>(row.version)
    .bind::<Text, _>(&row.entity)
    .bind::<Jsonb, _>(&row.trigger)
    .bind::<Nullable<Jsonb>, _>(&row.conditions)
    .bind::<Jsonb, _>(&row.actions)
    .bind::<BigInt, _>(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A live workflow of the workspace; `lock` takes it for an update.
pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    id: i64,
    lock: bool,
) -> AppResult<Option<WorkflowRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows \
         WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(workspace_id)
    .get_result(conn)
    .await
    .optional()?)
}

/// A workflow by ID whatever its state (runs of deleted workflows finish).
pub async fn any(conn: &mut AsyncPgConnection, id: i64) -> AppResult<WorkflowRow> {
    Ok(diesel::sql_query(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1"
    ))
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .await?)
}

/// A page of the workspace's workflows by ID, after `after`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    status: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> AppResult<Vec<WorkflowRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows \
         WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR status = $2) \
           AND id > $3 ORDER BY id LIMIT $4"
    ))
    .bind::<BigInt, _>(workspace_id)
    .bind::<Nullable<Text>, _>(status)
    .bind::<BigInt, _>(after.unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    status: Option<&str>,
) -> AppResult<i64> {
    count_with(
        conn,
        "SELECT count(*) AS n FROM workflows \
         WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR status = $2)",
        workspace_id,
        status,
    )
    .await
}

/// A `SELECT count(*) AS n` bound to an ID and an optional status.
async fn count_with(
    conn: &mut AsyncPgConnection,
    sql: &str,
    id: i64,
    status: Option<&str>,
) -> AppResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let row: Count = diesel::sql_query(sql)
        .bind::<BigInt, _>(id)
        .bind::<Nullable<Text>, _>(status)
        .get_result(conn)
        .await?;
    Ok(row.n)
}

/// Writes new values; a new definition becomes the next version.
pub async fn update(
    conn: &mut AsyncPgConnection,
    current: &WorkflowRow,
    name: &str,
    description: Option<&str>,
    definition: Option<&Definition>,
    by: i64,
) -> AppResult<WorkflowRow> {
    let (entity, trigger, conditions, actions, version) = match definition {
        Some(d) => (
            d.entity.name().to_string(),
            d.trigger_json(),
            d.conditions_json(),
            d.actions_json(),
            current.version + 1,
        ),
        None => (
            current.entity.clone(),
            current.trigger.clone(),
            current.conditions.clone(),
            current.actions.clone(),
            current.version,
        ),
    };
    let row: WorkflowRow = diesel::sql_query(format!(
        "UPDATE workflows SET name = $2, description = $3, entity = $4, trigger = $5, \
           conditions = $6, actions = $7, version = $8, updated_at = now() \
         WHERE id = $1 RETURNING {WORKFLOW_COLUMNS}"
    ))
    .bind::<BigInt, _>(current.id)
    .bind::<Text, _>(name)
    .bind::<Nullable<Text>, _>(description)
    .bind::<Text, _>(&entity)
    .bind::<Jsonb, _>(&trigger)
    .bind::<Nullable<Jsonb>, _>(&conditions)
    .bind::<Jsonb, _>(&actions)
    .bind::<Integer, _>(version)
    .get_result(conn)
    .await?;
    if version != current.version {
        save_version(conn, &row, by).await?;
    }
    Ok(row)
}

pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: &str,
) -> AppResult<WorkflowRow> {
    Ok(diesel::sql_query(format!(
        "UPDATE workflows SET status = $2, updated_at = now() WHERE id = $1 \
         RETURNING {WORKFLOW_COLUMNS}"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(status)
    .get_result(conn)
    .await?)
}

/// Deleted workflows start no runs; their history stays.
pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE workflows SET deleted_at = now(), status = 'inactive', updated_at = now() \
         WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The active workflows watching any of these (workspace, entity) pairs.
pub async fn active(
    conn: &mut AsyncPgConnection,
    workspaces: &[i64],
    entities: &[String],
) -> AppResult<Vec<WorkflowRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows \
         WHERE (workspace_id, entity) IN (SELECT * FROM unnest($1::bigint[], $2::text[])) \
           AND status = 'active' AND deleted_at IS NULL ORDER BY id"
    ))
    .bind::<Array<BigInt>, _>(workspaces)
    .bind::<Array<Text>, _>(entities)
    .load(conn)
    .await?)
}

/// Every active time-based workflow, of every workspace.
pub async fn time_based(conn: &mut AsyncPgConnection) -> AppResult<Vec<WorkflowRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows \
         WHERE status = 'active' AND deleted_at IS NULL AND trigger->>'type' = 'time_based' \
         ORDER BY id"
    ))
    .load(conn)
    .await?)
}

/// Locks a time-based workflow's cursor for one evaluation: how far it was evaluated and its
/// workspace's timezone. None when the workflow is no longer active in this version (or was
/// activated before cursors existed: then the cursor starts now).
pub async fn lock_time_cursor(
    conn: &mut AsyncPgConnection,
    workflow: &WorkflowRow,
) -> AppResult<Option<(DateTime<Utc>, String)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Timestamptz)]
        evaluated_until: DateTime<Utc>,
        #[diesel(sql_type = Text)]
        timezone: String,
    }
    let row: Option<Row> = diesel::sql_query(
        "SELECT c.evaluated_until, s.timezone FROM workflow_time_cursors c \
         JOIN workflows w ON w.id = c.workflow_id JOIN workspaces s ON s.id = w.workspace_id \
         WHERE c.workflow_id = $1 AND w.version = $2 AND w.status = 'active' \
           AND w.deleted_at IS NULL \
         FOR UPDATE OF c",
    )
    .bind::<BigInt, _>(workflow.id)
    .bind::<Integer, _>(workflow.version)
    .get_result(conn)
    .await
    .optional()?;
    if row.is_none() {
        start_time_cursor(conn, workflow.id, false).await?;
    }
    Ok(row.map(|r| (r.evaluated_until, r.timezone)))
}

/// Starts a time-based workflow's cursor at now: moments before it never fire. `restart`
/// (activation) moves an existing cursor to now too; otherwise an existing one stays.
pub async fn start_time_cursor(
    conn: &mut AsyncPgConnection,
    workflow_id: i64,
    restart: bool,
) -> AppResult<()> {
    diesel::sql_query(
        "INSERT INTO workflow_time_cursors (workflow_id, evaluated_until) VALUES ($1, now()) \
         ON CONFLICT (workflow_id) DO UPDATE SET evaluated_until = \
           CASE WHEN $2 THEN now() ELSE workflow_time_cursors.evaluated_until END",
    )
    .bind::<BigInt, _>(workflow_id)
    .bind::<diesel::sql_types::Bool, _>(restart)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moments up to `until` have been looked at (a cursor never moves back).
pub async fn advance_time_cursor(
    conn: &mut AsyncPgConnection,
    workflow_id: i64,
    until: DateTime<Utc>,
) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE workflow_time_cursors SET evaluated_until = greatest(evaluated_until, $2) \
         WHERE workflow_id = $1",
    )
    .bind::<BigInt, _>(workflow_id)
    .bind::<Timestamptz, _>(until)
    .execute(conn)
    .await?;
    Ok(())
}

/// The definition a version had.
pub async fn version(
    conn: &mut AsyncPgConnection,
    workflow_id: i64,
    version: i32,
) -> AppResult<Definition> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        entity: String,
        #[diesel(sql_type = Jsonb)]
        trigger: Value,
        #[diesel(sql_type = Nullable<Jsonb>)]
        conditions: Option<Value>,
        #[diesel(sql_type = Jsonb)]
        actions: Value,
    }
    let row: Row = diesel::sql_query(
        "SELECT entity, trigger, conditions, actions FROM workflow_versions \
         WHERE workflow_id = $1 AND version = $2",
    )
    .bind::<BigInt, _>(workflow_id)
    .bind::<Integer, _>(version)
    .get_result(conn)
    .await?;
    Definition::parse(
        &row.entity,
        &row.trigger,
        row.conditions.as_ref(),
        &row.actions,
    )
}

#[derive(Debug, Clone, QueryableByName)]
pub struct RunRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub workspace_id: i64,
    #[diesel(sql_type = BigInt)]
    pub workflow_id: i64,
    #[diesel(sql_type = Integer)]
    pub version: i32,
    #[diesel(sql_type = Text)]
    pub entity: String,
    #[diesel(sql_type = BigInt)]
    pub record_id: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Jsonb)]
    pub trigger: Value,
    #[diesel(sql_type = Integer)]
    pub depth: i32,
    #[diesel(sql_type = Integer)]
    pub pc: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub wake_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub started_by: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunRow {
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled")
    }
}

const RUN_COLUMNS: &str = "id, workspace_id, workflow_id, version, entity, record_id, status, \
    trigger, depth, pc, wake_at, error, started_by, created_at, updated_at, finished_at";

/// A run to start (or to record as stopped before it started).
pub struct NewRun {
    pub workspace_id: i64,
    pub workflow_id: i64,
    pub version: i32,
    pub entity: String,
    pub record_id: i64,
    pub trigger: Value,
    pub depth: i32,
    pub started_by: Option<i64>,
    /// `running`, or `cancelled` with `error` (loop guard, rate cap).
    pub status: &'static str,
    pub error: Option<String>,
    /// The moment a time-triggered run is for (`time_triggers`).
    pub slot: Option<DateTime<Utc>>,
}

/// Inserts runs; returns their IDs in the order given.
pub async fn insert_runs(conn: &mut AsyncPgConnection, runs: &[NewRun]) -> AppResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&NewRun) -> Value| runs.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<Id> = diesel::sql_query(
        "INSERT INTO workflow_runs (workspace_id, workflow_id, version, entity, record_id, \
           trigger, depth, started_by, status, error, slot, finished_at) \
         SELECT r.workspace_id, r.workflow_id, r.version, r.entity, r.record_id, r.trigger, \
           r.depth, r.started_by, r.status, r.error, r.slot, \
           CASE WHEN r.status = 'running' THEN NULL ELSE now() END \
         FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::bigint[], \
           $6::jsonb[], $7::int[], $8::bigint[], $9::text[], $10::text[], $11::timestamptz[]) \
           WITH ORDINALITY AS r(workspace_id, workflow_id, version, entity, record_id, trigger, \
                depth, started_by, status, error, slot, n) \
         ORDER BY r.n RETURNING id",
    )
    .bind::<Array<BigInt>, _>(runs.iter().map(|r| r.workspace_id).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(runs.iter().map(|r| r.workflow_id).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(runs.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(runs.iter().map(|r| r.entity.clone()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(runs.iter().map(|r| r.record_id).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(column(|r| r.trigger.clone()))
    .bind::<Array<Integer>, _>(runs.iter().map(|r| r.depth).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(runs.iter().map(|r| r.started_by).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(runs.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(runs.iter().map(|r| r.error.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(runs.iter().map(|r| r.slot).collect::<Vec<_>>())
    .load(conn)
    .await?;
    Ok(ids.into_iter().map(|i| i.id).collect())
}

/// A run of the workspace (`lock`: for an update).
pub async fn run(
    conn: &mut AsyncPgConnection,
    workspace_id: Option<i64>,
    id: i64,
    lock: bool,
) -> AppResult<Option<RunRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs \
         WHERE id = $1 AND ($2::bigint IS NULL OR workspace_id = $2){}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<BigInt, _>(id)
    .bind::<Nullable<BigInt>, _>(workspace_id)
    .get_result(conn)
    .await
    .optional()?)
}

/// A page of a workflow's runs, newest first.
pub async fn runs(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    workflow_id: i64,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> AppResult<Vec<RunRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs \
         WHERE workflow_id = $1 AND workspace_id = $2 AND ($3::text IS NULL OR status = $3) \
           AND id < $4 ORDER BY id DESC LIMIT $5"
    ))
    .bind::<BigInt, _>(workflow_id)
    .bind::<BigInt, _>(workspace_id)
    .bind::<Nullable<Text>, _>(status)
    .bind::<BigInt, _>(before.unwrap_or(i64::MAX))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

pub async fn count_runs(
    conn: &mut AsyncPgConnection,
    workflow_id: i64,
    status: Option<&str>,
) -> AppResult<i64> {
    count_with(
        conn,
        "SELECT count(*) AS n FROM workflow_runs \
         WHERE workflow_id = $1 AND ($2::text IS NULL OR status = $2)",
        workflow_id,
        status,
    )
    .await
}

/// Moves a run on: its next instruction, its status, and when it wakes or why it failed.
pub async fn advance(
    conn: &mut AsyncPgConnection,
    run: i64,
    pc: i32,
    status: &str,
    wake_at: Option<DateTime<Utc>>,
    error: Option<&str>,
) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE workflow_runs SET pc = $2, status = $3, wake_at = $4, error = $5, \
           updated_at = now(), \
           finished_at = CASE WHEN $3 IN ('completed', 'failed', 'cancelled') THEN now() END \
         WHERE id = $1",
    )
    .bind::<BigInt, _>(run)
    .bind::<Integer, _>(pc)
    .bind::<Text, _>(status)
    .bind::<Nullable<Timestamptz>, _>(wake_at)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, QueryableByName)]
pub struct StepRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub run_id: i64,
    #[diesel(sql_type = Integer)]
    pub pc: i32,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub params: Option<Value>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub result: Option<Value>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Records that a step starts (or starts again: a retry or a resumed crash).
pub async fn start_step(
    conn: &mut AsyncPgConnection,
    run: i64,
    pc: i32,
    path: &str,
    action: &str,
    params: Option<&Value>,
    attempt: i32,
) -> AppResult<()> {
    diesel::sql_query(
        "INSERT INTO workflow_run_steps (run_id, pc, path, action, params, status, attempt) \
         VALUES ($1, $2, $3, $4, $5, 'running', $6) \
         ON CONFLICT (run_id, pc) DO UPDATE SET params = EXCLUDED.params, status = 'running', \
           attempt = EXCLUDED.attempt, error = NULL, started_at = now(), finished_at = NULL",
    )
    .bind::<BigInt, _>(run)
    .bind::<Integer, _>(pc)
    .bind::<Text, _>(path)
    .bind::<Text, _>(action)
    .bind::<Nullable<Jsonb>, _>(params)
    .bind::<Integer, _>(attempt)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn finish_step(
    conn: &mut AsyncPgConnection,
    run: i64,
    pc: i32,
    status: &str,
    result: Option<&Value>,
    error: Option<&str>,
) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE workflow_run_steps SET status = $3, result = $4, error = $5, finished_at = now() \
         WHERE run_id = $1 AND pc = $2",
    )
    .bind::<BigInt, _>(run)
    .bind::<Integer, _>(pc)
    .bind::<Text, _>(status)
    .bind::<Nullable<Jsonb>, _>(result)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// A run's steps in the order they ran.
pub async fn steps(conn: &mut AsyncPgConnection, run: i64) -> AppResult<Vec<StepRow>> {
    Ok(diesel::sql_query(
        "SELECT id, run_id, pc, path, action, params, status, attempt, result, error, \
           started_at, finished_at \
         FROM workflow_run_steps WHERE run_id = $1 ORDER BY started_at, id",
    )
    .bind::<BigInt, _>(run)
    .load(conn)
    .await?)
}

/// The depth of each of these runs.
pub async fn depths(
    conn: &mut AsyncPgConnection,
    runs: &[i64],
) -> AppResult<std::collections::HashMap<i64, i32>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Integer)]
        depth: i32,
    }
    if runs.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<Row> =
        diesel::sql_query("SELECT id, depth FROM workflow_runs WHERE id = ANY($1)")
            .bind::<Array<BigInt>, _>(runs)
            .load(conn)
            .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.depth)).collect())
}

/// Runs each workspace started in the last minute.
pub async fn recent_runs(
    conn: &mut AsyncPgConnection,
    workspaces: &[i64],
) -> AppResult<std::collections::HashMap<i64, i64>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        workspace_id: i64,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT workspace_id, count(*) AS n FROM workflow_runs \
         WHERE workspace_id = ANY($1) AND created_at > now() - interval '1 minute' \
           AND status <> 'cancelled' GROUP BY workspace_id",
    )
    .bind::<Array<BigInt>, _>(workspaces)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.workspace_id, r.n)).collect())
}

/// The next position of a round robin (0, 1, 2, ...), per workflow and step.
pub async fn next_turn(conn: &mut AsyncPgConnection, workflow: i64, path: &str) -> AppResult<i64> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        counter: i64,
    }
    let row: Row = diesel::sql_query(
        "INSERT INTO workflow_counters (workflow_id, path, counter) VALUES ($1, $2, 0) \
         ON CONFLICT (workflow_id, path) DO UPDATE SET counter = workflow_counters.counter + 1 \
         RETURNING counter",
    )
    .bind::<BigInt, _>(workflow)
    .bind::<Text, _>(path)
    .get_result(conn)
    .await?;
    Ok(row.counter)
}
