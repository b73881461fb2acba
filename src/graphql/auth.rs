//! Logging in and out: `me`, `signUp`, `login`, `refreshToken`, `logout`, `changePassword`.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{app, client_ip, optional_viewer, viewer};
use super::errors::GqlResultExt;
use super::users::User;
use crate::auth::{self, Session};

/// A logged-in session: send `accessToken` as `Authorization: Bearer <token>`; exchange
/// `refreshToken` for a new pair before the access token expires.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived JWT for the `Authorization` header.
    pub access_token: String,
    /// When the access token stops working.
    pub access_token_expires_at: DateTime<Utc>,
    /// Single-use token for `refreshToken`; keep it secret.
    pub refresh_token: String,
    /// When the refresh token stops working.
    pub refresh_token_expires_at: DateTime<Utc>,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// The logged-in user.
    pub user: User,
}

impl From<Session> for AuthPayload {
    fn from(session: Session) -> Self {
        AuthPayload {
            access_token: session.access_token,
            access_token_expires_at: session.access_token_expires_at,
            refresh_token: session.refresh_token,
            refresh_token_expires_at: session.refresh_token_expires_at,
            token_type: "Bearer",
            user: User(session.user),
        }
    }
}

/// The result of `logout`.
#[derive(SimpleObject)]
pub struct LogoutPayload {
    /// How many sessions ended (0 when they had already ended).
    pub revoked_sessions: i32,
}

/// The answer to `signUp`: the same whether or not the email has an account.
#[derive(SimpleObject)]
pub struct SignUpPayload {
    /// Always true: the request was taken (input errors are errors instead).
    pub accepted: bool,
    /// What happens next.
    pub message: &'static str,
}

/// Input of `signUp`.
#[derive(InputObject)]
pub struct SignUpInput {
    /// Name of the new workspace.
    pub workspace_name: String,
    /// Your display name.
    pub name: String,
    /// Your login email.
    pub email: String,
    /// Your password (8 to 256 characters).
    pub password: String,
}

/// Input of `changePassword`.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password you log in with now.
    pub current_password: String,
    /// The new password (8 to 256 characters).
    pub new_password: String,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The logged-in user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let viewer = viewer(ctx)?;
        app(ctx).auth.me(viewer).await.map(User).gql()
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Asks for a new workspace with you as its admin, when the server allows open sign-up
    /// (`MYCRM_ALLOW_SIGN_UP`, off by default: admins invite; FORBIDDEN otherwise). The answer
    /// is the same whether or not the email has an account; the outcome comes by email (a
    /// token for `confirmSignUp`, or a note that the address is registered).
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace and its admin.")] input: SignUpInput,
    ) -> async_graphql::Result<SignUpPayload> {
        let input = auth::SignUp {
            workspace_name: input.workspace_name,
            name: input.name,
            email: input.email,
            password: input.password,
        };
        let app = app(ctx);
        let requested = app.auth.request_sign_up(input).await.gql()?;
        // In the background, so the answer takes the same time whatever the outcome.
        if let Some((to, subject, body)) = requested.email() {
            app.mail.send_in_background(to.to_string(), subject, body);
        }
        Ok(SignUpPayload {
            accepted: true,
            message: "check your email to finish signing up",
        })
    }

    /// Finishes a sign-up with the token from its email: creates the workspace with you as
    /// its admin and logs you in. BAD_USER_INPUT (`token`) for an unknown, used or expired
    /// token.
    async fn confirm_sign_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token from the sign-up email.")] token: String,
    ) -> async_graphql::Result<AuthPayload> {
        app(ctx)
            .auth
            .confirm_sign_up(&token)
            .await
            .map(Into::into)
            .gql()
    }

    /// Logs in with email and password. Repeated failures are throttled per account and per
    /// client address (RATE_LIMITED).
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Login email (case-insensitive).")] email: String,
        #[graphql(desc = "Password.")] password: String,
    ) -> async_graphql::Result<AuthPayload> {
        app(ctx)
            .auth
            .login(&email, password, client_ip(ctx))
            .await
            .map(Into::into)
            .gql()
    }

    /// Exchanges a refresh token for a new access token and refresh token. Each refresh token
    /// works once; using one twice ends the whole session.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token from login or the last refresh.")] token: String,
    ) -> async_graphql::Result<AuthPayload> {
        app(ctx).auth.refresh(&token).await.map(Into::into).gql()
    }

    /// Ends the session of `refreshToken`, or of your access token when it is omitted. With
    /// `allSessions`, ends every session of that user. Access tokens of ended sessions stop
    /// working at once.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session's refresh token.")] refresh_token: Option<String>,
        #[graphql(
            desc = "End every session of the user, on every device.",
            default = false
        )]
        all_sessions: bool,
    ) -> async_graphql::Result<LogoutPayload> {
        let revoked = app(ctx)
            .auth
            .logout(optional_viewer(ctx), refresh_token.as_deref(), all_sessions)
            .await
            .gql()?;
        Ok(LogoutPayload {
            revoked_sessions: i32::try_from(revoked).unwrap_or(i32::MAX),
        })
    }

    /// Changes your password. All your sessions end; the answer is a new one for this client.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The current and the new password.")] input: ChangePasswordInput,
    ) -> async_graphql::Result<AuthPayload> {
        let viewer = viewer(ctx)?;
        app(ctx)
            .auth
            .change_password(
                viewer,
                input.current_password,
                input.new_password,
                client_ip(ctx),
            )
            .await
            .map(Into::into)
            .gql()
    }
}
