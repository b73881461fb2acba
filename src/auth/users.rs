//! Users of a workspace: reading, listing and the admin operations on them.

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, Insertable, OptionalExtension,
    PgTextExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::passwords;
use super::sessions::revoke_all_sessions;
use super::viewer::{Role, UserId, Viewer, WorkspaceId};
use super::AuthService;
use crate::db::schema::{users, workspaces};
use crate::error::{AppError, AppResult};
use crate::pagination::{like_pattern, Page, PageArgs};
use crate::validation::{normalize_email, validate_name};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(super) struct NewUser<'a> {
    pub workspace_id: WorkspaceId,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

/// `createUser` input, unvalidated.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
}

/// `updateUser` input: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// Matches email or name, case-insensitively.
    pub search: Option<String>,
}

/// Inserts a user, turning the email uniqueness violation into a CONFLICT on `email`.
pub(super) async fn insert_user(conn: &mut AsyncPgConnection, new: NewUser<'_>) -> AppResult<User> {
    diesel::insert_into(users::table)
        .values(&new)
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .map_err(email_taken)
}

/// The unique index on `users.email` is the one source of truth for "email already used".
fn email_taken(err: diesel::result::Error) -> AppError {
    match err {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => AppError::conflict_on("email", "a user with this email already exists"),
        other => other.into(),
    }
}

/// Serialises changes to a workspace's admins (see [`ensure_other_active_admin`]).
async fn lock_workspace(conn: &mut AsyncPgConnection, workspace: WorkspaceId) -> AppResult<()> {
    workspaces::table
        .find(workspace)
        .select(workspaces::id)
        .for_update()
        .first::<i64>(conn)
        .await?;
    Ok(())
}

/// A workspace always keeps one active admin, or nobody could manage it any more.
async fn ensure_other_active_admin(
    conn: &mut AsyncPgConnection,
    workspace: WorkspaceId,
    except: UserId,
) -> AppResult<()> {
    let others: i64 = users::table
        .filter(users::workspace_id.eq(workspace))
        .filter(users::role.eq(Role::Admin))
        .filter(users::is_active.eq(true))
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)
        .await?;
    if others == 0 {
        return Err(AppError::conflict(
            "the workspace must keep at least one active admin",
        ));
    }
    Ok(())
}

/// Loads a user of the viewer's workspace, for update.
async fn user_in_workspace_for_update(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: UserId,
) -> AppResult<User> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::workspace_id.eq(viewer.workspace_id))
        .select(User::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("user"))
}

impl AuthService {
    /// The caller's own user record.
    pub async fn me(&self, viewer: &Viewer) -> AppResult<User> {
        self.user(viewer, viewer.user_id).await
    }

    /// A user of the caller's workspace; users of other workspaces do not exist for the caller.
    pub async fn user(&self, viewer: &Viewer, id: UserId) -> AppResult<User> {
        let mut conn = self.db.get().await?;
        users::table
            .filter(users::id.eq(id))
            .filter(users::workspace_id.eq(viewer.workspace_id))
            .select(User::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("user"))
    }

    /// Users of the caller's workspace by ID, for DataLoaders. Missing IDs are simply absent.
    pub async fn users_by_ids(&self, viewer: &Viewer, ids: &[UserId]) -> AppResult<Vec<User>> {
        let mut conn = self.db.get().await?;
        Ok(users::table
            .filter(users::id.eq_any(ids))
            .filter(users::workspace_id.eq(viewer.workspace_id))
            .select(User::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Admins list the users of their workspace.
    pub async fn list_users(
        &self,
        viewer: &Viewer,
        filter: &UserFilter,
        page: &PageArgs,
    ) -> AppResult<Page<User>> {
        viewer.require_admin()?;
        let window = page.window()?;
        let filtered = || {
            let mut query = users::table
                .filter(users::workspace_id.eq(viewer.workspace_id))
                .into_boxed();
            if let Some(role) = filter.role {
                query = query.filter(users::role.eq(role));
            }
            if let Some(active) = filter.is_active {
                query = query.filter(users::is_active.eq(active));
            }
            if let Some(search) = filter
                .search
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let pattern = like_pattern(search);
                query = query.filter(
                    users::email
                        .ilike(pattern.clone())
                        .or(users::name.ilike(pattern)),
                );
            }
            query
        };
        let mut conn = self.db.get().await?;
        let total: i64 = filtered().count().get_result(&mut conn).await?;
        let mut query = filtered().select(User::as_select());
        if let Some(after) = page.after {
            query = query.filter(users::id.gt(UserId(after)));
        }
        if let Some(before) = page.before {
            query = query.filter(users::id.lt(UserId(before)));
        }
        query = if window.backward {
            query.order(users::id.desc())
        } else {
            query.order(users::id.asc())
        };
        let rows = query.limit(window.fetch()).load(&mut conn).await?;
        Ok(window.finish(rows, total))
    }

    pub async fn create_user(&self, viewer: &Viewer, input: CreateUser) -> AppResult<User> {
        viewer.require_admin()?;
        self.create_user_in(viewer.workspace_id, input).await
    }

    /// Creates a user in `workspace` without a caller (the `mycrm user create` command).
    pub async fn create_user_in(
        &self,
        workspace: WorkspaceId,
        input: CreateUser,
    ) -> AppResult<User> {
        let email = normalize_email("email", &input.email)?;
        let name = validate_name("name", &input.name)?;
        passwords::validate_new_password("password", &input.password)?;
        let hash = passwords::hash(input.password).await?;
        let mut conn = self.db.get().await?;
        insert_user(
            &mut conn,
            NewUser {
                workspace_id: workspace,
                email: &email,
                name: &name,
                role: input.role,
                password_hash: &hash,
            },
        )
        .await
    }

    pub async fn update_user(
        &self,
        viewer: &Viewer,
        id: UserId,
        input: UpdateUser,
    ) -> AppResult<User> {
        viewer.require_admin()?;
        let email = input
            .email
            .as_deref()
            .map(|e| normalize_email("email", e))
            .transpose()?;
        let name = input
            .name
            .as_deref()
            .map(|n| validate_name("name", n))
            .transpose()?;
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        // Any change (email, name, role) reaches cached sessions at once.
        let user = conn
            .transaction::<_, AppError, _>(async move |conn| {
                lock_workspace(conn, viewer.workspace_id).await?;
                let current = user_in_workspace_for_update(conn, &viewer, id).await?;
                let demotes_admin = current.role == Role::Admin
                    && input.role.is_some_and(|role| role != Role::Admin);
                if demotes_admin && current.is_active {
                    ensure_other_active_admin(conn, viewer.workspace_id, id).await?;
                }
                let changes = (
                    users::email.eq(email.unwrap_or(current.email)),
                    users::name.eq(name.unwrap_or(current.name)),
                    users::role.eq(input.role.unwrap_or(current.role)),
                    users::updated_at.eq(diesel::dsl::now),
                );
                let role_changes = input.role.is_some_and(|role| role != current.role);
                let user = diesel::update(users::table.find(id))
                    .set(changes)
                    .returning(User::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(email_taken)?;
                if role_changes {
                    // What the user may see changed: their live connections close at commit.
                    crate::events::live::announce(
                        conn,
                        &serde_json::json!({ "k": "user_changed", "user": id.0 }),
                    )
                    .await?;
                }
                Ok(user)
            })
            .await;
        self.sessions.forget_user(id);
        user
    }

    /// Deactivated users cannot log in and all their sessions end at once.
    pub async fn deactivate_user(&self, viewer: &Viewer, id: UserId) -> AppResult<User> {
        viewer.require_admin()?;
        if id == viewer.user_id {
            return Err(AppError::bad_input("id", "you cannot deactivate yourself"));
        }
        self.set_active(viewer, id, false).await
    }

    pub async fn reactivate_user(&self, viewer: &Viewer, id: UserId) -> AppResult<User> {
        viewer.require_admin()?;
        self.set_active(viewer, id, true).await
    }

    async fn set_active(&self, viewer: &Viewer, id: UserId, active: bool) -> AppResult<User> {
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        let user = conn
            .transaction::<_, AppError, _>(async move |conn| {
                lock_workspace(conn, viewer.workspace_id).await?;
                let current = user_in_workspace_for_update(conn, &viewer, id).await?;
                if current.is_active == active {
                    return Ok(current);
                }
                if !active && current.role == Role::Admin {
                    ensure_other_active_admin(conn, viewer.workspace_id, id).await?;
                }
                let deactivated_at: Option<DateTime<Utc>> = (!active).then(Utc::now);
                let user = diesel::update(users::table.find(id))
                    .set((
                        users::is_active.eq(active),
                        users::deactivated_at.eq(deactivated_at),
                        users::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(User::as_returning())
                    .get_result(conn)
                    .await?;
                if !active {
                    revoke_all_sessions(conn, id, "user_deactivated").await?;
                }
                Ok(user)
            })
            .await;
        self.sessions.forget_user(id);
        user
    }
}

/// Any user at all? (First-start bootstrap.)
pub(super) async fn any_user_exists(conn: &mut AsyncPgConnection) -> AppResult<bool> {
    Ok(users::table
        .select(users::id)
        .first::<UserId>(conn)
        .await
        .optional()?
        .is_some())
}

/// Login credentials looked up by (normalised) email.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(super) struct Credentials {
    pub id: UserId,
    pub password_hash: String,
    pub is_active: bool,
}

pub(super) async fn credentials_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> AppResult<Option<Credentials>> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(Credentials::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub(super) async fn credentials_by_id(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> AppResult<Credentials> {
    Ok(users::table
        .find(id)
        .select(Credentials::as_select())
        .first(conn)
        .await?)
}

pub(super) async fn active_user(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> AppResult<Option<User>> {
    Ok(users::table
        .filter(users::id.eq(id).and(users::is_active.eq(true)))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// How other domains name users (notices, workflow contexts): name and email.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserBrief {
    pub id: UserId,
    pub name: String,
    pub email: String,
}

/// The users among `ids` (of `workspace` when given: callers holding IDs of one workspace
/// say so), by ID.
pub async fn briefs(
    conn: &mut AsyncPgConnection,
    workspace: Option<WorkspaceId>,
    ids: &[i64],
) -> AppResult<std::collections::HashMap<i64, UserBrief>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<UserId> = ids.iter().copied().map(UserId).collect();
    let mut query = users::table
        .filter(users::id.eq_any(ids))
        .select(UserBrief::as_select())
        .into_boxed();
    if let Some(workspace) = workspace {
        query = query.filter(users::workspace_id.eq(workspace));
    }
    let rows: Vec<UserBrief> = query.load(conn).await?;
    Ok(rows.into_iter().map(|u| (u.id.0, u)).collect())
}
