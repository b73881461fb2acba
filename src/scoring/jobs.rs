//! Lead scoring's background work: scoring leads, training, the weekly retraining, and the
//! change-stream consumer that rescores a lead when something it is scored on changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::features::FEATURE_COLUMNS;
use super::model::NotEnoughData;
use super::store;
use crate::events::{Consumer, RecordEvent};
use crate::jobs::queue::{enqueue_in, NewJob};
use crate::jobs::schedule::Ticked;
use crate::jobs::{new_job, Job, JobContext};

pub use crate::jobs::job_for;

/// Scores these leads of the job's workspace and stores the scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreLeads {
    pub lead_ids: Vec<i64>,
}

impl ScoreLeads {
    /// The job for these leads of a workspace, as background work (no user started it).
    pub fn job(workspace_id: i64, lead_ids: Vec<i64>) -> NewJob {
        let mut job = new_job(&ScoreLeads { lead_ids });
        job.workspace_id = Some(workspace_id);
        job
    }
}

impl Job for ScoreLeads {
    const KIND: &'static str = "scoring.score_leads";

    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        let workspace_id = ctx.workspace_id.ok_or("the job has no workspace")?;
        let started = std::time::Instant::now();
        let scored = ctx
            .app
            .scoring
            .score_leads(workspace_id, &self.lead_ids, Some(&ctx))
            .await
            .map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(json!({
            "scored": scored,
            "seconds": seconds,
            "leadsPerSecond": if seconds > 0.0 { scored as f64 / seconds } else { 0.0 },
        }))
    }
}

/// Trains a new model version for the job's workspace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Retrain {
    /// Who asked (none for the schedule).
    pub started_by: Option<i64>,
}

impl Retrain {
    /// The training of a workspace: one live at a time, visible to whoever started it.
    pub fn job(workspace_id: i64, started_by: Option<i64>) -> NewJob {
        let mut job = new_job(&Retrain { started_by });
        job.workspace_id = Some(workspace_id);
        job.created_by = started_by;
        job.unique_key = Some(format!("scoring.retrain:{workspace_id}"));
        job
    }
}

impl Job for Retrain {
    const KIND: &'static str = "scoring.retrain";
    // Too little data will not fix itself by retrying.
    const MAX_ATTEMPTS: i32 = 2;

    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        let workspace_id = ctx.workspace_id.ok_or("the job has no workspace")?;
        let (tx, mut rx) = tokio::sync::watch::channel((0i16, String::new()));
        let reporter = {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let (percent, message) = rx.borrow_and_update().clone();
                    let _ = ctx.progress(percent, &message).await;
                }
            })
        };
        let trained = ctx
            .app
            .scoring
            .retrain(workspace_id, self.started_by, move |percent, message| {
                let _ = tx.send((percent, message.to_string()));
            })
            .await;
        let _ = reporter.await;
        let row = trained.map_err(|e| e.to_string())?;
        let _ = ctx.progress(100, "trained").await;
        // The model is stored: nothing below may fail (and so retrain) the job.
        let recipients = match self.started_by {
            Some(user) => vec![user],
            None => ctx
                .app
                .notifications
                .admins(workspace_id)
                .await
                .unwrap_or_else(|err| {
                    err.log_if_internal();
                    Vec::new()
                }),
        };
        let notice = crate::notifications::system::model_retrained(
            workspace_id,
            recipients,
            row.version,
            &row.metrics,
        );
        if let Err(err) = ctx.app.notifications.notify(&notice).await {
            // The model is stored; a lost notice must not fail (and retrain) it again.
            err.log_if_internal();
        }
        Ok(json!({
            "version": row.version,
            "learner": row.learner,
            "metrics": row.metrics,
            "candidates": row.candidates,
            "trainingMs": row.training_ms,
            "trainRows": row.train_rows,
            "testRows": row.test_rows,
        }))
    }
}

/// The weekly schedule: a training for every workspace with enough closed leads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RetrainAll {}

impl Job for RetrainAll {
    const KIND: &'static str = "scoring.retrain_all";

    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        let mut conn = ctx.app.db.get().await.map_err(|e| e.to_string())?;
        // A tick retrains the workspaces whose Monday 02:00 it is; an admin's trigger, their
        // own workspace only.
        let ticked = crate::jobs::schedule::ticked(&mut conn, ctx.job_id)
            .await
            .map_err(|e| e.to_string())?;
        let zones = store::workspace_timezones(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let counts = store::closed_counts(&mut conn, None)
            .await
            .map_err(|e| e.to_string())?;
        let mut workspaces = 0;
        for c in counts {
            let due = match ticked {
                Ticked::Manual { workspace: None } => true,
                Ticked::Manual {
                    workspace: Some(workspace),
                } => c.workspace_id == workspace,
                Ticked::Slot(slot) => {
                    let tz = zones.get(&c.workspace_id).copied().unwrap_or_default();
                    is_retrain_hour(slot, tz)
                }
            };
            if due && NotEnoughData::check(c.positives as usize, c.negatives as usize).is_ok() {
                enqueue_in(&mut conn, &Retrain::job(c.workspace_id, None))
                    .await
                    .map_err(|e| e.to_string())?;
                workspaces += 1;
            }
        }
        Ok(json!({ "workspaces": workspaces }))
    }
}

/// Whether an hourly slot falls in Monday 02:00-02:59 on the workspace's clock: exactly one
/// hourly slot a week does, whatever the offset (half-hour zones included).
pub fn is_retrain_hour(slot: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> bool {
    use chrono::{Datelike, Timelike};
    let local = slot.with_timezone(&tz);
    local.weekday() == chrono::Weekday::Mon && local.hour() == 2
}

/// Rescores a lead when a field a feature reads changes or an activity is logged on it: the
/// change stream tells, and a `scoring.score_leads` job does it, enqueued in the consumer's
/// transaction so each change is acted on exactly once.
pub struct LeadRescoring;

impl Consumer for LeadRescoring {
    fn name(&self) -> &'static str {
        "lead_scoring"
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut diesel_async::AsyncPgConnection,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let activities = activity_leads(conn, events).await?;
            for (workspace_id, lead_ids) in leads_to_rescore(events, &activities) {
                let single = match lead_ids.as_slice() {
                    [id] => Some(*id),
                    _ => None,
                };
                let mut job = ScoreLeads::job(workspace_id, lead_ids);
                // Edits in quick succession share one waiting job.
                job.unique_key = single.map(|id| format!("scoring.lead:{id}"));
                enqueue_in(conn, &job).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

/// The lead of each activity the events touch whose event does not say it (a delete,
/// restore or edit only lists the fields that changed).
async fn activity_leads(
    conn: &mut diesel_async::AsyncPgConnection,
    events: &[RecordEvent],
) -> Result<HashMap<i64, i64>, String> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        lead_id: i64,
    }
    let ids: Vec<i64> = events
        .iter()
        .filter(|e| e.entity == "activity" && e.changes.get("lead_id").is_none())
        .map(|e| e.record_id)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT id, lead_id FROM activities WHERE id = ANY($1) AND lead_id IS NOT NULL",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(ids)
    .load(conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|r| (r.id, r.lead_id)).collect())
}

/// The leads (by workspace) whose score the events make stale. `activity_leads` gives the
/// lead of activities whose event does not name it.
pub fn leads_to_rescore(
    events: &[RecordEvent],
    activity_leads: &HashMap<i64, i64>,
) -> BTreeMap<i64, Vec<i64>> {
    let mut stale: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for event in events {
        let leads: Vec<i64> = match (event.entity.as_str(), event.action.as_str()) {
            ("lead", "created" | "restored") => vec![event.record_id],
            ("lead", "updated") => {
                let changes = event.changes.as_object();
                if changes.is_some_and(|c| FEATURE_COLUMNS.iter().any(|f| c.contains_key(*f))) {
                    vec![event.record_id]
                } else {
                    Vec::new()
                }
            }
            // Any change to an activity can change its lead's counts; a moved activity
            // changes two leads.
            ("activity", _) => match event.changes.get("lead_id") {
                Some(moved) => ["/old", "/new"]
                    .iter()
                    .filter_map(|side| moved.pointer(side).and_then(|v| v.as_i64()))
                    .collect(),
                None => activity_leads
                    .get(&event.record_id)
                    .copied()
                    .into_iter()
                    .collect(),
            },
            _ => Vec::new(),
        };
        if !leads.is_empty() {
            stale.entry(event.workspace_id).or_default().extend(leads);
        }
    }
    stale
        .into_iter()
        .map(|(workspace, leads)| (workspace, leads.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        entity: &str,
        action: &str,
        record_id: i64,
        changes: serde_json::Value,
    ) -> RecordEvent {
        RecordEvent {
            seq: 1,
            event: crate::crm::events::RecordEvent {
                id: 1,
                workspace_id: 7,
                entity: entity.into(),
                record_id,
                action: action.into(),
                actor_id: None,
                changes,
                occurred_at: chrono::Utc::now(),
            },
            caused_by_run: None,
        }
    }

    #[test]
    fn the_weekly_retrain_is_monday_two_oclock_on_the_workspace_clock() {
        use chrono::TimeZone;
        let utc = |d, h, m| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // 2026-11-23 is a Monday.
        assert!(is_retrain_hour(utc(23, 2, 0), chrono_tz::UTC));
        assert!(!is_retrain_hour(utc(23, 3, 0), chrono_tz::UTC));
        // Tokyo (UTC+9): Monday 02:00 there is Sunday 17:00 UTC.
        assert!(is_retrain_hour(utc(22, 17, 0), chrono_tz::Asia::Tokyo));
        assert!(!is_retrain_hour(utc(23, 2, 0), chrono_tz::Asia::Tokyo));
        // Kolkata (UTC+5:30): the 20:30 UTC slot does not exist hourly, 21:00 is 02:30.
        assert!(is_retrain_hour(utc(22, 21, 0), chrono_tz::Asia::Kolkata));
        // One slot a week per zone.
        for tz in [
            chrono_tz::UTC,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kolkata,
        ] {
            let hits = (0..24 * 7)
                .filter(|h| is_retrain_hour(utc(20, 0, 0) + chrono::Duration::hours(*h), tz))
                .count();
            assert_eq!(hits, 1, "{tz}");
        }
    }

    #[test]
    fn stale_leads_are_those_whose_features_or_activities_changed() {
        let events = [
            event(
                "lead",
                "updated",
                1,
                json!({"notes": {"old": null, "new": "x"}}),
            ),
            event(
                "lead",
                "score_changed",
                2,
                json!({"score": {"old": 1, "new": 2}}),
            ),
            event(
                "lead",
                "updated",
                3,
                json!({"job_title": {"old": null, "new": "CEO"}}),
            ),
            event("lead", "created", 4, json!({})),
            event(
                "activity",
                "created",
                50,
                json!({"lead_id": {"old": null, "new": 5}}),
            ),
            event(
                "activity",
                "updated",
                60,
                json!({"lead_id": {"old": 6, "new": 8}}),
            ),
            event(
                "activity",
                "deleted",
                90,
                json!({"deleted_at": {"old": null, "new": "now"}}),
            ),
            event(
                "activity",
                "deleted",
                91,
                json!({"deleted_at": {"old": null, "new": "now"}}),
            ),
        ];
        // Activity 91 is on a contact, not a lead: the lookup has no lead for it.
        let lookup = HashMap::from([(90, 9)]);
        let stale = leads_to_rescore(&events, &lookup);
        assert_eq!(stale, BTreeMap::from([(7, vec![3, 4, 5, 6, 8, 9])]));
    }
}
