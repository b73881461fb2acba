//! System notices: a background import finished, a lead-scoring model was retrained, a job
//! someone started failed for good. They tell the person who started the work (the
//! workspace's admins for scheduled trainings) and go through the one notify path, so
//! preferences, quiet hours and live delivery apply as for every other kind. Each is written
//! in its own transaction after the work's outcome is stored: a crash in between loses the
//! notice, never the work.

use serde_json::json;

use super::preferences::Kind;
use super::service::NotificationService;
use super::Notice;
use crate::error::{AppError, AppResult};
use crate::imports::store::ImportRow;
use crate::jobs::JobRow;

impl NotificationService {
    /// Stores and delivers one notice in its own transaction.
    pub async fn notify(&self, notice: &Notice) -> AppResult<()> {
        use diesel_async::AsyncConnection;
        if notice.recipients.is_empty() {
            return Ok(());
        }
        let gateways = self.gateways;
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            super::notify_in(conn, gateways, notice).await
        })
        .await?;
        Ok(())
    }

    /// Tells the admins of a workspace (scheduled work nobody started).
    pub async fn admins(&self, workspace_id: i64) -> AppResult<Vec<i64>> {
        use diesel::sql_types::BigInt;
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Admin {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut conn = self.db.get().await?;
        let admins: Vec<Admin> = diesel::sql_query(
            "SELECT id FROM users WHERE workspace_id = $1 AND role = 'admin' AND is_active",
        )
        .bind::<BigInt, _>(workspace_id)
        .load(&mut conn)
        .await?;
        Ok(admins.into_iter().map(|a| a.id).collect())
    }
}

fn system(workspace_id: i64, recipients: Vec<i64>, title: String, message: String) -> Notice {
    Notice {
        workspace_id,
        kind: Kind::System,
        recipients,
        title,
        message,
        entity: None,
        record_id: None,
        actor_id: None,
        data: json!({}),
    }
}

/// "Import finished" for the import's starter.
pub fn import_finished(import: &ImportRow) -> Notice {
    let what = if import.dry_run { "Dry run" } else { "Import" };
    let mut notice = system(
        import.workspace_id,
        vec![import.created_by],
        format!("{what} of {} {}", import.file_name, import.status),
        format!(
            "{} rows: {} imported, {} updated, {} skipped, {} with errors.",
            import.total_rows, import.imported, import.updated, import.skipped, import.errors
        ),
    );
    notice.data = json!({
        "import_id": import.id,
        "job_id": import.job_id,
        "resource": import.resource,
        "status": import.status,
    });
    notice
}

/// "Model retrained" for whoever asked, or the workspace's admins.
pub fn model_retrained(
    workspace_id: i64,
    recipients: Vec<i64>,
    version: i32,
    metrics: &serde_json::Value,
) -> Notice {
    let auc = metrics["roc_auc"]
        .as_f64()
        .map(|auc| format!(" (AUC {auc:.3})"))
        .unwrap_or_default();
    let mut notice = system(
        workspace_id,
        recipients,
        format!("Lead-scoring model v{version} is ready"),
        format!("The model was retrained{auc}; leads are being rescored."),
    );
    notice.data = json!({ "model_version": version });
    notice
}

/// "Job failed" for the job's starter: the kind and ID only (its errors stay in the job API,
/// where the starter can read them; they may name internals a notice should not carry).
pub fn job_failed(job: &JobRow) -> Option<Notice> {
    let (workspace, starter) = (job.workspace_id?, job.created_by?);
    let mut notice = system(
        workspace,
        vec![starter],
        format!("A background job failed: {}", job.kind),
        format!(
            "Job {} ({}) failed after {} attempt(s) and will not be retried. \
             Its errors are in job(id: \"{}\").",
            job.id, job.kind, job.attempt, job.id
        ),
    );
    notice.data = json!({ "job_id": job.id, "job_kind": job.kind });
    Some(notice)
}
