//! The CRM records: leads (and, building on the same engine, contacts, companies,
//! opportunities, tasks and activities). Business rules, permission scoping and validation live
//! here; no transport code.

pub mod activities;
pub mod companies;
pub mod contacts;
pub mod conversion;
pub mod due;
pub mod edit;
pub mod events;
pub mod leads;
pub mod opportunities;
pub mod query;
pub mod sql;
pub mod stats;
pub mod tasks;

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::auth::{Role, UserId, Viewer};
use crate::db::schema::users;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::pagination::Page;
use crate::validation::optional_text;
use query::SortKey;

/// The CRM service. Cheap to clone.
#[derive(Clone)]
pub struct CrmService {
    db: DbPool,
}

impl CrmService {
    pub fn new(db: DbPool) -> Self {
        CrmService { db }
    }

    /// A record of one kind that the caller may see (deleted ones included).
    pub async fn record<R: query::Listable>(&self, viewer: &Viewer, id: i64) -> AppResult<R> {
        let mut conn = self.db.get().await?;
        query::get::<R>(&mut conn, viewer, id, query::Deleted::Include).await
    }

    /// A page of the records of one kind that the caller may see.
    pub async fn records<R: query::Listable>(
        &self,
        viewer: &Viewer,
        query: &query::ListQuery<R::Field>,
    ) -> AppResult<Page<(query::Cursor, R)>> {
        let mut conn = self.db.get().await?;
        query::list::<R>(&mut conn, viewer, query).await
    }

    /// Soft-deletes (`deleted`) or restores a record the caller may see.
    pub async fn set_deleted<R: query::Listable>(
        &self,
        viewer: &Viewer,
        id: i64,
        deleted: bool,
    ) -> AppResult<R> {
        let mut conn = self.db.get().await?;
        query::set_deleted::<R>(&mut conn, viewer, id, deleted).await
    }

    /// Soft-deletes the selected records of one kind in one transaction; returns how many.
    pub async fn bulk_delete<R: query::Listable>(
        &self,
        viewer: &Viewer,
        selection: query::Selection<R::Field>,
    ) -> AppResult<usize> {
        let mut conn = self.db.get().await?;
        query::bulk_delete::<R>(&mut conn, viewer, selection).await
    }

    /// The records of one kind that belong to each of `companies`, for DataLoaders.
    pub async fn records_of_companies<R: query::CompanyChild>(
        &self,
        viewer: &Viewer,
        companies: &[i64],
    ) -> AppResult<Vec<R>> {
        let mut conn = self.db.get().await?;
        query::of_companies::<R>(&mut conn, viewer, companies).await
    }

    /// Records of one kind by ID that the caller may see, for DataLoaders.
    pub async fn records_by_ids<R: query::Listable>(
        &self,
        viewer: &Viewer,
        ids: &[i64],
    ) -> AppResult<Vec<R>> {
        let mut conn = self.db.get().await?;
        query::find_many::<R>(&mut conn, viewer, ids).await
    }
}

crate::text_enum!(
    /// How urgent a record is.
    Priority {
        Low => "low",
        Medium => "medium",
        High => "high",
        Urgent => "urgent",
    }
);

impl Priority {
    /// Priorities sort by urgency, not alphabetically.
    pub fn rank(self) -> i64 {
        match self {
            Priority::Low => 1,
            Priority::Medium => 2,
            Priority::High => 3,
            Priority::Urgent => 4,
        }
    }

    /// The same rank in SQL, for `ORDER BY` on leads.
    pub const RANK_SQL_LEADS: &'static str =
        "(CASE leads.priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 ELSE 4 END)";
    /// The same rank in SQL, for `ORDER BY` on tasks.
    pub const RANK_SQL_TASKS: &'static str =
        "(CASE tasks.priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 ELSE 4 END)";
}

/// A user referenced by a record (owner, assignee) must be an active user of the caller's
/// workspace; `field` names the input in the error.
pub(crate) async fn check_user_in_workspace(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    field: &str,
    user: Option<UserId>,
) -> AppResult<()> {
    let Some(user) = user else {
        return Ok(());
    };
    let found: Option<UserId> = users::table
        .filter(users::id.eq(user))
        .filter(users::workspace_id.eq(viewer.workspace_id))
        .filter(users::is_active.eq(true))
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    found.map(|_| ()).ok_or_else(|| {
        AppError::bad_input(
            field,
            format!("{field} is not an active user of this workspace"),
        )
    })
}

/// The owner and assignee a change sets (either may be absent) must be active users of the
/// caller's workspace.
pub(crate) async fn check_owner_and_assignee(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    owner: Option<UserId>,
    assignee: Option<UserId>,
) -> AppResult<()> {
    check_user_in_workspace(conn, viewer, "ownerId", owner).await?;
    check_user_in_workspace(conn, viewer, "assignedToId", assignee).await
}

/// An entity's orderings.
pub trait Sort: Copy {
    fn key(self, descending: bool) -> SortKey;
}

/// Members may only give records to themselves; managers and admins to anyone in the workspace.
pub(crate) fn check_owner_change(viewer: &Viewer, owner: Option<UserId>) -> AppResult<()> {
    match owner {
        Some(owner) if viewer.role == Role::Member && owner != viewer.user_id => Err(
            AppError::forbidden("members may only own records themselves; ask a manager"),
        ),
        _ => Ok(()),
    }
}

/// An optional text field of an update: outer `None` leaves it, `Some(None)` (or blank text)
/// clears it.
pub(crate) fn clearable_text(
    field: &str,
    value: &Option<Option<String>>,
    max: usize,
) -> AppResult<Option<Option<String>>> {
    value
        .as_ref()
        .map(|inner| optional_text(field, inner.as_deref(), max))
        .transpose()
}
