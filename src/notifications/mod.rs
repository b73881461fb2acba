//! Notifications (issue 8): who hears about what, where and when.
//!
//! Everything that tells people something builds a [`Notice`] and calls [`notify_in`] in the
//! transaction of what it is about (a comment, a change-stream batch, a workflow step), so a
//! notification exists exactly when its cause does. `notify_in` drops the actor and anyone
//! who may not see the record, stores one in-app notification per recipient, and makes a
//! delivery (a job) per outside channel the recipient wants, held until their quiet hours end.
//!
//! - `preferences`: event types, channels, switches, digests, do-not-disturb (pure rules).
//! - `store`: the tables' SQL. `delivery`: the job that mails or POSTs to a gateway.
//! - `feed`: the change-stream consumer (assignments, updates, reminders).
//! - `comments`: comments, mentions and followers. `service`: the API's operations.

pub mod comments;
pub mod delivery;
pub mod digest;
pub mod feed;
pub mod preferences;
pub mod service;
pub mod store;
pub mod system;
pub mod timeline;

use chrono::Utc;
use diesel::sql_types::{Array, BigInt};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::config::NotificationConfig;
use crate::error::AppResult;
use crate::jobs::queue::enqueue_many_in;
use delivery::DeliverNotification;
use preferences::{Channel, Gateways, Kind};
use store::{NewDelivery, NewNotification, NotificationRow};

/// Something to tell some people.
#[derive(Debug, Clone)]
pub struct Notice {
    pub workspace_id: i64,
    pub kind: Kind,
    /// Who should hear it; the actor and people who may not see the record are dropped.
    pub recipients: Vec<i64>,
    pub title: String,
    pub message: String,
    /// The record it is about (`lead`, 12), if any.
    pub entity: Option<String>,
    pub record_id: Option<i64>,
    /// Who caused it (never told about their own doing).
    pub actor_id: Option<i64>,
    /// Details for clients: the changed fields, the comment, the job.
    pub data: Value,
}

/// The channels this server can deliver on.
pub fn gateways(config: &NotificationConfig) -> Gateways {
    Gateways {
        push: config.push.is_some(),
        sms: config.sms.is_some(),
    }
}

/// Stores the notice's notifications and queues their deliveries, in the caller's
/// transaction. Returns the notifications made.
pub async fn notify_in(
    conn: &mut AsyncPgConnection,
    gateways: Gateways,
    notice: &Notice,
) -> AppResult<Vec<NotificationRow>> {
    let mut candidates = notice.recipients.clone();
    candidates.sort_unstable();
    candidates.dedup();
    candidates.retain(|u| Some(*u) != notice.actor_id);
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let users = audience(conn, notice, &candidates).await?;
    let prefs = store::preferences(conn, &users).await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut outside: Vec<(i64, Vec<Channel>)> = Vec::new();
    for user in &users {
        let Some(p) = prefs.get(user) else { continue };
        let channels: Vec<Channel> = Channel::OUTSIDE
            .into_iter()
            .filter(|c| p.wants(notice.kind, *c))
            .filter(|c| match c {
                Channel::Push => gateways.push,
                Channel::Sms => gateways.sms && p.sms_number.is_some(),
                _ => true,
            })
            .collect();
        let in_app = p.wants(notice.kind, Channel::InApp);
        if !in_app && channels.is_empty() {
            continue;
        }
        rows.push(NewNotification {
            user_id: *user,
            read: !in_app,
            notice,
        });
        outside.push((*user, channels));
    }
    let made = store::insert_notifications(conn, &rows).await?;
    let mut deliveries = Vec::new();
    for (row, (user, channels)) in made.iter().zip(&outside) {
        let deliver_at = prefs[user].deliver_at(now);
        for channel in channels {
            deliveries.push(NewDelivery {
                notification_id: row.id,
                user_id: *user,
                channel: *channel,
                deliver_at,
                held: deliver_at > now,
            });
        }
    }
    let ids = store::insert_deliveries(conn, &deliveries).await?;
    let jobs: Vec<_> = ids
        .iter()
        .zip(&deliveries)
        .map(|(id, d)| DeliverNotification::job(notice.workspace_id, *id, d.deliver_at))
        .collect();
    enqueue_many_in(conn, &jobs).await?;
    Ok(made)
}

/// The candidates who are active users of the workspace and may see the record, if any.
async fn audience(
    conn: &mut AsyncPgConnection,
    notice: &Notice,
    candidates: &[i64],
) -> AppResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let table = notice
        .entity
        .as_deref()
        .and_then(crate::crm::query::table_of);
    let ids: Vec<Id> = match (table, notice.record_id) {
        (Some(table), Some(record)) => {
            diesel::sql_query(format!(
                "{} AND u.workspace_id = $3 ORDER BY u.id",
                crate::crm::query::users_who_see(&table)
            ))
            .bind::<BigInt, _>(record)
            .bind::<Array<BigInt>, _>(candidates)
            .bind::<BigInt, _>(notice.workspace_id)
            .load(conn)
            .await?
        }
        _ => {
            diesel::sql_query(
                "SELECT id FROM users WHERE workspace_id = $1 AND id = ANY($2) AND is_active \
                 ORDER BY id",
            )
            .bind::<BigInt, _>(notice.workspace_id)
            .bind::<Array<BigInt>, _>(candidates)
            .load(conn)
            .await?
        }
    };
    Ok(ids.into_iter().map(|i| i.id).collect())
}
