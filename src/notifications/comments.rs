//! Comments on records, with @mentions and threaded replies, and the followers of records.
//!
//! A mention is `@` and a user's email (`@dana@example.com`) or handle, the part of their
//! email before the `@` (`@dana`; a handle two users share mentions neither). Mentioned users
//! get a `mention` notification; the record's owner, assignee and followers (and the author
//! of the comment replied to) get a `comment` one. Only people who may see the record hear
//! of it. Commenting on a record follows it.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::feed::{kind_name, names, record_people};
use super::preferences::Kind;
use super::service::NotificationService;
use super::{notify_in, Notice};
use crate::auth::Viewer;
use crate::crm::query::{require_visible, table_of};
use crate::error::{AppError, AppResult};

/// The longest comment.
pub const MAX_BODY: usize = 10_000;

/// Comments of one record listed at most.
pub const MAX_LISTED: i64 = 500;

#[derive(Debug, Clone, QueryableByName)]
pub struct CommentRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub entity: String,
    #[diesel(sql_type = BigInt)]
    pub record_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub parent_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub author_id: i64,
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = Array<BigInt>)]
    pub mentions: Vec<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub edited_at: Option<DateTime<Utc>>,
}

pub(super) const COMMENT_COLUMNS: &str =
    "id, entity, record_id, parent_id, author_id, body, mentions, created_at, edited_at";

/// The `@...` tokens of a body, lower-cased, in order, without repeats.
pub fn mention_tokens(body: &str) -> Vec<String> {
    let chars: Vec<char> = body.chars().collect();
    let allowed = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    let mut tokens: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '@' && (i == 0 || !allowed(chars[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && allowed(chars[j]) {
            j += 1;
        }
        let token: String = chars[i + 1..j].iter().collect::<String>();
        let token = token.trim_end_matches(['.', '-', '@']).to_lowercase();
        if !token.is_empty() && !tokens.contains(&token) {
            tokens.push(token);
        }
        i = j;
    }
    tokens
}

/// The active users of the workspace the tokens name.
async fn resolve_mentions(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
    tokens: &[String],
) -> AppResult<Vec<i64>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<(String, i64)> = crate::imports::engine::active_users(conn, workspace_id)
        .await?
        .into_iter()
        .collect();
    let handle = |email: &str| email.split('@').next().unwrap_or("").to_string();
    let mut found = Vec::new();
    for token in tokens {
        let by_email: Vec<i64> = users
            .iter()
            .filter(|(email, _)| email == token)
            .map(|(_, id)| *id)
            .collect();
        let by_handle: Vec<i64> = users
            .iter()
            .filter(|(email, _)| &handle(email) == token)
            .map(|(_, id)| *id)
            .collect();
        let user = match (by_email.as_slice(), by_handle.as_slice()) {
            ([one], _) | ([], [one]) => Some(*one),
            _ => None, // unknown, or a handle two users share
        };
        if let Some(user) = user.filter(|u| !found.contains(u)) {
            found.push(user);
        }
    }
    Ok(found)
}

fn checked_body(body: &str) -> AppResult<String> {
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::bad_input("body", "a comment needs some text"));
    }
    if body.chars().count() > MAX_BODY {
        return Err(AppError::bad_input(
            "body",
            format!("at most {MAX_BODY} characters"),
        ));
    }
    Ok(body.to_string())
}

fn checked_entity(entity: &str) -> AppResult<()> {
    table_of(entity).map(|_| ()).ok_or_else(|| {
        AppError::bad_input(
            "recordType",
            "one of lead, contact, company, opportunity, task",
        )
    })
}

async fn comment(conn: &mut AsyncPgConnection, viewer: &Viewer, id: i64) -> AppResult<CommentRow> {
    diesel::sql_query(format!(
        "SELECT {COMMENT_COLUMNS} FROM comments \
         WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL"
    ))
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(viewer.workspace_id.0)
    .get_result(conn)
    .await
    .optional()?
    .ok_or(AppError::NotFound("comment"))
}

async fn follow_in(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    entity: &str,
    record_id: i64,
) -> AppResult<()> {
    diesel::sql_query(
        "INSERT INTO record_followers (workspace_id, entity, record_id, user_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(viewer.workspace_id.0)
    .bind::<Text, _>(entity)
    .bind::<BigInt, _>(record_id)
    .bind::<BigInt, _>(viewer.user_id.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// A comment's text as a notification shows it.
fn excerpt(body: &str) -> String {
    const LONGEST: usize = 500;
    if body.chars().count() <= LONGEST {
        body.to_string()
    } else {
        format!("{}…", body.chars().take(LONGEST).collect::<String>())
    }
}

impl NotificationService {
    /// Adds a comment (a reply when `parent_id` is given) and tells the people concerned.
    pub async fn add_comment(
        &self,
        viewer: &Viewer,
        entity: &str,
        record_id: i64,
        body: &str,
        parent_id: Option<i64>,
    ) -> AppResult<CommentRow> {
        checked_entity(entity)?;
        let body = checked_body(body)?;
        let gateways = self.gateways;
        let viewer = viewer.clone();
        let entity = entity.to_string();
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            require_visible(conn, &viewer, &entity, record_id).await?;
            let parent = match parent_id {
                None => None,
                Some(id) => {
                    let parent = comment(conn, &viewer, id).await.map_err(|_| {
                        AppError::bad_input("parentId", "no such comment on this record")
                    })?;
                    if parent.entity != entity || parent.record_id != record_id {
                        return Err(AppError::bad_input(
                            "parentId",
                            "no such comment on this record",
                        ));
                    }
                    Some(parent)
                }
            };
            // Replies hang off the thread's first comment: threads are one level deep.
            let root = parent.as_ref().map(|p| p.parent_id.unwrap_or(p.id));
            let mentions =
                resolve_mentions(conn, viewer.workspace_id.0, &mention_tokens(&body)).await?;
            let row: CommentRow = diesel::sql_query(format!(
                "INSERT INTO comments (workspace_id, entity, record_id, parent_id, author_id, \
                   body, mentions) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 RETURNING {COMMENT_COLUMNS}"
            ))
            .bind::<BigInt, _>(viewer.workspace_id.0)
            .bind::<Text, _>(&entity)
            .bind::<BigInt, _>(record_id)
            .bind::<Nullable<BigInt>, _>(root)
            .bind::<BigInt, _>(viewer.user_id.0)
            .bind::<Text, _>(&body)
            .bind::<Array<BigInt>, _>(&mentions)
            .get_result(conn)
            .await?;
            follow_in(conn, &viewer, &entity, record_id).await?;
            let (owner, assignee, label) = record_people(conn, &entity, record_id)
                .await?
                .ok_or(AppError::NotFound("record"))?;
            let followers = super::store::followers(conn, &entity, &[record_id])
                .await?
                .remove(&record_id)
                .unwrap_or_default();
            let mut concerned: Vec<i64> = owner
                .into_iter()
                .chain(assignee)
                .chain(followers)
                .chain(parent.map(|p| p.author_id))
                .filter(|u| !mentions.contains(u))
                .collect();
            concerned.sort_unstable();
            concerned.dedup();
            let author = names(conn, &[viewer.user_id.0])
                .await?
                .remove(&viewer.user_id.0)
                .unwrap_or_default();
            let kind = kind_name(&entity);
            let notice = |kind_of: Kind, recipients: Vec<i64>, title: String| Notice {
                workspace_id: viewer.workspace_id.0,
                kind: kind_of,
                recipients,
                title,
                message: excerpt(&row.body),
                entity: Some(entity.clone()),
                record_id: Some(record_id),
                actor_id: Some(viewer.user_id.0),
                data: json!({ "comment_id": row.id }),
            };
            notify_in(
                conn,
                gateways,
                &notice(
                    Kind::Mention,
                    mentions.clone(),
                    format!("{author} mentioned you on {kind} {label}"),
                ),
            )
            .await?;
            notify_in(
                conn,
                gateways,
                &notice(
                    Kind::Comment,
                    concerned,
                    format!("{author} commented on {kind} {label}"),
                ),
            )
            .await?;
            Ok(row)
        })
        .await
    }

    /// Changes a comment's text (its author only); people newly mentioned are told.
    pub async fn edit_comment(
        &self,
        viewer: &Viewer,
        id: i64,
        body: &str,
    ) -> AppResult<CommentRow> {
        let body = checked_body(body)?;
        let gateways = self.gateways;
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            let current = comment(conn, &viewer, id).await?;
            require_visible(conn, &viewer, &current.entity, current.record_id).await?;
            if current.author_id != viewer.user_id.0 {
                return Err(AppError::forbidden("only its author may edit a comment"));
            }
            let mentions =
                resolve_mentions(conn, viewer.workspace_id.0, &mention_tokens(&body)).await?;
            let row: CommentRow = diesel::sql_query(format!(
                "UPDATE comments SET body = $2, mentions = $3, edited_at = now() WHERE id = $1 \
                 RETURNING {COMMENT_COLUMNS}"
            ))
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(&body)
            .bind::<Array<BigInt>, _>(&mentions)
            .get_result(conn)
            .await?;
            let new: Vec<i64> = mentions
                .into_iter()
                .filter(|u| !current.mentions.contains(u))
                .collect();
            if !new.is_empty() {
                let (_, _, label) = record_people(conn, &row.entity, row.record_id)
                    .await?
                    .ok_or(AppError::NotFound("record"))?;
                let author = names(conn, &[viewer.user_id.0])
                    .await?
                    .remove(&viewer.user_id.0)
                    .unwrap_or_default();
                let notice = Notice {
                    workspace_id: viewer.workspace_id.0,
                    kind: Kind::Mention,
                    recipients: new,
                    title: format!(
                        "{author} mentioned you on {} {label}",
                        kind_name(&row.entity)
                    ),
                    message: excerpt(&row.body),
                    entity: Some(row.entity.clone()),
                    record_id: Some(row.record_id),
                    actor_id: Some(viewer.user_id.0),
                    data: json!({ "comment_id": row.id }),
                };
                notify_in(conn, gateways, &notice).await?;
            }
            Ok(row)
        })
        .await
    }

    /// Deletes a comment (its author only); its replies stay.
    pub async fn delete_comment(&self, viewer: &Viewer, id: i64) -> AppResult<()> {
        let mut conn = self.db.get().await?;
        let current = comment(&mut conn, viewer, id).await?;
        require_visible(&mut conn, viewer, &current.entity, current.record_id).await?;
        if current.author_id != viewer.user_id.0 {
            return Err(AppError::forbidden("only its author may delete a comment"));
        }
        diesel::sql_query("UPDATE comments SET deleted_at = now() WHERE id = $1")
            .bind::<BigInt, _>(id)
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// A record's comments, oldest first (replies carry their thread's first comment).
    pub async fn comments(
        &self,
        viewer: &Viewer,
        entity: &str,
        record_id: i64,
    ) -> AppResult<Vec<CommentRow>> {
        checked_entity(entity)?;
        let mut conn = self.db.get().await?;
        require_visible(&mut conn, viewer, entity, record_id).await?;
        Ok(diesel::sql_query(format!(
            "SELECT {COMMENT_COLUMNS} FROM comments \
             WHERE workspace_id = $1 AND entity = $2 AND record_id = $3 AND deleted_at IS NULL \
             ORDER BY id LIMIT $4"
        ))
        .bind::<BigInt, _>(viewer.workspace_id.0)
        .bind::<Text, _>(entity)
        .bind::<BigInt, _>(record_id)
        .bind::<BigInt, _>(MAX_LISTED)
        .load(&mut conn)
        .await?)
    }

    /// Follows a record the viewer may see (idempotent).
    pub async fn follow(&self, viewer: &Viewer, entity: &str, record_id: i64) -> AppResult<()> {
        checked_entity(entity)?;
        let mut conn = self.db.get().await?;
        require_visible(&mut conn, viewer, entity, record_id).await?;
        follow_in(&mut conn, viewer, entity, record_id).await
    }

    /// Stops following (idempotent; owners and assignees still hear as such).
    pub async fn unfollow(&self, viewer: &Viewer, entity: &str, record_id: i64) -> AppResult<()> {
        checked_entity(entity)?;
        let mut conn = self.db.get().await?;
        diesel::sql_query(
            "DELETE FROM record_followers WHERE entity = $1 AND record_id = $2 AND user_id = $3",
        )
        .bind::<Text, _>(entity)
        .bind::<BigInt, _>(record_id)
        .bind::<BigInt, _>(viewer.user_id.0)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Whether the viewer follows the record.
    pub async fn follows(&self, viewer: &Viewer, entity: &str, record_id: i64) -> AppResult<bool> {
        let mut conn = self.db.get().await?;
        let followers = super::store::followers(&mut conn, entity, &[record_id]).await?;
        Ok(followers
            .get(&record_id)
            .is_some_and(|users| users.contains(&viewer.user_id.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_emails_or_handles() {
        assert_eq!(
            mention_tokens("Hi @Dana and @bob@example.com, see mail@x.org. (@dana again) @"),
            vec!["dana", "bob@example.com"]
        );
        assert_eq!(mention_tokens("@eve."), vec!["eve"]);
        assert!(mention_tokens("no one").is_empty());
    }
}
