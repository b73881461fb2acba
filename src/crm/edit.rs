//! The one update path every CRM record kind shares, for a single record and in bulk: validate
//! the patch once, check who may set the owner, lock the rows in scope, apply the kind's
//! per-row rules (a stage change brings its probability, completing a task stamps it), check
//! the records the patch points at, and write. A bulk patch is validated exactly as a single
//! update is, and any failure rolls the whole transaction back.

use std::future::Future;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::events;
use super::query::{self, Deleted, Listable, Selection};
use super::{check_owner_change, CrmService};
use crate::auth::{UserId, Viewer, WorkspaceId};
use crate::error::{AppError, AppResult};

/// A record kind with a partial-update input.
pub trait Editable: Listable + Sync {
    /// The client's patch, as the domain sees it.
    type Input: Send + 'static;
    /// The validated patch, in column types. Rows whose per-row changes are equal are written
    /// with one statement.
    type Changes: Clone + PartialEq + Send + Sync + 'static;

    /// Checks every field of the patch; the first problem is reported with its field name.
    fn validate(input: &Self::Input) -> AppResult<Self::Changes>;

    /// The owner the patch sets, if any (only managers and admins may).
    fn new_owner(changes: &Self::Changes) -> Option<UserId>;

    /// The patch as it applies to one row, for rules that depend on the row's current state.
    fn for_row(changes: &Self::Changes, _current: &Self) -> AppResult<Self::Changes> {
        Ok(changes.clone())
    }

    /// Users and records the patch points at must be ones the caller may use.
    fn check_references(
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        changes: &Self::Changes,
    ) -> impl Future<Output = AppResult<()>> + Send;

    /// Writes `changes` (and a fresh `updated_at`) to the rows `ids`; returns how many.
    fn write(
        conn: &mut AsyncPgConnection,
        ids: &[i64],
        changes: &Self::Changes,
    ) -> impl Future<Output = Result<usize, diesel::result::Error>> + Send;

    /// The input as a new record's columns: required fields checked and the kind's defaults
    /// applied. The owner is left as given (`create_in` and imports set it).
    fn for_create(input: &Self::Input) -> AppResult<Self::Changes>;

    /// The owner a patch sets, for `for_create`'s callers to fill in.
    fn set_owner(changes: &mut Self::Changes, owner: UserId);

    /// Inserts new rows into a workspace; returns their IDs in the order given.
    fn insert(
        conn: &mut AsyncPgConnection,
        workspace: WorkspaceId,
        rows: &[Self::Changes],
    ) -> impl Future<Output = Result<Vec<i64>, diesel::result::Error>> + Send;

    /// Turns a database rule the write broke into the client's error. `bulk` says whether the
    /// patch came from a bulk update (the error then names the patch).
    fn explain(err: diesel::result::Error, _bulk: bool) -> AppError {
        err.into()
    }
}

/// The table plumbing every `Editable` kind has alike, written once: the owner a patch sets,
/// the multi-row insert and the update. `editable_rows!(leads, LeadId, LeadChanges)` inside
/// `impl Editable for Lead`.
macro_rules! editable_rows {
    ($table:ident, $Id:ty, $Changes:ty) => {
        fn new_owner(changes: &$Changes) -> Option<$crate::auth::UserId> {
            changes.owner_id.flatten()
        }

        fn set_owner(changes: &mut $Changes, owner: $crate::auth::UserId) {
            changes.owner_id = Some(Some(owner));
        }

        async fn insert(
            conn: &mut diesel_async::AsyncPgConnection,
            workspace: $crate::auth::WorkspaceId,
            rows: &[$Changes],
        ) -> Result<Vec<i64>, diesel::result::Error> {
            use diesel::ExpressionMethods;
            use diesel_async::RunQueryDsl;
            let rows: Vec<_> = rows
                .iter()
                .map(|row| (row, $crate::db::schema::$table::workspace_id.eq(workspace)))
                .collect();
            diesel::insert_into($crate::db::schema::$table::table)
                .values(rows)
                .returning($crate::db::schema::$table::id)
                .get_results::<$Id>(conn)
                .await
                .map(|ids| ids.into_iter().map(|id| id.0).collect())
        }

        async fn write(
            conn: &mut diesel_async::AsyncPgConnection,
            ids: &[i64],
            changes: &$Changes,
        ) -> Result<usize, diesel::result::Error> {
            use diesel::{ExpressionMethods, QueryDsl};
            use diesel_async::RunQueryDsl;
            use $crate::db::schema::$table;
            diesel::update($table::table.filter($table::id.eq_any(ids)))
                .set((changes, $table::updated_at.eq(diesel::dsl::now)))
                .execute(conn)
                .await
        }
    };
}
pub(crate) use editable_rows;

/// The owner of a new record: the one given, else the caller. Only managers and admins may
/// give records to someone else.
pub(crate) fn new_owner<R: Editable>(viewer: &Viewer, changes: &mut R::Changes) -> AppResult<()> {
    let owner = R::new_owner(changes).unwrap_or(viewer.user_id);
    check_owner_change(viewer, Some(owner))?;
    R::set_owner(changes, owner);
    Ok(())
}

/// Creates a record inside the caller's transaction, with its `created` event (also used by
/// lead conversion).
pub(crate) async fn create_in<R: Editable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    input: R::Input,
) -> AppResult<R> {
    let mut changes = R::for_create(&input)?;
    new_owner::<R>(viewer, &mut changes)?;
    R::check_references(conn, viewer, &changes).await?;
    let id = R::insert(conn, viewer.workspace_id, std::slice::from_ref(&changes))
        .await
        .map_err(|e| R::explain(e, false))?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound(R::WHAT))?;
    events::created(conn, viewer, events::kind::<R>(), id).await?;
    query::get::<R>(conn, viewer, id, Deleted::Hide).await
}

/// Changes the given fields of a record the caller may see, in the caller's transaction.
pub(crate) async fn update_in<R: Editable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: i64,
    input: R::Input,
) -> AppResult<R> {
    let changes = R::validate(&input)?;
    check_owner_change(viewer, R::new_owner(&changes))?;
    let current = query::find::<R>(conn, viewer, id, Deleted::Hide, true)
        .await?
        .ok_or(AppError::NotFound(R::WHAT))?;
    let changes = R::for_row(&changes, &current)?;
    R::check_references(conn, viewer, &changes).await?;
    let before = events::snapshot(conn, R::TABLE.name, &[id]).await?;
    R::write(conn, &[id], &changes)
        .await
        .map_err(|e| R::explain(e, false))?;
    events::changed(
        conn,
        viewer,
        (R::TABLE.name, R::WHAT),
        "updated",
        &[id],
        &before,
    )
    .await?;
    query::get_written::<R>(conn, viewer, id).await
}

impl CrmService {
    /// Creates a record owned by the caller unless an owner is given.
    pub async fn create<R: Editable>(&self, viewer: &Viewer, input: R::Input) -> AppResult<R> {
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            create_in::<R>(conn, &viewer, input).await
        })
        .await
    }

    /// Changes the given fields of a record the caller may see.
    pub async fn update<R: Editable>(
        &self,
        viewer: &Viewer,
        id: i64,
        input: R::Input,
    ) -> AppResult<R> {
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            update_in::<R>(conn, &viewer, id, input).await
        })
        .await
    }

    /// Applies one patch to every selected record, in one transaction; returns how many
    /// changed. Any invalid field, ID the caller cannot see or rule a row would break changes
    /// nothing.
    pub async fn bulk_update<R: Editable>(
        &self,
        viewer: &Viewer,
        selection: Selection<R::Field>,
        input: R::Input,
    ) -> AppResult<usize> {
        let changes = R::validate(&input)?;
        check_owner_change(viewer, R::new_owner(&changes))?;
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            let rows = query::select_for_bulk::<R>(conn, &viewer, &selection).await?;
            R::check_references(conn, &viewer, &changes).await?;
            let mut groups: Vec<(R::Changes, Vec<i64>)> = Vec::new();
            for row in &rows {
                let patch = R::for_row(&changes, row)?;
                match groups.iter_mut().find(|(p, _)| *p == patch) {
                    Some((_, ids)) => ids.push(row.id()),
                    None => groups.push((patch, vec![row.id()])),
                }
            }
            let all: Vec<i64> = rows.iter().map(R::id).collect();
            let before = events::snapshot(conn, R::TABLE.name, &all).await?;
            let mut changed = 0;
            for (patch, ids) in &groups {
                changed += R::write(conn, ids, patch)
                    .await
                    .map_err(|e| R::explain(e, true))?;
            }
            events::changed(
                conn,
                &viewer,
                (R::TABLE.name, R::WHAT),
                "updated",
                &all,
                &before,
            )
            .await?;
            Ok(changed)
        })
        .await
    }
}
