//! `activityFeed` (what happened on the records you may see) and `timeline` (everything
//! about one record).

use async_graphql::{Context, InputObject, Object, Union, ID};
use chrono::{DateTime, Utc};

use super::activities::Activity;
use super::connection::EdgeCursor;
use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::history::{RecordEvent, RecordKind};
use super::ids::{decode_after, parse_id};
use super::notifications::Comment;
use crate::crm::events::FeedFilter;
use crate::notifications::timeline::{OlderThan, TimelineCursor, TimelineItem};
use crate::pagination::Page;

crate::graphql::connection::connection_types!(RecordEventConnection, RecordEventEdge, RecordEvent);
crate::graphql::connection::connection_types!(TimelineConnection, TimelineEdge, TimelineEntry);

/// Which changes the activity feed lists.
#[derive(InputObject, Default)]
pub struct ActivityFeedFilter {
    /// Only records of this kind.
    pub entity: Option<RecordKind>,
    /// Only these actions (created, updated, deleted, restored, converted, overdue, due_soon,
    /// score_changed).
    pub actions: Option<Vec<String>>,
    /// Only changes made by this user.
    pub actor_id: Option<ID>,
    /// Only changes from this moment on.
    pub since: Option<DateTime<Utc>>,
}

/// One entry of a record's timeline.
#[derive(Union)]
pub enum TimelineEntry {
    /// A call, email, meeting, note or comment activity logged on the record.
    Activity(Activity),
    /// A comment (with its thread position) on the record.
    Comment(Comment),
    /// A change to the record's fields.
    Change(RecordEvent),
}

#[derive(Default)]
pub struct FeedQuery;

#[Object]
impl FeedQuery {
    /// What happened on the records you may see, newest first: every create, update, delete,
    /// restore, conversion and due-date event (members: records they own or are assigned).
    async fn activity_feed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which changes.")] filter: Option<ActivityFeedFilter>,
        #[graphql(desc = "How many (1-200, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (older ones).")] after: Option<String>,
    ) -> async_graphql::Result<RecordEventConnection> {
        let viewer = viewer(ctx)?;
        let filter = filter.unwrap_or_default();
        let filter = FeedFilter {
            entity: filter.entity.map(|e| e.entity().to_string()),
            actions: filter.actions.unwrap_or_default(),
            actor_id: filter
                .actor_id
                .map(|id| parse_id("filter.actorId", &id))
                .transpose()
                .gql()?,
            since: filter.since,
        };
        let count = ctx.look_ahead().field("totalCount").exists();
        let page = app(ctx)
            .crm
            .activity_feed(
                viewer,
                &filter,
                decode_after(after.as_deref()).gql()?,
                i64::from(first.unwrap_or(20)),
                count,
            )
            .await
            .gql()?;
        Ok(RecordEventConnection::from_page(
            page,
            |e| e.id,
            RecordEvent::from,
        ))
    }

    /// Everything about one record you may see, newest first: its activities, comments and
    /// changes (at the same moment: changes, then comments, then activities). Page on with
    /// `after` set to `pageInfo.endCursor`.
    async fn record_timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of record.")] record_type: RecordKind,
        #[graphql(desc = "The record.")] record_id: ID,
        #[graphql(desc = "How many (1-200, default 50).", default = 50)] first: i32,
        #[graphql(desc = "Cursor to continue after (older entries).")] after: Option<String>,
    ) -> async_graphql::Result<TimelineConnection> {
        let older_than = after
            .map(|text| TimelineCursor::decode("after", &text).map(OlderThan::Entry))
            .transpose()
            .gql()?;
        let page = timeline_page(ctx, record_type, &record_id, first, older_than).await?;
        Ok(TimelineConnection::from_cursors(
            page.map(|item| (EdgeCursor::Timeline(item.cursor()), item)),
            TimelineEntry::from,
        ))
    }

    /// Everything about one record you may see, newest first. Paging by time skips entries
    /// that share the last entry's time; `recordTimeline` pages by cursor.
    #[graphql(
        deprecation = "Use recordTimeline: paging by time skips entries that share the boundary's time."
    )]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of record.")] record_type: RecordKind,
        #[graphql(desc = "The record.")] record_id: ID,
        #[graphql(desc = "How many (1-200, default 50).", default = 50)] first: i32,
        #[graphql(desc = "Only entries older than this.")] before: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Vec<TimelineEntry>> {
        let page = timeline_page(
            ctx,
            record_type,
            &record_id,
            first,
            before.map(OlderThan::Time),
        )
        .await?;
        Ok(page.items.into_iter().map(TimelineEntry::from).collect())
    }
}

async fn timeline_page(
    ctx: &Context<'_>,
    record_type: RecordKind,
    record_id: &ID,
    first: i32,
    older_than: Option<OlderThan>,
) -> async_graphql::Result<Page<TimelineItem>> {
    let viewer = viewer(ctx)?;
    let id = parse_id("recordId", record_id).gql()?;
    let app = app(ctx);
    app.notifications
        .timeline(
            &app.crm,
            viewer,
            record_type.entity(),
            id,
            older_than,
            i64::from(first),
        )
        .await
        .gql()
}

impl From<TimelineItem> for TimelineEntry {
    fn from(item: TimelineItem) -> Self {
        match item {
            TimelineItem::Activity(a) => TimelineEntry::Activity(Activity(a)),
            TimelineItem::Comment(c) => TimelineEntry::Comment(Comment(c)),
            TimelineItem::Change(e) => TimelineEntry::Change(RecordEvent::from(e)),
        }
    }
}
