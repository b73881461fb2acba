//! Live subscriptions fed by `events::live`: `notificationReceived` and `recordChanged`. They
//! work over `/graphql/ws` with a logged-in connection; the socket owner closes the connection
//! when the hub drops it (slow subscriber, ended session).

use async_graphql::{Context, Subscription, ID};
use futures_util::{Stream, StreamExt};

use super::context::{app, viewer};
use super::errors::{to_graphql_error, GqlResultExt};
use super::history::{RecordEvent, RecordKind};
use super::ids::parse_id;
use super::notifications::Notification;
use crate::error::AppError;
use crate::events::live::{LiveConnection, RecordFilter};

#[derive(Default)]
pub struct LiveSubscription;

fn connection<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a LiveConnection> {
    ctx.data_opt::<LiveConnection>().ok_or_else(|| {
        to_graphql_error(AppError::unauthenticated(
            "live subscriptions need a WebSocket connection opened with an access token",
        ))
    })
}

#[Subscription]
impl LiveSubscription {
    /// Your notifications as they are made (only yours; ones stored already read, because you
    /// switched the bell off for their type, are not pushed). Delivered whichever server
    /// process made them.
    async fn notification_received(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Notification>> {
        let viewer = viewer(ctx)?;
        let feed = app(ctx)
            .live
            .notifications(connection(ctx)?, viewer)
            .await
            .gql()?;
        Ok(feed.map(|row| Notification((*row).clone())))
    }

    /// Changes to records you may see, at commit: all of them, those of one kind (`entity`),
    /// or one record (`entity` and `id`; NOT_FOUND when you may not see it). Members get the
    /// records they own or are assigned.
    async fn record_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only records of this kind.")] entity: Option<RecordKind>,
        #[graphql(desc = "Only this record (needs `entity`).")] id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = RecordEvent>> {
        let viewer = viewer(ctx)?;
        let record_id = id.map(|id| parse_id("id", &id)).transpose().gql()?;
        if record_id.is_some() && entity.is_none() {
            return Err(AppError::bad_input(
                "entity",
                "give the kind of the record `id` names",
            ))
            .gql();
        }
        let filter = RecordFilter {
            entity: entity.map(|e| e.entity().to_string()),
            record_id,
        };
        let feed = app(ctx)
            .live
            .records(connection(ctx)?, viewer, filter)
            .await
            .gql()?;
        Ok(feed.map(RecordEvent))
    }
}
