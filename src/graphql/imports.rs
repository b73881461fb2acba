//! CSV imports over GraphQL: `imports`, `import` and `undoImport`. Uploads go through the
//! REST route (`POST /api/v1/import/{resource}/`), which answers with the import's ID.

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::ids::{decode_after, parse_id};
use super::leads::load_user;
use super::users::User;
use crate::auth::UserId;
use crate::error::AppError;
use crate::imports::store::ImportRow;
use crate::imports::undo::{stored_result, UndoResult};

/// A CSV import: its file, options, progress and totals, and its undo.
pub struct Import(ImportRow);

/// A CSV import: its file, options, progress and totals, and its undo.
#[Object]
impl Import {
    /// The import's ID (as in `/api/v1/import/{id}/errors.csv`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What it imports: leads, contacts, companies, opportunities or tasks.
    async fn resource(&self) -> &str {
        &self.0.resource
    }
    /// The uploaded file's name.
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    /// The uploaded file's size in bytes.
    async fn file_bytes(&self) -> i64 {
        self.0.file_bytes
    }
    /// queued, running, completed, failed, undoing, undo_failed (an undo stopped on an error:
    /// see `undoFailure`; `undoImport` resumes it) or undone.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// Whether this was a dry run (checked everything, wrote nothing).
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }
    /// The options as requested (mapping, update_existing, match_on, skip_errors, dry_run).
    async fn options(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.options.clone())
    }
    /// The background job running it (large files), for `job` and `jobUpdated`.
    async fn job_id(&self) -> Option<ID> {
        self.0.job_id.map(|id| ID(id.to_string()))
    }
    /// Data rows read so far.
    async fn total_rows(&self) -> i64 {
        self.0.total_rows
    }
    /// Records created (on a dry run: that would be created).
    async fn imported(&self) -> i64 {
        self.0.imported
    }
    /// Existing records updated (on a dry run: that would be updated).
    async fn updated(&self) -> i64 {
        self.0.updated
    }
    /// Rows not written: failed ones and existing records left alone.
    async fn skipped(&self) -> i64 {
        self.0.skipped
    }
    /// Rows with errors.
    async fn errors(&self) -> i64 {
        self.0.errors
    }
    /// Why the import as a whole failed, when it did.
    async fn failure(&self) -> Option<&str> {
        self.0.failure.as_deref()
    }
    /// CSV header → the field it filled.
    async fn columns(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.columns.clone())
    }
    /// Headers nothing read.
    async fn ignored_columns(&self) -> &Vec<String> {
        &self.0.ignored_columns
    }
    /// The rows that were not written, with their line numbers and problems.
    async fn error_details(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Rows to return (1-1000, default 100).")] first: Option<i32>,
        #[graphql(desc = "Only rows after this line (0 or more).")] after_line: Option<i32>,
    ) -> async_graphql::Result<Vec<ImportError>> {
        let viewer = viewer(ctx)?;
        let first =
            crate::pagination::size_within("first", i64::from(first.unwrap_or(100)), 1000).gql()?;
        let after_line = after_line.unwrap_or(0);
        if after_line < 0 {
            return Err(AppError::bad_input(
                "afterLine",
                "afterLine must be 0 or more",
            ))
            .gql();
        }
        let rows = app(ctx)
            .imports
            .failed_rows(viewer, self.0.id, after_line as u64, first)
            .await
            .gql()?;
        Ok(rows
            .into_iter()
            .flat_map(|row| {
                let line = row.line as i64;
                row.problems.into_iter().map(move |p| ImportError {
                    row: line,
                    column: p.column,
                    value: p.value,
                    error: p.error,
                })
            })
            .collect())
    }
    /// Who started it.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, Some(UserId(self.0.created_by))).await
    }
    /// When it was uploaded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it began running.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// When it finished.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// When it was undone.
    async fn undone_at(&self) -> Option<DateTime<Utc>> {
        self.0.undone_at
    }
    /// What the undo did: its totals so far while it is undoing or stopped, final once
    /// undone.
    async fn undo_result(&self) -> Option<ImportUndoResult> {
        stored_result(&self.0.undo_result).map(ImportUndoResult::from)
    }
    /// Why the last undo attempt stopped (status undo_failed).
    async fn undo_failure(&self) -> Option<&str> {
        self.0.undo_failure.as_deref()
    }
}

/// One problem of a row that was not written.
#[derive(SimpleObject)]
pub struct ImportError {
    /// The line in the file.
    pub row: i64,
    /// The header of the cell at fault (none: the whole line).
    pub column: Option<String>,
    /// The cell as written.
    pub value: Option<String>,
    /// What is wrong.
    pub error: String,
}

/// What an undo did.
#[derive(SimpleObject)]
pub struct ImportUndoResult {
    /// Created records deleted.
    pub deleted: i64,
    /// Updated records put back (wholly or partly).
    pub restored: i64,
    /// Later edits left in place.
    pub conflict_count: i64,
    /// The first 1,000 of them.
    pub conflicts: Vec<ImportUndoConflict>,
}

/// A later edit an undo left in place.
#[derive(SimpleObject)]
pub struct ImportUndoConflict {
    /// The record's ID.
    pub record_id: ID,
    /// The field changed since the import (none: a record the import created, changed since
    /// and therefore kept).
    pub field: Option<String>,
    /// Why it was left.
    pub reason: String,
}

impl From<UndoResult> for ImportUndoResult {
    fn from(r: UndoResult) -> Self {
        ImportUndoResult {
            deleted: r.deleted,
            restored: r.restored,
            conflict_count: r.conflict_count,
            conflicts: r
                .conflicts
                .into_iter()
                .map(|c| ImportUndoConflict {
                    record_id: ID(c.record_id.to_string()),
                    field: c.field,
                    reason: c.reason,
                })
                .collect(),
        }
    }
}

crate::graphql::connection::connection_types!(ImportConnection, ImportEdge, Import);

#[derive(Default)]
pub struct ImportQuery;

#[Object]
impl ImportQuery {
    /// Imports the caller may see (members: their own), newest first.
    async fn imports(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (1-100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
    ) -> async_graphql::Result<ImportConnection> {
        let viewer = viewer(ctx)?;
        let after = decode_after(after.as_deref()).gql()?;
        let page = app(ctx)
            .imports
            .imports(viewer, i64::from(first.unwrap_or(20)), after)
            .await
            .gql()?;
        Ok(ImportConnection::from_page(page, |i| i.id, Import))
    }

    /// One import the caller may see.
    async fn import(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The import's ID.")] id: ID,
    ) -> async_graphql::Result<Import> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        Ok(Import(app(ctx).imports.import(viewer, id).await.gql()?))
    }
}

#[derive(Default)]
pub struct ImportMutation;

#[Object]
impl ImportMutation {
    /// Undoes a finished import: deletes the records it created and puts back the fields it
    /// changed, leaving (and reporting) anything edited since. Small imports are undone at
    /// once; large ones in the background (`status` is `undoing` until done). An undo that
    /// stopped (`undo_failed`, or `undoing` after a crash) is resumed by calling this again:
    /// it carries on after its last committed batch, so nothing is undone or reported twice.
    /// CONFLICT when the import is not finished or already undone; BAD_USER_INPUT for a dry
    /// run.
    async fn undo_import(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The import's ID.")] id: ID,
    ) -> async_graphql::Result<Import> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        Ok(Import(app(ctx).imports.undo(viewer, id).await.gql()?))
    }
}
