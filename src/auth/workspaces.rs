//! Workspaces (tenants): sign-up creates one with its first admin.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::sessions::Session;
use super::users::{insert_user, NewUser, User};
use super::viewer::{Role, WorkspaceId};
use super::{passwords, AuthService};
use crate::db::schema::workspaces;
use crate::error::{AppError, AppResult};
use crate::validation::{normalize_email, validate_name};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = workspaces)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    /// IANA name; cron schedules and dates of time-based workflows are read in it.
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `updateWorkspace` input, unvalidated; omitted fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UpdateWorkspace {
    pub name: Option<String>,
    pub timezone: Option<String>,
}

/// An IANA timezone name (`Europe/Paris`); BAD_USER_INPUT on `field` otherwise.
pub fn parse_timezone(field: &str, text: &str) -> AppResult<chrono_tz::Tz> {
    let text = text.trim();
    text.parse::<chrono_tz::Tz>().map_err(|_| {
        AppError::bad_input(
            field,
            format!("{text:?} is not an IANA timezone name like Europe/Paris or UTC"),
        )
    })
}

/// `signUp` input, unvalidated.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub workspace_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// A validated new workspace with its admin, ready to insert.
pub(super) struct NewWorkspaceWithAdmin {
    pub workspace_name: String,
    pub name: String,
    pub email: String,
    pub password_hash: String,
}

impl NewWorkspaceWithAdmin {
    pub async fn validate(input: SignUp) -> AppResult<Self> {
        let workspace_name = validate_name("workspaceName", &input.workspace_name)?;
        let name = validate_name("name", &input.name)?;
        let email = normalize_email("email", &input.email)?;
        passwords::validate_new_password("password", &input.password)?;
        let password_hash = passwords::hash(input.password).await?;
        Ok(NewWorkspaceWithAdmin {
            workspace_name,
            name,
            email,
            password_hash,
        })
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> AppResult<User> {
        let workspace: WorkspaceId = diesel::insert_into(workspaces::table)
            .values(workspaces::name.eq(&self.workspace_name))
            .returning(workspaces::id)
            .get_result(conn)
            .await?;
        insert_user(
            conn,
            NewUser {
                workspace_id: workspace,
                email: &self.email,
                name: &self.name,
                role: Role::Admin,
                password_hash: &self.password_hash,
            },
        )
        .await
    }
}

impl AuthService {
    /// Creates a workspace and its admin, and logs the admin in.
    pub async fn sign_up(&self, input: SignUp) -> AppResult<Session> {
        if !self.config.allow_sign_up {
            return Err(AppError::forbidden("sign-up is disabled on this server"));
        }
        let new = NewWorkspaceWithAdmin::validate(input).await?;
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            let admin = new.insert(conn).await?;
            self.start_session(conn, admin).await
        })
        .await
    }

    /// Creates a workspace and its first admin, for operators (`mycrm demo`); sign-up rules do
    /// not apply. A workspace of that name must not exist yet.
    pub async fn create_workspace(&self, input: SignUp) -> AppResult<User> {
        let new = NewWorkspaceWithAdmin::validate(input).await?;
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            // An operator command on a handful of workspaces: comparing in Rust is enough.
            let names: Vec<String> = workspaces::table
                .select(workspaces::name)
                .load(conn)
                .await?;
            if names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&new.workspace_name))
            {
                return Err(AppError::conflict_on(
                    "workspaceName",
                    "a workspace with this name already exists",
                ));
            }
            new.insert(conn).await
        })
        .await
    }

    /// Renames the viewer's workspace or changes its timezone (admins only).
    pub async fn update_workspace(
        &self,
        viewer: &crate::auth::Viewer,
        patch: UpdateWorkspace,
    ) -> AppResult<Workspace> {
        viewer.require_admin()?;
        let name = patch
            .name
            .as_deref()
            .map(|n| validate_name("name", n))
            .transpose()?;
        let timezone = patch
            .timezone
            .as_deref()
            .map(|t| parse_timezone("timezone", t).map(|tz| tz.name().to_string()))
            .transpose()?;
        let mut conn = self.db.get().await?;
        let target = workspaces::table.filter(workspaces::id.eq(viewer.workspace_id));
        Ok(diesel::update(target)
            .set((
                name.map(|n| workspaces::name.eq(n)),
                timezone.map(|t| workspaces::timezone.eq(t)),
                workspaces::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Workspace::as_returning())
            .get_result(&mut conn)
            .await?)
    }

    /// Finds a workspace by ID or exact name (case-insensitive); without a selector, the only
    /// workspace there is. For operators (`mycrm user create --workspace`).
    pub async fn find_workspace(&self, selector: Option<&str>) -> AppResult<Workspace> {
        let mut conn = self.db.get().await?;
        let all: Vec<Workspace> = workspaces::table
            .select(Workspace::as_select())
            .order(workspaces::id.asc())
            .load(&mut conn)
            .await?;
        let names = || {
            all.iter()
                .map(|w| format!("{} ({})", w.id, w.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let found = match selector.map(str::trim) {
            None => match all.as_slice() {
                [only] => Some(only.clone()),
                [] => None,
                _ => {
                    return Err(AppError::bad_input(
                        "workspace",
                        format!("several workspaces exist; choose one of: {}", names()),
                    ))
                }
            },
            Some(wanted) => all
                .iter()
                .find(|w| w.id.0.to_string() == wanted || w.name.eq_ignore_ascii_case(wanted))
                .cloned(),
        };
        found.ok_or_else(|| {
            AppError::bad_input(
                "workspace",
                format!("no such workspace; existing: {}", names()),
            )
        })
    }

    /// Workspaces by ID, for the workspace of user records the caller already holds (users
    /// are scoped when fetched; see `graphql::loaders::WorkspaceLoader`).
    pub async fn workspaces_by_ids(&self, ids: &[WorkspaceId]) -> AppResult<Vec<Workspace>> {
        let mut conn = self.db.get().await?;
        Ok(workspaces::table
            .filter(workspaces::id.eq_any(ids))
            .select(Workspace::as_select())
            .load(&mut conn)
            .await?)
    }
}
