//! Tasks over GraphQL: the `Task` type, `task`/`tasks` (with `overdue` and `dueToday`), and
//! create, update, complete, delete, restore.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, ID};
use chrono::{DateTime, Utc};

use super::companies::Company;
use super::connection::connection_types;
use super::contacts::Contact;
use super::context::{app, linked, viewer};
use super::errors::GqlResultExt;
use super::filters::{
    combine, is_me, maybe, CustomFieldFilter, DateTimeFilter, EntityFilter, EnumFilter, IdFilter,
    StoredAs, StringFilter,
};
use super::ids::{parse_id, to_id};
use super::leads::{load_user, Lead, PriorityValue};
use super::opportunities::Opportunity;
use super::prefetch;
use super::record_api::record_api;
use super::users::User;
use crate::auth::{UserId, Viewer};
use crate::crm::activities::RecordRef;
use crate::crm::companies::CompanyId;
use crate::crm::contacts::ContactId;
use crate::crm::leads::LeadId;
use crate::crm::opportunities::OpportunityId;
use crate::crm::query::{Predicate, Target};
use crate::crm::tasks::{self as domain, TaskField, TaskId, TaskSort};
use crate::error::AppResult;

/// What kind of work a task is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "TaskType", remote = "crate::crm::tasks::TaskType")]
pub enum TaskTypeValue {
    /// A phone call.
    Call,
    /// An email to write.
    Email,
    /// A meeting.
    Meeting,
    /// A follow-up.
    FollowUp,
    /// A proposal to prepare.
    Proposal,
    /// A product demo.
    Demo,
    /// Anything else.
    Other,
}

/// Where a task stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "TaskStatus", remote = "crate::crm::tasks::TaskStatus")]
pub enum TaskStatusValue {
    /// Not started.
    Pending,
    /// Being worked on.
    InProgress,
    /// Done.
    Completed,
    /// Dropped.
    Cancelled,
}

impl StoredAs for TaskTypeValue {
    fn stored(&self) -> &'static str {
        domain::TaskType::from(*self).as_str()
    }
}

impl StoredAs for TaskStatusValue {
    fn stored(&self) -> &'static str {
        domain::TaskStatus::from(*self).as_str()
    }
}

pub struct Task(pub domain::Task);

/// Something to do, optionally about a lead, contact, company or opportunity.
#[Object]
impl Task {
    /// Unique ID of the task.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// What to do.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Details.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Kind of work.
    async fn task_type(&self) -> TaskTypeValue {
        self.0.task_type.into()
    }
    /// Status.
    async fn status(&self) -> TaskStatusValue {
        self.0.status.into()
    }
    /// Priority.
    async fn priority(&self) -> PriorityValue {
        self.0.priority.into()
    }
    /// When it is due.
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }
    /// When to remind the assignee.
    async fn reminder_at(&self) -> Option<DateTime<Utc>> {
        self.0.reminder_at
    }
    /// When it was completed.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// Open and past its due time.
    async fn is_overdue(&self) -> bool {
        use domain::TaskStatus::{InProgress, Pending};
        matches!(self.0.status, Pending | InProgress)
            && self.0.due_at.is_some_and(|d| d < Utc::now())
    }
    /// The lead it is about, when you may see it.
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(linked(ctx, self.0.lead_id.map(|i| i.0)).await?.map(Lead))
    }
    /// The contact it is about, when you may see them.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(linked(ctx, self.0.contact_id.map(|i| i.0))
            .await?
            .map(Contact))
    }
    /// The company it is about, when you may see it.
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Company>> {
        Ok(linked(ctx, self.0.company_id.map(|i| i.0))
            .await?
            .map(Company))
    }
    /// The opportunity it is about, when you may see it.
    async fn opportunity(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Opportunity>> {
        Ok(linked(ctx, self.0.opportunity_id.map(|i| i.0))
            .await?
            .map(Opportunity))
    }
    /// The workspace's own fields, as a JSON object.
    async fn custom_fields(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.custom_fields.clone())
    }
    /// Labels.
    async fn tags(&self) -> Vec<String> {
        self.0.tag_list()
    }
    /// Who should do it.
    async fn assigned_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.assigned_to_id).await
    }
    /// Who created it.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.owner_id).await
    }
    /// Notes, calls, emails, meetings and comments on it, newest first (at most 50).
    async fn activities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::activities::Activity>> {
        super::activities::activities_of(ctx, crate::crm::activities::RecordRef::Task(self.0.id.0))
            .await
    }
    /// When the task was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the task was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the task was deleted (it can be restored), if it was.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

connection_types!(TaskConnection, TaskEdge, Task);

/// Narrows a list of tasks. Every condition given must hold; combine with `and`, `or`,
/// `not`.
#[derive(InputObject, Default)]
pub struct TaskFilter {
    /// By ID.
    pub id: Option<IdFilter>,
    /// By title.
    pub title: Option<StringFilter>,
    /// By kind.
    pub task_type: Option<EnumFilter<TaskTypeValue>>,
    /// By status.
    pub status: Option<EnumFilter<TaskStatusValue>>,
    /// By priority.
    pub priority: Option<EnumFilter<PriorityValue>>,
    /// By due time.
    pub due_at: Option<DateTimeFilter>,
    /// By reminder time.
    pub reminder_at: Option<DateTimeFilter>,
    /// By completion time.
    pub completed_at: Option<DateTimeFilter>,
    /// By assignee.
    pub assigned_to_id: Option<IdFilter>,
    /// By creator.
    pub created_by_id: Option<IdFilter>,
    /// By lead.
    pub lead_id: Option<IdFilter>,
    /// By contact.
    pub contact_id: Option<IdFilter>,
    /// By company.
    pub company_id: Option<IdFilter>,
    /// By opportunity.
    pub opportunity_id: Option<IdFilter>,
    /// By creation time.
    pub created_at: Option<DateTimeFilter>,
    /// By last change.
    pub updated_at: Option<DateTimeFilter>,
    /// Tasks carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// By custom fields.
    pub custom: Option<Vec<CustomFieldFilter>>,
    /// Open (pending or in progress) and due before now (true), or not (false).
    pub overdue: Option<bool>,
    /// Due today, UTC (true), or not (false).
    pub due_today: Option<bool>,
    /// Only tasks assigned to you (true) or not (false).
    pub assigned_to_me: Option<bool>,
    /// Only tasks you created (true) or not (false).
    pub created_by_me: Option<bool>,
    /// Include deleted tasks (top level only).
    pub include_deleted: Option<bool>,
    /// All of these hold.
    pub and: Option<Vec<TaskFilter>>,
    /// At least one of these holds.
    pub or: Option<Vec<TaskFilter>>,
    /// This does not hold.
    pub not: Option<Box<TaskFilter>>,
}

fn either<F>(wanted: Option<bool>, predicate: Predicate<F>) -> Option<Predicate<F>> {
    wanted.map(|yes| {
        if yes {
            predicate
        } else {
            Predicate::Not(Box::new(predicate))
        }
    })
}

impl EntityFilter for TaskFilter {
    type Field = TaskField;

    fn include_deleted(&self) -> bool {
        self.include_deleted == Some(true)
    }

    fn predicate(self, viewer: &Viewer) -> AppResult<Predicate<TaskField>> {
        use TaskField as F;
        let f = Target::Field;
        let mut all = Vec::new();
        macro_rules! checked {
            ($($name:ident => $field:expr, $label:literal;)*) => {
                $(if let Some(filter) = self.$name { all.extend(filter.predicates($label, f($field))?); })*
            };
        }
        checked! {
            id => F::Id, "id";
            title => F::Title, "title";
            assigned_to_id => F::AssignedToId, "assignedToId";
            created_by_id => F::OwnerId, "createdById";
            lead_id => F::LeadId, "leadId";
            contact_id => F::ContactId, "contactId";
            company_id => F::CompanyId, "companyId";
            opportunity_id => F::OpportunityId, "opportunityId";
            due_at => F::DueAt, "dueAt";
            reminder_at => F::ReminderAt, "reminderAt";
            completed_at => F::CompletedAt, "completedAt";
            created_at => F::CreatedAt, "createdAt";
            updated_at => F::UpdatedAt, "updatedAt";
            task_type => F::TaskType, "taskType";
            status => F::Status, "status";
            priority => F::Priority, "priority";
        }
        if let Some(tags) = self.tags {
            all.push(Predicate::HasTags(tags));
        }
        for custom in self.custom.into_iter().flatten() {
            all.extend(custom.predicates()?);
        }
        let now = Utc::now();
        all.extend(either(self.overdue, domain::overdue(now)));
        all.extend(either(self.due_today, domain::due_today(now)));
        all.extend(is_me(F::AssignedToId, viewer, self.assigned_to_me));
        all.extend(is_me(F::OwnerId, viewer, self.created_by_me));
        combine(&mut all, viewer, self.and, self.or, self.not)?;
        Ok(Predicate::All(all))
    }
}

/// What tasks can be ordered by.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::crm::tasks::TaskSort")]
pub enum TaskOrderField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Due time.
    DueAt,
    /// Priority (low < medium < high < urgent).
    Priority,
    /// Title.
    Title,
}

/// The writable fields of a task. On update, omitted fields stay as they are and `null`
/// clears a field.
#[derive(InputObject, Default)]
pub struct TaskInput {
    /// What to do (required when creating).
    pub title: Option<String>,
    /// Details.
    pub description: MaybeUndefined<String>,
    /// Kind of work (default OTHER).
    pub task_type: Option<TaskTypeValue>,
    /// Status (default PENDING). COMPLETED sets completedAt.
    pub status: Option<TaskStatusValue>,
    /// Priority (default MEDIUM).
    pub priority: Option<PriorityValue>,
    /// When it is due.
    pub due_at: MaybeUndefined<DateTime<Utc>>,
    /// When to remind (not after dueAt).
    pub reminder_at: MaybeUndefined<DateTime<Utc>>,
    /// Who should do it: a user of your workspace.
    pub assigned_to_id: MaybeUndefined<ID>,
    /// Creator (default: you). Members may only create tasks as themselves.
    pub created_by_id: Option<ID>,
    /// The lead it is about.
    pub lead_id: MaybeUndefined<ID>,
    /// The contact it is about.
    pub contact_id: MaybeUndefined<ID>,
    /// The company it is about.
    pub company_id: MaybeUndefined<ID>,
    /// The opportunity it is about.
    pub opportunity_id: MaybeUndefined<ID>,
    /// The workspace's own fields, as a JSON object (replaces the whole object).
    pub custom_fields: Option<async_graphql::Json<serde_json::Value>>,
    /// Labels (replaces the whole list).
    pub tags: Option<Vec<String>>,
}

/// A link argument: absent, cleared, or a parsed ID.
fn link<T>(
    field: &str,
    value: MaybeUndefined<ID>,
    wrap: fn(i64) -> T,
) -> AppResult<Option<Option<T>>> {
    maybe(value)
        .map(|v| v.map(|i| parse_id(field, &i).map(wrap)).transpose())
        .transpose()
}

impl TaskInput {
    fn into_domain(self) -> AppResult<domain::TaskInput> {
        Ok(domain::TaskInput {
            title: self.title,
            description: maybe(self.description),
            task_type: self.task_type.map(Into::into),
            status: self.status.map(Into::into),
            priority: self.priority.map(Into::into),
            due_at: maybe(self.due_at),
            reminder_at: maybe(self.reminder_at),
            assigned_to_id: link("assignedToId", self.assigned_to_id, UserId)?,
            owner_id: self
                .created_by_id
                .map(|i| parse_id("createdById", &i).map(UserId))
                .transpose()?,
            lead_id: link("leadId", self.lead_id, LeadId)?,
            contact_id: link("contactId", self.contact_id, ContactId)?,
            company_id: link("companyId", self.company_id, CompanyId)?,
            opportunity_id: link("opportunityId", self.opportunity_id, OpportunityId)?,
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
        })
    }
}

impl Task {
    /// Loads the relations a list page's rows select, one query each (see `prefetch`).
    pub(crate) async fn prefetch(
        ctx: &Context<'_>,
        rows: &[&domain::Task],
    ) -> async_graphql::Result<()> {
        let rows = || rows.iter();
        futures_util::try_join!(
            prefetch::users(ctx, "createdBy", rows().map(|r| r.owner_id).collect()),
            prefetch::users(
                ctx,
                "assignedTo",
                rows().map(|r| r.assigned_to_id).collect()
            ),
            prefetch::records::<crate::crm::leads::Lead>(
                ctx,
                "lead",
                rows().map(|r| r.lead_id.map(|i| i.0)).collect()
            ),
            prefetch::records::<crate::crm::contacts::Contact>(
                ctx,
                "contact",
                rows().map(|r| r.contact_id.map(|i| i.0)).collect(),
            ),
            prefetch::records::<crate::crm::companies::Company>(
                ctx,
                "company",
                rows().map(|r| r.company_id.map(|i| i.0)).collect(),
            ),
            prefetch::records::<crate::crm::opportunities::Opportunity>(
                ctx,
                "opportunity",
                rows().map(|r| r.opportunity_id.map(|i| i.0)).collect(),
            ),
            prefetch::activities(ctx, rows().map(|r| RecordRef::Task(r.id.0)).collect()),
        )?;
        Ok(())
    }
}

record_api!(
    object: Task, domain: crate::crm::tasks::Task, what: "task",
    filter: TaskFilter, order: TaskOrderField, default_sort: TaskSort::CreatedAt, input: TaskInput,
    connection: TaskConnection, payload: TaskPayload { task },
    query: TaskQuery {
        task: "A task you may see (deleted ones included).",
        tasks: "The tasks you may see: members those they created or are assigned. Newest first unless `orderBy` says otherwise.",
        search: "Text to find in the title.",
    },
    mutation: TaskMutation {
        create_task: "Creates a task.",
        update_task,
        delete_task,
        restore_task,
        bulk_update_tasks,
        bulk_delete_tasks,
    },
    service: { create_task },
);

/// Task mutations beyond create, update and delete.
#[derive(Default)]
pub struct TaskActions;

#[Object]
impl TaskActions {
    /// Marks a task completed (doing it twice changes nothing).
    async fn complete_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's ID.")] id: ID,
    ) -> async_graphql::Result<TaskPayload> {
        let viewer = viewer(ctx)?;
        let id = TaskId(parse_id("id", &id).gql()?);
        let task = app(ctx).crm.complete_task(viewer, id).await.gql()?;
        Ok(TaskPayload { task: Task(task) })
    }
}
