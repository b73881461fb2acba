//! The `imports` table and its companions: the uploaded file's chunks, failed rows, and what an
//! import created and updated (for undo). Every read a client asks for is scoped here: a
//! workspace's imports, and for members only their own.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use super::columns::Resource;
use super::parse::Problem;
use crate::auth::{Role, Viewer};
use crate::error::{AppError, AppResult};

/// Which field finds the existing record a row updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOn {
    Email,
    Name,
    Domain,
    Id,
}

impl MatchOn {
    /// The keys each kind can match on (the first is the default).
    pub fn allowed(resource: Resource) -> &'static [MatchOn] {
        match resource {
            Resource::Leads | Resource::Contacts => &[MatchOn::Email, MatchOn::Id],
            Resource::Companies => &[MatchOn::Name, MatchOn::Domain, MatchOn::Id],
            Resource::Opportunities | Resource::Tasks => &[MatchOn::Id],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MatchOn::Email => "email",
            MatchOn::Name => "name",
            MatchOn::Domain => "domain",
            MatchOn::Id => "id",
        }
    }

    /// From the request (`None`: the kind's default).
    pub fn parse(resource: Resource, given: Option<&str>) -> AppResult<MatchOn> {
        let allowed = Self::allowed(resource);
        match given.map(str::trim).filter(|g| !g.is_empty()) {
            None => Ok(allowed[0]),
            Some(text) => allowed
                .iter()
                .copied()
                .find(|m| m.name().eq_ignore_ascii_case(text))
                .ok_or_else(|| {
                    let names: Vec<_> = allowed.iter().map(|m| m.name()).collect();
                    AppError::bad_input(
                        "match_on",
                        format!(
                            "{} can be matched on {}, not {text:?}",
                            resource.name(),
                            names.join(" or ")
                        ),
                    )
                }),
        }
    }
}

/// The options of an import, as requested.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// CSV header → field (`None`: ignore the column).
    pub mapping: HashMap<String, Option<String>>,
    pub update_existing: bool,
    pub match_on: MatchOn,
    pub skip_errors: bool,
    pub dry_run: bool,
}

/// An import as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct ImportRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub workspace_id: i64,
    #[diesel(sql_type = BigInt)]
    pub created_by: i64,
    #[diesel(sql_type = Text)]
    pub resource: String,
    #[diesel(sql_type = Text)]
    pub file_name: String,
    #[diesel(sql_type = BigInt)]
    pub file_bytes: i64,
    #[diesel(sql_type = Jsonb)]
    pub options: serde_json::Value,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Bool)]
    pub dry_run: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub job_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub total_rows: i64,
    #[diesel(sql_type = BigInt)]
    pub imported: i64,
    #[diesel(sql_type = BigInt)]
    pub updated: i64,
    #[diesel(sql_type = BigInt)]
    pub skipped: i64,
    #[diesel(sql_type = BigInt)]
    pub errors: i64,
    #[diesel(sql_type = BigInt)]
    pub committed_line: i64,
    #[diesel(sql_type = Array<Text>)]
    pub headers: Vec<String>,
    #[diesel(sql_type = Jsonb)]
    pub columns: serde_json::Value,
    #[diesel(sql_type = Array<Text>)]
    pub ignored_columns: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub failure: Option<String>,
    /// The totals of the undo: so far while `undoing` or `undo_failed`, final once `undone`.
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub undo_result: Option<serde_json::Value>,
    /// Who undid it (first asked to).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub undone_by: Option<i64>,
    /// Why the last undo attempt stopped (`undo_failed`).
    #[diesel(sql_type = Nullable<Text>)]
    pub undo_failure: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub started_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub undone_at: Option<DateTime<Utc>>,
}

impl ImportRow {
    pub fn resource(&self) -> AppResult<Resource> {
        Resource::parse(&self.resource)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown import resource")))
    }

    pub fn options(&self) -> AppResult<Options> {
        serde_json::from_value(self.options.clone())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored import options: {e}")))
    }
}

/// The running totals of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total_rows: i64,
    pub imported: i64,
    pub updated: i64,
    pub skipped: i64,
    pub errors: i64,
}

impl Counts {
    pub fn of(row: &ImportRow) -> Counts {
        Counts {
            total_rows: row.total_rows,
            imported: row.imported,
            updated: row.updated,
            skipped: row.skipped,
            errors: row.errors,
        }
    }
}

/// Starts an import: its row, before any of the file has arrived.
pub async fn create(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    resource: Resource,
    file_name: &str,
) -> AppResult<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let row: Id = diesel::sql_query(
        "INSERT INTO imports (workspace_id, created_by, resource, file_name) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind::<BigInt, _>(viewer.workspace_id.0)
    .bind::<BigInt, _>(viewer.user_id.0)
    .bind::<Text, _>(resource.name())
    .bind::<Text, _>(file_name)
    .get_result(conn)
    .await?;
    Ok(row.id)
}

pub async fn add_chunk(
    conn: &mut AsyncPgConnection,
    import: i64,
    seq: i32,
    data: &[u8],
) -> AppResult<()> {
    diesel::sql_query("INSERT INTO import_file_chunks (import_id, seq, data) VALUES ($1, $2, $3)")
        .bind::<BigInt, _>(import)
        .bind::<Integer, _>(seq)
        .bind::<Bytea, _>(data)
        .execute(conn)
        .await?;
    Ok(())
}

/// The upload is complete: the options and how the import will run.
pub async fn uploaded(
    conn: &mut AsyncPgConnection,
    import: i64,
    bytes: i64,
    options: &Options,
) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE imports SET file_bytes = $2, options = $3, dry_run = $4, status = 'queued' \
         WHERE id = $1",
    )
    .bind::<BigInt, _>(import)
    .bind::<BigInt, _>(bytes)
    .bind::<Jsonb, _>(serde_json::to_value(options).unwrap_or_default())
    .bind::<Bool, _>(options.dry_run)
    .execute(conn)
    .await?;
    Ok(())
}

/// An upload that was refused (too large, bad options): nothing of it is kept.
pub async fn discard(conn: &mut AsyncPgConnection, import: i64) -> AppResult<()> {
    diesel::sql_query("DELETE FROM imports WHERE id = $1 AND status = 'uploading'")
        .bind::<BigInt, _>(import)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_job(conn: &mut AsyncPgConnection, import: i64, job: i64) -> AppResult<()> {
    diesel::sql_query("UPDATE imports SET job_id = $2 WHERE id = $1")
        .bind::<BigInt, _>(import)
        .bind::<BigInt, _>(job)
        .execute(conn)
        .await?;
    Ok(())
}

/// An import by ID, unscoped (for the engine, which acts for the import's starter).
pub async fn load(conn: &mut AsyncPgConnection, import: i64) -> AppResult<ImportRow> {
    diesel::sql_query("SELECT * FROM imports WHERE id = $1")
        .bind::<BigInt, _>(import)
        .get_result(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("import"))
}

/// The imports a caller may see: their workspace's, for members only those they started, and
/// none still uploading. Placeholders $1-$3; `visible_to` binds them, later binds follow.
const VISIBLE: &str = "workspace_id = $1 AND ($2 OR created_by = $3) AND status <> 'uploading'";

fn visible_to<'a>(sql: String, viewer: &Viewer) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    diesel::sql_query(sql)
        .into_boxed()
        .bind::<BigInt, _>(viewer.workspace_id.0)
        .bind::<Bool, _>(viewer.role != Role::Member)
        .bind::<BigInt, _>(viewer.user_id.0)
}

/// An import the caller may see.
pub async fn get(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    import: i64,
) -> AppResult<ImportRow> {
    visible_to(
        format!("SELECT * FROM imports WHERE {VISIBLE} AND id = $4"),
        viewer,
    )
    .bind::<BigInt, _>(import)
    .get_result(conn)
    .await
    .optional()?
    .ok_or(AppError::NotFound("import"))
}

/// The imports the caller may see, newest first, after the ID `before` (keyset).
pub async fn list(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    before: Option<i64>,
    limit: i64,
) -> AppResult<Vec<ImportRow>> {
    Ok(visible_to(
        format!("SELECT * FROM imports WHERE {VISIBLE} AND id < $4 ORDER BY id DESC LIMIT $5"),
        viewer,
    )
    .bind::<BigInt, _>(before.unwrap_or(i64::MAX))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// How many imports the caller may see.
pub async fn count(conn: &mut AsyncPgConnection, viewer: &Viewer) -> AppResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = visible_to(
        format!("SELECT count(*) AS n FROM imports WHERE {VISIBLE}"),
        viewer,
    )
    .get_result(conn)
    .await?;
    Ok(count.n)
}

/// Chunk `seq` of the upload, if there is one.
pub async fn chunk(
    conn: &mut AsyncPgConnection,
    import: i64,
    seq: i32,
) -> AppResult<Option<Vec<u8>>> {
    #[derive(QueryableByName)]
    struct Chunk {
        #[diesel(sql_type = Bytea)]
        data: Vec<u8>,
    }
    let chunk: Option<Chunk> =
        diesel::sql_query("SELECT data FROM import_file_chunks WHERE import_id = $1 AND seq = $2")
            .bind::<BigInt, _>(import)
            .bind::<Integer, _>(seq)
            .get_result(conn)
            .await
            .optional()?;
    Ok(chunk.map(|c| c.data))
}

/// The run begins. A run from the top (nothing committed by an earlier attempt) clears what
/// an earlier attempt left.
pub async fn begin(conn: &mut AsyncPgConnection, import: i64, fresh: bool) -> AppResult<()> {
    if fresh {
        diesel::sql_query("DELETE FROM import_failed_rows WHERE import_id = $1")
            .bind::<BigInt, _>(import)
            .execute(conn)
            .await?;
    }
    diesel::sql_query(
        "UPDATE imports SET status = 'running', started_at = coalesce(started_at, now()), \
         total_rows = CASE WHEN $2 THEN 0 ELSE total_rows END, \
         imported = CASE WHEN $2 THEN 0 ELSE imported END, \
         updated = CASE WHEN $2 THEN 0 ELSE updated END, \
         skipped = CASE WHEN $2 THEN 0 ELSE skipped END, \
         errors = CASE WHEN $2 THEN 0 ELSE errors END WHERE id = $1",
    )
    .bind::<BigInt, _>(import)
    .bind::<Bool, _>(fresh)
    .execute(conn)
    .await?;
    Ok(())
}

/// The file's columns and what each became.
pub async fn set_plan(
    conn: &mut AsyncPgConnection,
    import: i64,
    headers: &[String],
    columns: &serde_json::Value,
    ignored: &[String],
) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE imports SET headers = $2, columns = $3, ignored_columns = $4 WHERE id = $1",
    )
    .bind::<BigInt, _>(import)
    .bind::<Array<Text>, _>(headers)
    .bind::<Jsonb, _>(columns)
    .bind::<Array<Text>, _>(ignored)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves the totals and, when `committed_line` is given, that everything up to that line is
/// durably written (in the transaction that wrote it).
pub async fn save_counts(
    conn: &mut AsyncPgConnection,
    import: i64,
    counts: Counts,
    committed_line: Option<u64>,
) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE imports SET total_rows = $2, imported = $3, updated = $4, skipped = $5, \
         errors = $6, committed_line = coalesce($7, committed_line) WHERE id = $1",
    )
    .bind::<BigInt, _>(import)
    .bind::<BigInt, _>(counts.total_rows)
    .bind::<BigInt, _>(counts.imported)
    .bind::<BigInt, _>(counts.updated)
    .bind::<BigInt, _>(counts.skipped)
    .bind::<BigInt, _>(counts.errors)
    .bind::<Nullable<BigInt>, _>(committed_line.map(|l| l as i64))
    .execute(conn)
    .await?;
    Ok(())
}

/// The run is over: its final status (and why it failed), and the file is no longer kept.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    import: i64,
    status: &str,
    failure: Option<&str>,
) -> AppResult<()> {
    diesel::sql_query("DELETE FROM import_file_chunks WHERE import_id = $1")
        .bind::<BigInt, _>(import)
        .execute(conn)
        .await?;
    diesel::sql_query(
        "UPDATE imports SET status = $2, failure = $3, finished_at = now() WHERE id = $1",
    )
    .bind::<BigInt, _>(import)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(failure)
    .execute(conn)
    .await?;
    Ok(())
}

/// Imports and undos writing at least this many rows refresh the table's planner statistics.
const ANALYZE_AFTER_ROWS: i64 = 1_000;

/// Refreshes the planner statistics of a table an import or undo just changed by `rows`
/// rows. Autovacuum would get there within a minute or so, but until then the planner
/// believes the workspace has as many rows as before: after a first big import it walks a
/// whole workspace for every batch of IDs (measured: scoring 45k fresh leads ran at half
/// speed until the statistics caught up).
pub async fn refresh_statistics(
    conn: &mut AsyncPgConnection,
    table: &str,
    rows: i64,
) -> AppResult<()> {
    if rows >= ANALYZE_AFTER_ROWS {
        diesel::sql_query(format!("ANALYZE {table}"))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A row that was not written, with its problems.
#[derive(Debug, Clone)]
pub struct FailedRow {
    pub line: u64,
    pub cells: Vec<String>,
    pub problems: Vec<Problem>,
}

pub async fn save_failed(
    conn: &mut AsyncPgConnection,
    import: i64,
    rows: &[FailedRow],
) -> AppResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = rows.iter().map(|r| r.line as i64).collect();
    let cells: Vec<serde_json::Value> = rows.iter().map(|r| serde_json::json!(r.cells)).collect();
    let problems: Vec<serde_json::Value> =
        rows.iter().map(|r| serde_json::json!(r.problems)).collect();
    diesel::sql_query(
        "INSERT INTO import_failed_rows (import_id, line, cells, problems) \
         SELECT $1, line, ARRAY(SELECT jsonb_array_elements_text(cells)), problems \
         FROM unnest($2::bigint[], $3::jsonb[], $4::jsonb[]) AS r(line, cells, problems) \
         ON CONFLICT (import_id, line) DO UPDATE SET problems = excluded.problems",
    )
    .bind::<BigInt, _>(import)
    .bind::<Array<BigInt>, _>(lines)
    .bind::<Array<Jsonb>, _>(cells)
    .bind::<Array<Jsonb>, _>(problems)
    .execute(conn)
    .await?;
    Ok(())
}

/// Failed rows after `after_line`, in line order, at most `limit`.
pub async fn failed_rows(
    conn: &mut AsyncPgConnection,
    import: i64,
    after_line: u64,
    limit: i64,
) -> AppResult<Vec<FailedRow>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        line: i64,
        #[diesel(sql_type = Array<Text>)]
        cells: Vec<String>,
        #[diesel(sql_type = Jsonb)]
        problems: serde_json::Value,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT line, cells, problems FROM import_failed_rows \
         WHERE import_id = $1 AND line > $2 ORDER BY line LIMIT $3",
    )
    .bind::<BigInt, _>(import)
    .bind::<BigInt, _>(after_line as i64)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FailedRow {
            line: r.line as u64,
            cells: r.cells,
            problems: serde_json::from_value(r.problems).unwrap_or_default(),
        })
        .collect())
}

pub async fn record_created(
    conn: &mut AsyncPgConnection,
    import: i64,
    ids: &[i64],
) -> AppResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::sql_query("INSERT INTO import_created (import_id, ids) VALUES ($1, $2)")
        .bind::<BigInt, _>(import)
        .bind::<Array<BigInt>, _>(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// One record an import updated: the fields it changed, before and after.
pub struct UpdatedRecord {
    pub record_id: i64,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

pub async fn record_updated(
    conn: &mut AsyncPgConnection,
    import: i64,
    records: &[UpdatedRecord],
) -> AppResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = records.iter().map(|r| r.record_id).collect();
    let before: Vec<serde_json::Value> = records.iter().map(|r| r.before.clone()).collect();
    let after: Vec<serde_json::Value> = records.iter().map(|r| r.after.clone()).collect();
    // A record updated twice by one import (a resumed run) keeps its first `before`.
    diesel::sql_query(
        "INSERT INTO import_updated (import_id, record_id, before, after) \
         SELECT $1, id, b, a FROM unnest($2::bigint[], $3::jsonb[], $4::jsonb[]) AS u(id, b, a) \
         ON CONFLICT (import_id, record_id) DO UPDATE SET after = excluded.after",
    )
    .bind::<BigInt, _>(import)
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Jsonb>, _>(before)
    .bind::<Array<Jsonb>, _>(after)
    .execute(conn)
    .await?;
    Ok(())
}
