//! Activities: notes, calls, emails, meetings and comments logged on one record. An activity
//! is visible to whoever may see its record. Logging a call, email or meeting on a lead moves
//! the lead's `last_contacted_at`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::{Insertable, QueryableByName};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::companies::Company;
use super::contacts::Contact;
use super::leads::Lead;
use super::opportunities::Opportunity;
use super::query::referenced;
use super::sql::{Bind, Sql};
use super::tasks::Task;
use super::CrmService;
use crate::auth::{UserId, Viewer, WorkspaceId};
use crate::db::schema::activities;
use crate::error::{AppError, AppResult};
use crate::pagination::TimePosition;
use crate::validation::{self, optional_text};

crate::id_type!(
    /// An activity's ID.
    ActivityId
);

crate::text_enum!(
    /// What happened.
    ActivityKind {
        Note => "note",
        Call => "call",
        Email => "email",
        Meeting => "meeting",
        Comment => "comment",
    }
);

impl ActivityKind {
    /// Calls, emails and meetings are contact with the person; notes and comments are not.
    pub fn is_contact(self) -> bool {
        matches!(
            self,
            ActivityKind::Call | ActivityKind::Email | ActivityKind::Meeting
        )
    }
}

/// The record an activity is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordRef {
    Lead(i64),
    Contact(i64),
    Company(i64),
    Opportunity(i64),
    Task(i64),
}

impl RecordRef {
    /// The record of a kind named as the change stream names it (`lead`, ...).
    pub fn of(entity: &str, id: i64) -> Option<RecordRef> {
        Some(match entity {
            "lead" => RecordRef::Lead(id),
            "contact" => RecordRef::Contact(id),
            "company" => RecordRef::Company(id),
            "opportunity" => RecordRef::Opportunity(id),
            "task" => RecordRef::Task(id),
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            RecordRef::Lead(_) => "lead_id",
            RecordRef::Contact(_) => "contact_id",
            RecordRef::Company(_) => "company_id",
            RecordRef::Opportunity(_) => "opportunity_id",
            RecordRef::Task(_) => "task_id",
        }
    }

    fn id(self) -> i64 {
        match self {
            RecordRef::Lead(id)
            | RecordRef::Contact(id)
            | RecordRef::Company(id)
            | RecordRef::Opportunity(id)
            | RecordRef::Task(id) => id,
        }
    }

    /// The input field that names this kind of record.
    fn field(self) -> &'static str {
        match self {
            RecordRef::Lead(_) => "leadId",
            RecordRef::Contact(_) => "contactId",
            RecordRef::Company(_) => "companyId",
            RecordRef::Opportunity(_) => "opportunityId",
            RecordRef::Task(_) => "taskId",
        }
    }
}

/// An activity as stored.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = activities)]
pub struct Activity {
    pub id: ActivityId,
    pub workspace_id: WorkspaceId,
    pub kind: ActivityKind,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    pub lead_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub company_id: Option<i64>,
    pub opportunity_id: Option<i64>,
    pub task_id: Option<i64>,
    pub custom_fields: serde_json::Value,
    pub tags: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Activity {
    pub fn tag_list(&self) -> Vec<String> {
        self.tags.iter().flatten().cloned().collect()
    }

    pub fn record(&self) -> Option<RecordRef> {
        self.lead_id
            .map(RecordRef::Lead)
            .or(self.contact_id.map(RecordRef::Contact))
            .or(self.company_id.map(RecordRef::Company))
            .or(self.opportunity_id.map(RecordRef::Opportunity))
            .or(self.task_id.map(RecordRef::Task))
    }
}

/// `logActivity` input. Exactly one record must be given.
#[derive(Debug, Clone)]
pub struct LogActivity {
    pub kind: ActivityKind,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub records: Vec<RecordRef>,
    /// The workspace's own fields (a JSON object); none given is `{}`.
    pub custom_fields: Option<serde_json::Value>,
    pub tags: Option<Vec<String>>,
}

#[derive(Insertable)]
#[diesel(table_name = activities)]
struct NewActivity {
    workspace_id: WorkspaceId,
    kind: ActivityKind,
    subject: Option<String>,
    body: Option<String>,
    occurred_at: DateTime<Utc>,
    actor_id: Option<UserId>,
    lead_id: Option<i64>,
    contact_id: Option<i64>,
    company_id: Option<i64>,
    opportunity_id: Option<i64>,
    task_id: Option<i64>,
    custom_fields: serde_json::Value,
    tags: Vec<String>,
}

/// Most activities shown per record (newest first).
pub const ACTIVITIES_PER_RECORD: i64 = 50;

impl CrmService {
    /// Logs an activity on a record the caller may see.
    pub async fn log_activity(&self, viewer: &Viewer, input: LogActivity) -> AppResult<Activity> {
        let [record] = input.records.as_slice() else {
            return Err(AppError::bad_input(
                "leadId",
                "give exactly one of leadId, contactId, companyId, opportunityId, taskId",
            ));
        };
        let record = *record;
        let subject = optional_text("subject", input.subject.as_deref(), 300)?;
        let body = optional_text("body", input.body.as_deref(), 100_000)?;
        if subject.is_none() && body.is_none() {
            return Err(AppError::bad_input(
                "subject",
                "an activity needs a subject or a body",
            ));
        }
        let custom_fields = match &input.custom_fields {
            Some(value) => validation::custom_fields("customFields", value)?,
            None => serde_json::json!({}),
        };
        let tags = validation::tags("tags", input.tags.as_deref().unwrap_or_default())?;
        let occurred_at = input.occurred_at.unwrap_or_else(Utc::now);
        if occurred_at > Utc::now() + chrono::Duration::minutes(5) {
            return Err(AppError::bad_input(
                "occurredAt",
                "occurredAt must not be in the future",
            ));
        }
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            let field = record.field();
            match record {
                RecordRef::Lead(id) => referenced::<Lead>(conn, &viewer, id, field)
                    .await
                    .map(|_| ())?,
                RecordRef::Contact(id) => referenced::<Contact>(conn, &viewer, id, field)
                    .await
                    .map(|_| ())?,
                RecordRef::Company(id) => referenced::<Company>(conn, &viewer, id, field)
                    .await
                    .map(|_| ())?,
                RecordRef::Opportunity(id) => referenced::<Opportunity>(conn, &viewer, id, field)
                    .await
                    .map(|_| ())?,
                RecordRef::Task(id) => referenced::<Task>(conn, &viewer, id, field)
                    .await
                    .map(|_| ())?,
            }
            let id_for =
                |kind: fn(i64) -> RecordRef| (kind(record.id()) == record).then(|| record.id());
            let new = NewActivity {
                workspace_id: viewer.workspace_id,
                kind: input.kind,
                subject,
                body,
                occurred_at,
                actor_id: Some(viewer.user_id),
                lead_id: id_for(RecordRef::Lead),
                contact_id: id_for(RecordRef::Contact),
                company_id: id_for(RecordRef::Company),
                opportunity_id: id_for(RecordRef::Opportunity),
                task_id: id_for(RecordRef::Task),
                custom_fields,
                tags,
            };
            let id: ActivityId = diesel::insert_into(activities::table)
                .values(&new)
                .returning(activities::id)
                .get_result(conn)
                .await?;
            super::events::created(conn, &viewer, ("activities", "activity"), id.0).await?;
            if let (RecordRef::Lead(lead), true) = (record, input.kind.is_contact()) {
                // Never moves backwards when an older call is logged late.
                let mut update = Sql::new(
                    "UPDATE leads SET last_contacted_at = \
                     GREATEST(COALESCE(last_contacted_at, '-infinity'), ",
                );
                update
                    .bind(Bind::Timestamp(occurred_at))
                    .push("), updated_at = now() WHERE id = ")
                    .bind(Bind::Int(lead));
                let before = super::events::snapshot(
                    conn,
                    super::events::kind::<super::leads::Lead>().0,
                    &[lead],
                )
                .await?;
                update.into_query().execute(conn).await?;
                super::events::changed(
                    conn,
                    &viewer,
                    super::events::kind::<super::leads::Lead>(),
                    "updated",
                    &[lead],
                    &before,
                )
                .await?;
            }
            let mut sql = Sql::new("SELECT * FROM activities WHERE id = ");
            sql.bind(Bind::Int(id.0));
            Ok(sql.into_query().get_result(conn).await?)
        })
        .await
    }

    /// The activities of one record the caller may see (checked by the caller), newest
    /// first (by time, then ID): `limit` of them, before `older_than` when given.
    pub async fn activities_before(
        &self,
        viewer: &Viewer,
        record: RecordRef,
        older_than: Option<TimePosition>,
        limit: i64,
    ) -> AppResult<Vec<Activity>> {
        let mut conn = self.db.get().await?;
        let mut sql = Sql::new(&format!(
            "SELECT * FROM activities WHERE deleted_at IS NULL AND {} = ",
            record.column()
        ));
        sql.bind(Bind::Int(record.id()))
            .push(" AND workspace_id = ")
            .bind(Bind::Int(viewer.workspace_id.0));
        if let Some(position) = older_than {
            sql.push(" AND (occurred_at, id) < (")
                .bind(Bind::Timestamp(position.at))
                .push(", ")
                .bind(Bind::Int(position.id))
                .push(")");
        }
        sql.push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
            .bind(Bind::Int(limit));
        Ok(sql.into_query().load(&mut conn).await?)
    }

    /// The newest activities of each record, for records the caller already holds (their
    /// visibility was checked when they were loaded). One query per kind of record.
    pub async fn activities_of(
        &self,
        viewer: &Viewer,
        records: &[RecordRef],
    ) -> AppResult<HashMap<RecordRef, Vec<Activity>>> {
        let mut by_column: HashMap<&'static str, Vec<i64>> = HashMap::new();
        for record in records {
            by_column
                .entry(record.column())
                .or_default()
                .push(record.id());
        }
        let mut conn = self.db.get().await?;
        let mut out: HashMap<RecordRef, Vec<Activity>> = HashMap::new();
        for (column, ids) in by_column {
            let mut sql = Sql::new(&format!(
                "SELECT * FROM (SELECT activities.*, row_number() OVER (PARTITION BY {column} \
                 ORDER BY occurred_at DESC, id DESC) AS position FROM activities \
                 WHERE deleted_at IS NULL AND workspace_id = "
            ));
            sql.bind(Bind::Int(viewer.workspace_id.0))
                .push(&format!(" AND {column} = ANY("))
                .bind(Bind::Ints(ids))
                .push(")) AS ranked WHERE position <= ")
                .bind(Bind::Int(ACTIVITIES_PER_RECORD))
                .push(&format!(" ORDER BY {column}, position"));
            let rows: Vec<Activity> = sql.into_query().load(&mut conn).await?;
            for activity in rows {
                if let Some(record) = activity.record() {
                    out.entry(record).or_default().push(activity);
                }
            }
        }
        Ok(out)
    }
}
