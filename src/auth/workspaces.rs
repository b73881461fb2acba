//! Workspaces (tenants): sign-up creates one with its first admin.
//!
//! Open sign-up (an instance setting, off by default: admins invite) never says whether an
//! email has an account: `signUp` answers the same for a free and a taken email and tells the
//! outcome by email. A free email gets a link (a one-time token, valid a day) that
//! `confirmSignUp` turns into the workspace and a session; a taken one gets a note saying an
//! account exists. One email per address per [`SIGN_UP_RESEND`], so the form cannot be used
//! to flood someone's inbox.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::sessions::Session;
use super::tokens::{digest, random_token};
use super::users::{insert_user, NewUser, User};
use super::viewer::{Role, WorkspaceId};
use super::{passwords, AuthService};
use crate::db::schema::{sign_up_requests, users, workspaces};
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

/// How long a sign-up link works.
pub const SIGN_UP_VALID: chrono::Duration = chrono::Duration::hours(24);
/// At most one sign-up email per address in this time.
pub const SIGN_UP_RESEND: chrono::Duration = chrono::Duration::minutes(10);

/// What `signUp` did. The caller is told the same either way; this is for the email.
pub enum SignUpRequested {
    /// The email is free: send it the confirmation token.
    Confirm { email: String, token: String },
    /// The email has an account: tell its owner, who may not have asked.
    AlreadyRegistered { email: String },
    /// An email went to this address a moment ago: send nothing.
    Throttled,
}

impl SignUpRequested {
    /// (to, subject, body) of the email to send, if any.
    pub fn email(&self) -> Option<(&str, &'static str, String)> {
        match self {
            SignUpRequested::Confirm { email, token } => Some((
                email,
                "Confirm your MyCRM workspace",
                format!(
                    "Someone (we hope you) asked for a MyCRM workspace with this address.\n\n\
                     To finish, send this token to the API within 24 hours:\n\n\
                     mutation {{ confirmSignUp(token: \"{token}\") {{ accessToken }} }}\n\n\
                     If it was not you, ignore this email: nothing is created without it.\n"
                ),
            )),
            SignUpRequested::AlreadyRegistered { email } => Some((
                email,
                "Your MyCRM account",
                "Someone (perhaps you) tried to sign up for MyCRM with this address, which \
                 already has an account. Log in with it instead; if you forgot the password, ask \
                 your workspace's admin. If it was not you, you can ignore this email.\n"
                    .to_string(),
            )),
            SignUpRequested::Throttled => None,
        }
    }
}

impl AuthService {
    /// Asks for a workspace with its admin: validates the input (those errors name the field),
    /// then stores the request for a free email or notes a taken one. Nothing the caller sees
    /// differs between the two.
    pub async fn request_sign_up(&self, input: SignUp) -> AppResult<SignUpRequested> {
        if !self.config.allow_sign_up {
            return Err(AppError::forbidden(
                "sign-up is disabled on this server; ask an admin of your workspace to invite you",
            ));
        }
        // Hashes the password whatever the email, so both answers take the same time.
        let new = NewWorkspaceWithAdmin::validate(input).await?;
        let token = random_token(32);
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            diesel::delete(
                sign_up_requests::table.filter(sign_up_requests::expires_at.lt(diesel::dsl::now)),
            )
            .execute(conn)
            .await?;
            let recent: i64 = sign_up_requests::table
                .filter(sign_up_requests::email.eq(&new.email))
                .filter(sign_up_requests::created_at.gt(Utc::now() - SIGN_UP_RESEND))
                .count()
                .get_result(conn)
                .await?;
            // Every request is kept (a taken email's too, with the hash) so the throttle sees
            // it; confirming a taken email is refused then.
            diesel::insert_into(sign_up_requests::table)
                .values((
                    sign_up_requests::token_digest.eq(digest(&token)),
                    sign_up_requests::workspace_name.eq(&new.workspace_name),
                    sign_up_requests::name.eq(&new.name),
                    sign_up_requests::email.eq(&new.email),
                    sign_up_requests::password_hash.eq(&new.password_hash),
                    sign_up_requests::expires_at.eq(Utc::now() + SIGN_UP_VALID),
                ))
                .execute(conn)
                .await?;
            if recent > 0 {
                return Ok(SignUpRequested::Throttled);
            }
            let taken: i64 = users::table
                .filter(users::email.eq(&new.email))
                .count()
                .get_result(conn)
                .await?;
            Ok(if taken > 0 {
                SignUpRequested::AlreadyRegistered { email: new.email }
            } else {
                SignUpRequested::Confirm {
                    email: new.email,
                    token,
                }
            })
        })
        .await
    }

    /// Turns a sign-up request into its workspace and admin, and logs the admin in. The token
    /// works once, within [`SIGN_UP_VALID`].
    pub async fn confirm_sign_up(&self, token: &str) -> AppResult<Session> {
        if !self.config.allow_sign_up {
            return Err(AppError::forbidden("sign-up is disabled on this server"));
        }
        let refused = || {
            AppError::bad_input(
                "token",
                "this sign-up link is unknown, used or expired; sign up again",
            )
        };
        let token_digest = digest(token.trim());
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            let request: Option<(String, String, String, String)> = diesel::delete(
                sign_up_requests::table
                    .filter(sign_up_requests::token_digest.eq(&token_digest))
                    .filter(sign_up_requests::expires_at.gt(diesel::dsl::now)),
            )
            .returning((
                sign_up_requests::workspace_name,
                sign_up_requests::name,
                sign_up_requests::email,
                sign_up_requests::password_hash,
            ))
            .get_result(conn)
            .await
            .optional()?;
            let Some((workspace_name, name, email, password_hash)) = request else {
                return Err(refused());
            };
            let new = NewWorkspaceWithAdmin {
                workspace_name,
                name,
                email,
                password_hash,
            };
            // The token proves the address: saying it is taken tells its owner nothing new.
            let taken: i64 = users::table
                .filter(users::email.eq(&new.email))
                .count()
                .get_result(conn)
                .await?;
            if taken > 0 {
                return Err(AppError::conflict_on(
                    "token",
                    "this email already has an account; log in instead",
                ));
            }
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
