//! The change-stream consumer that tells people about records: an assignment to its new
//! assignee, a change (which fields) to the record's owner, assignee and followers, a task
//! due soon or overdue to its assignee (or owner). Notifications are made in the consumer's
//! transaction, so each event notifies exactly once whatever restarts.

use std::collections::{BTreeSet, HashMap};

use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::preferences::{Gateways, Kind};
use super::{notify_in, store, Notice};
use crate::crm::query::table_of;
use crate::error::AppResult;
use crate::events::{Consumer, RecordEvent};

pub struct NotificationFeed {
    gateways: Gateways,
}

impl NotificationFeed {
    pub fn new(gateways: Gateways) -> Self {
        NotificationFeed { gateways }
    }
}

impl Consumer for NotificationFeed {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for notice in notices(conn, events).await.map_err(|e| e.to_string())? {
                notify_in(conn, self.gateways, &notice)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

/// Owner, assignee and label of one record.
pub(super) async fn record_people(
    conn: &mut AsyncPgConnection,
    entity: &str,
    id: i64,
) -> AppResult<Option<(Option<i64>, Option<i64>, String)>> {
    Ok(crate::crm::query::record_people(conn, entity, &[id])
        .await?
        .remove(&id)
        .map(|p| (p.owner_id, p.assigned_to_id, p.label)))
}

/// Users' names by ID.
pub(super) async fn names(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> AppResult<HashMap<i64, String>> {
    let users = crate::auth::users::briefs(conn, None, ids).await?;
    Ok(users.into_iter().map(|(id, u)| (id, u.name)).collect())
}

/// `assigned_to_id` → `assigned to`.
fn field_name(column: &str) -> String {
    column.trim_end_matches("_id").replace('_', " ")
}

pub(super) fn kind_name(entity: &str) -> String {
    let mut chars = entity.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The notices a batch of events makes.
pub async fn notices(
    conn: &mut AsyncPgConnection,
    events: &[RecordEvent],
) -> AppResult<Vec<Notice>> {
    let relevant: Vec<&RecordEvent> = events
        .iter()
        .filter(|e| table_of(&e.entity).is_some())
        .filter(|e| {
            matches!(
                e.action.as_str(),
                "created"
                    | "updated"
                    | "converted"
                    | "deleted"
                    | "restored"
                    | "due_soon"
                    | "overdue"
            )
        })
        .collect();
    if relevant.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_entity: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    for event in &relevant {
        by_entity
            .entry(event.entity.as_str())
            .or_default()
            .insert(event.record_id);
    }
    let mut records = HashMap::new();
    let mut followers = HashMap::new();
    for (entity, ids) in by_entity {
        let ids: Vec<i64> = ids.into_iter().collect();
        for (id, p) in crate::crm::query::record_people(conn, entity, &ids).await? {
            records.insert((entity.to_string(), id), p);
        }
        for (id, users) in store::followers(conn, entity, &ids).await? {
            followers.insert((entity.to_string(), id), users);
        }
    }
    let actors: Vec<i64> = relevant.iter().filter_map(|e| e.actor_id).collect();
    let names = names(conn, &actors).await?;
    let mut notices = Vec::new();
    for event in relevant {
        let key = (event.entity.clone(), event.record_id);
        let Some(record) = records.get(&key) else {
            continue;
        };
        let actor = event
            .actor_id
            .and_then(|a| names.get(&a).cloned())
            .unwrap_or_else(|| "MyCRM".to_string());
        let kind = kind_name(&event.entity);
        let label = &record.label;
        let base = |kind: Kind, recipients: Vec<i64>, title: String, message: String| Notice {
            workspace_id: event.workspace_id,
            kind,
            recipients,
            title,
            message,
            entity: Some(event.entity.clone()),
            record_id: Some(event.record_id),
            actor_id: event.actor_id,
            data: json!({ "event_id": event.id, "action": event.action }),
        };
        if matches!(event.action.as_str(), "due_soon" | "overdue") {
            let Some(to) = record.assigned_to_id.or(record.owner_id) else {
                continue;
            };
            let (title, message) = if event.action == "due_soon" {
                (
                    format!("Due soon: {label}"),
                    format!("{kind} {label} is due within 24 hours."),
                )
            } else {
                (
                    format!("Overdue: {label}"),
                    format!("{kind} {label} is past its due date."),
                )
            };
            notices.push(base(Kind::Reminder, vec![to], title, message));
            continue;
        }
        let assignee = (event.action != "deleted")
            .then(|| {
                event
                    .changes
                    .pointer("/assigned_to_id/new")
                    .and_then(Value::as_i64)
            })
            .flatten();
        if let Some(to) = assignee {
            notices.push(base(
                Kind::Assignment,
                vec![to],
                format!("{kind} assigned to you: {label}"),
                format!("{actor} assigned {} {label} to you.", event.entity),
            ));
        }
        if event.action == "created" {
            continue;
        }
        let mut audience: Vec<i64> = record
            .owner_id
            .into_iter()
            .chain(record.assigned_to_id)
            .chain(followers.get(&key).into_iter().flatten().copied())
            .filter(|u| Some(*u) != assignee)
            .collect();
        audience.sort_unstable();
        audience.dedup();
        let fields: Vec<String> = event
            .changes
            .as_object()
            .map(|c| c.keys().map(|k| field_name(k)).collect())
            .unwrap_or_default();
        let (title, message) = match event.action.as_str() {
            "deleted" => (
                format!("{kind} deleted: {label}"),
                format!("{actor} deleted {} {label}.", event.entity),
            ),
            "restored" => (
                format!("{kind} restored: {label}"),
                format!("{actor} restored {} {label}.", event.entity),
            ),
            "converted" => (
                format!("{kind} converted: {label}"),
                format!("{actor} converted {} {label}.", event.entity),
            ),
            _ if fields.is_empty() => continue,
            _ => (
                format!("{kind} updated: {label}"),
                format!("{actor} changed {}.", fields.join(", ")),
            ),
        };
        let mut notice = base(Kind::Update, audience, title, message);
        notice.data["fields"] = json!(fields);
        notices.push(notice);
    }
    Ok(notices)
}
