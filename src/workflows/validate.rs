//! The checks a definition gets on save that need the database: every field path names a
//! column (or a custom field, or a related user's or record's column), every template
//! variable exists, every written field is one the kind accepts, every user named is an
//! active user of the workspace. The first problem is reported with its path.

use std::collections::HashMap;

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::context::{self, Target, USER_FIELDS};
use super::definition::{bad, parse_duration, Action, Condition, Definition, Entity, Trigger};
use super::template::{json_templates, Template};
use super::time_triggers::Timing;
use crate::crm::Priority;
use crate::error::AppResult;

/// What the paths of one kind may name.
struct Fields {
    entity: Entity,
    /// Column → SQL type, per kind (the watched one and the related ones).
    columns: HashMap<Entity, HashMap<String, String>>,
}

impl Fields {
    async fn load(conn: &mut AsyncPgConnection, entity: Entity) -> AppResult<Fields> {
        let mut columns = HashMap::new();
        for kind in Entity::ALL {
            columns.insert(kind, context::columns(conn, kind).await?);
        }
        Ok(Fields { entity, columns })
    }

    /// Whether `path` names something in the record's context.
    fn knows(&self, path: &str) -> bool {
        self.knows_in(self.entity, path, true)
    }

    fn knows_in(&self, entity: Entity, path: &str, follow: bool) -> bool {
        let (head, rest) = match path.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (path, None),
        };
        if head == "custom" {
            return rest.is_some_and(|r| !r.is_empty());
        }
        if rest.is_none() && self.columns[&entity].contains_key(head) {
            return true;
        }
        if !follow {
            return false;
        }
        let Some(relation) = context::relations(entity).iter().find(|r| r.name == head) else {
            return false;
        };
        match (relation.target, rest) {
            (_, None) => true,
            (Target::User, Some(field)) => USER_FIELDS.contains(&field),
            (Target::Record(kind), Some(field)) => self.knows_in(kind, field, false),
        }
    }

    /// `path` must name something in the record's context; the error is reported at `at`.
    fn require(&self, path: &str, at: &str) -> AppResult<()> {
        if self.knows(path) {
            Ok(())
        } else {
            Err(bad(
                at,
                format!("{path:?} is not a field of a {}", self.entity.name()),
            ))
        }
    }

    fn is_date(&self, column: &str) -> bool {
        self.column_type(column)
            .is_some_and(|ty| ty == "date" || ty.starts_with("timestamp"))
    }

    /// The SQL type of a column of the watched kind.
    fn column_type(&self, column: &str) -> Option<&str> {
        self.columns[&self.entity].get(column).map(String::as_str)
    }
}

/// Checks a parsed definition against the workspace's schema and users.
pub async fn check(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    definition: &Definition,
) -> AppResult<()> {
    let fields = Fields::load(conn, definition.entity).await?;
    let entity = definition.entity;
    match &definition.trigger {
        Trigger::RecordUpdated { fields: watched } => {
            for (i, field) in watched.iter().enumerate() {
                fields.require(field, &format!("trigger.fields[{i}]"))?;
            }
        }
        Trigger::FieldChanged { field, .. } => fields.require(field, "trigger.field")?,
        Trigger::ScoreChanged { above, below } => {
            if entity != Entity::Lead {
                return Err(bad("trigger", "score_changed watches leads only"));
            }
            for (name, bound) in [("above", above), ("below", below)] {
                if bound.is_some_and(|b| !(0..=100).contains(&b)) {
                    return Err(bad(&format!("trigger.{name}"), "a score from 0 to 100"));
                }
            }
        }
        Trigger::TimeBased { .. } => check_timing(&fields, &definition.trigger)?,
        Trigger::RecordCreated | Trigger::RecordDeleted | Trigger::Manual => {}
    }
    if let Some(conditions) = &definition.conditions {
        check_conditions(&fields, conditions, "conditions")?;
    }
    let mut emails = Vec::new();
    let mut records = Vec::new();
    for (path, action) in definition.steps() {
        check_action(&fields, &path, action, &mut emails)?;
        match action {
            Action::UpdateField { field, value } => literal_reference(
                fields.entity,
                field,
                value,
                &format!("{path}.value"),
                &mut emails,
                &mut records,
            )?,
            Action::CreateRecord {
                entity,
                fields: values,
            } => {
                for (name, value) in values {
                    let at = format!("{path}.fields.{name}");
                    literal_reference(*entity, name, value, &at, &mut emails, &mut records)?;
                }
            }
            _ => {}
        }
    }
    check_users(conn, workspace_id, &emails).await?;
    check_records(conn, workspace_id, &records).await
}

/// A literal value set on a user or reference field (`update_field`, `create_record`): the
/// user's email goes to `emails` and the record's ID to `records`, to be checked against the
/// workspace when the workflow is saved rather than failing every run. Templates are checked
/// when they run.
fn literal_reference(
    entity: Entity,
    field: &str,
    value: &Value,
    at: &str,
    emails: &mut Vec<(String, String)>,
    records: &mut Vec<(String, i64, String)>,
) -> AppResult<()> {
    use crate::imports::columns::Type;
    let Some(column) = entity.resource().column(field) else {
        return Ok(());
    };
    let literal = match value {
        Value::String(text) if text.contains("{{") => return Ok(()),
        Value::String(text) => text.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Ok(()),
    };
    match column.ty {
        Type::User if !literal.is_empty() => emails.push((literal.to_lowercase(), at.into())),
        Type::Reference if !literal.is_empty() => {
            let id = literal
                .parse::<i64>()
                .map_err(|_| bad(at, format!("{field} takes a record ID")))?;
            let (table, _) = crate::imports::engine::referenced(column.name);
            records.push((table.name.to_string(), id, at.into()));
        }
        _ => {}
    }
    Ok(())
}

/// Every literal record ID must be a live record of the workspace.
async fn check_records(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    records: &[(String, i64, String)],
) -> AppResult<()> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    for (table, id, at) in records {
        // `table` comes from the column registry, never from the input.
        let found: Found = diesel::sql_query(format!(
            "SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1 AND workspace_id = $2 \
             AND deleted_at IS NULL) AS found"
        ))
        .bind::<diesel::sql_types::BigInt, _>(id)
        .bind::<diesel::sql_types::BigInt, _>(workspace_id)
        .get_result(conn)
        .await?;
        if !found.found {
            return Err(bad(
                at,
                format!("no record of this workspace has the ID {id}"),
            ));
        }
    }
    Ok(())
}

/// A relative time trigger's field is a date or time of the record; a date (no time) moves
/// by whole days, and only a date takes a time of day (`at`).
fn check_timing(fields: &Fields, trigger: &Trigger) -> AppResult<()> {
    let Some(Timing::Relative(relative)) = Timing::of(trigger)? else {
        return Ok(());
    };
    if !fields.is_date(&relative.field) {
        return Err(bad(
            "trigger.field",
            format!(
                "{:?} is not a date or time field of a {}",
                relative.field,
                fields.entity.name()
            ),
        ));
    }
    let is_day = fields.column_type(&relative.field) == Some("date");
    let offset_path = if relative.offset < chrono::Duration::zero() {
        "trigger.before"
    } else {
        "trigger.after"
    };
    if is_day && relative.offset.num_seconds() % 86_400 != 0 {
        return Err(bad(offset_path, "a date moves by whole days (1d, 2 weeks)"));
    }
    if !is_day && relative.at.is_some() {
        return Err(bad(
            "trigger.at",
            "only a date field (without a time) takes a time of day",
        ));
    }
    Ok(())
}

fn check_conditions(fields: &Fields, condition: &Condition, path: &str) -> AppResult<()> {
    let mut rules = Vec::new();
    condition.rules(path, &mut rules);
    for (at, rule) in rules {
        fields.require(&rule.field, &format!("{at}.field"))?;
    }
    Ok(())
}

/// Checks one action; literal user emails go to `emails` (with their path) to be looked up.
fn check_action(
    fields: &Fields,
    path: &str,
    action: &Action,
    emails: &mut Vec<(String, String)>,
) -> AppResult<()> {
    let template = |text: &str, name: &str| check_template(fields, text, &format!("{path}.{name}"));
    let mut user = |text: &str, name: &str| -> AppResult<()> {
        template(text, name)?;
        if !text.contains("{{") {
            emails.push((text.trim().to_lowercase(), format!("{path}.{name}")));
        }
        Ok(())
    };
    match action {
        Action::SendEmail {
            to,
            cc,
            subject,
            body,
        } => {
            if to.trim().is_empty() {
                return Err(bad(&format!("{path}.to"), "at least one address"));
            }
            template(to, "to")?;
            if let Some(cc) = cc {
                template(cc, "cc")?;
            }
            template(subject, "subject")?;
            template(body, "body")?;
        }
        Action::CreateTask {
            title,
            description,
            assigned_to,
            priority,
            due_in,
        } => {
            if title.trim().is_empty() {
                return Err(bad(&format!("{path}.title"), "a task needs a title"));
            }
            template(title, "title")?;
            if let Some(description) = description {
                template(description, "description")?;
            }
            if let Some(assignee) = assigned_to {
                user(assignee, "assigned_to")?;
            }
            if let Some(priority) = priority {
                if Priority::parse(priority).is_none() {
                    return Err(bad(
                        &format!("{path}.priority"),
                        "one of low, medium, high, urgent",
                    ));
                }
            }
            if let Some(due_in) = due_in {
                parse_duration(due_in).map_err(|e| bad(&format!("{path}.due_in"), e))?;
            }
        }
        Action::UpdateField { field, value } => {
            check_writable(fields.entity, field, &format!("{path}.field"))?;
            for text in json_templates(value) {
                template(text, "value")?;
            }
        }
        Action::AssignRecord {
            user: one,
            round_robin,
            least_open_records,
        } => {
            let given = [
                one.is_some(),
                round_robin.is_some(),
                least_open_records.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(bad(
                    path,
                    "give exactly one of user, round_robin or least_open_records",
                ));
            }
            if fields.entity == Entity::Company {
                return Err(bad(path, "companies have no assignee"));
            }
            if let Some(one) = one {
                user(one, "user")?;
            }
            for (name, list) in [
                ("round_robin", round_robin),
                ("least_open_records", least_open_records),
            ] {
                if let Some(list) = list {
                    if list.is_empty() {
                        return Err(bad(&format!("{path}.{name}"), "a list of users' emails"));
                    }
                    for (i, email) in list.iter().enumerate() {
                        user(email, &format!("{name}[{i}]"))?;
                    }
                }
            }
        }
        Action::SendNotification {
            users,
            title,
            message,
        } => {
            if users.is_empty() {
                return Err(bad(&format!("{path}.users"), "a list of users' emails"));
            }
            for (i, email) in users.iter().enumerate() {
                user(email, &format!("users[{i}]"))?;
            }
            template(title, "title")?;
            template(message, "message")?;
        }
        Action::CreateRecord {
            entity,
            fields: values,
        } => {
            for (name, value) in values {
                check_writable(*entity, name, &format!("{path}.fields.{name}"))?;
                for text in json_templates(value) {
                    check_template(fields, text, &format!("{path}.fields.{name}"))?;
                }
            }
        }
        Action::CallWebhook {
            url,
            method,
            headers,
            body,
        } => {
            template(url, "url")?;
            if !url.contains("{{") {
                super::webhook::parse_url(url).map_err(|e| bad(&format!("{path}.url"), e))?;
            }
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                return Err(bad(
                    &format!("{path}.method"),
                    "one of GET, POST, PUT, PATCH, DELETE",
                ));
            }
            for (name, value) in headers {
                super::webhook::check_header(name, value)
                    .map_err(|e| bad(&format!("{path}.headers.{name}"), e))?;
                template(value, &format!("headers.{name}"))?;
            }
            if let Some(body) = body {
                for text in json_templates(body) {
                    template(text, "body")?;
                }
            }
        }
        Action::Wait { duration, until } => match (duration, until) {
            (Some(duration), None) => {
                parse_duration(duration).map_err(|e| bad(&format!("{path}.duration"), e))?;
            }
            (None, Some(field)) => {
                if !fields.is_date(field) {
                    return Err(bad(
                        &format!("{path}.until"),
                        format!(
                            "{field:?} is not a date field of a {}",
                            fields.entity.name()
                        ),
                    ));
                }
            }
            _ => return Err(bad(path, "give exactly one of duration or until")),
        },
        Action::Branch { conditions, .. } => {
            check_conditions(fields, conditions, &format!("{path}.conditions"))?;
        }
    }
    Ok(())
}

/// A field an action may write: an importable column of the kind (as CSV names it) or a
/// custom field.
fn check_writable(entity: Entity, field: &str, at: &str) -> AppResult<()> {
    if let Some(key) = field.strip_prefix("custom.") {
        if !key.trim().is_empty() {
            return Ok(());
        }
    }
    match entity.resource().column(field) {
        Some(column) if column.importable => Ok(()),
        _ => Err(bad(
            at,
            format!(
                "{field:?} is not a field a workflow can set on a {}",
                entity.name()
            ),
        )),
    }
}

/// The roots a template may read.
const ROOTS: &[&str] = &["record", "trigger", "actor", "workflow", "now"];

fn check_template(fields: &Fields, text: &str, at: &str) -> AppResult<()> {
    let template = Template::parse(text).map_err(|e| bad(at, e))?;
    for variable in template.variables() {
        let (root, rest) = match variable.split_once('.') {
            Some((root, rest)) => (root, Some(rest)),
            None => (variable, None),
        };
        let ok = match (root, rest) {
            ("now", None) => true,
            ("record", Some(path)) => fields.knows(path),
            ("trigger", Some(path)) => {
                let (head, tail) = path.split_once('.').unwrap_or((path, ""));
                match head {
                    "changes" => tail.split('.').next().is_some_and(|f| {
                        !f.is_empty() && (fields.knows(f) || f == "custom_fields" || f == "score")
                    }),
                    "type" | "action" | "actor_id" | "event_id" | "occurred_at" => tail.is_empty(),
                    // The moment a time-based run is for.
                    "slot" => tail.is_empty(),
                    _ => false,
                }
            }
            ("actor", Some(field)) => USER_FIELDS.contains(&field),
            ("workflow", Some(field)) => ["id", "name", "version"].contains(&field),
            _ => false,
        };
        if !ok {
            let hint = if ROOTS.contains(&root) {
                String::new()
            } else {
                format!(" (variables start with one of {})", ROOTS.join(", "))
            };
            return Err(bad(at, format!("unknown variable {variable}{hint}")));
        }
    }
    Ok(())
}

/// Every literal email must be an active user of the workspace.
async fn check_users(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    emails: &[(String, String)],
) -> AppResult<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let users = crate::imports::engine::active_users(conn, workspace_id).await?;
    match emails.iter().find(|(email, _)| !users.contains_key(email)) {
        Some((email, at)) => Err(bad(
            at,
            format!("no active user of this workspace has the email {email}"),
        )),
        None => Ok(()),
    }
}
