//! Running a workflow run: a job (`workflow.run`) executes its instructions one after
//! another from the run's stored position, recording each step before its side effect and
//! moving the position on when it is done. A crash resumes at the step that was running; a
//! `wait` stores its wake-up time, enqueues the next job for then and ends this one (no
//! thread sleeps); a failing webhook or mail server fails the job, which the queue retries
//! with backoff, and the run fails with the step's error after the last attempt.

use std::sync::Arc;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::actions::{self, Done, Step, StepError};
use super::conditions::{evaluate, Facts};
use super::context;
use super::definition::Action;
use super::program::{compile, Instruction};
use super::store::{self, RunRow};
use super::template::render_json;
use super::webhook;
use crate::app::App;
use crate::auth::viewer::acting_for;
use crate::auth::{UserId, Viewer};
use crate::error::{AppError, AppResult};
use crate::jobs::queue::enqueue_in;
use crate::jobs::{new_job, Job, JobContext, NewJob};

/// Runs (or resumes) one workflow run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunWorkflow {
    pub run_id: i64,
}

impl RunWorkflow {
    pub fn job(workspace_id: i64, run_id: i64) -> NewJob {
        let mut job = new_job(&RunWorkflow { run_id });
        job.workspace_id = Some(workspace_id);
        job
    }
}

impl Job for RunWorkflow {
    const KIND: &'static str = "workflow.run";
    const MAX_ATTEMPTS: i32 = 4;

    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        let last_attempt = ctx.attempt >= Self::MAX_ATTEMPTS;
        execute(&ctx.app, self.run_id, ctx.attempt, last_attempt)
            .await
            .map_err(|e| match e {
                AppError::Internal(_) => {
                    e.log_if_internal();
                    "an internal error".to_string()
                }
                AppError::Unavailable(_) => {
                    e.log_if_internal();
                    e.to_string()
                }
                other => other.to_string(),
            })?
    }
}

/// Executes a run from where it stands. `Ok(Err)` is a retryable step failure (the job
/// tries again); every other end is recorded on the run.
pub async fn execute(
    app: &Arc<App>,
    run_id: i64,
    attempt: i32,
    last_attempt: bool,
) -> AppResult<Result<Value, String>> {
    let mut conn = app.db.get().await?;
    let Some(run) = store::run(&mut conn, None, run_id, false).await? else {
        return Ok(Ok(json!({ "missing": true })));
    };
    if run.is_finished() {
        return Ok(Ok(json!({ "status": run.status })));
    }
    if run.status == "waiting" && run.wake_at.is_some_and(|at| at > chrono::Utc::now()) {
        return Ok(Ok(json!({ "status": "waiting" })));
    }
    let workflow = store::any(&mut conn, run.workflow_id).await?;
    let definition = store::version(&mut conn, run.workflow_id, run.version).await?;
    let entity = definition.entity;
    let program = compile(&definition.actions);
    let viewer = match acting_for(&mut conn, UserId(workflow.created_by)).await {
        Ok(viewer) => Viewer {
            workflow_run: Some(run.id),
            ..viewer
        },
        Err(_) => {
            let message = "the workflow's creator is no longer an active user";
            store::advance(&mut conn, run.id, run.pc, "failed", None, Some(message)).await?;
            return Ok(Ok(json!({ "status": "failed", "error": message })));
        }
    };
    let actor = match run.trigger.get("actor_id").and_then(Value::as_i64) {
        Some(id) => context::users(&mut conn, run.workspace_id, &[id])
            .await?
            .remove(&id),
        None => None,
    };
    let about = json!({ "id": workflow.id, "name": workflow.name, "version": run.version });
    let mut pc = run.pc as usize;
    let mut first = true;
    loop {
        // A cancel between steps stops the run before its next step.
        if !std::mem::take(&mut first) {
            let now = store::run(&mut conn, None, run.id, false).await?;
            if now.as_ref().is_none_or(RunRow::is_finished) {
                return Ok(Ok(json!({ "status": "cancelled" })));
            }
        }
        let Some(instruction) = program.get(pc) else {
            store::advance(&mut conn, run.id, pc as i32, "completed", None, None).await?;
            return Ok(Ok(json!({ "status": "completed" })));
        };
        let record = context::records(&mut conn, run.workspace_id, entity, &[run.record_id])
            .await?
            .remove(&run.record_id)
            .unwrap_or(Value::Null);
        match instruction {
            Instruction::Jump { to } => {
                pc = *to;
                store::advance(&mut conn, run.id, pc as i32, "running", None, None).await?;
            }
            Instruction::Test {
                path,
                conditions,
                otherwise,
            } => {
                let mut trace = Vec::new();
                let changes = run.trigger.get("changes").cloned().unwrap_or(json!({}));
                let facts = Facts {
                    record: &record,
                    changes: &changes,
                };
                let passed = evaluate(
                    conditions,
                    &facts,
                    &format!("{path}.conditions"),
                    &mut trace,
                );
                let next = if passed { pc + 1 } else { *otherwise };
                let result = json!({ "passed": passed, "rules": trace });
                let (run_id, at) = (run.id, pc as i32);
                let path = path.clone();
                conn.transaction::<_, AppError, _>(async move |conn| {
                    store::start_step(conn, run_id, at, &path, "branch", None, attempt).await?;
                    store::finish_step(conn, run_id, at, "completed", Some(&result), None).await?;
                    store::advance(conn, run_id, next as i32, "running", None, None).await
                })
                .await?;
                pc = next;
            }
            Instruction::Do { path, action } => {
                let at = StepAt {
                    run: &run,
                    pc,
                    path,
                    kind: action.kind(),
                    attempt,
                };
                let ctx =
                    context::context(record.clone(), &run.trigger, actor.clone(), about.clone());
                let rendered = match render(action, &ctx) {
                    Ok(rendered) => rendered,
                    Err(message) => {
                        let params = serde_json::to_value(action).ok();
                        return Ok(Ok(fail(&mut conn, &at, params.as_ref(), &message).await?));
                    }
                };
                let params = serde_json::to_value(&rendered).ok();
                store::start_step(
                    &mut conn,
                    run.id,
                    pc as i32,
                    path,
                    action.kind(),
                    params.as_ref(),
                    attempt,
                )
                .await?;
                let step = Step {
                    viewer: &viewer,
                    run: &run,
                    entity,
                    record: &record,
                    pc: pc as i32,
                    path,
                    last: pc + 1 == program.len(),
                    gateways: app.notifications.gateways(),
                };
                let outcome =
                    perform(app, &mut conn, &step, &rendered, &workflow.webhook_secret).await;
                match outcome {
                    // Recorded inside `perform`, with the run's completion after the last.
                    Ok(Done::Next(_)) if step.last => {
                        return Ok(Ok(json!({ "status": "completed" })));
                    }
                    Ok(Done::Next(_)) => pc += 1,
                    Ok(Done::Wait(until)) => {
                        let (run_id, at, workspace) = (run.id, pc as i32, run.workspace_id);
                        conn.transaction::<_, AppError, _>(async move |conn| {
                            let result = json!({ "until": until });
                            store::finish_step(conn, run_id, at, "completed", Some(&result), None)
                                .await?;
                            store::advance(conn, run_id, at + 1, "waiting", Some(until), None)
                                .await?;
                            let mut job = RunWorkflow::job(workspace, run_id);
                            job.run_at = Some(until);
                            enqueue_in(conn, &job).await?;
                            Ok(())
                        })
                        .await?;
                        return Ok(Ok(json!({ "status": "waiting", "until": until })));
                    }
                    Err(StepError::Retry(message)) if !last_attempt => {
                        store::finish_step(
                            &mut conn,
                            run.id,
                            pc as i32,
                            "failed",
                            None,
                            Some(&message),
                        )
                        .await?;
                        return Ok(Err(message));
                    }
                    Err(StepError::Retry(message) | StepError::Fail(message)) => {
                        return Ok(Ok(fail(&mut conn, &at, params.as_ref(), &message).await?));
                    }
                }
            }
        }
    }
}

/// The action with every template in its params rendered.
fn render(action: &Action, ctx: &Value) -> Result<Action, String> {
    if let Action::Wait { .. } | Action::Branch { .. } = action {
        return Ok(action.clone());
    }
    let params = serde_json::to_value(action).map_err(|e| e.to_string())?;
    let rendered = render_json(&params, ctx)?;
    serde_json::from_value(rendered).map_err(|e| e.to_string())
}

/// Where a step is: its run, position, path, action and attempt.
struct StepAt<'a> {
    run: &'a RunRow,
    pc: usize,
    path: &'a str,
    kind: &'a str,
    attempt: i32,
}

/// Records a failed step and fails the run; returns the job's result.
async fn fail(
    conn: &mut AsyncPgConnection,
    at: &StepAt<'_>,
    params: Option<&Value>,
    message: &str,
) -> AppResult<Value> {
    let error = format!("{}: {message}", at.path);
    let (run_id, pc, attempt) = (at.run.id, at.pc as i32, at.attempt);
    let (path, kind) = (at.path.to_string(), at.kind.to_string());
    let (params, failure) = (params.cloned(), message.to_string());
    conn.transaction::<_, AppError, _>(async move |conn| {
        store::start_step(conn, run_id, pc, &path, &kind, params.as_ref(), attempt).await?;
        store::finish_step(conn, run_id, pc, "failed", None, Some(&failure)).await?;
        store::advance(conn, run_id, pc, "failed", None, Some(&error)).await
    })
    .await?;
    Ok(json!({ "status": "failed", "error": message }))
}

/// Does one action. Database actions commit together with their step's completion; mail
/// and webhooks record completion after they went out.
async fn perform(
    app: &Arc<App>,
    conn: &mut AsyncPgConnection,
    step: &Step<'_>,
    action: &Action,
    secret: &str,
) -> Result<Done, StepError> {
    let (run_id, pc) = (step.run.id, step.pc);
    let external = match action {
        Action::Wait { duration, until } => {
            return actions::wake_time(duration.as_deref(), until.as_deref(), step.record)
                .map(Done::Wait);
        }
        Action::SendEmail {
            to,
            cc,
            subject,
            body,
        } => {
            let mailer = app.mail.get().map_err(StepError::Fail)?;
            mailer
                .send(crate::mail::Email {
                    to,
                    cc: cc.as_deref(),
                    subject,
                    body,
                    message_id: Some(format!("<run-{run_id}-step-{pc}@mycrm>")),
                })
                .await
                .map_err(|e| {
                    if e.permanent {
                        StepError::Fail(e.message)
                    } else {
                        StepError::Retry(e.message)
                    }
                })?;
            Some(json!({ "to": to, "subject": subject }))
        }
        Action::CallWebhook {
            url,
            method,
            headers,
            body,
        } => {
            let body = match body {
                Some(Value::String(text)) => text.clone(),
                Some(value) => value.to_string(),
                None => json!({ "record": step.record, "trigger": step.run.trigger }).to_string(),
            };
            let config = &app.config.workflows;
            let response = webhook::call(
                webhook::Request {
                    method,
                    url,
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    body,
                    secret,
                    delivery_id: format!("run-{run_id}-step-{pc}"),
                },
                config.webhook_timeout,
                config.allow_private_webhooks,
            )
            .await
            .map_err(StepError::Retry)?;
            Some(json!({ "status": response.status, "body": response.body }))
        }
        _ => None,
    };
    if let Some(result) = external {
        store::finish_step(conn, run_id, pc, "completed", Some(&result), None).await?;
        store::advance(conn, run_id, pc + 1, step.status_after(), None, None).await?;
        return Ok(Done::Next(result));
    }
    // In one transaction: the record change, its events, the step's end and the position.
    let result = conn
        .transaction::<_, StepError, _>(async |conn| {
            let result = actions::write(conn, step, action).await?;
            store::finish_step(conn, run_id, pc, "completed", Some(&result), None).await?;
            store::advance(conn, run_id, pc + 1, step.status_after(), None, None).await?;
            Ok(result)
        })
        .await?;
    Ok(Done::Next(result))
}
