//! The change stream's write side: every change to a record adds `record_events` rows in the
//! transaction of the change, with the fields that changed (old and new values). Rows are
//! compared as PostgreSQL renders them (`to_jsonb`), so every column of every kind is covered
//! without per-kind code, and what the history shows is exactly what was stored.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value};

use crate::auth::Viewer;
use crate::error::AppResult;
use crate::pagination::TimePosition;

/// Columns that are bookkeeping, not content: never reported as changes.
const IGNORED: &[&str] = &[
    "updated_at",
    "search_text",
    "id",
    "workspace_id",
    // Markers of the due-date checks (`crm::due`), which emit their own events.
    "overdue_event_for",
    "due_soon_event_for",
    // Written by scoring, which records its own `score_changed` event.
    "scored_at",
    "scorer",
    "score_model_version",
    "score_factors",
];

/// The stored rows `ids` of `table`, as JSON objects by ID.
pub async fn snapshot(
    conn: &mut AsyncPgConnection,
    table: &str,
    ids: &[i64],
) -> AppResult<HashMap<i64, Value>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Jsonb)]
        row: Value,
    }
    // `table` comes from a kind's static definition, never from a client.
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT id, to_jsonb(t) AS row FROM {table} AS t WHERE id = ANY($1)"
    ))
    .bind::<Array<BigInt>, _>(ids)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.row)).collect())
}

/// `{field: {old, new}}` for the fields that differ (a missing `old` row: every field new).
pub fn diff(old: Option<&Value>, new: &Value) -> Map<String, Value> {
    let empty = Map::new();
    let before = old.and_then(Value::as_object).unwrap_or(&empty);
    let mut changes = Map::new();
    if let Some(after) = new.as_object() {
        for (field, value) in after {
            if IGNORED.contains(&field.as_str()) {
                continue;
            }
            let previous = before.get(field).unwrap_or(&Value::Null);
            if previous != value && !(old.is_none() && value.is_null()) {
                changes.insert(
                    field.clone(),
                    serde_json::json!({ "old": previous, "new": value }),
                );
            }
        }
    }
    changes
}

/// One change to one record, as stored: `{field: {old, new}}` in JSON text. Text, not a
/// `serde_json` tree: an import writes a thousand created records at a time, and their trees
/// (a map per field) took some 17 KB per record, twice over when they were cloned for the
/// insert.
pub struct Change {
    pub record_id: i64,
    pub body: String,
}

impl Change {
    /// The changed fields as JSON.
    pub fn fields(&self) -> AppResult<Map<String, Value>> {
        serde_json::from_str(&self.body).map_err(crate::error::AppError::internal)
    }
}

/// Appends events of one kind and action, by the caller, in the caller's transaction.
async fn record(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    entity: &str,
    action: &str,
    changes: &[Change],
) -> AppResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = changes.iter().map(|c| c.record_id).collect();
    let bodies: Vec<&str> = changes.iter().map(|c| c.body.as_str()).collect();
    diesel::sql_query(
        "INSERT INTO record_events \
           (workspace_id, entity, record_id, action, actor_id, changes, caused_by_run) \
         SELECT $1, $2, record_id, $3, $4, changes::jsonb, $7 \
         FROM unnest($5::bigint[], $6::text[]) AS e(record_id, changes)",
    )
    .bind::<BigInt, _>(viewer.workspace_id.0)
    .bind::<Text, _>(entity)
    .bind::<Text, _>(action)
    .bind::<Nullable<BigInt>, _>(Some(viewer.user_id.0))
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(bodies)
    .bind::<Nullable<BigInt>, _>(viewer.workflow_run)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `action` for rows `ids` of `table` whose state before was `before` (empty for
/// new rows): reads them as they are now and stores what changed. Rows with no change get
/// no event. Returns the changes recorded (imports keep them for undo).
pub async fn changed(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    (table, entity): (&str, &str),
    action: &str,
    ids: &[i64],
    before: &HashMap<i64, Value>,
) -> AppResult<Vec<Change>> {
    let after = snapshot(conn, table, ids).await?;
    let mut changes = Vec::new();
    for id in ids {
        let Some(now) = after.get(id) else { continue };
        let fields = diff(before.get(id), now);
        // Deletes and restores always count, even if only `deleted_at` moved.
        if !fields.is_empty() {
            changes.push(Change {
                record_id: *id,
                body: Value::Object(fields).to_string(),
            });
        }
    }
    drop(after);
    record(conn, viewer, entity, action, &changes).await?;
    Ok(changes)
}

/// A kind's table and name, as events store them.
pub fn kind<R: super::query::Listable>() -> (&'static str, &'static str) {
    (R::TABLE.name, R::WHAT)
}

/// Records the creation of row `id` of a kind (all its fields as new values).
pub async fn created(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    kind: (&str, &str),
    id: i64,
) -> AppResult<()> {
    changed(conn, viewer, kind, "created", &[id], &HashMap::new()).await?;
    Ok(())
}

/// One change to one record as readers get it: the history, the activity feed, the
/// timeline and live subscribers (who read it from the live channel's JSON, hence
/// `Deserialize`).
#[derive(Debug, Clone, QueryableByName, serde::Deserialize)]
pub struct RecordEvent {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub workspace_id: i64,
    /// lead, contact, company, opportunity, task, activity
    #[diesel(sql_type = Text)]
    pub entity: String,
    #[diesel(sql_type = BigInt)]
    pub record_id: i64,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub actor_id: Option<i64>,
    #[diesel(sql_type = Jsonb)]
    pub changes: Value,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
}

/// The columns of [`RecordEvent`].
pub const EVENT_COLUMNS: &str =
    "id, workspace_id, entity, record_id, action, actor_id, changes, occurred_at";

/// The newest `limit` events of one record, newest first (by time, then ID); with
/// `older_than`, only those before that position.
pub async fn history(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    entity: &str,
    record_id: i64,
    older_than: Option<TimePosition>,
    limit: i64,
) -> AppResult<Vec<RecordEvent>> {
    Ok(diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} FROM record_events \
         WHERE workspace_id = $1 AND entity = $2 AND record_id = $3 \
           AND ($5::timestamptz IS NULL OR (occurred_at, id) < ($5, $6)) \
         ORDER BY occurred_at DESC, id DESC LIMIT $4"
    ))
    .bind::<BigInt, _>(viewer.workspace_id.0)
    .bind::<Text, _>(entity)
    .bind::<BigInt, _>(record_id)
    .bind::<BigInt, _>(limit)
    .bind::<Nullable<Timestamptz>, _>(older_than.map(|p| p.at))
    .bind::<BigInt, _>(older_than.map_or(0, |p| p.id))
    .load(conn)
    .await?)
}

/// Which events the activity feed lists.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Only this kind of record (`lead`, ...).
    pub entity: Option<String>,
    /// Only these actions (`created`, `updated`, ...).
    pub actions: Vec<String>,
    /// Only changes made by this user.
    pub actor_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
}

/// What happened on the records `viewer` may see, newest first: `limit` events with IDs below
/// `after` (the previous page's last). Members see the events of records they own or are
/// assigned (as those records are now), like every list.
pub async fn feed(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    filter: &FeedFilter,
    after: Option<i64>,
    limit: i64,
) -> AppResult<Vec<RecordEvent>> {
    Ok(filtered(
        format!(
            "SELECT {EVENT_COLUMNS} FROM record_events e WHERE {} \
               AND ($6::bigint IS NULL OR e.id < $6) ORDER BY e.id DESC LIMIT $7",
            feed_conditions(viewer)
        ),
        viewer,
        filter,
    )
    .bind::<Nullable<BigInt>, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// How many events the feed holds for `viewer` and `filter`.
pub async fn feed_count(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    filter: &FeedFilter,
) -> AppResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = filtered(
        format!(
            "SELECT count(*) AS n FROM record_events e WHERE {}",
            feed_conditions(viewer)
        ),
        viewer,
        filter,
    )
    .get_result(conn)
    .await?;
    Ok(count.n)
}

/// `sql` (written over [`feed_conditions`]) with the filter's binds `$1`-`$5`.
fn filtered<'a>(
    sql: String,
    viewer: &Viewer,
    filter: &'a FeedFilter,
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    diesel::sql_query(sql)
        .into_boxed()
        .bind::<BigInt, _>(viewer.workspace_id.0)
        .bind::<Nullable<Text>, _>(filter.entity.as_deref())
        .bind::<Array<Text>, _>(&filter.actions)
        .bind::<Nullable<BigInt>, _>(filter.actor_id)
        .bind::<Nullable<Timestamptz>, _>(filter.since)
}

/// The feed's WHERE clause over `record_events e` (`$1` workspace, `$2` entity, `$3`
/// actions, `$4` actor, `$5` since): the five record kinds, and for members only records
/// they own or are assigned (the rule of `query::scope`, asked per kind).
fn feed_conditions(viewer: &Viewer) -> String {
    use super::query::table_of;
    let kinds = ["lead", "contact", "company", "opportunity", "task"];
    let mut sql = format!(
        "e.workspace_id = $1 AND e.entity IN ({}) AND ($2::text IS NULL OR e.entity = $2) \
         AND (cardinality($3::text[]) = 0 OR e.action = ANY($3)) \
         AND ($4::bigint IS NULL OR e.actor_id = $4) \
         AND ($5::timestamptz IS NULL OR e.occurred_at >= $5)",
        kinds.map(|k| format!("'{k}'")).join(", ")
    );
    if viewer.role == crate::auth::Role::Member {
        let user = viewer.user_id.0;
        let visible: Vec<String> = kinds
            .iter()
            .filter_map(|kind| {
                let table = table_of(kind)?;
                let assignee = table
                    .assignee_column
                    .map(|c| format!(" OR r.{c} = {user}"))
                    .unwrap_or_default();
                Some(format!(
                    "(e.entity = '{kind}' AND EXISTS (SELECT 1 FROM {name} r WHERE r.id = e.record_id \
                       AND (r.{owner} = {user}{assignee})))",
                    name = table.name,
                    owner = table.owner_column,
                ))
            })
            .collect();
        sql.push_str(&format!(" AND ({})", visible.join(" OR ")));
    }
    sql
}

impl super::CrmService {
    /// The activity feed: a page of what happened on records the caller may see, newest
    /// first (`after`: the last event ID of the previous page). `count`: also the total.
    pub async fn activity_feed(
        &self,
        viewer: &Viewer,
        filter: &FeedFilter,
        after: Option<i64>,
        first: i64,
        count: bool,
    ) -> AppResult<crate::pagination::Page<RecordEvent>> {
        let first = first.clamp(1, 200);
        let mut conn = self.db.get().await?;
        let rows = feed(&mut conn, viewer, filter, after, first + 1).await?;
        let total = if count {
            feed_count(&mut conn, viewer, filter).await?
        } else {
            0
        };
        Ok(crate::pagination::Page::from_overfetch(
            rows,
            first,
            after.is_some(),
            total,
        ))
    }

    /// The newest changes of a record the caller may see (deleted ones included), newest
    /// first, at most `limit` (1-200).
    pub async fn record_history<R: super::query::Listable>(
        &self,
        viewer: &Viewer,
        id: i64,
        limit: i64,
    ) -> AppResult<Vec<RecordEvent>> {
        let mut conn = self.db.get().await?;
        super::query::get::<R>(&mut conn, viewer, id, super::query::Deleted::Include).await?;
        history(&mut conn, viewer, R::WHAT, id, None, limit.clamp(1, 200)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_reports_changed_fields_only() {
        let old = json!({ "id": 1, "status": "new", "notes": null, "updated_at": "a" });
        let new = json!({ "id": 1, "status": "contacted", "notes": null, "updated_at": "b" });
        let changes = diff(Some(&old), &new);
        assert_eq!(
            Value::Object(changes),
            json!({ "status": { "old": "new", "new": "contacted" } })
        );
        let created = diff(None, &json!({ "id": 2, "status": "new", "notes": null }));
        assert_eq!(
            Value::Object(created),
            json!({ "status": { "old": null, "new": "new" } })
        );
    }
}
