//! Activities over GraphQL: the `Activity` type, `logActivity`, and the `activities` field of
//! every record (batched per request).

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::companies::Company;
use super::contacts::Contact;
use super::context::{app, linked, viewer};
use super::errors::GqlResultExt;
use super::ids::{parse_id, to_id};
use super::leads::{load_user, Lead};
use super::loaders::ActivitiesLoader;
use super::opportunities::Opportunity;
use super::tasks::Task;
use super::users::User;
use crate::crm::activities::{self as domain, RecordRef};
use crate::error::AppResult;

/// What happened.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ActivityKind", remote = "crate::crm::activities::ActivityKind")]
pub enum ActivityKindValue {
    /// A note for the team.
    Note,
    /// A phone call (counts as contact).
    Call,
    /// An email (counts as contact).
    Email,
    /// A meeting (counts as contact).
    Meeting,
    /// A comment.
    Comment,
}

pub struct Activity(pub domain::Activity);

/// Something that happened on a record: a note, call, email, meeting or comment.
#[Object]
impl Activity {
    /// Unique ID of the activity.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// What happened.
    async fn kind(&self) -> ActivityKindValue {
        self.0.kind.into()
    }
    /// Short summary.
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
    /// Details.
    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }
    /// When it happened.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// Who logged it.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.actor_id).await
    }
    /// The lead it is about, when you may see it.
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(linked(ctx, self.0.lead_id).await?.map(Lead))
    }
    /// The contact it is about, when you may see them.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(linked(ctx, self.0.contact_id).await?.map(Contact))
    }
    /// The company it is about, when you may see it.
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Company>> {
        Ok(linked(ctx, self.0.company_id).await?.map(Company))
    }
    /// The opportunity it is about, when you may see it.
    async fn opportunity(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Opportunity>> {
        Ok(linked(ctx, self.0.opportunity_id).await?.map(Opportunity))
    }
    /// The task it is about, when you may see it.
    async fn task(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Task>> {
        Ok(linked(ctx, self.0.task_id).await?.map(Task))
    }
    /// The workspace's own fields, as a JSON object.
    async fn custom_fields(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.custom_fields.clone())
    }
    /// Labels.
    async fn tags(&self) -> Vec<String> {
        self.0.tag_list()
    }
    /// When it was logged.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The newest activities of a record (at most 50), batched across the records of a request.
pub async fn activities_of(
    ctx: &Context<'_>,
    record: RecordRef,
) -> async_graphql::Result<Vec<Activity>> {
    Ok(super::context::loader::<ActivitiesLoader>(ctx)
        .load_one(record)
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(Activity)
        .collect())
}

/// Input of `logActivity`: give exactly one record.
#[derive(InputObject)]
pub struct LogActivityInput {
    /// What happened.
    pub kind: ActivityKindValue,
    /// Short summary (a subject or a body is required).
    pub subject: Option<String>,
    /// Details.
    pub body: Option<String>,
    /// When it happened (default now; not in the future).
    pub occurred_at: Option<DateTime<Utc>>,
    /// On this lead.
    pub lead_id: Option<ID>,
    /// On this contact.
    pub contact_id: Option<ID>,
    /// On this company.
    pub company_id: Option<ID>,
    /// On this opportunity.
    pub opportunity_id: Option<ID>,
    /// On this task.
    pub task_id: Option<ID>,
    /// The workspace's own fields (a JSON object of at most 16 KB).
    pub custom_fields: Option<async_graphql::Json<serde_json::Value>>,
    /// Labels (at most 50 of at most 50 characters; duplicates ignoring case dropped).
    pub tags: Option<Vec<String>>,
}

/// An optional record argument: its field name, the value, and which kind of record it is.
type Target<'a> = (&'a str, Option<ID>, fn(i64) -> RecordRef);

impl LogActivityInput {
    fn into_domain(self) -> AppResult<domain::LogActivity> {
        let mut records = Vec::new();
        let targets: [Target; 5] = [
            ("leadId", self.lead_id, RecordRef::Lead),
            ("contactId", self.contact_id, RecordRef::Contact),
            ("companyId", self.company_id, RecordRef::Company),
            ("opportunityId", self.opportunity_id, RecordRef::Opportunity),
            ("taskId", self.task_id, RecordRef::Task),
        ];
        for (field, id, kind) in targets {
            if let Some(id) = id {
                records.push(kind(parse_id(field, &id)?));
            }
        }
        Ok(domain::LogActivity {
            kind: self.kind.into(),
            subject: self.subject,
            body: self.body,
            occurred_at: self.occurred_at,
            records,
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
        })
    }
}

/// The result of `logActivity`.
#[derive(SimpleObject)]
pub struct ActivityPayload {
    /// The logged activity.
    pub activity: Activity,
}

#[derive(Default)]
pub struct ActivityMutation;

#[Object]
impl ActivityMutation {
    /// Logs a note, call, email, meeting or comment on a record you may see. A call, email or
    /// meeting on a lead updates its `lastContactedAt`.
    async fn log_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What happened and on which record.")] input: LogActivityInput,
    ) -> async_graphql::Result<ActivityPayload> {
        let viewer = viewer(ctx)?;
        let input = input.into_domain().gql()?;
        let activity = app(ctx).crm.log_activity(viewer, input).await.gql()?;
        Ok(ActivityPayload {
            activity: Activity(activity),
        })
    }
}
