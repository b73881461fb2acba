//! Login sessions: login, refresh-token rotation with reuse detection, logout, password change,
//! and turning an access token back into a [`Viewer`].

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::tokens::{digest, new_refresh_token};
use super::users::{active_user, credentials_by_email, credentials_by_id, User};
use super::viewer::{UserId, Viewer, WorkspaceId};
use super::{passwords, rate_limit, AuthService};
use crate::db::schema::{refresh_tokens, users};
use crate::error::{AppError, AppResult};
use crate::validation::MAX_EMAIL_CHARS;

/// What a successful login, sign-up, refresh or password change hands out.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub user: User,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct StoredRefreshToken {
    id: i64,
    user_id: UserId,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// How a refresh attempt ended. The failures that revoke something must commit that
/// revocation, so they are outcomes of the transaction, turned into errors after it.
enum Rotation {
    Rotated(Session),
    /// The session of this user was revoked.
    ReuseDetected(UserId),
    Deactivated(UserId),
}

/// Serialises session changes of one user (see `refresh`).
async fn lock_user(conn: &mut AsyncPgConnection, user: UserId) -> AppResult<()> {
    users::table
        .find(user)
        .select(users::id)
        .for_no_key_update()
        .first::<UserId>(conn)
        .await?;
    Ok(())
}

const INVALID_CREDENTIALS: &str = "invalid email or password";
const INVALID_REFRESH: &str = "invalid refresh token";

/// Which sessions to end.
enum Sessions {
    /// Every session of a user (password change, deactivation, "log out everywhere").
    OfUser(UserId),
    /// One session (refresh-token family).
    Family(Uuid),
}

/// Revokes the live tokens of the chosen sessions; returns how many sessions ended.
async fn revoke(conn: &mut AsyncPgConnection, which: Sessions, reason: &str) -> AppResult<usize> {
    let live = refresh_tokens::revoked_at.is_null();
    let revoked = (
        refresh_tokens::revoked_at.eq(diesel::dsl::now),
        refresh_tokens::revoked_reason.eq(reason),
    );
    let families: Vec<Uuid> = match which {
        Sessions::OfUser(user) => {
            let tokens = refresh_tokens::table
                .filter(live)
                .filter(refresh_tokens::user_id.eq(user));
            diesel::update(tokens)
                .set(revoked)
                .returning(refresh_tokens::family_id)
                .get_results(conn)
                .await?
        }
        Sessions::Family(family) => {
            let tokens = refresh_tokens::table
                .filter(live)
                .filter(refresh_tokens::family_id.eq(family));
            diesel::update(tokens)
                .set(revoked)
                .returning(refresh_tokens::family_id)
                .get_results(conn)
                .await?
        }
    };
    let ended = distinct(families);
    if !ended.is_empty() {
        // Open WebSocket connections of these sessions close when this commits.
        crate::events::live::announce(
            conn,
            &serde_json::json!({ "k": "sessions_ended", "sessions": ended }),
        )
        .await?;
    }
    Ok(ended.len())
}

/// Which of `sessions` are still live (not revoked, their user still active), with the
/// user's role now: live feeds re-check the sessions of their open connections with it.
pub async fn live_sessions(
    conn: &mut AsyncPgConnection,
    sessions: &[Uuid],
) -> AppResult<std::collections::HashMap<Uuid, super::Role>> {
    let live: Vec<(Uuid, super::Role)> = refresh_tokens::table
        .inner_join(users::table)
        .filter(refresh_tokens::family_id.eq_any(sessions))
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(users::is_active.eq(true))
        .select((refresh_tokens::family_id, users::role))
        .distinct()
        .load(conn)
        .await?;
    Ok(live.into_iter().collect())
}

pub(super) async fn revoke_all_sessions(
    conn: &mut AsyncPgConnection,
    user: UserId,
    reason: &str,
) -> AppResult<usize> {
    revoke(conn, Sessions::OfUser(user), reason).await
}

async fn revoke_family(
    conn: &mut AsyncPgConnection,
    family: Uuid,
    reason: &str,
) -> AppResult<usize> {
    revoke(conn, Sessions::Family(family), reason).await
}

fn distinct(mut families: Vec<Uuid>) -> Vec<Uuid> {
    families.sort();
    families.dedup();
    families
}

impl AuthService {
    /// Issues a new session (refresh-token family) for `user`.
    pub(super) async fn start_session(
        &self,
        conn: &mut AsyncPgConnection,
        user: User,
    ) -> AppResult<Session> {
        self.issue(conn, user, Uuid::new_v4()).await
    }

    /// Stores a new refresh token in `family` and signs an access token for it.
    async fn issue(
        &self,
        conn: &mut AsyncPgConnection,
        user: User,
        family: Uuid,
    ) -> AppResult<Session> {
        let refresh_token = new_refresh_token();
        let refresh_expires = Utc::now()
            + chrono::Duration::from_std(self.config.refresh_token_ttl)
                .map_err(AppError::internal)?;
        diesel::insert_into(refresh_tokens::table)
            .values((
                refresh_tokens::user_id.eq(user.id),
                refresh_tokens::family_id.eq(family),
                refresh_tokens::token_hash.eq(digest(&refresh_token)),
                refresh_tokens::expires_at.eq(refresh_expires),
            ))
            .execute(conn)
            .await?;
        let (access_token, access_expires) =
            self.keys.issue_access(user.id, user.workspace_id, family)?;
        Ok(Session {
            access_token,
            access_token_expires_at: access_expires,
            refresh_token,
            refresh_token_expires_at: refresh_expires,
            user,
        })
    }

    /// Checks an access token and that its user and session are still live. Role and status
    /// come from the database or from a check made moments ago that nothing has invalidated
    /// since (`session_cache`), so changes apply to the very next request.
    pub async fn authenticate(&self, access_token: &str) -> AppResult<Viewer> {
        let claims = self.keys.decode_access(access_token)?;
        let user = self
            .live_user(claims.user_id()?, WorkspaceId(claims.wid), claims.sid)
            .await?;
        Ok(Viewer {
            user_id: user.id,
            workspace_id: user.workspace_id,
            role: user.role,
            email: user.email,
            session_id: claims.sid,
            token_expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
            workflow_run: None,
        })
    }

    /// Re-checks a viewer held for a long time (a WebSocket connection): the access token has
    /// not expired, the user is still active and the session not revoked. Returns the user as
    /// it is now.
    pub async fn recheck(&self, viewer: &Viewer) -> AppResult<User> {
        if viewer.token_expires_at <= Utc::now() {
            return Err(AppError::unauthenticated(
                "access token expired; reconnect with a new one",
            ));
        }
        self.live_user(viewer.user_id, viewer.workspace_id, viewer.session_id)
            .await
    }

    async fn live_user(
        &self,
        user_id: UserId,
        workspace: WorkspaceId,
        session: Uuid,
    ) -> AppResult<User> {
        if let Some(user) = self.sessions.get(session, user_id, workspace) {
            return Ok(user);
        }
        let generation = self.sessions.generation();
        let mut conn = self.db.get().await?;
        let live_session = diesel::dsl::exists(
            refresh_tokens::table
                .filter(refresh_tokens::family_id.eq(session))
                .filter(refresh_tokens::user_id.eq(user_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        );
        let user = users::table
            .filter(users::id.eq(user_id))
            .filter(users::workspace_id.eq(workspace))
            .filter(users::is_active.eq(true))
            .filter(live_session)
            .select(User::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or_else(|| {
                AppError::unauthenticated("access token is no longer valid; log in again")
            })?;
        self.sessions.put(session, user.clone(), generation);
        Ok(user)
    }

    /// Email + password login, throttled per account and per client address. A wrong email and
    /// a wrong password get the same answer after the same amount of work.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client_ip: &str,
    ) -> AppResult<Session> {
        let email = email.trim().to_lowercase();
        if email.chars().count() > MAX_EMAIL_CHARS {
            // No account can have it; answer like any wrong login, without storing it.
            return Err(AppError::unauthenticated(INVALID_CREDENTIALS));
        }
        // The attempt counts as a failure until it succeeds, so parallel guesses cannot all
        // slip under the limit. No connection is held while the password is hashed.
        let (attempt, credentials) = {
            let mut conn = self.db.get().await?;
            let attempt =
                rate_limit::begin_attempt(&mut conn, &self.config, &email, client_ip).await?;
            (attempt, credentials_by_email(&mut conn, &email).await?)
        };
        let stored_hash = credentials.as_ref().map(|c| c.password_hash.clone());
        let verified = passwords::verify(password, stored_hash).await?;
        let credentials = match credentials {
            Some(credentials) if verified => credentials,
            _ => return Err(AppError::unauthenticated(INVALID_CREDENTIALS)),
        };
        if !credentials.is_active {
            return Err(AppError::unauthenticated("this account is deactivated"));
        }
        let mut conn = self.db.get().await?;
        rate_limit::succeed(&mut conn, attempt, &email, client_ip).await?;
        let user = diesel::update(users::table.find(credentials.id))
            .set(users::last_login_at.eq(diesel::dsl::now))
            .returning(User::as_returning())
            .get_result(&mut conn)
            .await?;
        self.start_session(&mut conn, user).await
    }

    /// Exchanges a refresh token for a new pair. Each refresh token works once: presenting an
    /// already-rotated one means it was copied, so the whole session is revoked.
    pub async fn refresh(&self, refresh_token: &str) -> AppResult<Session> {
        let hash = digest(refresh_token.trim());
        let mut conn = self.db.get().await?;
        let outcome = conn
            .transaction::<_, AppError, _>(async move |conn| {
                // Lock order: the user row, then the token. Logout, password change and
                // deactivation take the same user lock, so a refresh running alongside them
                // cannot mint a token that their revocation misses.
                let owner: Option<UserId> = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&hash))
                    .select(refresh_tokens::user_id)
                    .first(conn)
                    .await
                    .optional()?;
                let owner = owner.ok_or_else(|| AppError::unauthenticated(INVALID_REFRESH))?;
                lock_user(conn, owner).await?;
                let stored: StoredRefreshToken = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&hash))
                    .select(StoredRefreshToken::as_select())
                    .for_update()
                    .first(conn)
                    .await?;
                if stored.revoked_at.is_some() {
                    return Err(AppError::unauthenticated(
                        "this session has been revoked; log in again",
                    ));
                }
                if stored.rotated_at.is_some() {
                    revoke_family(conn, stored.family_id, "reuse_detected").await?;
                    return Ok(Rotation::ReuseDetected(owner));
                }
                if stored.expires_at <= Utc::now() {
                    return Err(AppError::unauthenticated(
                        "refresh token expired; log in again",
                    ));
                }
                let Some(user) = active_user(conn, stored.user_id).await? else {
                    revoke_family(conn, stored.family_id, "user_deactivated").await?;
                    return Ok(Rotation::Deactivated(owner));
                };
                diesel::update(refresh_tokens::table.find(stored.id))
                    .set(refresh_tokens::rotated_at.eq(diesel::dsl::now))
                    .execute(conn)
                    .await?;
                Ok(Rotation::Rotated(
                    self.issue(conn, user, stored.family_id).await?,
                ))
            })
            .await?;
        match outcome {
            Rotation::Rotated(session) => Ok(session),
            Rotation::Deactivated(user) => {
                self.sessions.forget_user(user);
                Err(AppError::unauthenticated("this account is deactivated"))
            }
            Rotation::ReuseDetected(user) => {
                self.sessions.forget_user(user);
                tracing::warn!("refresh token reuse detected; session revoked");
                Err(AppError::unauthenticated(
                    "this refresh token was already used; the session has been revoked, log in again",
                ))
            }
        }
    }

    /// Ends the session of `refresh_token`, or of the caller's access token when no refresh token
    /// is given; with `everywhere`, every session of that user. Returns how many sessions ended.
    pub async fn logout(
        &self,
        viewer: Option<&Viewer>,
        refresh_token: Option<&str>,
        everywhere: bool,
    ) -> AppResult<usize> {
        let mut conn = self.db.get().await?;
        let (user, family) = match (refresh_token, viewer) {
            (Some(token), _) => {
                let stored: StoredRefreshToken = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(digest(token.trim())))
                    .select(StoredRefreshToken::as_select())
                    .first(&mut conn)
                    .await
                    .optional()?
                    .ok_or_else(|| AppError::bad_input("refreshToken", INVALID_REFRESH))?;
                (stored.user_id, stored.family_id)
            }
            (None, Some(viewer)) => (viewer.user_id, viewer.session_id),
            (None, None) => {
                return Err(AppError::unauthenticated(
                    "log out needs a refresh token or an access token",
                ))
            }
        };
        let ended = conn
            .transaction::<_, AppError, _>(async move |conn| {
                lock_user(conn, user).await?;
                if everywhere {
                    revoke_all_sessions(conn, user, "logout_everywhere").await
                } else {
                    revoke_family(conn, family, "logout").await
                }
            })
            .await?;
        self.sessions.forget_user(user);
        Ok(ended)
    }

    /// Changes the caller's password after checking the current one (throttled like login).
    /// Every session ends; the answer is a fresh session for the caller.
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current_password: String,
        new_password: String,
        client_ip: &str,
    ) -> AppResult<Session> {
        passwords::validate_new_password("newPassword", &new_password)?;
        let (attempt, credentials) = {
            let mut conn = self.db.get().await?;
            let attempt =
                rate_limit::begin_attempt(&mut conn, &self.config, &viewer.email, client_ip)
                    .await?;
            (attempt, credentials_by_id(&mut conn, viewer.user_id).await?)
        };
        if !passwords::verify(current_password, Some(credentials.password_hash)).await? {
            return Err(AppError::bad_input(
                "currentPassword",
                "the current password is wrong",
            ));
        }
        let hash = passwords::hash(new_password).await?;
        let user_id = viewer.user_id;
        let mut conn = self.db.get().await?;
        rate_limit::succeed(&mut conn, attempt, &viewer.email, client_ip).await?;
        let session = conn
            .transaction::<_, AppError, _>(async move |conn| {
                let user = diesel::update(users::table.find(user_id))
                    .set((
                        users::password_hash.eq(hash),
                        users::password_changed_at.eq(diesel::dsl::now),
                        users::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(User::as_returning())
                    .get_result(conn)
                    .await?;
                revoke_all_sessions(conn, user_id, "password_changed").await?;
                self.start_session(conn, user).await
            })
            .await?;
        self.sessions.forget_user(user_id);
        Ok(session)
    }

    /// Deletes refresh tokens expired or revoked more than `keep` ago (maintenance).
    pub async fn purge_dead_sessions(&self, keep: chrono::Duration) -> AppResult<usize> {
        let mut conn = self.db.get().await?;
        let cutoff = Utc::now() - keep;
        let sessions = diesel::delete(
            refresh_tokens::table.filter(
                refresh_tokens::expires_at
                    .lt(cutoff)
                    .or(refresh_tokens::revoked_at.lt(cutoff)),
            ),
        )
        .execute(&mut conn)
        .await?;
        let failures = rate_limit::purge_older_than(&mut conn, keep).await?;
        Ok(sessions + failures)
    }
}
