//! The imports service: uploads (chunked into the database as they arrive), running an import
//! inline or as a background job, reading imports and their failed rows, and undo.

use serde::{Deserialize, Serialize};

use super::columns::Resource;
use super::store::{self, FailedRow, ImportRow, Options};
use super::{engine, undo};
use crate::auth::Viewer;
use crate::config::ImportConfig;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::jobs::{job_for, queue, Job, JobContext};
use crate::pagination::Page;

/// Upload bytes stored per chunk row.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Most imports one page of `imports` lists.
pub const MAX_IMPORTS_PAGE: i64 = 100;

#[derive(Clone)]
pub struct ImportService {
    db: DbPool,
    config: ImportConfig,
}

/// An upload in progress.
pub struct Upload {
    pub import: i64,
    seq: i32,
    bytes: u64,
    lines: u64,
    buffer: Vec<u8>,
}

impl Upload {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// How a submitted import went: done (inline), or queued as `job_id`.
pub struct Submitted {
    pub import: ImportRow,
    pub job_id: Option<i64>,
}

impl ImportService {
    pub fn new(db: DbPool, config: ImportConfig) -> Self {
        ImportService { db, config }
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.config.max_upload_bytes
    }

    /// Opens an import for a file about to arrive.
    pub async fn start_upload(
        &self,
        viewer: &Viewer,
        resource: Resource,
        file_name: &str,
    ) -> AppResult<Upload> {
        let name: String = file_name
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        let mut conn = self.db.get().await?;
        let import = store::create(&mut conn, viewer, resource, &name).await?;
        Ok(Upload {
            import,
            seq: 0,
            bytes: 0,
            lines: 0,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        })
    }

    /// Adds the next piece of the file (stored a chunk at a time).
    pub async fn append(&self, upload: &mut Upload, data: &[u8]) -> AppResult<()> {
        upload.bytes += data.len() as u64;
        upload.lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        upload.buffer.extend_from_slice(data);
        while upload.buffer.len() >= CHUNK_BYTES {
            let rest = upload.buffer.split_off(CHUNK_BYTES);
            let chunk = std::mem::replace(&mut upload.buffer, rest);
            self.store_chunk(upload, &chunk).await?;
        }
        Ok(())
    }

    async fn store_chunk(&self, upload: &mut Upload, chunk: &[u8]) -> AppResult<()> {
        let mut conn = self.db.get().await?;
        store::add_chunk(&mut conn, upload.import, upload.seq, chunk).await?;
        upload.seq += 1;
        Ok(())
    }

    /// Drops an upload that will not run (refused, or the request failed).
    pub async fn discard(&self, upload: Upload) -> AppResult<()> {
        store::discard(&mut *self.db.get().await?, upload.import).await
    }

    /// The file is complete: runs the import now when it is small, else queues it.
    pub async fn submit(
        &self,
        viewer: &Viewer,
        mut upload: Upload,
        options: Options,
    ) -> AppResult<Submitted> {
        if !upload.buffer.is_empty() {
            let last = std::mem::take(&mut upload.buffer);
            self.store_chunk(&mut upload, &last).await?;
        }
        let mut conn = self.db.get().await?;
        store::uploaded(&mut conn, upload.import, upload.bytes as i64, &options).await?;
        if upload.lines <= self.config.inline_rows {
            drop(conn);
            let import = engine::run(&self.db, upload.import, None).await?;
            return Ok(Submitted {
                import,
                job_id: None,
            });
        }
        let job = job_for(
            viewer,
            &RunImport {
                import_id: upload.import,
            },
        );
        let job_id = queue::enqueue_in(&mut conn, &job)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("import job not enqueued")))?;
        store::set_job(&mut conn, upload.import, job_id).await?;
        Ok(Submitted {
            import: store::load(&mut conn, upload.import).await?,
            job_id: Some(job_id),
        })
    }

    pub async fn import(&self, viewer: &Viewer, id: i64) -> AppResult<ImportRow> {
        store::get(&mut *self.db.get().await?, viewer, id).await
    }

    /// A page of the caller's visible imports, newest first, after the import `after`
    /// (at most [`MAX_IMPORTS_PAGE`]).
    pub async fn imports(
        &self,
        viewer: &Viewer,
        first: i64,
        after: Option<i64>,
    ) -> AppResult<Page<ImportRow>> {
        let first = crate::pagination::size_within("first", first, MAX_IMPORTS_PAGE)?;
        let mut conn = self.db.get().await?;
        let mut items = store::list(&mut conn, viewer, after, first + 1).await?;
        let has_next_page = items.len() as i64 > first;
        items.truncate(first as usize);
        Ok(Page {
            items,
            has_next_page,
            has_previous_page: after.is_some(),
            total_count: store::count(&mut conn, viewer).await?,
        })
    }

    /// Failed rows of an import the caller may see, after line `after`.
    pub async fn failed_rows(
        &self,
        viewer: &Viewer,
        id: i64,
        after: u64,
        limit: i64,
    ) -> AppResult<Vec<FailedRow>> {
        let mut conn = self.db.get().await?;
        store::get(&mut conn, viewer, id).await?;
        store::failed_rows(&mut conn, id, after, limit.clamp(1, 10_000)).await
    }

    /// Undoes an import, or resumes an undo that stopped (the rule: `imports::undo`): inline
    /// when it touches few records, else as a job (the import shows `undoing` until it is
    /// done). At most one undo job per import is live at a time.
    pub async fn undo(&self, viewer: &Viewer, id: i64) -> AppResult<ImportRow> {
        let mut conn = self.db.get().await?;
        undo::claim(&mut conn, viewer, id).await?;
        if undo::size(&mut conn, id).await? as u64 <= self.config.inline_rows {
            undo::run(&mut conn, viewer, id).await?;
        } else {
            let undo = UndoImport {
                import_id: id,
                requested_by: Some(viewer.user_id.0),
            };
            let mut job = job_for(viewer, &undo);
            job.unique_key = Some(format!("{}:{id}", UndoImport::KIND));
            queue::enqueue_in(&mut conn, &job).await?;
        }
        store::load(&mut conn, id).await
    }
}

/// Runs a large import in the background.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunImport {
    pub import_id: i64,
}

impl Job for RunImport {
    const KIND: &'static str = "imports.run";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        let import = engine::run(&ctx.app.db, self.import_id, Some(&ctx))
            .await
            .map_err(|e| e.to_string())?;
        let _ = ctx.progress(100, &import.status).await;
        // Background imports only: a small import answers its upload directly.
        let notice = crate::notifications::system::import_finished(&import);
        if let Err(err) = ctx.app.notifications.notify(&notice).await {
            err.log_if_internal();
        }
        Ok(summary(&import))
    }
}

/// Undoes a large import in the background. An attempt that fails leaves the import
/// `undo_failed`; the next attempt resumes after the last committed batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UndoImport {
    pub import_id: i64,
    /// Who asked for this run of the undo: the job acts for them, as an inline undo acts for
    /// its caller (absent in jobs queued before it was recorded).
    #[serde(default)]
    pub requested_by: Option<i64>,
}

impl Job for UndoImport {
    const KIND: &'static str = "imports.undo";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<serde_json::Value, String> {
        let attempt = async {
            let mut conn = ctx.app.db.get().await?;
            let row = store::load(&mut conn, self.import_id).await?;
            let user = crate::auth::UserId(
                self.requested_by
                    .or(row.undone_by)
                    .unwrap_or(row.created_by),
            );
            let viewer = match crate::auth::viewer::acting_for(&mut conn, user).await {
                Ok(viewer) => viewer,
                Err(err) => {
                    undo::failed(&mut conn, self.import_id, &err).await?;
                    return Err(err);
                }
            };
            undo::run(&mut conn, &viewer, self.import_id).await
        };
        match attempt.await {
            Ok(result) => Ok(serde_json::to_value(result).unwrap_or_default()),
            Err(err) => {
                err.log_if_internal();
                Err(err.to_string())
            }
        }
    }
}

/// The totals of an import, as a job result.
pub fn summary(import: &ImportRow) -> serde_json::Value {
    serde_json::json!({
        "import_id": import.id,
        "status": import.status,
        "total_rows": import.total_rows,
        "imported": import.imported,
        "updated": import.updated,
        "skipped": import.skipped,
        "errors": import.errors,
    })
}
