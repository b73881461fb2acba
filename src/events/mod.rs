//! The change stream's read side: committed `record_events` are numbered in commit order
//! (`seal`) and handed to each registered consumer exactly once, in that order, by a cursor
//! per consumer that moves in the same transaction as the consumer's own writes
//! (`dispatcher`). Workflows, notifications and live subscriptions plug in as consumers.
//!
//! The write side (what an event holds, and writing it with the change) is `crm::events`.
//! Live subscriptions do not wait for the dispatcher: `live` pushes each event at commit.

pub mod dispatcher;
pub mod live;
pub mod seal;

use diesel::sql_types::{BigInt, Nullable};
use diesel::QueryableByName;
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;

/// The consumers of this build, each with its own cursor: lead rescoring and workflows;
/// notifications with live subscriptions (issue 8) will register here.
pub fn consumers(config: &crate::config::Config) -> Vec<std::sync::Arc<dyn Consumer>> {
    vec![
        std::sync::Arc::new(crate::scoring::jobs::LeadRescoring),
        std::sync::Arc::new(crate::workflows::engine::WorkflowEngine::new(
            config.workflows.clone(),
        )),
        std::sync::Arc::new(crate::notifications::feed::NotificationFeed::new(
            crate::notifications::gateways(&config.notifications),
        )),
    ]
}

/// The channel a statement-level trigger on `record_events` notifies.
pub const CHANNEL: &str = "mycrm_events";

/// One change to one record, as consumers get it: the event as every reader sees it
/// (`crm::events::RecordEvent`, its fields reachable directly) plus its stream position and
/// the workflow run that caused it.
#[derive(Debug, Clone, QueryableByName)]
pub struct RecordEvent {
    /// Position in the stream (commit order).
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(embed)]
    pub event: crate::crm::events::RecordEvent,
    /// The workflow run whose action made the change, if one did.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub caused_by_run: Option<i64>,
}

impl std::ops::Deref for RecordEvent {
    type Target = crate::crm::events::RecordEvent;

    fn deref(&self) -> &Self::Target {
        &self.event
    }
}

/// Something that acts on the change stream. `handle` gets the next events in order and the
/// connection of the transaction that will move this consumer's cursor past them: writes made
/// on it take effect exactly once. Side effects outside the database (mail, webhooks) belong
/// in jobs enqueued on that connection, so they too are enqueued exactly once.
///
/// An error rolls the whole batch back; the same events come again after a backoff.
pub trait Consumer: Send + Sync + 'static {
    /// Stable name: the cursor's key. Renaming a consumer starts a new cursor.
    fn name(&self) -> &'static str;

    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<(), String>>;
}
