//! Lead scoring's tables: the facts scorers read, the model registry, and writing scores
//! (with their `score_changed` events) without touching `updated_at`, which means "a person
//! edited this" (import undo relies on it).

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Int2, Int4, Jsonb, Nullable, Text, Timestamptz,
};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::features::{LeadFacts, FACTS_SQL};
use super::model::Trained;
use super::Score;
use crate::error::{AppError, AppResult};

/// The training labels in SQL (as `LeadFacts::label` has them): converted = 1, lost and
/// unqualified = 0, other statuses are open leads.
const CONVERTED: &str = "status = 'converted'";
const NOT_CONVERTED: &str = "status IN ('lost', 'unqualified')";

/// The leads of a workspace to read.
pub enum Which<'a> {
    /// Live converted, lost and unqualified leads: training data.
    Closed,
    /// These live leads.
    Ids(&'a [i64]),
}

pub async fn facts(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    which: Which<'_>,
) -> AppResult<Vec<LeadFacts>> {
    let mut sql = format!("{FACTS_SQL} WHERE l.workspace_id = $1 AND l.deleted_at IS NULL");
    match which {
        Which::Closed => {
            // In ID order: training sees the same rows in the same order every time.
            sql.push_str(&format!(
                " AND (l.{CONVERTED} OR l.{NOT_CONVERTED}) ORDER BY l.id"
            ));
            Ok(diesel::sql_query(sql)
                .bind::<BigInt, _>(workspace_id)
                .load(conn)
                .await?)
        }
        Which::Ids(ids) => {
            sql.push_str(" AND l.id = ANY($2)");
            Ok(diesel::sql_query(sql)
                .bind::<BigInt, _>(workspace_id)
                .bind::<Array<BigInt>, _>(ids.to_vec())
                .load(conn)
                .await?)
        }
    }
}

/// Stores scores and, for each lead whose score changed, a `score_changed` event with the
/// old and new score, in one statement. Leads deleted meanwhile are skipped.
pub async fn write_scores(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    scores: &[Score],
) -> AppResult<()> {
    if scores.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = scores.iter().map(|s| s.lead_id).collect();
    let values: Vec<i16> = scores.iter().map(|s| s.score).collect();
    let scorers: Vec<&str> = scores.iter().map(|s| s.scorer.as_str()).collect();
    let versions: Vec<Option<i32>> = scores.iter().map(|s| s.model_version).collect();
    // As text, cast in SQL: cheaper than building a JSON value tree per lead.
    let factors: Vec<String> = scores
        .iter()
        .map(|s| serde_json::to_string(&s.explanation).unwrap_or_else(|_| "null".into()))
        .collect();
    // `old` locks the rows first (in ID order, so two writers cannot deadlock) and reads
    // them as they are once locked: a concurrent scoring of the same lead committed before
    // is seen, so its change is not reported twice.
    diesel::sql_query(
        "WITH s AS (SELECT * FROM unnest($2::bigint[], $3::int2[], $4::text[], $5::int4[], \
           $6::text[]) AS s(id, score, scorer, version, factors)), \
         old AS MATERIALIZED (SELECT leads.id, leads.score FROM leads \
           WHERE leads.id = ANY($2) AND leads.workspace_id = $1 AND leads.deleted_at IS NULL \
           ORDER BY leads.id FOR NO KEY UPDATE), \
         updated AS ( \
           UPDATE leads SET score = s.score, scored_at = now(), scorer = s.scorer, \
             score_model_version = s.version, score_factors = s.factors::jsonb \
           FROM s JOIN old ON old.id = s.id \
           WHERE leads.id = s.id \
           RETURNING leads.id, old.score AS old_score, s.score AS new_score) \
         INSERT INTO record_events (workspace_id, entity, record_id, action, changes) \
         SELECT $1, 'lead', id, 'score_changed', \
           jsonb_build_object('score', jsonb_build_object('old', old_score, 'new', new_score)) \
         FROM updated WHERE old_score IS DISTINCT FROM new_score",
    )
    .bind::<BigInt, _>(workspace_id)
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Int2>, _>(values)
    .bind::<Array<Text>, _>(scorers)
    .bind::<Array<Nullable<Int4>>, _>(versions)
    .bind::<Array<Text>, _>(factors)
    .execute(conn)
    .await?;
    Ok(())
}

/// A workspace's live closed leads by outcome.
#[derive(Debug, Clone, QueryableByName)]
pub struct ClosedCounts {
    #[diesel(sql_type = BigInt)]
    pub workspace_id: i64,
    #[diesel(sql_type = BigInt)]
    pub positives: i64,
    #[diesel(sql_type = BigInt)]
    pub negatives: i64,
}

/// Closed leads by outcome for one workspace, or for every workspace with leads.
/// Each workspace's timezone (UTC when unreadable).
pub async fn workspace_timezones(
    conn: &mut AsyncPgConnection,
) -> AppResult<std::collections::HashMap<i64, chrono_tz::Tz>> {
    #[derive(QueryableByName)]
    struct Zone {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        timezone: String,
    }
    let zones: Vec<Zone> = diesel::sql_query("SELECT id, timezone FROM workspaces")
        .load(conn)
        .await?;
    Ok(zones
        .into_iter()
        .map(|z| (z.id, z.timezone.parse().unwrap_or_default()))
        .collect())
}

pub async fn closed_counts(
    conn: &mut AsyncPgConnection,
    workspace_id: Option<i64>,
) -> AppResult<Vec<ClosedCounts>> {
    Ok(diesel::sql_query(format!(
        "SELECT workspace_id, count(*) FILTER (WHERE {CONVERTED}) AS positives, \
           count(*) FILTER (WHERE {NOT_CONVERTED}) AS negatives \
         FROM leads WHERE deleted_at IS NULL AND ($1::bigint IS NULL OR workspace_id = $1) \
         GROUP BY workspace_id"
    ))
    .bind::<Nullable<BigInt>, _>(workspace_id)
    .load(conn)
    .await?)
}

/// A model version as listed (without its trees).
#[derive(Debug, Clone, QueryableByName)]
pub struct ModelRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Int4)]
    pub version: i32,
    #[diesel(sql_type = Text)]
    pub learner: String,
    #[diesel(sql_type = Bool)]
    pub active: bool,
    #[diesel(sql_type = Jsonb)]
    pub metrics: Value,
    #[diesel(sql_type = Jsonb)]
    pub candidates: Value,
    #[diesel(sql_type = Int4)]
    pub positives: i32,
    #[diesel(sql_type = Int4)]
    pub negatives: i32,
    #[diesel(sql_type = Int4)]
    pub train_rows: i32,
    #[diesel(sql_type = Int4)]
    pub test_rows: i32,
    #[diesel(sql_type = Jsonb)]
    pub features: Value,
    #[diesel(sql_type = Jsonb)]
    pub importances: Value,
    #[diesel(sql_type = BigInt)]
    pub training_ms: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub started_by: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

const MODEL_COLUMNS: &str = "id, version, learner, active, metrics, candidates, positives, \
    negatives, train_rows, test_rows, features, importances, training_ms, started_by, created_at";

/// Stores a trained model as the workspace's next version and makes it the active one.
pub async fn save_model(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    trained: &Trained,
    training_ms: i64,
    started_by: Option<i64>,
) -> AppResult<ModelRow> {
    let names: Vec<String> = trained
        .model
        .features
        .features
        .iter()
        .map(|f| f.name())
        .collect();
    let importances: Vec<Value> = trained
        .importances
        .iter()
        .map(|(feature, share)| serde_json::json!({"feature": feature, "importance": share}))
        .collect();
    deactivate(conn, workspace_id).await?;
    Ok(diesel::sql_query(format!(
        "INSERT INTO lead_scoring_models (workspace_id, version, learner, active, metrics, \
           candidates, positives, negatives, train_rows, test_rows, features, importances, model, \
           training_ms, started_by) \
         SELECT $1, coalesce(max(version), 0) + 1, $2, true, $3, $4, $5, $6, $7, $8, $9, $10, \
           $11, $12, $13 FROM lead_scoring_models WHERE workspace_id = $1 \
         RETURNING {MODEL_COLUMNS}"
    ))
    .bind::<BigInt, _>(workspace_id)
    .bind::<Text, _>(trained.model.learner.as_str())
    .bind::<Jsonb, _>(json(&trained.metrics))
    .bind::<Jsonb, _>(json(&trained.candidates))
    .bind::<Int4, _>(trained.positives as i32)
    .bind::<Int4, _>(trained.negatives as i32)
    .bind::<Int4, _>(trained.train_rows as i32)
    .bind::<Int4, _>(trained.test_rows as i32)
    .bind::<Jsonb, _>(Value::from(names))
    .bind::<Jsonb, _>(Value::from(importances))
    .bind::<Jsonb, _>(json(&trained.model))
    .bind::<BigInt, _>(training_ms)
    .bind::<Nullable<BigInt>, _>(started_by)
    .get_result(conn)
    .await?)
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Every version of the workspace's model, newest first.
pub async fn models(conn: &mut AsyncPgConnection, workspace_id: i64) -> AppResult<Vec<ModelRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {MODEL_COLUMNS} FROM lead_scoring_models WHERE workspace_id = $1 \
         ORDER BY version DESC"
    ))
    .bind::<BigInt, _>(workspace_id)
    .load(conn)
    .await?)
}

pub async fn active_model(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
) -> AppResult<Option<ModelRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {MODEL_COLUMNS} FROM lead_scoring_models WHERE workspace_id = $1 AND active"
    ))
    .bind::<BigInt, _>(workspace_id)
    .get_result(conn)
    .await
    .optional()?)
}

/// Makes `version` the active one; NOT_FOUND when the workspace has no such version. Run in
/// a transaction: the old one is switched off first (one active per workspace is a unique
/// index, checked row by row).
pub async fn activate(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    version: i32,
) -> AppResult<ModelRow> {
    let exists = diesel::sql_query(
        "SELECT 1 FROM lead_scoring_models WHERE workspace_id = $1 AND version = $2",
    )
    .bind::<BigInt, _>(workspace_id)
    .bind::<Int4, _>(version)
    .execute(conn)
    .await?;
    if exists == 0 {
        return Err(AppError::NotFound("lead scoring model"));
    }
    deactivate(conn, workspace_id).await?;
    diesel::sql_query(
        "UPDATE lead_scoring_models SET active = true WHERE workspace_id = $1 AND version = $2",
    )
    .bind::<BigInt, _>(workspace_id)
    .bind::<Int4, _>(version)
    .execute(conn)
    .await?;
    active_model(conn, workspace_id)
        .await?
        .ok_or(AppError::NotFound("lead scoring model"))
}

async fn deactivate(conn: &mut AsyncPgConnection, workspace_id: i64) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE lead_scoring_models SET active = false WHERE workspace_id = $1 AND active",
    )
    .bind::<BigInt, _>(workspace_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The active model's identity: its row ID, version and a stamp that changes whenever the row
/// is written (`xmin`), so a cached copy is never used after the stored one changed.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ActiveStamp {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Int4)]
    pub version: i32,
    #[diesel(sql_type = Text)]
    pub stamp: String,
}

pub async fn active_stamp(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
) -> AppResult<Option<ActiveStamp>> {
    Ok(diesel::sql_query(
        "SELECT id, version, xmin::text AS stamp FROM lead_scoring_models \
         WHERE workspace_id = $1 AND active",
    )
    .bind::<BigInt, _>(workspace_id)
    .get_result(conn)
    .await
    .optional()?)
}

/// The stored trees of model `id`, as JSON.
pub async fn model_json(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Value> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Jsonb)]
        model: Value,
    }
    let row: Row = diesel::sql_query("SELECT model FROM lead_scoring_models WHERE id = $1")
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .await?;
    Ok(row.model)
}

/// Score counts of the leads `scope` (an SQL condition on `leads`) selects.
#[derive(Debug, Clone, QueryableByName)]
pub struct StatsRow {
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub high: i64,
    #[diesel(sql_type = BigInt)]
    pub medium: i64,
    #[diesel(sql_type = BigInt)]
    pub low: i64,
    #[diesel(sql_type = BigInt)]
    pub unscored: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub average: Option<f64>,
    /// Leads scored 0-9, 10-19, ..., 90-100.
    #[diesel(sql_type = Array<BigInt>)]
    pub histogram: Vec<i64>,
}

/// The SELECT list of `StatsRow` over `leads`.
pub const STATS_SQL: &str = "SELECT count(*) AS total, \
    count(*) FILTER (WHERE score >= 75) AS high, \
    count(*) FILTER (WHERE score BETWEEN 50 AND 74) AS medium, \
    count(*) FILTER (WHERE score < 50) AS low, \
    count(*) FILTER (WHERE score IS NULL) AS unscored, \
    avg(score)::float8 AS average, \
    ARRAY[count(*) FILTER (WHERE score / 10 = 0), count(*) FILTER (WHERE score / 10 = 1), \
      count(*) FILTER (WHERE score / 10 = 2), count(*) FILTER (WHERE score / 10 = 3), \
      count(*) FILTER (WHERE score / 10 = 4), count(*) FILTER (WHERE score / 10 = 5), \
      count(*) FILTER (WHERE score / 10 = 6), count(*) FILTER (WHERE score / 10 = 7), \
      count(*) FILTER (WHERE score / 10 = 8), count(*) FILTER (WHERE score >= 90)] AS histogram \
    FROM leads WHERE ";
