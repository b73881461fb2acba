//! Workflow automation over GraphQL: workflows (definitions are JSON, checked on save with
//! the path of every problem), their runs and steps, manual and dry runs, cancelling, and
//! the `workflowRunUpdated(id)` subscription. Admins and managers only.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, InputObject, Json, MaybeUndefined, Object, SimpleObject, Subscription, ID,
};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde_json::Value;

use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::ids::{decode_after, parse_id};
use super::leads::load_user;
use super::users::User;
use super::watch::{watch, Watched};
use crate::app::App;
use crate::auth::{UserId, Viewer};
use crate::workflows::definition::Entity;
use crate::workflows::service::{DryRun, WorkflowInput, WorkflowPatch};
use crate::workflows::store::{RunRow, StepRow, WorkflowRow};

/// The kind of record a workflow watches.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::workflows::definition::Entity")]
pub enum WorkflowEntity {
    /// Leads.
    Lead,
    /// Contacts.
    Contact,
    /// Companies.
    Company,
    /// Opportunities.
    Opportunity,
    /// Tasks.
    Task,
}

fn entity_of(stored: &str) -> WorkflowEntity {
    Entity::parse(stored).unwrap_or(Entity::Lead).into()
}

/// Whether a workflow reacts to changes.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WorkflowStatus {
    /// Being written: starts no runs (manual and dry runs work).
    Draft,
    /// Starts runs when its trigger fires.
    Active,
    /// Switched off.
    Inactive,
}

impl WorkflowStatus {
    fn stored(self) -> &'static str {
        match self {
            WorkflowStatus::Draft => "draft",
            WorkflowStatus::Active => "active",
            WorkflowStatus::Inactive => "inactive",
        }
    }

    fn of(stored: &str) -> Self {
        match stored {
            "active" => WorkflowStatus::Active,
            "inactive" => WorkflowStatus::Inactive,
            _ => WorkflowStatus::Draft,
        }
    }
}

/// Where a run stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WorkflowRunStatus {
    /// Executing its steps.
    Running,
    /// Sleeping in a `wait` step until `wakeAt`.
    Waiting,
    /// Every step done.
    Completed,
    /// A step failed (see `error` and the step).
    Failed,
    /// Cancelled by a user, or stopped by the loop guard or the rate cap before it started.
    Cancelled,
}

impl WorkflowRunStatus {
    fn stored(self) -> &'static str {
        match self {
            WorkflowRunStatus::Running => "running",
            WorkflowRunStatus::Waiting => "waiting",
            WorkflowRunStatus::Completed => "completed",
            WorkflowRunStatus::Failed => "failed",
            WorkflowRunStatus::Cancelled => "cancelled",
        }
    }

    fn of(stored: &str) -> Self {
        match stored {
            "waiting" => WorkflowRunStatus::Waiting,
            "completed" => WorkflowRunStatus::Completed,
            "failed" => WorkflowRunStatus::Failed,
            "cancelled" => WorkflowRunStatus::Cancelled,
            _ => WorkflowRunStatus::Running,
        }
    }
}

/// An automation: when its trigger fires on a record of its kind and its conditions hold,
/// its actions run in order.
pub struct Workflow(WorkflowRow);

/// An automation: when its trigger fires on a record of its kind and its conditions hold,
/// its actions run in order.
#[Object]
impl Workflow {
    /// The workflow's ID.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Draft, active or inactive.
    async fn status(&self) -> WorkflowStatus {
        WorkflowStatus::of(&self.0.status)
    }
    /// The kind of record it watches.
    async fn entity(&self) -> WorkflowEntity {
        entity_of(&self.0.entity)
    }
    /// The definition's version: each change of entity, trigger, conditions or actions adds
    /// one; runs keep the version they started with.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// When it runs: `{"type": "record_created" | "record_updated" (fields?) |
    /// "field_changed" (field, from?, to?) | "record_deleted" | "score_changed" (above?,
    /// below?) | "manual"}`.
    async fn trigger(&self) -> Json<Value> {
        Json(self.0.trigger.clone())
    }
    /// Which records: `{"all": [...]}`, `{"any": [...]}` or `{"field", "operator",
    /// "value"}`, nestable.
    async fn conditions(&self) -> Option<Json<Value>> {
        self.0.conditions.clone().map(Json)
    }
    /// What it does, in order: a list of `{"type": "send_email" | "create_task" |
    /// "update_field" | "assign_record" | "send_notification" | "create_record" |
    /// "call_webhook" | "wait" | "branch", ...params}`.
    async fn actions(&self) -> Json<Value> {
        Json(self.0.actions.clone())
    }
    /// The key its webhook calls are signed with (`X-MyCRM-Signature: sha256=<HMAC-SHA256
    /// of "<X-MyCRM-Timestamp>.<body>">`).
    async fn webhook_secret(&self) -> &str {
        &self.0.webhook_secret
    }
    /// Who created it; its actions act as this user.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, Some(UserId(self.0.created_by))).await
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Its runs, newest first.
    async fn runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only runs in this state.")] status: Option<WorkflowRunStatus>,
        #[graphql(desc = "Page size (1-200, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (older runs).")] after: Option<String>,
    ) -> async_graphql::Result<WorkflowRunConnection> {
        runs_page(ctx, self.0.id, status, first, after).await
    }
}

async fn runs_page(
    ctx: &Context<'_>,
    workflow: i64,
    status: Option<WorkflowRunStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<WorkflowRunConnection> {
    let viewer = viewer(ctx)?;
    let after = decode_after(after.as_deref()).gql()?;
    let page = app(ctx)
        .workflows
        .runs(
            viewer,
            workflow,
            status.map(WorkflowRunStatus::stored),
            after,
            i64::from(first.unwrap_or(20)),
        )
        .await
        .gql()?;
    Ok(WorkflowRunConnection::from_page(
        page,
        |r| r.id,
        WorkflowRun,
    ))
}

/// One run of a workflow on one record.
pub struct WorkflowRun(RunRow);

/// One run of a workflow on one record.
#[Object]
impl WorkflowRun {
    /// The run's ID.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The workflow it belongs to.
    async fn workflow_id(&self) -> ID {
        ID(self.0.workflow_id.to_string())
    }
    /// The workflow's version it runs.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// Where it stands.
    async fn status(&self) -> WorkflowRunStatus {
        WorkflowRunStatus::of(&self.0.status)
    }
    /// The kind of record.
    async fn entity(&self) -> WorkflowEntity {
        entity_of(&self.0.entity)
    }
    /// The record it runs on.
    async fn record_id(&self) -> ID {
        ID(self.0.record_id.to_string())
    }
    /// What started it: `{type, event_id, action, changes, actor_id, occurred_at}`.
    async fn trigger(&self) -> Json<Value> {
        Json(self.0.trigger.clone())
    }
    /// How many workflow runs led to this one through their changes (0: a person's change).
    async fn depth(&self) -> i32 {
        self.0.depth
    }
    /// Why it failed or was cancelled.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// When a waiting run goes on.
    async fn wake_at(&self) -> Option<DateTime<Utc>> {
        self.0.wake_at
    }
    /// Who started it by hand (manual runs).
    async fn started_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.started_by.map(UserId)).await
    }
    /// When it started.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last moved.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When it ended.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// The steps it took, in order.
    async fn steps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WorkflowRunStep>> {
        let steps = app(ctx).workflows.steps(&self.0).await.gql()?;
        Ok(steps.into_iter().map(WorkflowRunStep).collect())
    }
}

crate::graphql::connection::connection_types!(WorkflowRunConnection, WorkflowRunEdge, WorkflowRun);
crate::graphql::connection::connection_types!(WorkflowConnection, WorkflowEdge, Workflow);

/// One executed step of a run.
pub struct WorkflowRunStep(StepRow);

/// One executed step of a run.
#[Object]
impl WorkflowRunStep {
    /// Where the action sits in the definition: `actions[1].then[0]`.
    async fn path(&self) -> &str {
        &self.0.path
    }
    /// The action (`branch` for a branch's test).
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Its params with every template rendered.
    async fn params(&self) -> Option<Json<Value>> {
        self.0.params.clone().map(Json)
    }
    /// running, completed or failed.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// Which attempt (a failing webhook or mail server is retried with backoff).
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }
    /// What it did (the task created, the webhook's answer, the branch taken...).
    async fn result(&self) -> Option<Json<Value>> {
        self.0.result.clone().map(Json)
    }
    /// Why it failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// When it (last) started.
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// When it ended.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

/// What a run on a record would do now (nothing was done).
#[derive(SimpleObject)]
pub struct WorkflowDryRun {
    /// Whether the workflow's conditions hold for the record.
    pub conditions_passed: bool,
    /// Each condition rule with the value it saw.
    pub rules: Vec<WorkflowRuleResult>,
    /// The steps a run would take, with their rendered params.
    pub steps: Vec<WorkflowPlannedStep>,
}

/// One condition rule in a dry run.
#[derive(SimpleObject)]
pub struct WorkflowRuleResult {
    /// Where it sits: `conditions.all[0]`.
    pub path: String,
    /// The field it reads.
    pub field: String,
    /// The operator.
    pub operator: String,
    /// The value it compares with.
    pub value: Option<Json<Value>>,
    /// The record's value.
    pub actual: Json<Value>,
    /// Whether it held.
    pub passed: bool,
}

/// One step a run would take.
#[derive(SimpleObject)]
pub struct WorkflowPlannedStep {
    /// Where the action sits in the definition.
    pub path: String,
    /// The action (`branch`: its params say which way it went).
    pub action: String,
    /// Its params as they would be rendered now.
    pub params: Option<Json<Value>>,
    /// Why the step would fail (a missing template variable).
    pub error: Option<String>,
}

impl From<DryRun> for WorkflowDryRun {
    fn from(d: DryRun) -> Self {
        WorkflowDryRun {
            conditions_passed: d.conditions_passed,
            rules: d
                .rules
                .into_iter()
                .map(|r| WorkflowRuleResult {
                    path: r.path,
                    field: r.field,
                    operator: serde_json::to_value(r.operator)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    value: r.value.map(Json),
                    actual: Json(r.actual),
                    passed: r.passed,
                })
                .collect(),
            steps: d
                .steps
                .into_iter()
                .map(|s| WorkflowPlannedStep {
                    path: s.path,
                    action: s.action,
                    params: s.params.map(Json),
                    error: s.error,
                })
                .collect(),
        }
    }
}

/// A new workflow (created as a draft).
#[derive(InputObject)]
pub struct CreateWorkflowInput {
    /// 1-200 characters.
    pub name: String,
    /// What it is for (at most 5000 characters).
    pub description: Option<String>,
    /// The kind of record it watches.
    pub entity: WorkflowEntity,
    /// When it runs (see `Workflow.trigger`).
    pub trigger: Json<Value>,
    /// Which records (see `Workflow.conditions`); none: every record.
    pub conditions: Option<Json<Value>>,
    /// What it does (see `Workflow.actions`).
    pub actions: Json<Value>,
}

/// Changes to a workflow; omitted fields stay. A changed definition becomes a new version.
#[derive(InputObject)]
pub struct UpdateWorkflowInput {
    /// 1-200 characters.
    pub name: Option<String>,
    /// What it is for; null clears it.
    pub description: MaybeUndefined<String>,
    /// The kind of record it watches.
    pub entity: Option<WorkflowEntity>,
    /// When it runs.
    pub trigger: Option<Json<Value>>,
    /// Which records; null removes the conditions.
    pub conditions: MaybeUndefined<Json<Value>>,
    /// What it does.
    pub actions: Option<Json<Value>>,
}

fn maybe<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

#[derive(Default)]
pub struct WorkflowQuery;

#[Object]
impl WorkflowQuery {
    /// The workspace's workflows by ID (admins and managers).
    async fn workflows(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only workflows in this state.")] status: Option<WorkflowStatus>,
        #[graphql(desc = "Page size (1-200, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
    ) -> async_graphql::Result<WorkflowConnection> {
        let viewer = viewer(ctx)?;
        let after = decode_after(after.as_deref()).gql()?;
        let page = app(ctx)
            .workflows
            .workflows(
                viewer,
                status.map(WorkflowStatus::stored),
                after,
                i64::from(first.unwrap_or(20)),
            )
            .await
            .gql()?;
        Ok(WorkflowConnection::from_page(page, |w| w.id, Workflow))
    }

    /// One workflow.
    async fn workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] id: ID,
    ) -> async_graphql::Result<Workflow> {
        let id = parse_id("id", &id).gql()?;
        Ok(Workflow(
            app(ctx).workflows.workflow(viewer(ctx)?, id).await.gql()?,
        ))
    }

    /// A workflow's runs, newest first.
    async fn workflow_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] workflow_id: ID,
        #[graphql(desc = "Only runs in this state.")] status: Option<WorkflowRunStatus>,
        #[graphql(desc = "Page size (1-200, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (older runs).")] after: Option<String>,
    ) -> async_graphql::Result<WorkflowRunConnection> {
        let workflow = parse_id("workflowId", &workflow_id).gql()?;
        runs_page(ctx, workflow, status, first, after).await
    }

    /// One run with its steps.
    async fn workflow_run(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The run's ID.")] id: ID,
    ) -> async_graphql::Result<WorkflowRun> {
        let id = parse_id("id", &id).gql()?;
        Ok(WorkflowRun(
            app(ctx).workflows.run(viewer(ctx)?, id).await.gql()?,
        ))
    }
}

#[derive(Default)]
pub struct WorkflowMutation;

#[Object]
impl WorkflowMutation {
    /// Creates a draft workflow. BAD_USER_INPUT names the path of the first problem
    /// (`actions[1].then[0].to`): an unknown trigger, field, operator, action or template
    /// variable, a user who is not an active member of the workspace.
    async fn create_workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow.")] input: CreateWorkflowInput,
    ) -> async_graphql::Result<Workflow> {
        let input = WorkflowInput {
            name: input.name,
            description: input.description,
            entity: Entity::from(input.entity).name().to_string(),
            trigger: input.trigger.0,
            conditions: input.conditions.map(|c| c.0),
            actions: input.actions.0,
        };
        Ok(Workflow(
            app(ctx).workflows.create(viewer(ctx)?, input).await.gql()?,
        ))
    }

    /// Changes a workflow; a changed definition becomes a new version (running runs keep
    /// theirs). Checked like `createWorkflow`.
    async fn update_workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] id: ID,
        #[graphql(desc = "The changes.")] input: UpdateWorkflowInput,
    ) -> async_graphql::Result<Workflow> {
        let id = parse_id("id", &id).gql()?;
        let patch = WorkflowPatch {
            name: input.name,
            description: maybe(input.description),
            entity: input.entity.map(|e| Entity::from(e).name().to_string()),
            trigger: input.trigger.map(|t| t.0),
            conditions: maybe(input.conditions).map(|c| c.map(|c| c.0)),
            actions: input.actions.map(|a| a.0),
        };
        Ok(Workflow(
            app(ctx)
                .workflows
                .update(viewer(ctx)?, id, patch)
                .await
                .gql()?,
        ))
    }

    /// Deletes a workflow: it starts no more runs; its runs and history stay.
    async fn delete_workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] id: ID,
    ) -> async_graphql::Result<bool> {
        let id = parse_id("id", &id).gql()?;
        app(ctx).workflows.delete(viewer(ctx)?, id).await.gql()?;
        Ok(true)
    }

    /// Turns a workflow on: its trigger starts runs from now on.
    async fn activate_workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] id: ID,
    ) -> async_graphql::Result<Workflow> {
        set_status(ctx, id, WorkflowStatus::Active).await
    }

    /// Turns a workflow off (runs under way go on).
    async fn deactivate_workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] id: ID,
    ) -> async_graphql::Result<Workflow> {
        set_status(ctx, id, WorkflowStatus::Inactive).await
    }

    /// Runs a workflow on a record now, whatever its trigger and conditions; returns the
    /// run (follow it with `workflowRun` or `workflowRunUpdated`).
    async fn execute_workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] id: ID,
        #[graphql(desc = "The record to run on.")] record_id: ID,
    ) -> async_graphql::Result<WorkflowRun> {
        let id = parse_id("id", &id).gql()?;
        let record = parse_id("recordId", &record_id).gql()?;
        let run = app(ctx)
            .workflows
            .execute(viewer(ctx)?, id, record)
            .await
            .gql()?;
        Ok(WorkflowRun(run))
    }

    /// A dry run: which conditions hold for the record and what each step would do with its
    /// rendered params. Changes nothing, sends nothing.
    async fn test_workflow(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workflow's ID.")] id: ID,
        #[graphql(desc = "The record to try it on.")] record_id: ID,
    ) -> async_graphql::Result<WorkflowDryRun> {
        let id = parse_id("id", &id).gql()?;
        let record = parse_id("recordId", &record_id).gql()?;
        let dry = app(ctx)
            .workflows
            .dry_run(viewer(ctx)?, id, record)
            .await
            .gql()?;
        Ok(dry.into())
    }

    /// Cancels a running or waiting run before its next step. CONFLICT when it has ended.
    async fn cancel_workflow_run(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The run's ID.")] id: ID,
    ) -> async_graphql::Result<WorkflowRun> {
        let id = parse_id("id", &id).gql()?;
        Ok(WorkflowRun(
            app(ctx).workflows.cancel(viewer(ctx)?, id).await.gql()?,
        ))
    }
}

async fn set_status(
    ctx: &Context<'_>,
    id: ID,
    status: WorkflowStatus,
) -> async_graphql::Result<Workflow> {
    let id = parse_id("id", &id).gql()?;
    let row = app(ctx)
        .workflows
        .set_status(viewer(ctx)?, id, status.stored())
        .await
        .gql()?;
    Ok(Workflow(row))
}

#[derive(Default)]
pub struct WorkflowSubscription;

#[Subscription]
impl WorkflowSubscription {
    /// The run now, then again whenever its state or position changes; ends when it ends.
    async fn workflow_run_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The run's ID.")] id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<WorkflowRun>>> {
        let viewer = viewer(ctx)?.clone();
        let id = parse_id("id", &id).gql()?;
        let app = app(ctx).clone();
        let first = app.workflows.run(&viewer, id).await.gql()?;
        let fetch = move |app: Arc<App>, viewer: Viewer| async move {
            app.workflows.run(&viewer, id).await
        };
        Ok(watch(app, viewer, first, fetch, WorkflowRun))
    }
}

impl Watched for RunRow {
    type Fingerprint = (String, i32, DateTime<Utc>);

    fn fingerprint(&self) -> Self::Fingerprint {
        (self.status.clone(), self.pc, self.updated_at)
    }

    fn is_final(&self) -> bool {
        self.is_finished()
    }
}
