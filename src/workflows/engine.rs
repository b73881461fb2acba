//! The change-stream consumer that starts runs: each batch of events is matched against the
//! active workflows of their workspaces and kinds (one query), the records the matches need
//! are read (one query per kind), conditions are evaluated, and each run is inserted with its
//! first job in the consumer's transaction: a run starts exactly once per event.
//!
//! Two brakes: the loop guard (a change made by a run starts runs one level deeper; past
//! `max_depth` the run is recorded as cancelled, not started) and a per-workspace cap on runs
//! per minute (past it, runs are recorded as cancelled too). Both are logged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::conditions::{self, change_of, Facts};
use super::context;
use super::definition::{Definition, Entity, Operator, Trigger};
use super::runner::RunWorkflow;
use super::store::{self, NewRun, WorkflowRow};
use crate::config::WorkflowConfig;
use crate::error::AppResult;
use crate::events::{Consumer, RecordEvent};
use crate::jobs::queue::enqueue_many_in;

pub struct WorkflowEngine {
    config: WorkflowConfig,
    /// Parsed definitions by workflow and version: every batch reads the active workflows,
    /// but parses only new versions.
    parsed: Mutex<HashMap<(i64, i32), Arc<Definition>>>,
}

impl WorkflowEngine {
    pub fn new(config: WorkflowConfig) -> Self {
        WorkflowEngine {
            config,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    fn definition(&self, workflow: &WorkflowRow) -> Option<Arc<Definition>> {
        let key = (workflow.id, workflow.version);
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(definition) = parsed.get(&key) {
            return Some(definition.clone());
        }
        let definition = Arc::new(workflow.definition().ok()?);
        if parsed.len() > 10_000 {
            parsed.clear(); // old versions pile up only as workflows are edited
        }
        parsed.insert(key, definition.clone());
        Some(definition)
    }
}

impl Consumer for WorkflowEngine {
    fn name(&self) -> &'static str {
        "workflows"
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            start_runs(conn, self, events)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Whether an event is the kind of change a trigger waits for.
pub fn triggered(trigger: &Trigger, event: &RecordEvent) -> bool {
    let updated = matches!(event.action.as_str(), "updated" | "converted");
    match trigger {
        Trigger::RecordCreated => event.action == "created",
        Trigger::RecordDeleted => event.action == "deleted",
        Trigger::RecordUpdated { fields } => {
            updated
                && (fields.is_empty()
                    || fields
                        .iter()
                        .any(|f| change_of(&event.changes, f).is_some()))
        }
        Trigger::FieldChanged { field, from, to } => {
            updated
                && change_of(&event.changes, field).is_some_and(|(old, new)| {
                    from.as_ref()
                        .is_none_or(|v| conditions::compare(Operator::Equals, &old, v))
                        && to
                            .as_ref()
                            .is_none_or(|v| conditions::compare(Operator::Equals, &new, v))
                })
        }
        Trigger::ScoreChanged { above, below } => {
            if event.action != "score_changed" {
                return false;
            }
            let score = |side: &str| {
                event
                    .changes
                    .pointer(&format!("/score/{side}"))
                    .and_then(Value::as_i64)
            };
            let (old, new) = (score("old"), score("new"));
            let crossed_up =
                |line: i64| new.is_some_and(|n| n > line) && old.is_none_or(|o| o <= line);
            let crossed_down =
                |line: i64| new.is_some_and(|n| n < line) && old.is_none_or(|o| o >= line);
            match (above, below) {
                (None, None) => true,
                (Some(a), None) => crossed_up(*a),
                (None, Some(b)) => crossed_down(*b),
                (Some(a), Some(b)) => crossed_up(*a) || crossed_down(*b),
            }
        }
        // Moments start these, not changes (`time_triggers`).
        Trigger::TimeBased { .. } | Trigger::Manual => false,
    }
}

/// The run's `trigger` data (what `{{trigger.*}}` reads).
pub fn trigger_data(trigger: &Trigger, event: &RecordEvent) -> Value {
    json!({
        // The trigger's own tag, as definitions write it.
        "type": serde_json::to_value(trigger).ok().and_then(|t| t.get("type").cloned()),
        "event_id": event.id,
        "action": event.action,
        "changes": event.changes,
        "actor_id": event.actor_id,
        "occurred_at": event.occurred_at,
    })
}

async fn start_runs(
    conn: &mut AsyncPgConnection,
    engine: &WorkflowEngine,
    events: &[RecordEvent],
) -> AppResult<()> {
    let config = &engine.config;
    let watched: Vec<&RecordEvent> = events
        .iter()
        .filter(|e| Entity::parse(&e.entity).is_some())
        .collect();
    if watched.is_empty() {
        return Ok(());
    }
    let pairs: BTreeSet<(i64, String)> = watched
        .iter()
        .map(|e| (e.workspace_id, e.entity.clone()))
        .collect();
    let (workspaces, entities): (Vec<i64>, Vec<String>) = pairs.into_iter().unzip();
    let workflows: Vec<(WorkflowRow, Arc<Definition>)> =
        store::active(conn, &workspaces, &entities)
            .await?
            .into_iter()
            .filter_map(|w| engine.definition(&w).map(|d| (w, d)))
            .collect();
    if workflows.is_empty() {
        return Ok(());
    }
    // Which (event, workflow) pairs fire, before conditions.
    let mut fired: Vec<(&RecordEvent, &WorkflowRow, &Definition)> = Vec::new();
    for event in &watched {
        for (workflow, definition) in &workflows {
            if workflow.workspace_id == event.workspace_id
                && workflow.entity == event.entity
                && triggered(&definition.trigger, event)
            {
                fired.push((event, workflow, definition));
            }
        }
    }
    if fired.is_empty() {
        return Ok(());
    }
    let records = load_records(conn, &fired).await?;
    let parents: Vec<i64> = fired.iter().filter_map(|(e, ..)| e.caused_by_run).collect();
    let depths = store::depths(conn, &parents).await?;
    let mut recent = store::recent_runs(conn, &workspaces).await?;
    let mut runs = Vec::new();
    for (event, workflow, definition) in fired {
        let null = Value::Null;
        let record = records
            .get(&(event.workspace_id, event.entity.clone(), event.record_id))
            .unwrap_or(&null);
        let facts = Facts {
            record,
            changes: &event.changes,
        };
        if !conditions::holds(definition.conditions.as_ref(), &facts) {
            continue;
        }
        let depth = event
            .caused_by_run
            .map_or(0, |parent| depths.get(&parent).copied().unwrap_or(0) + 1);
        let started = recent.entry(event.workspace_id).or_insert(0);
        let stop = if depth > config.max_depth {
            tracing::warn!(
                workflow = workflow.id,
                record = event.record_id,
                depth,
                "loop guard: a workflow run was not started"
            );
            Some(format!(
                "loop guard: this change came from a chain of {depth} workflow runs (at most {})",
                config.max_depth
            ))
        } else if *started >= config.runs_per_minute {
            tracing::warn!(
                workflow = workflow.id,
                workspace = event.workspace_id,
                "workflow runs per minute cap reached: a run was not started"
            );
            Some(format!(
                "rate cap: the workspace started {} workflow runs in the last minute",
                config.runs_per_minute
            ))
        } else {
            *started += 1;
            None
        };
        runs.push(NewRun {
            workspace_id: event.workspace_id,
            workflow_id: workflow.id,
            version: workflow.version,
            entity: event.entity.clone(),
            record_id: event.record_id,
            trigger: trigger_data(&definition.trigger, event),
            depth,
            started_by: None,
            status: if stop.is_some() {
                "cancelled"
            } else {
                "running"
            },
            error: stop,
            slot: None,
        });
    }
    let ids = store::insert_runs(conn, &runs).await?;
    let jobs: Vec<_> = runs
        .iter()
        .zip(ids)
        .filter(|(run, _)| run.status == "running")
        .map(|(run, id)| RunWorkflow::job(run.workspace_id, id))
        .collect();
    enqueue_many_in(conn, &jobs).await?;
    Ok(())
}

/// The contexts of the records the fired workflows need, by (workspace, entity, ID).
async fn load_records(
    conn: &mut AsyncPgConnection,
    fired: &[(&RecordEvent, &WorkflowRow, &Definition)],
) -> AppResult<HashMap<(i64, String, i64), Value>> {
    // Per workspace and kind: the records, and the relations their conditions read.
    let mut wanted: HashMap<(i64, Entity), (BTreeSet<i64>, BTreeSet<String>)> = HashMap::new();
    for (event, _, definition) in fired {
        let Some(conditions) = &definition.conditions else {
            continue;
        };
        let (ids, heads) = wanted
            .entry((event.workspace_id, definition.entity))
            .or_default();
        ids.insert(event.record_id);
        heads.extend(conditions.relations_read());
    }
    let mut records = HashMap::new();
    for ((workspace, entity), (ids, heads)) in wanted {
        let ids: Vec<i64> = ids.into_iter().collect();
        let expand = |name: &str| heads.contains(name);
        for (id, record) in context::records_with(conn, workspace, entity, &ids, expand).await? {
            records.insert((workspace, entity.name().to_string(), id), record);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, changes: Value) -> RecordEvent {
        RecordEvent {
            seq: 1,
            event: crate::crm::events::RecordEvent {
                id: 1,
                workspace_id: 1,
                entity: "lead".into(),
                record_id: 9,
                action: action.into(),
                actor_id: None,
                changes,
                occurred_at: chrono::Utc::now(),
            },
            caused_by_run: None,
        }
    }

    fn trigger(value: Value) -> Trigger {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn triggers_match_their_events() {
        let status = event(
            "updated",
            json!({"status": {"old": "new", "new": "qualified"}}),
        );
        assert!(triggered(
            &trigger(json!({"type": "record_updated"})),
            &status
        ));
        assert!(triggered(
            &trigger(json!({"type": "record_updated", "fields": ["status"]})),
            &status
        ));
        assert!(!triggered(
            &trigger(json!({"type": "record_updated", "fields": ["email"]})),
            &status
        ));
        assert!(triggered(
            &trigger(json!({"type": "field_changed", "field": "status", "to": "QUALIFIED"})),
            &status
        ));
        assert!(!triggered(
            &trigger(json!({"type": "field_changed", "field": "status", "from": "contacted"})),
            &status
        ));
        assert!(!triggered(
            &trigger(json!({"type": "record_created"})),
            &status
        ));
        assert!(triggered(
            &trigger(json!({"type": "record_created"})),
            &event("created", json!({}))
        ));
        assert!(triggered(
            &trigger(json!({"type": "record_deleted"})),
            &event("deleted", json!({}))
        ));
        assert!(!triggered(
            &trigger(json!({"type": "manual"})),
            &event("created", json!({}))
        ));
        let up = event("score_changed", json!({"score": {"old": 40, "new": 80}}));
        assert!(triggered(&trigger(json!({"type": "score_changed"})), &up));
        assert!(triggered(
            &trigger(json!({"type": "score_changed", "above": 70})),
            &up
        ));
        assert!(!triggered(
            &trigger(json!({"type": "score_changed", "above": 90})),
            &up
        ));
        assert!(!triggered(
            &trigger(json!({"type": "score_changed", "below": 50})),
            &up
        ));
        let first = event("score_changed", json!({"score": {"old": null, "new": 20}}));
        assert!(triggered(
            &trigger(json!({"type": "score_changed", "below": 50})),
            &first
        ));
    }
}
