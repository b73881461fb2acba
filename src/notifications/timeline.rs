//! `recordTimeline(record)`: everything about one record in one list, newest first: its
//! activities (calls, emails, notes...), its comments and its change history. Each source is
//! read newest first up to the page size (plus one, to know whether more exist) and the three
//! are merged, so a page costs three indexed queries whatever the record's age.
//!
//! The order is total, so paging neither skips nor repeats: newest first; at the same moment
//! a change before the comment or activity it came with (they share a transaction's time);
//! then by ID, newest first. A page's cursor is its last entry's (time, kind, ID).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::comments::{CommentRow, COMMENT_COLUMNS};
use super::service::NotificationService;
use crate::auth::Viewer;
use crate::crm::activities::{Activity, RecordRef};
use crate::crm::events::{history, RecordEvent};
use crate::crm::query::require_visible;
use crate::crm::CrmService;
use crate::error::{AppError, AppResult};
use crate::pagination::{Page, TimePosition};

/// The largest page.
pub const MAX_TIMELINE: i64 = 200;

/// One entry of a record's timeline.
pub enum TimelineItem {
    Activity(Activity),
    Comment(CommentRow),
    Change(RecordEvent),
}

/// The kinds of entry, in the order they take at the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Kind {
    Change,
    Comment,
    Activity,
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

    fn kind(&self) -> Kind {
        match self {
            TimelineItem::Change(_) => Kind::Change,
            TimelineItem::Comment(_) => Kind::Comment,
            TimelineItem::Activity(_) => Kind::Activity,
        }
    }

    fn id(&self) -> i64 {
        match self {
            TimelineItem::Activity(a) => a.id.0,
            TimelineItem::Comment(c) => c.id,
            TimelineItem::Change(e) => e.id,
        }
    }

    /// Where this entry sits, for paging on after it.
    pub fn cursor(&self) -> TimelineCursor {
        TimelineCursor {
            at: self.at(),
            kind: self.kind(),
            id: self.id(),
        }
    }
}

/// The position of one timeline entry (see the module's order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineCursor {
    #[serde(rename = "t")]
    at: DateTime<Utc>,
    #[serde(rename = "k")]
    kind: Kind,
    #[serde(rename = "i")]
    id: i64,
}

impl TimelineCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a cursor; `field` names the argument in the error.
    pub fn decode(field: &str, text: &str) -> AppResult<Self> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| AppError::bad_input(field, format!("{field} is not a valid cursor")))
    }
}

/// Where a timeline page starts.
pub enum OlderThan {
    /// Entries after this one in the timeline's order.
    Entry(TimelineCursor),
    /// Entries that happened before this moment (the deprecated `timeline(before:)`).
    Time(DateTime<Utc>),
}

impl OlderThan {
    /// The same start for one source, as a (time, ID) position in that source's own order:
    /// a kind ranked before the cursor's has only strictly older entries left, one ranked
    /// after it also those at the cursor's moment, its own kind those with smaller IDs.
    fn for_kind(&self, kind: Kind) -> TimePosition {
        match self {
            OlderThan::Time(at) => TimePosition {
                at: *at,
                id: i64::MIN,
            },
            OlderThan::Entry(cursor) => TimePosition {
                at: cursor.at,
                id: match kind.cmp(&cursor.kind) {
                    std::cmp::Ordering::Less => i64::MIN,
                    std::cmp::Ordering::Equal => cursor.id,
                    std::cmp::Ordering::Greater => i64::MAX,
                },
            },
        }
    }
}

impl NotificationService {
    /// The newest `first` (1-200) entries of a live record the viewer may see, starting after
    /// `older_than` when given, and whether older entries remain.
    pub async fn timeline(
        &self,
        crm: &CrmService,
        viewer: &Viewer,
        entity: &str,
        record_id: i64,
        older_than: Option<OlderThan>,
        first: i64,
    ) -> AppResult<Page<TimelineItem>> {
        crate::pagination::size_within("first", first, MAX_TIMELINE)?;
        let record = RecordRef::of(entity, record_id).ok_or(AppError::NotFound("record"))?;
        let start = |kind| older_than.as_ref().map(|o| o.for_kind(kind));
        // One more than the page from each source tells whether older entries remain.
        let fetch = first + 1;
        let mut conn = self.db.get().await?;
        require_visible(&mut conn, viewer, entity, record_id).await?;
        let comment_start = start(Kind::Comment);
        let comments: Vec<CommentRow> = diesel::sql_query(format!(
            "SELECT {COMMENT_COLUMNS} FROM comments \
             WHERE workspace_id = $1 AND entity = $2 AND record_id = $3 AND deleted_at IS NULL \
               AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $6)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind::<BigInt, _>(viewer.workspace_id.0)
        .bind::<Text, _>(entity)
        .bind::<BigInt, _>(record_id)
        .bind::<Nullable<Timestamptz>, _>(comment_start.map(|p| p.at))
        .bind::<BigInt, _>(fetch)
        .bind::<BigInt, _>(comment_start.map_or(0, |p| p.id))
        .load(&mut conn)
        .await?;
        let changes = history(
            &mut conn,
            viewer,
            entity,
            record_id,
            start(Kind::Change),
            fetch,
        )
        .await?;
        drop(conn);
        let activities = crm
            .activities_before(viewer, record, start(Kind::Activity), fetch)
            .await?;
        let mut items: Vec<TimelineItem> = activities
            .into_iter()
            .map(TimelineItem::Activity)
            .chain(comments.into_iter().map(TimelineItem::Comment))
            .chain(changes.into_iter().map(TimelineItem::Change))
            .collect();
        items.sort_by_key(|item| {
            (
                std::cmp::Reverse(item.at()),
                item.kind(),
                std::cmp::Reverse(item.id()),
            )
        });
        Ok(Page::from_overfetch(items, first, older_than.is_some(), 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let cursor = TimelineCursor {
            at: Utc::now(),
            kind: Kind::Comment,
            id: 42,
        };
        assert_eq!(
            TimelineCursor::decode("after", &cursor.encode()).unwrap(),
            cursor
        );
        assert!(TimelineCursor::decode("after", "garbage").is_err());
    }

    #[test]
    fn each_kind_starts_where_the_cursor_sits_in_the_merged_order() {
        let at = Utc::now();
        let after_comment = OlderThan::Entry(TimelineCursor {
            at,
            kind: Kind::Comment,
            id: 7,
        });
        // Changes come before comments at the same moment: only older ones are left.
        assert_eq!(after_comment.for_kind(Kind::Change).id, i64::MIN);
        // Other comments at that moment with smaller IDs are still to come.
        assert_eq!(after_comment.for_kind(Kind::Comment).id, 7);
        // Activities come after comments: those at that very moment are still to come.
        assert_eq!(after_comment.for_kind(Kind::Activity).id, i64::MAX);
        let before = OlderThan::Time(at);
        assert_eq!(
            before.for_kind(Kind::Activity),
            TimePosition { at, id: i64::MIN }
        );
    }
}
