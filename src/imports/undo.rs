//! Undoing an import: the records it created are deleted (soft, like any delete) and the
//! fields it changed on existing records are put back, unless someone changed them since.
//! Such later edits win: the record or field is left as it is and reported as a conflict.

use diesel::sql_types::{Array, BigInt, Jsonb, Nullable};
use diesel::QueryableByName;
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

/// Records handled per transaction.
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

/// What an undo did.
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

/// Claims an import for undoing: only a finished, real (not dry-run) import not undone yet.
pub async fn claim(conn: &mut AsyncPgConnection, viewer: &Viewer, import: i64) -> AppResult<()> {
    let row = store::get(conn, viewer, import).await?;
    if row.dry_run {
        return Err(AppError::bad_input("id", "a dry run wrote nothing to undo"));
    }
    let claimed = diesel::sql_query(
        "UPDATE imports SET status = 'undoing', undone_by = $2 \
         WHERE id = $1 AND status IN ('completed', 'failed')",
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

/// Undoes a claimed import, batch by batch, and stores the result.
pub async fn run(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    import: i64,
) -> AppResult<UndoResult> {
    let row = store::load(conn, import).await?;
    let mut result = UndoResult::default();
    match row.resource()? {
        Resource::Leads => undo_kind::<Lead>(conn, viewer, import, &mut result).await?,
        Resource::Contacts => undo_kind::<Contact>(conn, viewer, import, &mut result).await?,
        Resource::Companies => undo_kind::<Company>(conn, viewer, import, &mut result).await?,
        Resource::Opportunities => {
            undo_kind::<Opportunity>(conn, viewer, import, &mut result).await?
        }
        Resource::Tasks => undo_kind::<Task>(conn, viewer, import, &mut result).await?,
    }
    diesel::sql_query(
        "UPDATE imports SET status = 'undone', undone_at = now(), undo_result = $2 WHERE id = $1",
    )
    .bind::<BigInt, _>(import)
    .bind::<Nullable<Jsonb>, _>(Some(serde_json::to_value(&result).unwrap_or_default()))
    .execute(conn)
    .await?;
    Ok(result)
}

async fn undo_kind<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    import: i64,
    result: &mut UndoResult,
) -> AppResult<()> {
    let table = R::TABLE.name;
    // Created records: one stored batch of IDs at a time.
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = Array<BigInt>)]
        ids: Vec<i64>,
    }
    let batches: Vec<Created> =
        diesel::sql_query("SELECT ids FROM import_created WHERE import_id = $1")
            .bind::<BigInt, _>(import)
            .load(conn)
            .await?;
    for batch in batches {
        for ids in batch.ids.chunks(BATCH as usize) {
            let viewer = viewer.clone();
            let (deleted, changed) = conn
                .transaction::<_, AppError, _>(async move |conn| {
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
                    events::changed(
                        conn,
                        &viewer,
                        events::kind::<R>(),
                        "deleted",
                        &gone,
                        &before,
                    )
                    .await?;
                    let changed: Vec<i64> = ids
                        .iter()
                        .copied()
                        .filter(|id| {
                            !gone.contains(id)
                                && before
                                    .get(id)
                                    .is_some_and(|row| row["deleted_at"].is_null())
                        })
                        .collect();
                    Ok((gone.len() as i64, changed))
                })
                .await?;
            result.deleted += deleted;
            for id in changed {
                result.conflict(id, None, "changed since the import created it; kept");
            }
        }
    }
    // Updated records: put back each field that still holds what the import wrote.
    let mut after_id = 0i64;
    loop {
        #[derive(QueryableByName)]
        struct Updated {
            #[diesel(sql_type = BigInt)]
            record_id: i64,
            #[diesel(sql_type = Jsonb)]
            before: Json,
            #[diesel(sql_type = Jsonb)]
            after: Json,
        }
        let rows: Vec<Updated> = diesel::sql_query(
            "SELECT record_id, before, after FROM import_updated \
             WHERE import_id = $1 AND record_id > $2 ORDER BY record_id LIMIT $3",
        )
        .bind::<BigInt, _>(import)
        .bind::<BigInt, _>(after_id)
        .bind::<BigInt, _>(BATCH)
        .load(conn)
        .await?;
        let Some(last) = rows.last() else { break };
        after_id = last.record_id;
        let viewer = viewer.clone();
        let conflicts = conn
            .transaction::<_, AppError, _>(async move |conn| {
                let ids: Vec<i64> = rows.iter().map(|r| r.record_id).collect();
                let now = events::snapshot(conn, table, &ids).await?;
                let mut conflicts = Vec::new();
                let mut restored = Vec::new();
                for row in &rows {
                    let Some(current) = now.get(&row.record_id) else {
                        continue;
                    };
                    if !current["deleted_at"].is_null() {
                        conflicts.push((row.record_id, None, "deleted since the import"));
                        continue;
                    }
                    let mut put_back = Map::new();
                    for (field, written) in row.after.as_object().into_iter().flatten() {
                        if &current[field] == written {
                            put_back.insert(field.clone(), row.before[field].clone());
                        } else {
                            conflicts.push((
                                row.record_id,
                                Some(field.clone()),
                                "changed since the import; kept",
                            ));
                        }
                    }
                    if !put_back.is_empty() {
                        restore(conn, table, row.record_id, put_back).await?;
                        restored.push(row.record_id);
                    }
                }
                events::changed(
                    conn,
                    &viewer,
                    events::kind::<R>(),
                    "updated",
                    &restored,
                    &now,
                )
                .await?;
                Ok((restored.len() as i64, conflicts))
            })
            .await?;
        result.restored += conflicts.0;
        for (id, field, reason) in conflicts.1 {
            result.conflict(id, field, reason);
        }
    }
    store::refresh_statistics(conn, table, result.deleted + result.restored).await
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
