//! Users, workspaces and roles: the `User` and `Workspace` types, the `users` list and the
//! admin mutations on users.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};

use super::connection::connection_types;
use chrono::{DateTime, Utc};

use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::ids::{page_args, parse_id, to_id};
use super::loaders::WorkspaceLoader;
use crate::auth::{self, UserId};
use crate::error::AppError;

/// What a user may do in their workspace.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role", remote = "crate::auth::Role")]
pub enum RoleValue {
    /// Everything, including managing users.
    Admin,
    /// Sees and edits every record of the workspace.
    Manager,
    /// Works on the records they own or are assigned.
    Member,
}

pub struct User(pub auth::User);

/// A person who can log in to a workspace.
#[Object]
impl User {
    /// Unique ID of the user.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// Login email, stored lower-cased.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Role in the workspace.
    async fn role(&self) -> RoleValue {
        self.0.role.into()
    }
    /// Whether the user may log in (false once deactivated).
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    /// When the user last logged in with a password.
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }
    /// When the user was deactivated, if they are.
    async fn deactivated_at(&self) -> Option<DateTime<Utc>> {
        self.0.deactivated_at
    }
    /// When the user was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the user was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The workspace the user belongs to.
    async fn workspace(&self, ctx: &Context<'_>) -> async_graphql::Result<Workspace> {
        super::context::loader::<WorkspaceLoader>(ctx)
            .load_one(self.0.workspace_id)
            .await?
            .map(Workspace)
            .ok_or(AppError::NotFound("workspace"))
            .gql()
    }
}

pub struct Workspace(pub auth::Workspace);

/// A tenant: a team's own, isolated CRM.
#[Object]
impl Workspace {
    /// Unique ID of the workspace.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// Display name of the workspace.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The workspace's IANA timezone (`Europe/Paris`): time-based workflows read their cron
    /// schedules and dates in it.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
    /// When the workspace was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Input of `updateWorkspace`; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWorkspaceInput {
    /// New display name.
    pub name: Option<String>,
    /// New IANA timezone name (`America/New_York`, `UTC`).
    pub timezone: Option<String>,
}

connection_types!(UserConnection, UserEdge, User);

/// Narrows the `users` list.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Only users with this role.
    pub role: Option<RoleValue>,
    /// Only active (true) or deactivated (false) users.
    pub is_active: Option<bool>,
    /// Case-insensitive match on email or name.
    pub search: Option<String>,
}

/// Input of `createUser`.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Login email; must not be used by any other user.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role in the workspace.
    pub role: RoleValue,
    /// Initial password (8 to 256 characters); the user should change it.
    pub password: String,
}

/// Input of `updateUser`; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// The user to change.
    pub id: ID,
    /// New login email.
    pub email: Option<String>,
    /// New display name.
    pub name: Option<String>,
    /// New role. The last active admin cannot be demoted.
    pub role: Option<RoleValue>,
}

/// The result of a mutation on a user.
#[derive(SimpleObject)]
pub struct UserPayload {
    /// The user as it is now.
    pub user: User,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// A user of your workspace.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's ID.")] id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = viewer(ctx)?;
        let id = UserId(parse_id("id", &id).gql()?);
        app(ctx).auth.user(viewer, id).await.map(User).gql()
    }

    /// The users of your workspace, oldest first (admins only).
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(1, 500) as usize * child_complexity"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Narrow the list.")] filter: Option<UserFilter>,
        #[graphql(desc = "Page size from the start (1-500, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end (1-500).")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let viewer = viewer(ctx)?;
        let page = page_args(first, after, last, before).gql()?;
        let filter = filter.unwrap_or_default();
        let filter = auth::UserFilter {
            role: filter.role.map(Into::into),
            is_active: filter.is_active,
            search: filter.search,
        };
        let page = app(ctx)
            .auth
            .list_users(viewer, &filter, &page)
            .await
            .gql()?;
        Ok(UserConnection::from_page(page, |user| user.id.0, User))
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Adds a user to your workspace (admins only).
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let viewer = viewer(ctx)?;
        let input = auth::CreateUser {
            email: input.email,
            name: input.name,
            role: input.role.into(),
            password: input.password,
        };
        let user = app(ctx).auth.create_user(viewer, input).await.gql()?;
        Ok(UserPayload { user: User(user) })
    }

    /// Changes a user's email, name or role (admins only).
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user and the changes.")] input: UpdateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let viewer = viewer(ctx)?;
        let id = UserId(parse_id("id", &input.id).gql()?);
        let patch = auth::UpdateUser {
            name: input.name,
            email: input.email,
            role: input.role.map(Into::into),
        };
        let user = app(ctx).auth.update_user(viewer, id, patch).await.gql()?;
        Ok(UserPayload { user: User(user) })
    }

    /// Renames the workspace or changes its timezone (admins only).
    async fn update_workspace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The changes.")] input: UpdateWorkspaceInput,
    ) -> async_graphql::Result<Workspace> {
        let viewer = viewer(ctx)?;
        let patch = auth::UpdateWorkspace {
            name: input.name,
            timezone: input.timezone,
        };
        let workspace = app(ctx).auth.update_workspace(viewer, patch).await.gql()?;
        Ok(Workspace(workspace))
    }

    /// Stops a user from logging in and ends all their sessions at once (admins only).
    async fn deactivate_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to deactivate.")] id: ID,
    ) -> async_graphql::Result<UserPayload> {
        let viewer = viewer(ctx)?;
        let id = UserId(parse_id("id", &id).gql()?);
        let user = app(ctx).auth.deactivate_user(viewer, id).await.gql()?;
        Ok(UserPayload { user: User(user) })
    }

    /// Lets a deactivated user log in again (admins only).
    async fn reactivate_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to reactivate.")] id: ID,
    ) -> async_graphql::Result<UserPayload> {
        let viewer = viewer(ctx)?;
        let id = UserId(parse_id("id", &id).gql()?);
        let user = app(ctx).auth.reactivate_user(viewer, id).await.gql()?;
        Ok(UserPayload { user: User(user) })
    }
}
