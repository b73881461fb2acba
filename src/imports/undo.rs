//! Undoing an import: the records it created are deleted (soft, like any delete) and the
//! fields it changed on existing records are put back, unless someone changed them since.
//! Such later edits win: the record or field is left as it is and reported as a conflict.
//!
//! An undo can stop part way (a database error, a lost connection, a crashed process, a
//! request given up by its client), and a stopped undo must neither stay stuck nor lie when it
//! is retried. The rule, in one place:
//!
//! - The work goes in batches (a stored batch of created IDs, or up to [`BATCH`] updated
//!   records), each in its own transaction, and the same transaction moves the import's
//!   checkpoint (`undo_created_seq`, `undo_updated_id`) and its running totals (`undo_result`).
//!   A batch is therefore either done and recorded, or not done at all.
//! - A batch starts by locking the import's row and reading the checkpoint under that lock, so
//!   two runners at once (a retry while the background job still runs) take turns and share
//!   the work; neither does a batch twice.
//! - An attempt that fails marks the import `undo_failed` with `undo_failure` (a crash leaves
//!   it `undoing`). Both are resumable: `undoImport` again, or the background job's next
//!   attempt, carries on after the last committed batch. Nothing is looked at twice, so a
//!   field put back by the first attempt is not mistaken for a later edit (no false
//!   conflicts), and the totals count each record once. Only `undone` is final.

use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::columns::Resource;
use super::store;
use crate::auth::Viewer;
use crate::crm::companies::Company;
use crate::crm::contacts::Contact;
use crate::crm::events;
use crate::crm::leads::Lead;
use crate::crm::opportunities::Opportunity;
use crate::crm::query::Listable;
use crate::crm::tasks::Task;
use crate::error::{AppError, AppResult};

/// Updated records handled per transaction (created ones go a stored batch at a time, which
/// the import wrote at most `parse::BATCH_ROWS` IDs into).
const BATCH: i64 = 1000;
/// Conflicts listed in the result (all are counted).
const MAX_LISTED_CONFLICTS: usize = 1000;

/// A later edit that the undo left in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conflict {
    pub record_id: i64,
    /// The field edited since (none: a created record changed since, so it was kept).
    pub field: Option<String>,
    pub reason: String,
}

/// What an undo did (so far, while it runs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UndoResult {
    pub deleted: i64,
    pub restored: i64,
    pub conflict_count: i64,
    pub conflicts: Vec<Conflict>,
}

impl UndoResult {
    fn conflict(&mut self, record_id: i64, field: Option<String>, reason: &str) {
        self.conflict_count += 1;
        if self.conflicts.len() < MAX_LISTED_CONFLICTS {
            self.conflicts.push(Conflict {
                record_id,
                field,
                reason: reason.to_string(),
            });
        }
    }
}

/// Claims an import for undoing: a finished, real (not dry-run) import, or one whose undo
/// stopped (`undo_failed`, or `undoing` left by a crash or still running), which the next
/// [`run`] resumes. CONFLICT for one still importing or already undone.
pub async fn claim(conn: &mut AsyncPgConnection, viewer: &Viewer, import: i64) -> AppResult<()> {
    let row = store::get(conn, viewer, import).await?;
    if row.dry_run {
        return Err(AppError::bad_input("id", "a dry run wrote nothing to undo"));
    }
    // A first claim finds the checkpoint at its start (an import is undone at most once).
    let claimed = diesel::sql_query(
        "UPDATE imports SET status = 'undoing', undone_by = coalesce(undone_by, $2) \
         WHERE id = $1 AND status IN ('completed', 'failed', 'undoing', 'undo_failed')",
    )
    .bind::<BigInt, _>(import)
    .bind::<BigInt, _>(viewer.user_id.0)
    .execute(conn)
    .await?;
    if claimed == 0 {
        return Err(AppError::conflict(format!(
            "this import is {}; only a finished import can be undone, once",
            row.status
        )));
    }
    Ok(())
}

/// Runs (or resumes) a claimed undo to its end, batch by batch, and returns its result. When
/// it fails, the import is left `undo_failed` (resumable) and the error returned.
pub async fn run(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    import: i64,
) -> AppResult<UndoResult> {
    let row = store::load(conn, import).await?;
    let outcome = match row.resource()? {
        Resource::Leads => undo_kind::<Lead>(conn, viewer, import).await,
        Resource::Contacts => undo_kind::<Contact>(conn, viewer, import).await,
        Resource::Companies => undo_kind::<Company>(conn, viewer, import).await,
        Resource::Opportunities => undo_kind::<Opportunity>(conn, viewer, import).await,
        Resource::Tasks => undo_kind::<Task>(conn, viewer, import).await,
    };
    if let Err(err) = &outcome {
        if let Err(also) = failed(conn, import, err).await {
            // Left `undoing`, which a retry resumes just the same.
            also.log_if_internal();
        }
    }
    outcome
}

/// Marks a stopped undo `undo_failed`, with why (internal causes go to the log only).
pub async fn failed(conn: &mut AsyncPgConnection, import: i64, err: &AppError) -> AppResult<()> {
    let why = match err {
        AppError::Internal(_) => "the undo stopped on an internal error".to_string(),
        other => other.to_string(),
    };
    diesel::sql_query(
        "UPDATE imports SET status = 'undo_failed', undo_failure = $2 \
         WHERE id = $1 AND status = 'undoing'",
    )
    .bind::<BigInt, _>(import)
    .bind::<Text, _>(format!("{why}; undoImport resumes it"))
    .execute(conn)
    .await?;
    Ok(())
}

/// Where an undo stands, read under the import's row lock.
struct Checkpoint {
    status: String,
    result: UndoResult,
    created_seq: i64,
    updated_id: i64,
}

impl Checkpoint {
    async fn lock(conn: &mut AsyncPgConnection, import: i64) -> AppResult<Checkpoint> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            status: String,
            #[diesel(sql_type = Nullable<Jsonb>)]
            undo_result: Option<Json>,
            #[diesel(sql_type = BigInt)]
            undo_created_seq: i64,
            #[diesel(sql_type = BigInt)]
            undo_updated_id: i64,
        }
        let row: Row = diesel::sql_query(
            "SELECT status, undo_result, undo_created_seq, undo_updated_id FROM imports \
             WHERE id = $1 FOR UPDATE",
        )
        .bind::<BigInt, _>(import)
        .get_result(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("import"))?;
        Ok(Checkpoint {
            status: row.status,
            result: stored_result(&row.undo_result).unwrap_or_default(),
            created_seq: row.undo_created_seq,
            updated_id: row.undo_updated_id,
        })
    }

    /// Records a finished batch (in the batch's transaction). A batch done means the undo is
    /// moving again, whatever an earlier attempt marked.
    async fn save(&self, conn: &mut AsyncPgConnection, import: i64) -> AppResult<()> {
        diesel::sql_query(
            "UPDATE imports SET status = 'undoing', undo_failure = NULL, undo_result = $2, \
             undo_created_seq = $3, undo_updated_id = $4 WHERE id = $1",
        )
        .bind::<BigInt, _>(import)
        .bind::<Jsonb, _>(serde_json::to_value(&self.result).unwrap_or_default())
        .bind::<BigInt, _>(self.created_seq)
        .bind::<BigInt, _>(self.updated_id)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// What one transaction of an undo did.
enum Step {
    /// A batch: more may follow.
    Batch,
    /// Nothing was left: the undo is over, with this result.
    Done(UndoResult),
}

async fn undo_kind<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    import: i64,
) -> AppResult<UndoResult> {
    loop {
        let step = conn
            .transaction::<_, AppError, _>(async |conn| step::<R>(conn, viewer, import).await)
            .await?;
        if let Step::Done(result) = step {
            let table = R::TABLE.name;
            store::refresh_statistics(conn, table, result.deleted + result.restored).await?;
            return Ok(result);
        }
    }
}

/// The next batch of an undo after its checkpoint, or its end.
async fn step<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    import: i64,
) -> AppResult<Step> {
    let mut at = Checkpoint::lock(conn, import).await?;
    match at.status.as_str() {
        "undoing" | "undo_failed" => {}
        // Another runner finished it.
        "undone" => return Ok(Step::Done(at.result)),
        other => {
            return Err(AppError::conflict(format!(
                "this import is {other}, not being undone"
            )))
        }
    }
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = BigInt)]
        seq: i64,
        #[diesel(sql_type = Array<BigInt>)]
        ids: Vec<i64>,
    }
    let created: Option<Created> = diesel::sql_query(
        "SELECT seq, ids FROM import_created WHERE import_id = $1 AND seq > $2 \
         ORDER BY seq LIMIT 1",
    )
    .bind::<BigInt, _>(import)
    .bind::<BigInt, _>(at.created_seq)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(batch) = created {
        delete_created::<R>(conn, viewer, &batch.ids, &mut at.result).await?;
        at.created_seq = batch.seq;
        at.save(conn, import).await?;
        return Ok(Step::Batch);
    }
    let updated: Vec<Updated> = diesel::sql_query(
        "SELECT record_id, before, after FROM import_updated \
         WHERE import_id = $1 AND record_id > $2 ORDER BY record_id LIMIT $3",
    )
    .bind::<BigInt, _>(import)
    .bind::<BigInt, _>(at.updated_id)
    .bind::<BigInt, _>(BATCH)
    .load(conn)
    .await?;
    if let Some(last) = updated.last() {
        at.updated_id = last.record_id;
        restore_updated::<R>(conn, viewer, &updated, &mut at.result).await?;
        at.save(conn, import).await?;
        return Ok(Step::Batch);
    }
    diesel::sql_query(
        "UPDATE imports SET status = 'undone', undone_at = now(), undo_failure = NULL, \
         undo_result = $2 WHERE id = $1",
    )
    .bind::<BigInt, _>(import)
    .bind::<Jsonb, _>(serde_json::to_value(&at.result).unwrap_or_default())
    .execute(conn)
    .await?;
    Ok(Step::Done(at.result))
}

/// Deletes created records untouched since the import; the others are conflicts.
async fn delete_created<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    ids: &[i64],
    result: &mut UndoResult,
) -> AppResult<()> {
    let table = R::TABLE.name;
    let before = events::snapshot(conn, table, ids).await?;
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    // `updated_at = created_at`: untouched since the import created it.
    let gone: Vec<Id> = diesel::sql_query(format!(
        "UPDATE {table} SET deleted_at = now(), updated_at = now() \
         WHERE id = ANY($1) AND deleted_at IS NULL AND updated_at = created_at \
         RETURNING id"
    ))
    .bind::<Array<BigInt>, _>(ids)
    .load(conn)
    .await?;
    let gone: Vec<i64> = gone.into_iter().map(|r| r.id).collect();
    let deleted: std::collections::HashSet<i64> = gone.iter().copied().collect();
    events::changed(conn, viewer, events::kind::<R>(), "deleted", &gone, &before).await?;
    result.deleted += gone.len() as i64;
    for id in ids {
        let live = before
            .get(id)
            .is_some_and(|row| row["deleted_at"].is_null());
        if live && !deleted.contains(id) {
            result.conflict(*id, None, "changed since the import created it; kept");
        }
    }
    Ok(())
}

/// A record the import updated: the fields it changed, before and after.
#[derive(QueryableByName)]
struct Updated {
    #[diesel(sql_type = BigInt)]
    record_id: i64,
    #[diesel(sql_type = Jsonb)]
    before: Json,
    #[diesel(sql_type = Jsonb)]
    after: Json,
}

/// Puts back each field that still holds what the import wrote; the others are conflicts.
async fn restore_updated<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    rows: &[Updated],
    result: &mut UndoResult,
) -> AppResult<()> {
    let table = R::TABLE.name;
    let ids: Vec<i64> = rows.iter().map(|r| r.record_id).collect();
    let now = events::snapshot(conn, table, &ids).await?;
    let mut restored = Vec::new();
    for row in rows {
        let Some(current) = now.get(&row.record_id) else {
            continue;
        };
        if !current["deleted_at"].is_null() {
            result.conflict(row.record_id, None, "deleted since the import");
            continue;
        }
        let mut put_back = Map::new();
        for (field, written) in row.after.as_object().into_iter().flatten() {
            if &current[field] == written {
                put_back.insert(field.clone(), row.before[field].clone());
            } else {
                result.conflict(
                    row.record_id,
                    Some(field.clone()),
                    "changed since the import; kept",
                );
            }
        }
        if !put_back.is_empty() {
            restore(conn, table, row.record_id, put_back).await?;
            restored.push(row.record_id);
        }
    }
    events::changed(
        conn,
        viewer,
        events::kind::<R>(),
        "updated",
        &restored,
        &now,
    )
    .await?;
    result.restored += restored.len() as i64;
    Ok(())
}

/// Writes stored JSON values back into a row's typed columns. The field names come from our
/// own snapshots of the table (`to_jsonb`), and are checked to be plain identifiers anyway.
async fn restore(
    conn: &mut AsyncPgConnection,
    table: &str,
    id: i64,
    fields: Map<String, Json>,
) -> AppResult<()> {
    let names: Vec<&String> = fields
        .keys()
        .filter(|f| {
            f.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let sets: Vec<String> = names.iter().map(|f| format!("{f} = r.{f}")).collect();
    diesel::sql_query(format!(
        "UPDATE {table} AS t SET {}, updated_at = now() \
         FROM jsonb_populate_record(NULL::{table}, $1) AS r WHERE t.id = $2",
        sets.join(", ")
    ))
    .bind::<Jsonb, _>(Json::Object(fields))
    .bind::<BigInt, _>(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many records an undo touches (to decide whether it runs in the background).
pub async fn size(conn: &mut AsyncPgConnection, import: i64) -> AppResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query(
        "SELECT coalesce((SELECT sum(cardinality(ids)) FROM import_created WHERE import_id = $1), 0)::bigint \
         + (SELECT count(*) FROM import_updated WHERE import_id = $1) AS n",
    )
    .bind::<BigInt, _>(import)
    .get_result(conn)
    .await?;
    Ok(count.n)
}

/// The stored result of an undo.
pub fn stored_result(value: &Option<Json>) -> Option<UndoResult> {
    value
        .as_ref()
        .and_then(|v| serde_json::from_value::<UndoResult>(v.clone()).ok())
}
