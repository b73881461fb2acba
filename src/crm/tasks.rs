//! Tasks: calls to make, emails to send, meetings to hold, optionally about a record.

use chrono::{DateTime, Utc};
use diesel::{AsChangeset, Insertable, QueryableByName};
use diesel_async::AsyncPgConnection;

use super::companies::Company;
use super::companies::CompanyId;
use super::contacts::{Contact, ContactId};
use super::edit::Editable;
use super::leads::{Lead, LeadId};
use super::opportunities::{Opportunity, OpportunityId};
use super::query::{self, CursorValue, Field, Listable, Predicate, SortKey, Table};
use super::sql::Bind;
use super::{check_owner_and_assignee, clearable_text as text, CrmService, Priority, Sort};
use crate::auth::{UserId, Viewer, WorkspaceId};
use crate::db::schema::tasks;
use crate::error::{AppError, AppResult};
use crate::validation::{custom_fields, required_text, tags};

crate::id_type!(
    /// A task's ID.
    TaskId
);

crate::text_enum!(
    /// What kind of work a task is.
    TaskType {
        Call => "call",
        Email => "email",
        Meeting => "meeting",
        FollowUp => "follow_up",
        Proposal => "proposal",
        Demo => "demo",
        Other => "other",
    }
);

crate::text_enum!(
    /// Where a task stands.
    TaskStatus {
        Pending => "pending",
        InProgress => "in_progress",
        Completed => "completed",
        Cancelled => "cancelled",
    }
);

/// A task as stored.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = tasks)]
pub struct Task {
    pub id: TaskId,
    pub workspace_id: WorkspaceId,
    pub title: String,
    pub description: Option<String>,
    pub task_type: TaskType,
    pub status: TaskStatus,
    pub priority: Priority,
    pub due_at: Option<DateTime<Utc>>,
    pub reminder_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub assigned_to_id: Option<UserId>,
    pub owner_id: Option<UserId>,
    pub lead_id: Option<LeadId>,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub opportunity_id: Option<OpportunityId>,
    pub custom_fields: serde_json::Value,
    pub tags: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Task {
    pub fn tag_list(&self) -> Vec<String> {
        self.tags.iter().flatten().cloned().collect()
    }
}

/// The fields clients may filter tasks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskField {
    Id,
    Title,
    TaskType,
    Status,
    Priority,
    DueAt,
    ReminderAt,
    CompletedAt,
    AssignedToId,
    OwnerId,
    LeadId,
    ContactId,
    CompanyId,
    OpportunityId,
    CreatedAt,
    UpdatedAt,
}

impl Field for TaskField {
    fn sql(self) -> &'static str {
        match self {
            TaskField::Id => "tasks.id",
            TaskField::Title => "tasks.title",
            TaskField::TaskType => "tasks.task_type",
            TaskField::Status => "tasks.status",
            TaskField::Priority => "tasks.priority",
            TaskField::DueAt => "tasks.due_at",
            TaskField::ReminderAt => "tasks.reminder_at",
            TaskField::CompletedAt => "tasks.completed_at",
            TaskField::AssignedToId => "tasks.assigned_to_id",
            TaskField::OwnerId => "tasks.owner_id",
            TaskField::LeadId => "tasks.lead_id",
            TaskField::ContactId => "tasks.contact_id",
            TaskField::CompanyId => "tasks.company_id",
            TaskField::OpportunityId => "tasks.opportunity_id",
            TaskField::CreatedAt => "tasks.created_at",
            TaskField::UpdatedAt => "tasks.updated_at",
        }
    }
}

/// Open tasks due before `now`: the one definition of "overdue".
pub fn overdue(now: DateTime<Utc>) -> Predicate<TaskField> {
    Predicate::All(vec![
        Predicate::field(TaskField::DueAt, query::Op::Lt, Bind::Timestamp(now)),
        open(),
    ])
}

/// Tasks due on `now`'s UTC day. (Per-user time zones arrive with notification preferences.)
pub fn due_today(now: DateTime<Utc>) -> Predicate<TaskField> {
    let start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let end = start + chrono::Duration::days(1);
    Predicate::All(vec![
        Predicate::field(TaskField::DueAt, query::Op::Gte, Bind::Timestamp(start)),
        Predicate::field(TaskField::DueAt, query::Op::Lt, Bind::Timestamp(end)),
    ])
}

/// The statuses of a task still to be done: the one definition of "open".
pub const OPEN_STATUSES: [TaskStatus; 2] = [TaskStatus::Pending, TaskStatus::InProgress];

fn open() -> Predicate<TaskField> {
    Predicate::field(
        TaskField::Status,
        query::Op::In,
        Bind::Texts(OPEN_STATUSES.iter().map(|s| s.as_str().into()).collect()),
    )
}

/// The orders clients may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSort {
    CreatedAt,
    UpdatedAt,
    DueAt,
    Priority,
    Title,
}

impl Sort for TaskSort {
    fn key(self, descending: bool) -> SortKey {
        let sql = match self {
            TaskSort::CreatedAt => "tasks.created_at",
            TaskSort::UpdatedAt => "tasks.updated_at",
            TaskSort::DueAt => "tasks.due_at",
            TaskSort::Priority => Priority::RANK_SQL_TASKS,
            TaskSort::Title => "tasks.title",
        };
        SortKey { sql, descending }
    }
}

impl Listable for Task {
    type Field = TaskField;
    const WHAT: &'static str = "task";
    const TABLE: Table = Table {
        name: "tasks",
        owner_column: "owner_id",
        assignee_column: Some("assigned_to_id"),
        company_column: None,
    };
    const OWNER_FIELD: Self::Field = TaskField::OwnerId;
    const ASSIGNEE_FIELD: Option<Self::Field> = Some(TaskField::AssignedToId);

    fn id(&self) -> i64 {
        self.id.0
    }

    fn sort_value(&self, key: &SortKey) -> CursorValue {
        match key.sql {
            "tasks.updated_at" => CursorValue::Timestamp(self.updated_at),
            "tasks.due_at" => self
                .due_at
                .map_or(CursorValue::Null, CursorValue::Timestamp),
            "tasks.title" => CursorValue::Text(self.title.clone()),
            "tasks.created_at" => CursorValue::Timestamp(self.created_at),
            _ => CursorValue::Int(self.priority.rank()),
        }
    }
}

/// Writable task fields: for `update`, an outer `None` leaves the field alone and `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default)]
pub struct TaskInput {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub task_type: Option<TaskType>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub reminder_at: Option<Option<DateTime<Utc>>>,
    pub assigned_to_id: Option<Option<UserId>>,
    pub owner_id: Option<UserId>,
    pub lead_id: Option<Option<LeadId>>,
    pub contact_id: Option<Option<ContactId>>,
    pub company_id: Option<Option<CompanyId>>,
    pub opportunity_id: Option<Option<OpportunityId>>,
    pub custom_fields: Option<serde_json::Value>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, AsChangeset, Insertable)]
#[diesel(table_name = tasks)]
pub struct TaskChanges {
    title: Option<String>,
    description: Option<Option<String>>,
    task_type: Option<TaskType>,
    status: Option<TaskStatus>,
    priority: Option<Priority>,
    due_at: Option<Option<DateTime<Utc>>>,
    reminder_at: Option<Option<DateTime<Utc>>>,
    completed_at: Option<Option<DateTime<Utc>>>,
    assigned_to_id: Option<Option<UserId>>,
    owner_id: Option<Option<UserId>>,
    lead_id: Option<Option<LeadId>>,
    contact_id: Option<Option<ContactId>>,
    company_id: Option<Option<CompanyId>>,
    opportunity_id: Option<Option<OpportunityId>>,
    custom_fields: Option<serde_json::Value>,
    tags: Option<Vec<Option<String>>>,
}

impl TaskInput {
    fn validate(&self) -> AppResult<TaskChanges> {
        if let (Some(Some(due)), Some(Some(reminder))) = (self.due_at, self.reminder_at) {
            if reminder > due {
                return Err(AppError::bad_input(
                    "reminderAt",
                    "reminderAt must not be after dueAt",
                ));
            }
        }
        Ok(TaskChanges {
            title: self
                .title
                .as_deref()
                .map(|t| required_text("title", t, 300))
                .transpose()?,
            description: text("description", &self.description, 100_000)?,
            task_type: self.task_type,
            status: self.status,
            priority: self.priority,
            due_at: self.due_at,
            reminder_at: self.reminder_at,
            completed_at: None,
            assigned_to_id: self.assigned_to_id,
            owner_id: self.owner_id.map(Some),
            lead_id: self.lead_id,
            contact_id: self.contact_id,
            company_id: self.company_id,
            opportunity_id: self.opportunity_id,
            custom_fields: self
                .custom_fields
                .as_ref()
                .map(|v| custom_fields("customFields", v))
                .transpose()?,
            tags: self
                .tags
                .as_ref()
                .map(|t| tags("tags", t).map(|t| t.into_iter().map(Some).collect()))
                .transpose()?,
        })
    }
}

/// `completed_at` follows the status: set when a task becomes completed, cleared when it
/// leaves that status.
fn apply_status(changes: &mut TaskChanges, previous: Option<TaskStatus>) {
    let Some(status) = changes.status else {
        return;
    };
    if previous == Some(status) {
        return;
    }
    changes.completed_at = Some((status == TaskStatus::Completed).then(Utc::now));
}

impl CrmService {
    pub async fn create_task(&self, viewer: &Viewer, input: TaskInput) -> AppResult<Task> {
        self.create::<Task>(viewer, input).await
    }

    /// Marks a task completed (idempotent).
    pub async fn complete_task(&self, viewer: &Viewer, id: TaskId) -> AppResult<Task> {
        self.update::<Task>(
            viewer,
            id.0,
            TaskInput {
                status: Some(TaskStatus::Completed),
                ..Default::default()
            },
        )
        .await
    }
}

impl Editable for Task {
    type Input = TaskInput;
    type Changes = TaskChanges;

    super::edit::editable_rows!(tasks, TaskId, TaskChanges);

    fn validate(input: &TaskInput) -> AppResult<TaskChanges> {
        input.validate()
    }

    fn for_create(input: &TaskInput) -> AppResult<TaskChanges> {
        if input.title.is_none() {
            return Err(AppError::bad_input("title", "title must not be empty"));
        }
        let mut changes = input.validate()?;
        apply_status(&mut changes, None);
        Ok(changes)
    }

    /// Status moves stamp or clear `completed_at`; the reminder may not come after the due
    /// time, whichever of the two the patch changes.
    fn for_row(changes: &TaskChanges, current: &Self) -> AppResult<TaskChanges> {
        let mut changes = changes.clone();
        apply_status(&mut changes, Some(current.status));
        let due = changes.due_at.unwrap_or(current.due_at);
        let reminder = changes.reminder_at.unwrap_or(current.reminder_at);
        if let (Some(due), Some(reminder)) = (due, reminder) {
            if reminder > due {
                return Err(AppError::bad_input(
                    "reminderAt",
                    "reminderAt must not be after dueAt",
                ));
            }
        }
        Ok(changes)
    }

    async fn check_references(
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        changes: &TaskChanges,
    ) -> AppResult<()> {
        check_references(conn, viewer, changes).await
    }
}

/// Users and linked records must be ones the caller may use.
async fn check_references(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    changes: &TaskChanges,
) -> AppResult<()> {
    check_owner_and_assignee(
        conn,
        viewer,
        changes.owner_id.flatten(),
        changes.assigned_to_id.flatten(),
    )
    .await?;
    if let Some(company) = changes.company_id.flatten() {
        query::referenced::<Company>(conn, viewer, company.0, "companyId").await?;
    }
    if let Some(lead) = changes.lead_id.flatten() {
        query::referenced::<Lead>(conn, viewer, lead.0, "leadId").await?;
    }
    if let Some(contact) = changes.contact_id.flatten() {
        query::referenced::<Contact>(conn, viewer, contact.0, "contactId").await?;
    }
    if let Some(opportunity) = changes.opportunity_id.flatten() {
        query::referenced::<Opportunity>(conn, viewer, opportunity.0, "opportunityId").await?;
    }
    Ok(())
}
