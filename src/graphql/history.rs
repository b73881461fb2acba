//! `recordHistory`: who changed what and when, from the change stream.

use async_graphql::{Context, Enum, Object, ID};
use chrono::{DateTime, Utc};

use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::ids::{parse_id, to_id};
use super::leads::load_user;
use super::users::User;
use crate::auth::UserId;
use crate::crm::events::RecordEvent as Event;
use crate::crm::{companies, contacts, leads, opportunities, tasks};
use crate::pagination::size_within;

/// A kind of CRM record.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::workflows::definition::Entity")]
pub enum RecordKind {
    /// A lead.
    Lead,
    /// A contact.
    Contact,
    /// A company.
    Company,
    /// An opportunity.
    Opportunity,
    /// A task.
    Task,
}

impl RecordKind {
    /// As the change stream and the tables name it.
    pub fn entity(self) -> &'static str {
        crate::workflows::definition::Entity::from(self).name()
    }

    pub fn from_entity(entity: &str) -> Option<RecordKind> {
        crate::workflows::definition::Entity::parse(entity).map(Into::into)
    }
}

/// One change to a record (shared: live subscribers get the same event).
pub struct RecordEvent(pub std::sync::Arc<Event>);

/// One change to a record.
#[Object]
impl RecordEvent {
    /// The event's ID (events are ordered by it).
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The record's kind.
    async fn entity(&self) -> Option<RecordKind> {
        RecordKind::from_entity(&self.0.entity)
    }
    /// The record's ID.
    async fn record_id(&self) -> ID {
        to_id(self.0.record_id)
    }
    /// created, updated, deleted, restored or converted.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Who made the change.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.actor_id.map(UserId)).await
    }
    /// The fields that changed, as stored (snake_case columns): `{"status": {"old": "new",
    /// "new": "contacted"}}`; on create, every field that was set.
    async fn changes(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.changes.clone())
    }
    /// When.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
}

impl From<Event> for RecordEvent {
    fn from(event: Event) -> Self {
        RecordEvent(std::sync::Arc::new(event))
    }
}

#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// The changes of a record you may see, newest first.
    async fn record_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The record's kind.")] entity: RecordKind,
        #[graphql(desc = "The record's ID.")] id: ID,
        #[graphql(desc = "How many, newest first (1-200, default 50).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<RecordEvent>> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        let limit = size_within("first", i64::from(first.unwrap_or(50)), 200).gql()?;
        let crm = &app(ctx).crm;
        let events = match entity {
            RecordKind::Lead => crm.record_history::<leads::Lead>(viewer, id, limit).await,
            RecordKind::Contact => {
                crm.record_history::<contacts::Contact>(viewer, id, limit)
                    .await
            }
            RecordKind::Company => {
                crm.record_history::<companies::Company>(viewer, id, limit)
                    .await
            }
            RecordKind::Opportunity => {
                crm.record_history::<opportunities::Opportunity>(viewer, id, limit)
                    .await
            }
            RecordKind::Task => crm.record_history::<tasks::Task>(viewer, id, limit).await,
        }
        .gql()?;
        Ok(events.into_iter().map(RecordEvent::from).collect())
    }
}
