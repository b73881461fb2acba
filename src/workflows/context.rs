//! What conditions and templates see: the record as stored (`to_jsonb`), with its custom
//! fields as `custom` and its related users and records expanded (`owner.email`,
//! `company.industry`), plus the trigger, the actor and the time. Loaded in one statement
//! per kind and batch of records.

use std::collections::HashMap;

use diesel::sql_types::{Array, BigInt, Jsonb, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};

use super::definition::Entity;
use crate::error::AppResult;

/// What a relation points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    User,
    Record(Entity),
}

/// A related user or record: its name in paths, the column holding its ID, what it is.
pub struct Relation {
    pub name: &'static str,
    pub column: &'static str,
    pub target: Target,
}

const fn rel(name: &'static str, column: &'static str, target: Target) -> Relation {
    Relation {
        name,
        column,
        target,
    }
}

const OWNER: Relation = rel("owner", "owner_id", Target::User);
const ASSIGNEE: Relation = rel("assigned_to", "assigned_to_id", Target::User);

const LEAD: &[Relation] = &[
    OWNER,
    ASSIGNEE,
    rel(
        "company",
        "converted_company_id",
        Target::Record(Entity::Company),
    ),
    rel(
        "contact",
        "converted_contact_id",
        Target::Record(Entity::Contact),
    ),
    rel(
        "opportunity",
        "converted_opportunity_id",
        Target::Record(Entity::Opportunity),
    ),
];
const CONTACT: &[Relation] = &[
    OWNER,
    ASSIGNEE,
    rel("company", "company_id", Target::Record(Entity::Company)),
];
const COMPANY: &[Relation] = &[OWNER];
const OPPORTUNITY: &[Relation] = &[
    OWNER,
    ASSIGNEE,
    rel("company", "company_id", Target::Record(Entity::Company)),
    rel("contact", "contact_id", Target::Record(Entity::Contact)),
];
const TASK: &[Relation] = &[
    OWNER,
    ASSIGNEE,
    rel("lead", "lead_id", Target::Record(Entity::Lead)),
    rel("contact", "contact_id", Target::Record(Entity::Contact)),
    rel("company", "company_id", Target::Record(Entity::Company)),
    rel(
        "opportunity",
        "opportunity_id",
        Target::Record(Entity::Opportunity),
    ),
];

/// The relations each kind's context expands (one level: a company's owner is not).
pub fn relations(entity: Entity) -> &'static [Relation] {
    match entity {
        Entity::Lead => LEAD,
        Entity::Contact => CONTACT,
        Entity::Company => COMPANY,
        Entity::Opportunity => OPPORTUNITY,
        Entity::Task => TASK,
    }
}

/// The fields a user shows in a context.
pub const USER_FIELDS: &[&str] = &["id", "name", "email"];

/// Internal columns no context shows.
const HIDDEN: &str = "- 'search_text' - 'overdue_event_for' - 'due_soon_event_for'";

/// The records `ids` of a kind in a workspace (deleted ones too: a `record_deleted` run
/// still reads its record), as contexts show them, by ID.
pub async fn records(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    entity: Entity,
    ids: &[i64],
) -> AppResult<HashMap<i64, Value>> {
    records_with(conn, workspace_id, entity, ids, |_| true).await
}

/// `records` with only the relations `expand` names (the engine reads only those its
/// conditions use: each one is a lookup per record).
pub async fn records_with(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    entity: Entity,
    ids: &[i64],
    expand: impl Fn(&str) -> bool,
) -> AppResult<HashMap<i64, Value>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Jsonb)]
        record: Value,
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let expansions: Vec<String> = relations(entity)
        .iter()
        .filter(|r| expand(r.name))
        .map(|r| {
            let lookup = match r.target {
                Target::User => format!(
                    "(SELECT jsonb_build_object('id', u.id, 'name', u.name, 'email', u.email) \
                     FROM users u WHERE u.id = t.{})",
                    r.column
                ),
                Target::Record(kind) => format!(
                    "(SELECT (to_jsonb(r) {HIDDEN}) || jsonb_build_object('custom', r.custom_fields) \
                     FROM {} r WHERE r.id = t.{} AND r.deleted_at IS NULL)",
                    kind.table(),
                    r.column
                ),
            };
            format!("'{}', {lookup}", r.name)
        })
        .collect();
    // Table and column names come from the static lists above, never from a client.
    let sql =
        format!(
        "SELECT t.id, (to_jsonb(t) {HIDDEN}) || jsonb_build_object('custom', t.custom_fields{}) \
           AS record \
         FROM {} t WHERE t.workspace_id = $1 AND t.id = ANY($2)",
        expansions.iter().map(|e| format!(", {e}")).collect::<String>(),
        entity.table()
    );
    let rows: Vec<Row> = diesel::sql_query(sql)
        .bind::<BigInt, _>(workspace_id)
        .bind::<Array<BigInt>, _>(ids)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.record)).collect())
}

/// Users of a workspace by ID, as contexts show them (`actor`).
pub async fn users(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    ids: &[i64],
) -> AppResult<HashMap<i64, Value>> {
    let users =
        crate::auth::users::briefs(conn, Some(crate::auth::WorkspaceId(workspace_id)), ids).await?;
    Ok(users
        .into_values()
        .map(|u| {
            (
                u.id.0,
                json!({ "id": u.id.0, "name": u.name, "email": u.email }),
            )
        })
        .collect())
}

/// The whole context of a step: what templates render with.
pub fn context(record: Value, trigger: &Value, actor: Option<Value>, workflow: Value) -> Value {
    json!({
        "record": record,
        "trigger": trigger,
        "actor": actor.unwrap_or(Value::Null),
        "workflow": workflow,
        "now": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// A table's columns with their SQL types (for validating paths and wait fields).
pub async fn columns(
    conn: &mut AsyncPgConnection,
    entity: Entity,
) -> AppResult<HashMap<String, String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        data_type: String,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind::<Text, _>(entity.table())
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| !HIDDEN.contains(&format!("'{}'", r.column_name)))
        .map(|r| (r.column_name, r.data_type))
        .collect())
}
