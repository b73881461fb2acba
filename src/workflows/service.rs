//! Workflows as their managers use them: create, edit (a new definition is a new version),
//! activate, run by hand, dry-run, follow and cancel runs. Admins and managers only: a
//! workflow acts on every record of its workspace and signs webhooks with its secret.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;
use serde_json::{json, Value};

use super::conditions::{evaluate, Facts, RuleResult};
use super::context;
use super::definition::{Action, Definition};
use super::program::{compile, Instruction};
use super::runner::RunWorkflow;
use super::store::{self, NewRun, RunRow, StepRow, WorkflowRow};
use super::template::render_json;
use super::validate;
use crate::auth::{Role, Viewer};
use crate::config::WorkflowConfig;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::jobs::queue::enqueue_in;
use crate::pagination::Page;

/// A new workflow.
pub struct WorkflowInput {
    pub name: String,
    pub description: Option<String>,
    pub entity: String,
    pub trigger: Value,
    pub conditions: Option<Value>,
    pub actions: Value,
}

/// Changes to a workflow; `None` leaves a part alone (`conditions: Some(None)` removes them).
#[derive(Default)]
pub struct WorkflowPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub entity: Option<String>,
    pub trigger: Option<Value>,
    pub conditions: Option<Option<Value>>,
    pub actions: Option<Value>,
}

/// What a dry run found.
#[derive(Debug, Serialize)]
pub struct DryRun {
    /// Whether the workflow's conditions hold for the record now.
    pub conditions_passed: bool,
    pub rules: Vec<RuleResult>,
    /// The steps a run would take now, in order, with their rendered params.
    pub steps: Vec<PlannedStep>,
}

#[derive(Debug, Serialize)]
pub struct PlannedStep {
    pub path: String,
    pub action: String,
    pub params: Option<Value>,
    /// Why it would fail (a missing variable), if it would.
    pub error: Option<String>,
}

/// Runs per page at most.
pub const MAX_PAGE: i64 = 200;

pub struct WorkflowService {
    db: DbPool,
    config: WorkflowConfig,
}

impl WorkflowService {
    pub fn new(db: DbPool, config: WorkflowConfig) -> Self {
        WorkflowService { db, config }
    }

    pub fn config(&self) -> &WorkflowConfig {
        &self.config
    }

    fn require_manager(viewer: &Viewer) -> AppResult<()> {
        match viewer.role {
            Role::Admin | Role::Manager => Ok(()),
            Role::Member => Err(AppError::forbidden(
                "only workspace admins and managers may manage workflows",
            )),
        }
    }

    async fn checked(
        &self,
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        name: &str,
        description: Option<&str>,
        definition: &Definition,
    ) -> AppResult<()> {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(AppError::bad_input("name", "a name of 1 to 200 characters"));
        }
        if description.is_some_and(|d| d.chars().count() > 5000) {
            return Err(AppError::bad_input(
                "description",
                "at most 5000 characters",
            ));
        }
        validate::check(conn, viewer.workspace_id.0, definition).await
    }

    pub async fn create(&self, viewer: &Viewer, input: WorkflowInput) -> AppResult<WorkflowRow> {
        Self::require_manager(viewer)?;
        let definition = Definition::parse(
            &input.entity,
            &input.trigger,
            input.conditions.as_ref(),
            &input.actions,
        )?;
        let mut conn = self.db.get().await?;
        self.checked(
            &mut conn,
            viewer,
            &input.name,
            input.description.as_deref(),
            &definition,
        )
        .await?;
        let viewer = viewer.clone();
        conn.transaction::<_, AppError, _>(async move |conn| {
            store::insert(
                conn,
                viewer.workspace_id.0,
                viewer.user_id.0,
                input.name.trim(),
                input.description.as_deref(),
                &definition,
                &crate::auth::tokens::random_token(32),
            )
            .await
        })
        .await
    }

    pub async fn update(
        &self,
        viewer: &Viewer,
        id: i64,
        patch: WorkflowPatch,
    ) -> AppResult<WorkflowRow> {
        Self::require_manager(viewer)?;
        let mut conn = self.db.get().await?;
        let viewer = viewer.clone();
        let this = self;
        conn.transaction::<_, AppError, _>(async move |conn| {
            let current = store::get(conn, viewer.workspace_id.0, id, true)
                .await?
                .ok_or(AppError::NotFound("workflow"))?;
            let changes_definition = patch.entity.is_some()
                || patch.trigger.is_some()
                || patch.conditions.is_some()
                || patch.actions.is_some();
            let definition = Definition::parse(
                patch.entity.as_deref().unwrap_or(&current.entity),
                patch.trigger.as_ref().unwrap_or(&current.trigger),
                match &patch.conditions {
                    Some(c) => c.as_ref(),
                    None => current.conditions.as_ref(),
                },
                patch.actions.as_ref().unwrap_or(&current.actions),
            )?;
            let name = patch.name.unwrap_or_else(|| current.name.clone());
            let description = match patch.description {
                Some(d) => d,
                None => current.description.clone(),
            };
            this.checked(conn, &viewer, &name, description.as_deref(), &definition)
                .await?;
            let new_definition =
                (changes_definition && definition != current.definition()?).then_some(&definition);
            store::update(
                conn,
                &current,
                name.trim(),
                description.as_deref(),
                new_definition,
                viewer.user_id.0,
            )
            .await
        })
        .await
    }

    pub async fn set_status(
        &self,
        viewer: &Viewer,
        id: i64,
        status: &str,
    ) -> AppResult<WorkflowRow> {
        Self::require_manager(viewer)?;
        let mut conn = self.db.get().await?;
        let current = store::get(&mut conn, viewer.workspace_id.0, id, false)
            .await?
            .ok_or(AppError::NotFound("workflow"))?;
        if status == "active" {
            // The workspace may have changed since the save (a user deactivated).
            validate::check(&mut conn, viewer.workspace_id.0, &current.definition()?).await?;
        }
        conn.transaction::<_, AppError, _>(async |conn| {
            if status == "active" && current.status != "active" {
                // Time-based triggers look at moments from now on, not at those that passed
                // while the workflow was off.
                store::start_time_cursor(conn, current.id, true).await?;
            }
            store::set_status(conn, current.id, status).await
        })
        .await
    }

    pub async fn delete(&self, viewer: &Viewer, id: i64) -> AppResult<()> {
        Self::require_manager(viewer)?;
        let mut conn = self.db.get().await?;
        let current = store::get(&mut conn, viewer.workspace_id.0, id, false)
            .await?
            .ok_or(AppError::NotFound("workflow"))?;
        store::delete(&mut conn, current.id).await
    }

    pub async fn workflow(&self, viewer: &Viewer, id: i64) -> AppResult<WorkflowRow> {
        Self::require_manager(viewer)?;
        let mut conn = self.db.get().await?;
        store::get(&mut conn, viewer.workspace_id.0, id, false)
            .await?
            .ok_or(AppError::NotFound("workflow"))
    }

    /// A page of workflows by ID.
    pub async fn workflows(
        &self,
        viewer: &Viewer,
        status: Option<&str>,
        after: Option<i64>,
        first: i64,
    ) -> AppResult<Page<WorkflowRow>> {
        Self::require_manager(viewer)?;
        let first = first.clamp(1, MAX_PAGE);
        let mut conn = self.db.get().await?;
        let rows = store::list(&mut conn, viewer.workspace_id.0, status, after, first + 1).await?;
        let total = store::count(&mut conn, viewer.workspace_id.0, status).await?;
        Ok(Page::from_overfetch(rows, first, after.is_some(), total))
    }

    /// The record a manual or dry run works on, as its context shows it.
    async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        workflow: &WorkflowRow,
        record_id: i64,
    ) -> AppResult<Value> {
        let entity = workflow.definition()?.entity;
        context::records(conn, viewer.workspace_id.0, entity, &[record_id])
            .await?
            .remove(&record_id)
            .filter(|r| r.get("deleted_at").is_none_or(Value::is_null))
            .ok_or_else(|| {
                AppError::bad_input("recordId", format!("no {} with this ID", entity.name()))
            })
    }

    /// Starts a run by hand (any trigger; the conditions are not checked: the person chose
    /// the record).
    pub async fn execute(&self, viewer: &Viewer, id: i64, record_id: i64) -> AppResult<RunRow> {
        let workflow = self.workflow(viewer, id).await?;
        let mut conn = self.db.get().await?;
        self.record(&mut conn, viewer, &workflow, record_id).await?;
        let viewer = viewer.clone();
        conn.transaction::<_, AppError, _>(async move |conn| {
            let run = NewRun {
                workspace_id: viewer.workspace_id.0,
                workflow_id: workflow.id,
                version: workflow.version,
                entity: workflow.entity.clone(),
                record_id,
                trigger: json!({ "type": "manual", "actor_id": viewer.user_id.0, "changes": {} }),
                depth: 0,
                started_by: Some(viewer.user_id.0),
                status: "running",
                error: None,
                slot: None,
            };
            let id = store::insert_runs(conn, &[run]).await?[0];
            enqueue_in(conn, &RunWorkflow::job(viewer.workspace_id.0, id)).await?;
            store::run(conn, None, id, false)
                .await?
                .ok_or(AppError::NotFound("workflow run"))
        })
        .await
    }

    /// What a run on this record would do now, without doing any of it.
    pub async fn dry_run(&self, viewer: &Viewer, id: i64, record_id: i64) -> AppResult<DryRun> {
        let workflow = self.workflow(viewer, id).await?;
        let definition = workflow.definition()?;
        let mut conn = self.db.get().await?;
        let record = self.record(&mut conn, viewer, &workflow, record_id).await?;
        let actor = context::users(&mut conn, viewer.workspace_id.0, &[viewer.user_id.0])
            .await?
            .remove(&viewer.user_id.0);
        let trigger = json!({ "type": "manual", "actor_id": viewer.user_id.0, "changes": {} });
        let changes = json!({});
        let facts = Facts {
            record: &record,
            changes: &changes,
        };
        let mut rules = Vec::new();
        let conditions_passed = definition
            .conditions
            .as_ref()
            .is_none_or(|c| evaluate(c, &facts, "conditions", &mut rules));
        let ctx = context::context(
            record.clone(),
            &trigger,
            actor,
            json!({ "id": workflow.id, "name": workflow.name, "version": workflow.version }),
        );
        let program = compile(&definition.actions);
        let mut steps = Vec::new();
        let mut pc = 0;
        while let Some(instruction) = program.get(pc) {
            match instruction {
                Instruction::Jump { to } => pc = *to,
                Instruction::Test {
                    path,
                    conditions,
                    otherwise,
                } => {
                    let mut trace = Vec::new();
                    let passed = evaluate(
                        conditions,
                        &facts,
                        &format!("{path}.conditions"),
                        &mut trace,
                    );
                    steps.push(PlannedStep {
                        path: path.clone(),
                        action: "branch".into(),
                        params: Some(json!({ "passed": passed, "rules": trace })),
                        error: None,
                    });
                    pc = if passed { pc + 1 } else { *otherwise };
                }
                Instruction::Do { path, action } => {
                    let (params, error) = planned(action, &ctx);
                    steps.push(PlannedStep {
                        path: path.clone(),
                        action: action.kind().into(),
                        params,
                        error,
                    });
                    pc += 1;
                }
            }
        }
        Ok(DryRun {
            conditions_passed,
            rules,
            steps,
        })
    }

    pub async fn run(&self, viewer: &Viewer, id: i64) -> AppResult<RunRow> {
        Self::require_manager(viewer)?;
        let mut conn = self.db.get().await?;
        store::run(&mut conn, Some(viewer.workspace_id.0), id, false)
            .await?
            .ok_or(AppError::NotFound("workflow run"))
    }

    /// A page of a workflow's runs, newest first (`after`: a run ID; older ones follow).
    pub async fn runs(
        &self,
        viewer: &Viewer,
        workflow_id: i64,
        status: Option<&str>,
        after: Option<i64>,
        first: i64,
    ) -> AppResult<Page<RunRow>> {
        let workflow = self.workflow(viewer, workflow_id).await?;
        let first = first.clamp(1, MAX_PAGE);
        let mut conn = self.db.get().await?;
        let rows = store::runs(
            &mut conn,
            viewer.workspace_id.0,
            workflow.id,
            status,
            after,
            first + 1,
        )
        .await?;
        let total = store::count_runs(&mut conn, workflow.id, status).await?;
        Ok(Page::from_overfetch(rows, first, after.is_some(), total))
    }

    pub async fn steps(&self, run: &RunRow) -> AppResult<Vec<StepRow>> {
        let mut conn = self.db.get().await?;
        store::steps(&mut conn, run.id).await
    }

    /// Cancels a running or waiting run: it stops before its next step.
    pub async fn cancel(&self, viewer: &Viewer, id: i64) -> AppResult<RunRow> {
        Self::require_manager(viewer)?;
        let mut conn = self.db.get().await?;
        let viewer = viewer.clone();
        conn.transaction::<_, AppError, _>(async move |conn| {
            let run = store::run(conn, Some(viewer.workspace_id.0), id, true)
                .await?
                .ok_or(AppError::NotFound("workflow run"))?;
            if run.is_finished() {
                return Err(AppError::Conflict {
                    message: format!("this run is already {}", run.status),
                    field: None,
                });
            }
            store::advance(
                conn,
                run.id,
                run.pc,
                "cancelled",
                None,
                Some("cancelled by a user"),
            )
            .await?;
            store::run(conn, None, id, false)
                .await?
                .ok_or(AppError::NotFound("workflow run"))
        })
        .await
    }
}

/// A page from `first + 1` rows.
/// An action's params as a run would render them now (each one that can be), and the
/// first reason one could not.
fn planned(action: &Action, ctx: &Value) -> (Option<Value>, Option<String>) {
    let Some(Value::Object(params)) = serde_json::to_value(action).ok() else {
        return (None, None);
    };
    if let Action::Wait { .. } = action {
        return (Some(Value::Object(params)), None);
    }
    let mut error = None;
    let rendered = params
        .into_iter()
        .map(|(key, value)| match render_json(&value, ctx) {
            Ok(done) => (key, done),
            Err(why) => {
                error.get_or_insert(why);
                (key, value)
            }
        })
        .collect();
    (Some(Value::Object(rendered)), error)
}
