//! Who is asking: the authenticated caller every domain function takes for scoping.

use crate::error::{AppError, AppResult};

crate::id_type!(
    /// A user's ID.
    UserId
);
crate::id_type!(
    /// A workspace (tenant) ID.
    WorkspaceId
);

crate::text_enum!(
    /// What a user may do in their workspace.
    Role {
        /// Everything, including managing users.
        Admin => "admin",
        /// Sees and edits every record of the workspace.
        Manager => "manager",
        /// Works on the records they own or are assigned.
        Member => "member",
    }
);

/// The authenticated caller. Built only by `AuthService::authenticate` from a valid access token
/// of an active user, so holding one means the checks were made.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    /// The role as stored now (not as it was when the token was issued).
    pub role: Role,
    pub email: String,
    /// The login session (refresh-token family) the access token belongs to.
    pub session_id: uuid::Uuid,
    /// When the access token expires; long-lived connections end then.
    pub token_expires_at: chrono::DateTime<chrono::Utc>,
    /// The workflow run this viewer acts for, when a workflow's action makes the change: its
    /// events carry it, so the engine can stop workflows from triggering each other forever.
    pub workflow_run: Option<i64>,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The one place that says "admins only".
    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("only workspace admins may do this"))
        }
    }
}

/// The viewer background work acts as on behalf of a user (an import the user started): the
/// user's current role, refused when the user is no longer active. It has no login session.
pub async fn acting_for(
    conn: &mut diesel_async::AsyncPgConnection,
    user: UserId,
) -> AppResult<Viewer> {
    let user = super::users::active_user(conn, user)
        .await?
        .ok_or_else(|| AppError::forbidden("the user who started this is no longer active"))?;
    Ok(Viewer {
        user_id: user.id,
        workspace_id: user.workspace_id,
        role: user.role,
        email: user.email,
        session_id: uuid::Uuid::nil(),
        token_expires_at: chrono::DateTime::<chrono::Utc>::MAX_UTC,
        workflow_run: None,
    })
}
