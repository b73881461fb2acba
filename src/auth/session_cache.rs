//! Sessions this process checked recently, so that a request need not ask the database
//! whether its access token's session and user are still live.
//!
//! Why it stays right: everything that ends a session or changes what a user may do announces
//! it on the live channel at commit (`sessions_ended`, `user_changed`; see `events::live`),
//! and every process drops the affected entries when the announcement arrives. The process
//! that made the change drops them at once as well, so its own next request already sees it.
//! Entries are only trusted while this process's LISTEN connection is up (announcements
//! made while it is down are lost), and only for `TTL` in any case (what is not announced,
//! such as a changed email, shows within that).
//!
//! A check that raced with an invalidation must not put a stale answer back: `put` takes the
//! generation read before the database was asked, and every invalidation moves it on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::users::User;
use super::viewer::{UserId, WorkspaceId};

/// How long a checked session is trusted without asking the database again.
const TTL: Duration = Duration::from_secs(30);

/// Entries kept at most; past it the cache starts over (a flood of distinct tokens must not
/// grow memory).
const MAX_ENTRIES: usize = 50_000;

#[derive(Default)]
pub struct SessionCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Uuid, (User, Instant)>,
    generation: u64,
    /// Whether announcements reach this process (its LISTEN connection is up).
    listening: bool,
}

impl SessionCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain maps behind the lock: still usable after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user of a live session checked within `TTL`, if it is this user of this
    /// workspace.
    pub fn get(&self, session: Uuid, user: UserId, workspace: WorkspaceId) -> Option<User> {
        let state = self.state();
        if !state.listening {
            return None;
        }
        let (cached, checked) = state.entries.get(&session)?;
        (checked.elapsed() < TTL && cached.id == user && cached.workspace_id == workspace)
            .then(|| cached.clone())
    }

    /// Read before asking the database; hand it to `put` with the answer.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Keeps a session the database found live, unless something was invalidated since
    /// `generation` was read.
    pub fn put(&self, session: Uuid, user: User, generation: u64) {
        let mut state = self.state();
        if !state.listening || state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(session, (user, Instant::now()));
    }

    pub fn forget_sessions(&self, sessions: &[Uuid]) {
        let mut state = self.state();
        state.generation += 1;
        for session in sessions {
            state.entries.remove(session);
        }
    }

    pub fn forget_user(&self, user: UserId) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|_, (cached, _)| cached.id != user);
    }

    /// Whether announcements reach this process; either way the cache starts empty.
    pub fn set_listening(&self, listening: bool) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
        state.listening = listening;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use chrono::Utc;

    fn user(id: i64) -> User {
        User {
            id: UserId(id),
            workspace_id: WorkspaceId(1),
            email: format!("u{id}@example.com"),
            name: "U".into(),
            role: Role::Member,
            is_active: true,
            last_login_at: None,
            deactivated_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn nothing_is_trusted_until_announcements_arrive() {
        let cache = SessionCache::default();
        let session = Uuid::new_v4();
        cache.put(session, user(1), cache.generation());
        assert!(cache.get(session, UserId(1), WorkspaceId(1)).is_none());
        cache.set_listening(true);
        cache.put(session, user(1), cache.generation());
        assert!(cache.get(session, UserId(1), WorkspaceId(1)).is_some());
        // Another user or workspace under the same session id is not this entry.
        assert!(cache.get(session, UserId(2), WorkspaceId(1)).is_none());
        assert!(cache.get(session, UserId(1), WorkspaceId(2)).is_none());
        cache.set_listening(false);
        assert!(cache.get(session, UserId(1), WorkspaceId(1)).is_none());
    }

    #[test]
    fn invalidations_drop_entries_and_stale_answers() {
        let cache = SessionCache::default();
        cache.set_listening(true);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        cache.put(a, user(1), cache.generation());
        cache.put(b, user(2), cache.generation());
        cache.forget_sessions(&[a]);
        assert!(cache.get(a, UserId(1), WorkspaceId(1)).is_none());
        assert!(cache.get(b, UserId(2), WorkspaceId(1)).is_some());
        cache.forget_user(UserId(2));
        assert!(cache.get(b, UserId(2), WorkspaceId(1)).is_none());
        // A check that began before an invalidation does not put its answer back.
        let before = cache.generation();
        cache.forget_user(UserId(9));
        cache.put(a, user(1), before);
        assert!(cache.get(a, UserId(1), WorkspaceId(1)).is_none());
    }
}
