//! Accounts and sessions: workspaces (tenants), users and roles, password login, JWT access
//! tokens, rotating refresh tokens and login throttling. No transport code here.

pub mod bootstrap;
pub mod passwords;
pub mod rate_limit;
pub mod secret;
pub mod session_cache;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod viewer;
pub mod workspaces;

pub use sessions::{live_sessions, Session};
pub use users::{CreateUser, UpdateUser, User, UserFilter};
pub use viewer::{Role, UserId, Viewer, WorkspaceId};
pub use workspaces::{parse_timezone, SignUp, UpdateWorkspace, Workspace};

use std::sync::Arc;

use crate::config::AuthConfig;
use crate::db::DbPool;
use session_cache::SessionCache;
use tokens::TokenKeys;

/// The accounts service. Cheap to clone (the pool and keys are shared).
#[derive(Clone)]
pub struct AuthService {
    db: DbPool,
    keys: TokenKeys,
    config: AuthConfig,
    sessions: Arc<SessionCache>,
}

impl AuthService {
    pub fn new(db: DbPool, jwt_secret: &[u8], config: AuthConfig) -> Self {
        AuthService {
            db,
            keys: TokenKeys::new(jwt_secret, config.access_token_ttl),
            config,
            sessions: Arc::default(),
        }
    }

    /// Sessions checked recently; the live feed drops entries as sessions end.
    pub fn session_cache(&self) -> Arc<SessionCache> {
        self.sessions.clone()
    }

    pub fn allows_sign_up(&self) -> bool {
        self.config.allow_sign_up
    }
}
