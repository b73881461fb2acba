//! Time-based triggers: workflows started by moments instead of changes.
//!
//! Two kinds of moment, both read in the workspace's timezone:
//! - a cron `schedule` ("0 9 * * Mon"): at each slot, a run for every record of the kind that
//!   matches the conditions;
//! - a date field of each record, moved by an offset ("2 days before due_at", "7 days after
//!   created_at", "on expected_close_date"); a date without a time fires at `at` (09:00 unless
//!   given).
//!
//! A builtin schedule ticks every minute (`TimeTriggers`); each tick looks, per workflow, at
//! the moments in (cursor, now], starts their runs and moves the cursor, in one transaction
//! holding the cursor's lock. Every such run carries its moment (`workflow_runs.slot`), and
//! (workflow, record, slot) is unique: a moment starts one run whatever ticks twice. The cursor
//! starts at activation, so moments that passed while a workflow was off never fire; after an
//! outage, moments up to `MAX_CATCH_UP` old still do. The per-workspace cap on runs per minute
//! applies: runs past it are deferred to the next tick (the cursor stays), not dropped.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use diesel::sql_types::{BigInt, Date, Double, Integer, Text, Time, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::conditions::{self, Facts};
use super::context;
use super::definition::{bad, parse_duration, Definition, Entity, Trigger};
use super::runner::RunWorkflow;
use super::store::{self, NewRun, WorkflowRow};
use crate::config::WorkflowConfig;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::jobs::queue::enqueue_many_in;
use crate::jobs::{Job, JobContext};

/// How old a moment may be and still fire (after an outage).
pub const MAX_CATCH_UP: Duration = Duration::hours(24);

/// At most this many records are looked at per workflow and tick; the rest wait a tick.
const MAX_CANDIDATES: i64 = 10_000;

/// Records whose contexts are read at once to evaluate the conditions.
const CONTEXT_CHUNK: usize = 500;

/// When a date without a time fires, unless the trigger says `at`.
fn default_at() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 0, 0).expect("a valid time")
}

/// A time-based trigger, parsed.
#[derive(Debug, Clone)]
pub enum Timing {
    Schedule(Box<Cron>),
    Relative(Relative),
}

/// "`offset` from `field`": negative before, positive after.
#[derive(Debug, Clone, PartialEq)]
pub struct Relative {
    pub field: String,
    pub offset: Duration,
    /// When a date field fires (local time); `None` unless the trigger gave one.
    pub at: Option<NaiveTime>,
}

impl Timing {
    /// The timing of a time-based trigger (None for the others); problems name their path.
    pub fn of(trigger: &Trigger) -> AppResult<Option<Timing>> {
        let Trigger::TimeBased {
            schedule,
            field,
            before,
            after,
            at,
        } = trigger
        else {
            return Ok(None);
        };
        match (schedule, field) {
            (Some(pattern), None) => {
                for (name, given) in [("before", before), ("after", after), ("at", at)] {
                    if given.is_some() {
                        return Err(bad(
                            &format!("trigger.{name}"),
                            "only with a field; a schedule is a cron pattern alone",
                        ));
                    }
                }
                Ok(Some(Timing::Schedule(Box::new(parse_cron(pattern)?))))
            }
            (None, Some(field)) => {
                let offset = match (before, after) {
                    (Some(_), Some(_)) => {
                        return Err(bad("trigger.after", "before or after, not both"))
                    }
                    (Some(text), None) => {
                        -parse_duration(text).map_err(|message| bad("trigger.before", message))?
                    }
                    (None, Some(text)) => {
                        parse_duration(text).map_err(|message| bad("trigger.after", message))?
                    }
                    (None, None) => Duration::zero(),
                };
                let at = at
                    .as_deref()
                    .map(|text| {
                        NaiveTime::parse_from_str(text.trim(), "%H:%M")
                            .map_err(|_| bad("trigger.at", "a time of day like 09:00"))
                    })
                    .transpose()?;
                Ok(Some(Timing::Relative(Relative {
                    field: field.trim().to_string(),
                    offset,
                    at,
                })))
            }
            _ => Err(bad(
                "trigger",
                "a time_based trigger has either a schedule (a cron pattern) or a field (a date \
                 of the record, with before or after)",
            )),
        }
    }
}

/// A 5-field cron pattern: minute hour day-of-month month day-of-week.
fn parse_cron(pattern: &str) -> AppResult<Cron> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(pattern.trim())
        .map_err(|err| {
            bad(
                "trigger.schedule",
                format!(
                    "{pattern:?} is not a cron pattern of 5 fields (minute hour day-of-month \
                     month day-of-week, e.g. \"0 9 * * Mon\"): {err}"
                ),
            )
        })
}

/// The latest slot of `cron` at or before `now`, read in `tz`.
pub fn latest_slot(cron: &Cron, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_previous_occurrence(&now.with_timezone(&tz), true)
        .ok()
        .map(|slot| slot.with_timezone(&Utc))
}

/// What one tick did for one workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub workflow_id: i64,
    /// Runs started.
    pub started: usize,
    /// Whether moments were left for the next tick (rate cap, or too many records at once).
    pub deferred: bool,
}

/// Starts the runs of every active time-based workflow whose moments fell in (its cursor,
/// `now`]. `now` is a parameter so tests can drive a fake clock. A workflow that cannot be
/// evaluated is logged and skipped; the others go on.
pub async fn evaluate(
    db: &DbPool,
    config: &WorkflowConfig,
    now: DateTime<Utc>,
) -> AppResult<Vec<Evaluation>> {
    let mut conn = db.get().await?;
    let workflows = store::time_based(&mut conn).await?;
    let mut done = Vec::new();
    for workflow in workflows {
        let outcome = conn
            .transaction::<_, AppError, _>(async |conn| {
                evaluate_one(conn, config, &workflow, now).await
            })
            .await;
        match outcome {
            Ok(Some(evaluation)) => done.push(evaluation),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(workflow = workflow.id, error = %err, "a time-based workflow could not be evaluated");
            }
        }
    }
    Ok(done)
}

async fn evaluate_one(
    conn: &mut AsyncPgConnection,
    config: &WorkflowConfig,
    workflow: &WorkflowRow,
    now: DateTime<Utc>,
) -> AppResult<Option<Evaluation>> {
    let definition = workflow.definition()?;
    let Some(timing) = Timing::of(&definition.trigger)? else {
        return Ok(None);
    };
    let Some((cursor, tz)) = store::lock_time_cursor(conn, workflow).await? else {
        return Ok(None); // deactivated or edited since the list was read
    };
    if cursor >= now {
        return Ok(None);
    }
    let from = cursor.max(now - MAX_CATCH_UP);
    let tz: Tz = tz.parse().unwrap_or(Tz::UTC);
    let window = Window { from, now, tz };
    let candidates = match &timing {
        Timing::Schedule(cron) => match latest_slot(cron, tz, now).filter(|slot| *slot > from) {
            Some(slot) => scheduled(conn, workflow, slot).await?,
            None => Vec::new(),
        },
        Timing::Relative(relative) => relative_moments(conn, workflow, relative, &window).await?,
    };
    let mut deferred = candidates.len() as i64 >= MAX_CANDIDATES;
    let mut matched = matching(conn, workflow, &definition, candidates).await?;
    let recent = store::recent_runs(conn, &[workflow.workspace_id])
        .await?
        .get(&workflow.workspace_id)
        .copied()
        .unwrap_or(0);
    let budget = (config.runs_per_minute - recent).max(0) as usize;
    if matched.len() > budget {
        tracing::warn!(
            workflow = workflow.id,
            workspace = workflow.workspace_id,
            waiting = matched.len() - budget,
            "workflow runs per minute cap reached: time-triggered runs wait for the next tick"
        );
        matched.truncate(budget);
        deferred = true;
    }
    let runs: Vec<NewRun> = matched
        .iter()
        .map(|(record_id, slot)| NewRun {
            workspace_id: workflow.workspace_id,
            workflow_id: workflow.id,
            version: workflow.version,
            entity: workflow.entity.clone(),
            record_id: *record_id,
            trigger: trigger_data(&definition.trigger, *slot),
            depth: 0,
            started_by: None,
            status: "running",
            error: None,
            slot: Some(*slot),
        })
        .collect();
    let ids = store::insert_runs(conn, &runs).await?;
    let jobs: Vec<_> = ids
        .iter()
        .map(|id| RunWorkflow::job(workflow.workspace_id, *id))
        .collect();
    enqueue_many_in(conn, &jobs).await?;
    if !deferred {
        store::advance_time_cursor(conn, workflow.id, now).await?;
    }
    Ok(Some(Evaluation {
        workflow_id: workflow.id,
        started: ids.len(),
        deferred,
    }))
}

/// The moments looked at by one tick: (`from`, `now`], local times read in `tz`.
struct Window {
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
}

#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Timestamptz)]
    moment: DateTime<Utc>,
}

/// Whether the record already has its run for the moment (the unique index backs this up).
const NOT_FIRED: &str = "NOT EXISTS (SELECT 1 FROM workflow_runs r \
    WHERE r.workflow_id = $2 AND r.record_id = c.id AND r.slot = c.moment)";

/// Every live record of the kind without a run for `slot`.
async fn scheduled(
    conn: &mut AsyncPgConnection,
    workflow: &WorkflowRow,
    slot: DateTime<Utc>,
) -> AppResult<Vec<(i64, DateTime<Utc>)>> {
    let table = entity_of(workflow)?.table();
    let rows: Vec<Candidate> = diesel::sql_query(format!(
        "SELECT c.id, c.moment FROM (SELECT t.id, $3::timestamptz AS moment FROM {table} t \
           WHERE t.workspace_id = $1 AND t.deleted_at IS NULL) c \
         WHERE {NOT_FIRED} ORDER BY c.id LIMIT $4"
    ))
    .bind::<BigInt, _>(workflow.workspace_id)
    .bind::<BigInt, _>(workflow.id)
    .bind::<Timestamptz, _>(slot)
    .bind::<BigInt, _>(MAX_CANDIDATES)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|c| (c.id, c.moment)).collect())
}

/// Every live record whose moment (`field` moved by the offset) is in the window and has no
/// run yet, earliest first.
async fn relative_moments(
    conn: &mut AsyncPgConnection,
    workflow: &WorkflowRow,
    relative: &Relative,
    window: &Window,
) -> AppResult<Vec<(i64, DateTime<Utc>)>> {
    let entity = entity_of(workflow)?;
    let table = entity.table();
    // The field was checked on save; it is checked again here because it becomes SQL text.
    let column_type = context::columns(conn, entity)
        .await?
        .remove(&relative.field)
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("{table} has no column {}", relative.field))
        })?;
    let column = format!("t.\"{}\"", relative.field);
    let rows: Vec<Candidate> = if column_type == "date" {
        let days = relative.offset.num_days() as i32;
        let (low, high) = date_range(window, days);
        diesel::sql_query(format!(
            "SELECT c.id, c.moment FROM (SELECT t.id, \
               (({column} + $3)::timestamp + $4::time) AT TIME ZONE $5 AS moment \
               FROM {table} t WHERE t.workspace_id = $1 AND t.deleted_at IS NULL \
                 AND {column} BETWEEN $6 AND $7) c \
             WHERE c.moment > $8 AND c.moment <= $9 AND {NOT_FIRED} \
             ORDER BY c.moment, c.id LIMIT $10"
        ))
        .bind::<BigInt, _>(workflow.workspace_id)
        .bind::<BigInt, _>(workflow.id)
        .bind::<Integer, _>(days)
        .bind::<Time, _>(relative.at.unwrap_or_else(default_at))
        .bind::<Text, _>(window.tz.name())
        .bind::<Date, _>(low)
        .bind::<Date, _>(high)
        .bind::<Timestamptz, _>(window.from)
        .bind::<Timestamptz, _>(window.now)
        .bind::<BigInt, _>(MAX_CANDIDATES)
        .load(conn)
        .await?
    } else {
        let seconds = relative.offset.num_seconds() as f64;
        diesel::sql_query(format!(
            "SELECT c.id, c.moment FROM (SELECT t.id, \
               {column} + $3 * interval '1 second' AS moment \
               FROM {table} t WHERE t.workspace_id = $1 AND t.deleted_at IS NULL \
                 AND {column} > $4 AND {column} <= $5) c \
             WHERE {NOT_FIRED} ORDER BY c.moment, c.id LIMIT $6"
        ))
        .bind::<BigInt, _>(workflow.workspace_id)
        .bind::<BigInt, _>(workflow.id)
        .bind::<Double, _>(seconds)
        .bind::<Timestamptz, _>(window.from - relative.offset)
        .bind::<Timestamptz, _>(window.now - relative.offset)
        .bind::<BigInt, _>(MAX_CANDIDATES)
        .load(conn)
        .await?
    };
    Ok(rows.into_iter().map(|c| (c.id, c.moment)).collect())
}

/// The field dates whose moments can fall in the window: the window's local dates moved back
/// by the offset, a day of slack on each side (the exact test is on the moment).
fn date_range(window: &Window, offset_days: i32) -> (NaiveDate, NaiveDate) {
    let local = |t: DateTime<Utc>| t.with_timezone(&window.tz).date_naive();
    let shift = Duration::days(i64::from(offset_days));
    (
        local(window.from) - shift - Duration::days(1),
        local(window.now) - shift + Duration::days(1),
    )
}

fn entity_of(workflow: &WorkflowRow) -> AppResult<Entity> {
    Entity::parse(&workflow.entity)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("unknown entity {}", workflow.entity)))
}

/// The candidates whose records match the workflow's conditions.
async fn matching(
    conn: &mut AsyncPgConnection,
    workflow: &WorkflowRow,
    definition: &Definition,
    candidates: Vec<(i64, DateTime<Utc>)>,
) -> AppResult<Vec<(i64, DateTime<Utc>)>> {
    let Some(conditions) = &definition.conditions else {
        return Ok(candidates);
    };
    let heads: BTreeSet<String> = conditions.relations_read();
    let no_changes = json!({});
    let mut matched = Vec::new();
    for chunk in candidates.chunks(CONTEXT_CHUNK) {
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        let records = context::records_with(
            conn,
            workflow.workspace_id,
            definition.entity,
            &ids,
            |head| heads.contains(head),
        )
        .await?;
        matched.extend(chunk.iter().copied().filter(|(id, _)| {
            records.get(id).is_some_and(|record| {
                conditions::holds(
                    Some(conditions),
                    &Facts {
                        record,
                        changes: &no_changes,
                    },
                )
            })
        }));
    }
    Ok(matched)
}

/// The run's `trigger` data: the trigger as defined, and the moment it fired for.
fn trigger_data(trigger: &Trigger, slot: DateTime<Utc>) -> Value {
    let mut data = serde_json::to_value(trigger).unwrap_or_else(|_| json!({}));
    data["slot"] = json!(slot);
    data["changes"] = json!({});
    data
}

/// The builtin `workflows.time_based` schedule's job: one tick of every time-based workflow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimeTriggers {}

impl Job for TimeTriggers {
    const KIND: &'static str = "workflow.time_triggers";
    const MAX_ATTEMPTS: i32 = 3;
    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        let done = evaluate(&ctx.app.db, &ctx.app.config.workflows, Utc::now())
            .await
            .map_err(|e| e.to_string())?;
        Ok(json!({
            "workflows": done.len(),
            "started": done.iter().map(|e| e.started).sum::<usize>(),
            "deferred": done.iter().filter(|e| e.deferred).count(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn timing(trigger: Value) -> AppResult<Option<Timing>> {
        Timing::of(&serde_json::from_value(trigger).unwrap())
    }

    fn field_of(err: AppError) -> String {
        match err {
            AppError::BadUserInput { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relative_timings_parse() {
        let Some(Timing::Relative(relative)) =
            timing(json!({"type": "time_based", "field": "due_at", "before": "2 days"})).unwrap()
        else {
            panic!("relative expected")
        };
        assert_eq!(relative.offset, -Duration::days(2));
        let Some(Timing::Relative(relative)) =
            timing(json!({"type": "time_based", "field": "expected_close_date", "at": "17:30"}))
                .unwrap()
        else {
            panic!("relative expected")
        };
        assert_eq!(relative.offset, Duration::zero());
        assert_eq!(relative.at, NaiveTime::from_hms_opt(17, 30, 0));
        assert!(timing(json!({"type": "record_created"})).unwrap().is_none());
    }

    #[test]
    fn bad_timings_name_their_path() {
        let cases = [
            (json!({"type": "time_based"}), "trigger"),
            (
                json!({"type": "time_based", "schedule": "0 9 * * *", "field": "due_at"}),
                "trigger",
            ),
            (
                json!({"type": "time_based", "schedule": "0 9 * *"}),
                "trigger.schedule",
            ),
            (
                json!({"type": "time_based", "schedule": "0 0 9 * * *"}),
                "trigger.schedule",
            ),
            (
                json!({"type": "time_based", "schedule": "0 9 * * *", "before": "1d"}),
                "trigger.before",
            ),
            (
                json!({"type": "time_based", "field": "due_at", "before": "1d", "after": "2d"}),
                "trigger.after",
            ),
            (
                json!({"type": "time_based", "field": "due_at", "after": "soon"}),
                "trigger.after",
            ),
            (
                json!({"type": "time_based", "field": "due_at", "at": "9am"}),
                "trigger.at",
            ),
        ];
        for (trigger, path) in cases {
            let err = timing(trigger.clone()).unwrap_err();
            assert_eq!(field_of(err), path, "{trigger}");
        }
    }

    #[test]
    fn schedules_are_read_in_the_workspace_timezone() {
        let Some(Timing::Schedule(cron)) =
            timing(json!({"type": "time_based", "schedule": "0 9 * * Mon"})).unwrap()
        else {
            panic!("schedule expected")
        };
        let tz: Tz = "America/New_York".parse().unwrap();
        // Wednesday 2026-11-25 12:00 UTC: the last slot is Monday 09:00 in New York (EST).
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(
            latest_slot(&cron, tz, now),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap())
        );
        // In July (EDT) the same local time is an hour earlier in UTC.
        let july = Utc.with_ymd_and_hms(2026, 7, 7, 0, 0, 0).unwrap();
        assert_eq!(
            latest_slot(&cron, tz, july),
            Some(Utc.with_ymd_and_hms(2026, 7, 6, 13, 0, 0).unwrap())
        );
    }

    #[test]
    fn date_ranges_cover_the_window_with_slack() {
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        let window = Window {
            from: Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap(),
            now: Utc.with_ymd_and_hms(2026, 11, 24, 23, 1, 0).unwrap(),
            tz,
        };
        // 23:00 UTC is already the 25th in Tokyo; "2 days before" looks at dates around the 27th.
        let (low, high) = date_range(&window, -2);
        assert_eq!(low, NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert_eq!(high, NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
    }
}
