//! First start: when the database has no user at all, create a workspace and its admin.

use diesel_async::{AsyncConnection, RunQueryDsl};

use super::passwords;
use super::users::any_user_exists;
use super::workspaces::{NewWorkspaceWithAdmin, SignUp};
use crate::config::BootstrapConfig;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};

pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";
pub const DEFAULT_WORKSPACE_NAME: &str = "My Workspace";
/// Serialises concurrent first starts of several processes.
const BOOTSTRAP_LOCK_KEY: i64 = 0x6d79_6372_6d00_0002;

/// The admin created on first start. `generated_password` is set when none was configured:
/// the caller shows it once.
#[derive(Debug)]
pub struct BootstrappedAdmin {
    pub email: String,
    pub generated_password: Option<String>,
}

/// Creates the first workspace and admin unless any user exists. Idempotent.
pub async fn ensure_first_admin(
    pool: &DbPool,
    config: &BootstrapConfig,
) -> AppResult<Option<BootstrappedAdmin>> {
    let email = config
        .admin_email
        .clone()
        .unwrap_or_else(|| DEFAULT_ADMIN_EMAIL.to_string());
    let generated_password = config.admin_password.is_none().then(passwords::generate);
    let password = config
        .admin_password
        .clone()
        .or_else(|| generated_password.clone())
        .unwrap_or_default();
    let mut conn = pool.get().await?;
    let created = conn
        .transaction::<_, AppError, _>(async move |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(BOOTSTRAP_LOCK_KEY)
                .execute(conn)
                .await?;
            if any_user_exists(conn).await? {
                return Ok(None);
            }
            let new = NewWorkspaceWithAdmin::validate(SignUp {
                workspace_name: DEFAULT_WORKSPACE_NAME.into(),
                name: "Administrator".into(),
                email,
                password,
            })
            .await
            .map_err(|e| match e {
                AppError::BadUserInput { field, message } => {
                    AppError::bad_input(format!("MYCRM_ADMIN_{}", field.to_uppercase()), message)
                }
                other => other,
            })?;
            let admin = new.insert(conn).await?;
            Ok(Some(admin.email))
        })
        .await?;
    Ok(created.map(|email| BootstrappedAdmin {
        email,
        generated_password,
    }))
}
