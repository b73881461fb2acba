//! What each action does. Actions that write records go through the CRM's own create and
//! update paths (the same validation, permissions and change events as a person's edit),
//! acting as the workflow's creator and marked with the run, in the transaction that also
//! records the step as done: a crash never applies them twice. Mail and webhooks leave the
//! database, so they are at least once: a crash after sending and before recording sends
//! again, with the same Message-ID or delivery ID for the receiver to drop.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};

use super::definition::{parse_duration, Action, Entity};
use super::store;
use crate::auth::Viewer;
use crate::crm::companies::Company;
use crate::crm::contacts::Contact;
use crate::crm::edit::{create_in, update_in};
use crate::crm::leads::Lead;
use crate::crm::opportunities::Opportunity;
use crate::crm::tasks::Task;
use crate::imports::columns::Resource;
use crate::imports::records::{Cells, Importable};
use crate::imports::values;

/// How a step ended.
pub enum Done {
    /// Go on, with this result in the step log.
    Next(Value),
    /// Sleep until then, then go on.
    Wait(DateTime<Utc>),
}

/// Why a step failed: `Retry` may work later (a network problem), `Fail` will not.
#[derive(Debug)]
pub enum StepError {
    Retry(String),
    Fail(String),
}

impl From<crate::error::AppError> for StepError {
    fn from(err: crate::error::AppError) -> Self {
        use crate::error::AppError;
        match err {
            AppError::Internal(_) => {
                err.log_if_internal();
                StepError::Retry("an internal error; retrying".into())
            }
            AppError::Unavailable(_) | AppError::Timeout(_) => {
                err.log_if_internal();
                StepError::Retry(format!("{err}; retrying"))
            }
            other => StepError::Fail(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for StepError {
    fn from(err: diesel::result::Error) -> Self {
        crate::error::AppError::from(err).into()
    }
}

/// What a step works with.
pub struct Step<'a> {
    pub viewer: &'a Viewer,
    pub run: &'a store::RunRow,
    pub entity: Entity,
    /// The record as the context shows it (its current state).
    pub record: &'a Value,
    pub pc: i32,
    pub path: &'a str,
    /// Whether it is the run's last instruction: its completion completes the run.
    pub last: bool,
    /// The notification channels send_notification can reach.
    pub gateways: crate::notifications::preferences::Gateways,
}

impl Step<'_> {
    /// The run's state once this step is done.
    pub fn status_after(&self) -> &'static str {
        if self.last {
            "completed"
        } else {
            "running"
        }
    }
}

/// Runs a rendered action whose effects stay in the database, on `conn` (the caller's
/// transaction). Mail, webhooks and waits are not handled here (`runner`).
pub async fn write(
    conn: &mut AsyncPgConnection,
    step: &Step<'_>,
    action: &Action,
) -> Result<Value, StepError> {
    // Users by email, read only for actions that name users.
    let names_users = match action {
        Action::UpdateField { field, .. } => step
            .entity
            .resource()
            .column(field)
            .is_some_and(|c| c.ty == crate::imports::columns::Type::User),
        Action::CreateTask { .. }
        | Action::CreateRecord { .. }
        | Action::AssignRecord { .. }
        | Action::SendNotification { .. } => true,
        _ => false,
    };
    let users = if names_users {
        crate::imports::engine::active_users(conn, step.viewer.workspace_id.0).await?
    } else {
        HashMap::new()
    };
    match action {
        Action::UpdateField { field, value } => {
            let mut fields = HashMap::new();
            fields.insert(field.clone(), value.clone());
            update(conn, step, step.entity, step.run.record_id, &fields, &users).await?;
            Ok(json!({ "field": field, "value": value }))
        }
        Action::AssignRecord {
            user,
            round_robin,
            least_open_records,
        } => {
            let assignee = match (user, round_robin, least_open_records) {
                (Some(email), _, _) => user_id(&users, email)?,
                (_, Some(list), _) => {
                    let turn = store::next_turn(conn, step.run.workflow_id, step.path).await?;
                    let email = &list[(turn as usize) % list.len()];
                    user_id(&users, email)?
                }
                (_, _, Some(list)) => {
                    let ids = list
                        .iter()
                        .map(|email| user_id(&users, email))
                        .collect::<Result<Vec<_>, _>>()?;
                    least_loaded(conn, step.entity, step.viewer.workspace_id.0, &ids).await?
                }
                _ => return Err(StepError::Fail("no assignee given".into())),
            };
            let email = users
                .iter()
                .find(|(_, id)| **id == assignee)
                .map(|(e, _)| e.clone())
                .unwrap_or_default();
            let mut fields = HashMap::new();
            fields.insert("assigned_to".to_string(), Value::String(email.clone()));
            update(conn, step, step.entity, step.run.record_id, &fields, &users).await?;
            Ok(json!({ "assignedTo": email, "userId": assignee }))
        }
        Action::CreateTask {
            title,
            description,
            assigned_to,
            priority,
            due_in,
        } => {
            let mut fields = HashMap::new();
            fields.insert("title".to_string(), json!(title));
            if let Some(description) = description {
                fields.insert("description".into(), json!(description));
            }
            if let Some(priority) = priority {
                fields.insert("priority".into(), json!(priority));
            }
            // The record's assignee, else its owner, unless the action names someone.
            let assignee = match assigned_to {
                Some(email) => Some(email.clone()),
                None => ["assigned_to", "owner"].iter().find_map(|r| {
                    step.record
                        .get(*r)
                        .and_then(|u| u.get("email"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                }),
            };
            if let Some(email) = assignee {
                fields.insert("assigned_to".into(), json!(email));
            }
            if let Some(due_in) = due_in {
                let due = Utc::now() + parse_duration(due_in).map_err(StepError::Fail)?;
                fields.insert(
                    "due_at".into(),
                    json!(due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                );
            }
            if step.entity != Entity::Task {
                fields.insert(
                    format!("{}_id", step.entity.name()),
                    json!(step.run.record_id.to_string()),
                );
            }
            let id = create(conn, step, Entity::Task, &fields, &users).await?;
            Ok(json!({ "taskId": id }))
        }
        Action::CreateRecord { entity, fields } => {
            let fields: HashMap<String, Value> =
                fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let id = create(conn, step, *entity, &fields, &users).await?;
            Ok(json!({ "entity": entity.name(), "id": id }))
        }
        Action::SendNotification {
            users: recipients,
            title,
            message,
        } => {
            let ids = recipients
                .iter()
                .map(|email| user_id(&users, email))
                .collect::<Result<Vec<_>, _>>()?;
            notify(conn, step, &ids, title, message).await?;
            Ok(json!({ "notified": recipients }))
        }
        other => Err(StepError::Fail(format!(
            "{} is not a database action",
            other.kind()
        ))),
    }
}

fn user_id(users: &HashMap<String, i64>, email: &str) -> Result<i64, StepError> {
    let email = email.trim().to_lowercase();
    users.get(&email).copied().ok_or_else(|| {
        StepError::Fail(format!(
            "no active user of this workspace has the email {email}"
        ))
    })
}

/// Field values as CSV import reads them: text for columns (users by email), any JSON for
/// `custom.<key>` (merged over the record's custom fields on update).
fn cells(
    resource: Resource,
    fields: &HashMap<String, Value>,
    users: &HashMap<String, i64>,
) -> Result<Cells, StepError> {
    let mut cells = Cells::default();
    for (name, value) in fields {
        if let Some(key) = name.strip_prefix("custom.") {
            let value = match value {
                Value::String(text) => values::custom_value(text),
                other => other.clone(),
            };
            cells.custom.insert(key.to_string(), value);
            continue;
        }
        let column = resource
            .column(name)
            .filter(|c| c.importable)
            .ok_or_else(|| StepError::Fail(format!("{name} cannot be set")))?;
        let text = match value {
            Value::String(text) => text.trim().to_string(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if text.is_empty() {
            return Err(StepError::Fail(format!(
                "{name}: an empty value cannot be written (clearing fields is not supported)"
            )));
        }
        cells
            .set_column(column, &text, users)
            .map_err(|e| StepError::Fail(format!("{name}: {e}")))?;
    }
    Ok(cells)
}

async fn update(
    conn: &mut AsyncPgConnection,
    step: &Step<'_>,
    entity: Entity,
    id: i64,
    fields: &HashMap<String, Value>,
    users: &HashMap<String, i64>,
) -> Result<(), StepError> {
    let cells = cells(entity.resource(), fields, users)?;
    let custom = (!cells.custom.is_empty()).then(|| {
        let mut merged = step
            .record
            .get("custom")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        merged.extend(cells.custom.clone());
        Value::Object(merged)
    });
    let viewer = step.viewer;
    match entity {
        Entity::Lead => update_in::<Lead>(conn, viewer, id, Lead::input(&cells, custom))
            .await
            .map(drop),
        Entity::Contact => update_in::<Contact>(conn, viewer, id, Contact::input(&cells, custom))
            .await
            .map(drop),
        Entity::Company => update_in::<Company>(conn, viewer, id, Company::input(&cells, custom))
            .await
            .map(drop),
        Entity::Opportunity => {
            update_in::<Opportunity>(conn, viewer, id, Opportunity::input(&cells, custom))
                .await
                .map(drop)
        }
        Entity::Task => update_in::<Task>(conn, viewer, id, Task::input(&cells, custom))
            .await
            .map(drop),
    }
    .map_err(StepError::from)
}

async fn create(
    conn: &mut AsyncPgConnection,
    step: &Step<'_>,
    entity: Entity,
    fields: &HashMap<String, Value>,
    users: &HashMap<String, i64>,
) -> Result<i64, StepError> {
    let cells = cells(entity.resource(), fields, users)?;
    let custom = (!cells.custom.is_empty()).then(|| Value::Object(cells.custom.clone()));
    let viewer = step.viewer;
    let id = match entity {
        Entity::Lead => {
            create_in::<Lead>(conn, viewer, Lead::input(&cells, custom))
                .await?
                .id
                .0
        }
        Entity::Contact => {
            create_in::<Contact>(conn, viewer, Contact::input(&cells, custom))
                .await?
                .id
                .0
        }
        Entity::Company => {
            create_in::<Company>(conn, viewer, Company::input(&cells, custom))
                .await?
                .id
                .0
        }
        Entity::Opportunity => {
            create_in::<Opportunity>(conn, viewer, Opportunity::input(&cells, custom))
                .await?
                .id
                .0
        }
        Entity::Task => {
            create_in::<Task>(conn, viewer, Task::input(&cells, custom))
                .await?
                .id
                .0
        }
    };
    Ok(id)
}

/// The candidate with the fewest open records of the kind assigned (ties: the first listed).
async fn least_loaded(
    conn: &mut AsyncPgConnection,
    entity: Entity,
    workspace_id: i64,
    candidates: &[i64],
) -> Result<i64, StepError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let closed: &[&str] = match entity {
        Entity::Lead => &["converted", "lost", "unqualified"],
        Entity::Opportunity => &["closed_won", "closed_lost"],
        Entity::Task => &["completed", "cancelled"],
        Entity::Contact | Entity::Company => &[],
    };
    let status = if closed.is_empty() {
        ""
    } else {
        " AND NOT (status::text = ANY($3))"
    };
    // The table comes from the entity's static definition.
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT assigned_to_id AS user_id, count(*) AS n FROM {} \
         WHERE workspace_id = $1 AND assigned_to_id = ANY($2) AND deleted_at IS NULL{status} \
         GROUP BY assigned_to_id",
        entity.table()
    ))
    .bind::<BigInt, _>(workspace_id)
    .bind::<Array<BigInt>, _>(candidates)
    .bind::<Array<Text>, _>(closed)
    .load(conn)
    .await?;
    let load: HashMap<i64, i64> = rows.into_iter().map(|r| (r.user_id, r.n)).collect();
    candidates
        .iter()
        .min_by_key(|id| load.get(id).copied().unwrap_or(0))
        .copied()
        .ok_or_else(|| StepError::Fail("no candidates".into()))
}

/// In-app notifications (the notifications service will route these to its channels).
async fn notify(
    conn: &mut AsyncPgConnection,
    step: &Step<'_>,
    users: &[i64],
    title: &str,
    message: &str,
) -> Result<(), StepError> {
    use crate::notifications::{notify_in, preferences::Kind, Notice};
    // No actor: a workflow may notify its own creator.
    let notice = Notice {
        workspace_id: step.viewer.workspace_id.0,
        kind: Kind::Workflow,
        recipients: users.to_vec(),
        title: title.to_string(),
        message: message.to_string(),
        entity: Some(step.entity.name().to_string()),
        record_id: Some(step.run.record_id),
        actor_id: None,
        data: json!({ "workflow_id": step.run.workflow_id, "run_id": step.run.id }),
    };
    notify_in(conn, step.gateways, &notice).await?;
    Ok(())
}

/// When a `wait` ends: after a duration, or at a date field of the record.
pub fn wake_time(
    duration: Option<&str>,
    until: Option<&str>,
    record: &Value,
) -> Result<DateTime<Utc>, StepError> {
    if let Some(duration) = duration {
        return Ok(Utc::now() + parse_duration(duration).map_err(StepError::Fail)?);
    }
    let field = until.unwrap_or_default();
    let value = record.get(field).and_then(Value::as_str).ok_or_else(|| {
        StepError::Fail(format!(
            "the record's {field} is empty: nothing to wait for"
        ))
    })?;
    values::timestamp(value.trim())
        .map_err(|_| StepError::Fail(format!("the record's {field} is not a date")))
}
