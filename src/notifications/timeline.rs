//! `timeline(record)`: everything about one record in one list, newest first: its activities
//! (calls, emails, notes...), its comments and its change history. Each source is read
//! newest first up to the page size and the three are merged, so a page costs three
//! indexed queries whatever the record's age; `before` (the last item's time) pages back.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use super::comments::{CommentRow, COMMENT_COLUMNS};
use super::service::NotificationService;
use crate::auth::Viewer;
use crate::crm::activities::{Activity, RecordRef};
use crate::crm::events::{history, RecordEvent};
use crate::crm::query::require_visible;
use crate::crm::CrmService;
use crate::error::{AppError, AppResult};

/// The largest page.
pub const MAX_TIMELINE: i64 = 200;

/// One entry of a record's timeline.
pub enum TimelineItem {
    Activity(Activity),
    Comment(CommentRow),
    Change(RecordEvent),
}

impl TimelineItem {
    /// When it happened: what the timeline is ordered by.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TimelineItem::Activity(a) => a.occurred_at,
            TimelineItem::Comment(c) => c.created_at,
            TimelineItem::Change(e) => e.occurred_at,
        }
    }
}

impl NotificationService {
    /// The newest `first` (1-200) entries of a live record the viewer may see, older than
    /// `before` when given.
    pub async fn timeline(
        &self,
        crm: &CrmService,
        viewer: &Viewer,
        entity: &str,
        record_id: i64,
        before: Option<DateTime<Utc>>,
        first: i64,
    ) -> AppResult<Vec<TimelineItem>> {
        if !(1..=MAX_TIMELINE).contains(&first) {
            return Err(AppError::bad_input(
                "first",
                format!("first must be between 1 and {MAX_TIMELINE}"),
            ));
        }
        let record = RecordRef::of(entity, record_id).ok_or(AppError::NotFound("record"))?;
        let mut conn = self.db.get().await?;
        require_visible(&mut conn, viewer, entity, record_id).await?;
        let comments: Vec<CommentRow> = diesel::sql_query(format!(
            "SELECT {COMMENT_COLUMNS} FROM comments \
             WHERE workspace_id = $1 AND entity = $2 AND record_id = $3 AND deleted_at IS NULL \
               AND ($4::timestamptz IS NULL OR created_at < $4) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind::<BigInt, _>(viewer.workspace_id.0)
        .bind::<Text, _>(entity)
        .bind::<BigInt, _>(record_id)
        .bind::<Nullable<Timestamptz>, _>(before)
        .bind::<BigInt, _>(first)
        .load(&mut conn)
        .await?;
        let changes = history(&mut conn, viewer, entity, record_id, before, first).await?;
        drop(conn);
        let activities = crm.activities_before(viewer, record, before, first).await?;
        let mut items: Vec<TimelineItem> = activities
            .into_iter()
            .map(TimelineItem::Activity)
            .chain(comments.into_iter().map(TimelineItem::Comment))
            .chain(changes.into_iter().map(TimelineItem::Change))
            .collect();
        // Newest first; at the same moment a change before the comment or activity it
        // came with, so the list reads the same on every page.
        items.sort_by_key(|item| {
            let rank = match item {
                TimelineItem::Change(_) => 0,
                TimelineItem::Comment(_) => 1,
                TimelineItem::Activity(_) => 2,
            };
            (std::cmp::Reverse(item.at()), rank)
        });
        items.truncate(first as usize);
        Ok(items)
    }
}
