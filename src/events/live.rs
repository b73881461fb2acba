//! The live fan-out: what `notificationReceived` and `recordChanged` subscribers of this process
//! get, whichever process made the change.
//!
//! Every committed change-stream event and every new notification is announced by a trigger on
//! the `mycrm_live` channel (migration 000012): inline when small, by ID when the row would pass
//! PostgreSQL's 8000-byte payload limit or a statement wrote many (listeners fetch those rows
//! once, whatever their number of subscribers). Ended sessions and role changes are announced
//! on the same channel so sockets close at once. One LISTEN connection per process feeds an
//! in-memory registry that routes each item to the subscribers it concerns: notifications by
//! recipient, record events by workspace and filter, and for members only records they own or
//! are assigned (one query per batch, not per subscriber).
//!
//! Each subscriber has a bounded buffer. A burst larger than the buffer waits for room, for
//! at most the stall limit; a subscriber still full then is dropped and its connection closed
//! (the socket owner decides the close code), so it cannot hold the others back.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::auth::session_cache::SessionCache;
use crate::auth::{Role, Viewer};
use crate::config::LiveConfig;
use crate::crm::events::{RecordEvent, EVENT_COLUMNS};
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::notifications::store::{NotificationRow, NOTIFICATION_COLUMNS};

/// The channel the triggers and the session code announce on.
pub const CHANNEL: &str = "mycrm_live";

/// How often the sessions behind open connections are checked, in case an announcement was
/// missed while the LISTEN connection was down.
const SESSION_SWEEP: Duration = Duration::from_secs(60);
/// How long a subscription waits for this process's LISTEN connection at start.
const READY_WAIT: Duration = Duration::from_secs(10);

/// Which record events a `recordChanged` subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// `lead`, `task`, ...; None: every kind.
    pub entity: Option<String>,
    /// One record (with `entity`); None: every record.
    pub record_id: Option<i64>,
}

impl RecordFilter {
    fn matches(&self, event: &RecordEvent) -> bool {
        self.entity.as_deref().is_none_or(|e| e == event.entity)
            && self.record_id.is_none_or(|id| id == event.record_id)
    }
}

/// Why the hub ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A subscriber's buffer filled up: it reads slower than events come.
    TooSlow,
    /// The connection's login session ended (logout, password change, deactivation).
    SessionEnded,
    /// The user's role changed: what they may see changed, so they must reconnect.
    RoleChanged,
    /// This process lost its LISTEN connection for a while and may have missed changes:
    /// clients reconnect and refetch.
    Missed,
}

/// Ends a connection (supplied by its owner, the WebSocket handler).
pub type Closer = Arc<dyn Fn(CloseReason) + Send + Sync>;

struct Connection {
    user_id: i64,
    session: uuid::Uuid,
    /// The role the connection was opened with: the sweep closes it when it changed.
    role: Role,
    close: Closer,
    /// Its subscribers' IDs.
    subscriptions: HashSet<u64>,
}

enum Route {
    Records {
        filter: RecordFilter,
        tx: mpsc::Sender<Arc<RecordEvent>>,
    },
    Notifications {
        tx: mpsc::Sender<Arc<NotificationRow>>,
    },
}

struct Subscriber {
    connection: u64,
    user_id: i64,
    /// Admins and managers see every record of the workspace; members only their own.
    sees_all: bool,
    route: Route,
}

/// One workspace's subscribers, indexed the way events find them: a record event looks up
/// the subscribers of that one record plus the broad ones (a kind, or everything); a
/// notification looks up its recipient's. Routing costs the matches, not the subscribers.
#[derive(Default)]
struct Workspace {
    subscribers: HashMap<u64, Subscriber>,
    by_record: HashMap<(String, i64), HashSet<u64>>,
    broad: HashSet<u64>,
    by_user: HashMap<i64, HashSet<u64>>,
}

impl Workspace {
    fn insert(&mut self, id: u64, sub: Subscriber) {
        match &sub.route {
            Route::Records { filter, .. } => match (&filter.entity, filter.record_id) {
                (Some(entity), Some(record)) => {
                    self.by_record
                        .entry((entity.clone(), record))
                        .or_default()
                        .insert(id);
                }
                _ => {
                    self.broad.insert(id);
                }
            },
            Route::Notifications { .. } => {
                self.by_user.entry(sub.user_id).or_default().insert(id);
            }
        }
        self.subscribers.insert(id, sub);
    }

    fn remove(&mut self, id: u64) -> Option<Subscriber> {
        let sub = self.subscribers.remove(&id)?;
        fn unlink<K: std::hash::Hash + Eq>(map: &mut HashMap<K, HashSet<u64>>, key: K, id: u64) {
            if let Some(ids) = map.get_mut(&key) {
                ids.remove(&id);
                if ids.is_empty() {
                    map.remove(&key);
                }
            }
        }
        match &sub.route {
            Route::Records { filter, .. } => match (&filter.entity, filter.record_id) {
                (Some(entity), Some(record)) => {
                    unlink(&mut self.by_record, (entity.clone(), record), id)
                }
                _ => {
                    self.broad.remove(&id);
                }
            },
            Route::Notifications { .. } => unlink(&mut self.by_user, sub.user_id, id),
        }
        Some(sub)
    }

    /// The record subscribers an event may concern (their filters still decide).
    fn for_record<'a>(
        &'a self,
        event: &RecordEvent,
    ) -> impl Iterator<Item = (&'a u64, &'a Subscriber)> + 'a {
        self.by_record
            .get(&(event.entity.clone(), event.record_id))
            .into_iter()
            .flatten()
            .chain(self.broad.iter())
            .filter_map(|id| self.subscribers.get_key_value(id))
    }

    /// A user's notification subscribers.
    fn for_user(&self, user: i64) -> impl Iterator<Item = (&u64, &Subscriber)> + '_ {
        self.by_user
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.subscribers.get_key_value(id))
    }
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    connections: HashMap<u64, Connection>,
    workspaces: HashMap<i64, Workspace>,
    /// Each subscriber's workspace.
    index: HashMap<u64, i64>,
}

impl Registry {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn remove_subscriber(&mut self, id: u64) {
        let Some(workspace) = self.index.remove(&id) else {
            return;
        };
        if let Some(subscribers) = self.workspaces.get_mut(&workspace) {
            if let Some(sub) = subscribers.remove(id) {
                if let Some(conn) = self.connections.get_mut(&sub.connection) {
                    conn.subscriptions.remove(&id);
                }
            }
            if subscribers.subscribers.is_empty() {
                self.workspaces.remove(&workspace);
            }
        }
    }

    /// Removes a connection and its subscribers; returns its closer.
    fn remove_connection(&mut self, id: u64) -> Option<Closer> {
        let conn = self.connections.remove(&id)?;
        for sub in conn.subscriptions {
            self.remove_subscriber(sub);
        }
        Some(conn.close)
    }
}

struct Inner {
    db: DbPool,
    url: String,
    /// Checked sessions; entries go as `sessions_ended` and `user_changed` arrive.
    sessions: Arc<SessionCache>,
    config: LiveConfig,
    registry: Mutex<Registry>,
    ready: watch::Sender<bool>,
    started: AtomicBool,
    shutdown: CancellationToken,
}

/// This process's live fan-out. Starts listening on first use.
pub struct LiveHub {
    inner: Arc<Inner>,
}

impl Drop for LiveHub {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
    }
}

/// A registered WebSocket connection; dropping it removes its subscriptions.
pub struct LiveConnection {
    id: u64,
    inner: Arc<Inner>,
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.inner.registry().remove_connection(self.id);
    }
}

/// One subscription's items; dropping it unsubscribes.
pub struct Feed<T> {
    rx: mpsc::Receiver<T>,
    id: u64,
    inner: Arc<Inner>,
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        self.inner.registry().remove_subscriber(self.id);
    }
}

impl<T> Stream for Feed<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

impl Inner {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LiveHub {
    pub fn new(
        db: DbPool,
        database_url: String,
        config: LiveConfig,
        sessions: Arc<SessionCache>,
    ) -> Self {
        let (ready, _) = watch::channel(false);
        LiveHub {
            inner: Arc::new(Inner {
                db,
                url: database_url,
                sessions,
                config,
                registry: Mutex::new(Registry::default()),
                ready,
                started: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Starts the LISTEN loop once and waits until it listens, so a subscription never misses
    /// a change committed after it began.
    pub async fn ready(&self) -> AppResult<()> {
        self.start();
        let mut ready = self.inner.ready.subscribe();
        let up = tokio::time::timeout(READY_WAIT, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        match up {
            true => Ok(()),
            false => Err(AppError::Internal(anyhow::anyhow!(
                "the live feed's LISTEN connection is not up"
            ))),
        }
    }

    /// Starts the LISTEN loop once: ended sessions must close sockets that have no live
    /// subscription yet, and cached sessions are trusted only while it listens.
    pub fn start(&self) {
        if !self.inner.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(listen(self.inner.clone()));
        }
    }

    /// Registers a WebSocket connection of `viewer`; `close` ends it.
    pub fn connect(&self, viewer: &Viewer, close: Closer) -> LiveConnection {
        self.start();
        let mut registry = self.inner.registry();
        let id = registry.next();
        registry.connections.insert(
            id,
            Connection {
                user_id: viewer.user_id.0,
                session: viewer.session_id,
                role: viewer.role,
                close,
                subscriptions: HashSet::new(),
            },
        );
        LiveConnection {
            id,
            inner: self.inner.clone(),
        }
    }

    /// `viewer`'s new notifications, as they are stored.
    pub async fn notifications(
        &self,
        connection: &LiveConnection,
        viewer: &Viewer,
    ) -> AppResult<Feed<Arc<NotificationRow>>> {
        self.subscribe(connection, viewer, |buffer| {
            let (tx, rx) = mpsc::channel(buffer);
            (Route::Notifications { tx }, rx)
        })
        .await
    }

    /// Changes to records `viewer` may see that match `filter`.
    pub async fn records(
        &self,
        connection: &LiveConnection,
        viewer: &Viewer,
        filter: RecordFilter,
    ) -> AppResult<Feed<Arc<RecordEvent>>> {
        if let (Some(entity), Some(id)) = (&filter.entity, filter.record_id) {
            // One record: NOT_FOUND at once when the viewer may not see it.
            let mut conn = self.inner.db.get().await?;
            crate::crm::query::require_visible(&mut conn, viewer, entity, id).await?;
        }
        self.subscribe(connection, viewer, |buffer| {
            let (tx, rx) = mpsc::channel(buffer);
            (Route::Records { filter, tx }, rx)
        })
        .await
    }

    async fn subscribe<T>(
        &self,
        connection: &LiveConnection,
        viewer: &Viewer,
        route: impl FnOnce(usize) -> (Route, mpsc::Receiver<T>),
    ) -> AppResult<Feed<T>> {
        self.ready().await?;
        let max = self.inner.config.max_subscriptions_per_connection;
        let mut registry = self.inner.registry();
        let Some(conn) = registry.connections.get_mut(&connection.id) else {
            return Err(AppError::unauthenticated("this connection has been closed"));
        };
        if conn.subscriptions.len() >= max {
            return Err(AppError::RateLimited {
                message: format!("at most {max} live subscriptions per connection"),
                retry_after_secs: 0,
            });
        }
        let (route, rx) = route(self.inner.config.subscriber_buffer.max(1));
        let id = registry.next();
        if let Some(conn) = registry.connections.get_mut(&connection.id) {
            conn.subscriptions.insert(id);
        }
        let workspace = viewer.workspace_id.0;
        registry.workspaces.entry(workspace).or_default().insert(
            id,
            Subscriber {
                connection: connection.id,
                user_id: viewer.user_id.0,
                sees_all: viewer.role != Role::Member,
                route,
            },
        );
        registry.index.insert(id, workspace);
        Ok(Feed {
            rx,
            id,
            inner: self.inner.clone(),
        })
    }

    /// Subscribers and connections now (for tests and the benchmark's memory figures).
    pub fn counts(&self) -> (usize, usize) {
        let registry = self.inner.registry();
        (registry.index.len(), registry.connections.len())
    }
}

/// Writes an announcement on the live channel in the caller's transaction (sent at commit).
pub async fn announce(conn: &mut AsyncPgConnection, body: &serde_json::Value) -> AppResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)::text")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(body.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// One message on the channel.
#[derive(Deserialize)]
struct Announcement {
    /// `record_events`, `notifications`, `sessions_ended` or `user_changed`.
    k: String,
    row: Option<serde_json::Value>,
    ws: Option<i64>,
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    sessions: Vec<uuid::Uuid>,
    user: Option<i64>,
}

/// Clears and distrusts the session cache when dropped.
struct Untrust(Arc<SessionCache>);

impl Drop for Untrust {
    fn drop(&mut self) {
        self.0.set_listening(false);
    }
}

/// The LISTEN loop: reconnects after errors; after each (re)connect, and every
/// [`SESSION_SWEEP`], closes connections whose session ended meanwhile.
async fn listen(inner: Arc<Inner>) {
    use futures_util::StreamExt;
    // However this loop ends (shutdown, a panic), cached sessions stop being trusted.
    let _untrust = Untrust(inner.sessions.clone());
    let mut retry = Duration::from_millis(200);
    let mut lost = false;
    while !inner.shutdown.is_cancelled() {
        match crate::db::listen::listening(&inner.url, CHANNEL).await {
            Ok((_client, mut messages)) => {
                retry = Duration::from_millis(200);
                if lost {
                    // Announcements made while down are gone: every live feed may have a gap,
                    // so its connection is told to reconnect and refetch. A connection with
                    // no live feed (a heartbeat only) missed nothing and stays open; session
                    // ends announced meanwhile are caught by the sweep just below.
                    close_where(&inner, CloseReason::Missed, |c| !c.subscriptions.is_empty());
                }
                inner.sessions.set_listening(true);
                inner.ready.send_replace(true);
                sweep_sessions(&inner).await;
                let mut sweep = tokio::time::interval(SESSION_SWEEP);
                sweep.tick().await;
                loop {
                    tokio::select! {
                        _ = inner.shutdown.cancelled() => return,
                        _ = sweep.tick() => sweep_sessions(&inner).await,
                        message = messages.next() => match message {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                                if let Err(err) = handle(&inner, n.payload()).await {
                                    err.log_if_internal();
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        },
                    }
                }
                inner.ready.send_replace(false);
                inner.sessions.set_listening(false);
                lost = true;
                tracing::warn!("live feed: LISTEN connection lost; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "live feed: cannot listen"),
        }
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

async fn handle(inner: &Inner, payload: &str) -> AppResult<()> {
    let Ok(message) = serde_json::from_str::<Announcement>(payload) else {
        tracing::warn!("live feed: unreadable announcement ignored");
        return Ok(());
    };
    match message.k.as_str() {
        "record_events" => {
            let events: Vec<RecordEvent> = match message.row {
                Some(row) => inline(row),
                None if has_subscribers(inner, message.ws) => {
                    let mut conn = inner.db.get().await?;
                    fetch_events(&mut conn, &message.ids).await?
                }
                None => Vec::new(),
            };
            route_events(inner, events).await
        }
        "notifications" => {
            let rows: Vec<NotificationRow> = match message.row {
                Some(row) => inline(row),
                None if has_subscribers(inner, message.ws) => {
                    let mut conn = inner.db.get().await?;
                    fetch_notifications(&mut conn, &message.ids).await?
                }
                None => Vec::new(),
            };
            route_notifications(inner, rows).await;
            Ok(())
        }
        "sessions_ended" => {
            inner.sessions.forget_sessions(&message.sessions);
            let ended: HashSet<uuid::Uuid> = message.sessions.into_iter().collect();
            close_where(inner, CloseReason::SessionEnded, |c| {
                ended.contains(&c.session)
            });
            Ok(())
        }
        "user_changed" => {
            let user = message.user;
            if let Some(user) = user {
                inner.sessions.forget_user(crate::auth::UserId(user));
            }
            close_where(inner, CloseReason::RoleChanged, |c| Some(c.user_id) == user);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A row announced inline; one that does not read (a column changed type) is logged, not
/// silently lost.
fn inline<T: serde::de::DeserializeOwned>(row: serde_json::Value) -> Vec<T> {
    match serde_json::from_value(row) {
        Ok(row) => vec![row],
        Err(err) => {
            tracing::warn!(error = %err, "live feed: an announced row does not read; skipped");
            Vec::new()
        }
    }
}

fn has_subscribers(inner: &Inner, workspace: Option<i64>) -> bool {
    let registry = inner.registry();
    match workspace {
        Some(ws) => registry.workspaces.contains_key(&ws),
        None => !registry.workspaces.is_empty(),
    }
}

/// Closes the connections `pick` chooses (outside the lock: closers may take their own).
fn close_where(inner: &Inner, reason: CloseReason, pick: impl Fn(&Connection) -> bool) {
    let closers: Vec<Closer> = {
        let mut registry = inner.registry();
        let ids: Vec<u64> = registry
            .connections
            .iter()
            .filter(|(_, c)| pick(c))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| registry.remove_connection(id))
            .collect()
    };
    for close in closers {
        close(reason);
    }
}

/// Hands items to subscribers in order. A subscriber whose buffer is full gets the rest of
/// the batch queued here, and [`Backlog::settle`] waits for room until the stall limit: a
/// burst (a bulk update of thousands of rows) reaches a subscriber that keeps reading, one
/// that does not is dropped, and the others wait at most the limit, once.
struct Backlog<T> {
    waiting: HashMap<u64, (u64, mpsc::Sender<T>, Vec<T>)>,
}

impl<T: Send> Backlog<T> {
    fn new() -> Self {
        Backlog {
            waiting: HashMap::new(),
        }
    }

    fn offer(&mut self, id: u64, sub: &Subscriber, tx: &mpsc::Sender<T>, item: T) {
        if let Some((_, _, queued)) = self.waiting.get_mut(&id) {
            queued.push(item);
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(item)) = tx.try_send(item) {
            self.waiting
                .insert(id, (sub.connection, tx.clone(), vec![item]));
        }
    }

    async fn settle(self, inner: &Inner) {
        if self.waiting.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + inner.config.stall_limit;
        let slow = futures_util::future::join_all(self.waiting.into_values().map(
            |(connection, tx, items)| async move {
                for item in items {
                    // Err: the limit passed; Ok(Err): the subscriber left meanwhile.
                    match tokio::time::timeout_at(deadline, tx.send(item)).await {
                        Err(_) => return Some(connection),
                        Ok(Err(_)) => return None,
                        Ok(Ok(())) => {}
                    }
                }
                None
            },
        ))
        .await;
        drop_slow(inner, slow.into_iter().flatten().collect());
    }
}

async fn route_notifications(inner: &Inner, rows: Vec<NotificationRow>) {
    let mut backlog = Backlog::new();
    {
        let registry = inner.registry();
        for row in rows.into_iter().filter(|r| r.read_at.is_none()) {
            let Some(subscribers) = registry.workspaces.get(&row.workspace_id) else {
                continue;
            };
            let row = Arc::new(row);
            for (id, sub) in subscribers.for_user(row.user_id) {
                if let Route::Notifications { tx } = &sub.route {
                    backlog.offer(*id, sub, tx, row.clone());
                }
            }
        }
    }
    backlog.settle(inner).await;
}

async fn route_events(inner: &Inner, events: Vec<RecordEvent>) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let events: Vec<Arc<RecordEvent>> = events.into_iter().map(Arc::new).collect();
    // First pass: subscribers who see everything get the events now; the records members
    // want are looked up once for the whole batch.
    let mut backlog = Backlog::new();
    let mut wanted: HashMap<String, HashSet<i64>> = HashMap::new();
    {
        let registry = inner.registry();
        for event in &events {
            let Some(subscribers) = registry.workspaces.get(&event.workspace_id) else {
                continue;
            };
            for (id, sub) in subscribers.for_record(event) {
                let Route::Records { filter, tx } = &sub.route else {
                    continue;
                };
                if !filter.matches(event) {
                    continue;
                }
                if sub.sees_all {
                    backlog.offer(*id, sub, tx, event.clone());
                } else {
                    wanted
                        .entry(event.entity.clone())
                        .or_default()
                        .insert(event.record_id);
                }
            }
        }
    }
    if !wanted.is_empty() {
        // A failed lookup costs the members this batch, not the others their queued items.
        let people = match members_records(inner, wanted).await {
            Ok(people) => people,
            Err(err) => {
                err.log_if_internal();
                HashMap::new()
            }
        };
        let registry = inner.registry();
        for event in &events {
            let Some(record) = people.get(&(event.entity.clone(), event.record_id)) else {
                continue;
            };
            let Some(subscribers) = registry.workspaces.get(&event.workspace_id) else {
                continue;
            };
            for (id, sub) in subscribers.for_record(event).filter(|(_, s)| !s.sees_all) {
                let Route::Records { filter, tx } = &sub.route else {
                    continue;
                };
                if record.member_sees(sub.user_id) && filter.matches(event) {
                    backlog.offer(*id, sub, tx, event.clone());
                }
            }
        }
    }
    backlog.settle(inner).await;
    Ok(())
}

/// The owner and assignee of the records member subscribers want, by (kind, ID).
async fn members_records(
    inner: &Inner,
    wanted: HashMap<String, HashSet<i64>>,
) -> AppResult<HashMap<(String, i64), crate::crm::query::RecordPeople>> {
    let mut conn = inner.db.get().await?;
    let mut people = HashMap::new();
    for (entity, ids) in wanted {
        let ids: Vec<i64> = ids.into_iter().collect();
        for (id, p) in crate::crm::query::record_people(&mut conn, &entity, &ids).await? {
            people.insert((entity.clone(), id), p);
        }
    }
    Ok(people)
}

fn drop_slow(inner: &Inner, mut connections: Vec<u64>) {
    if connections.is_empty() {
        return;
    }
    connections.sort_unstable();
    connections.dedup();
    let set: HashSet<u64> = connections.into_iter().collect();
    tracing::info!(
        connections = set.len(),
        "live feed: dropping subscribers that fell behind"
    );
    let closers: Vec<Closer> = {
        let mut registry = inner.registry();
        set.iter()
            .filter_map(|id| registry.remove_connection(*id))
            .collect()
    };
    for close in closers {
        close(CloseReason::TooSlow);
    }
}

/// Closes connections whose session ended or whose user was deactivated while an
/// announcement could have been missed.
async fn sweep_sessions(inner: &Inner) {
    let sessions: Vec<uuid::Uuid> = {
        let registry = inner.registry();
        let mut sessions: Vec<uuid::Uuid> =
            registry.connections.values().map(|c| c.session).collect();
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    };
    if sessions.is_empty() {
        return;
    }
    let live = async {
        let mut conn = inner.db.get().await?;
        crate::auth::live_sessions(&mut conn, &sessions).await
    };
    match live.await {
        Ok(live) => {
            // Only sessions that were checked: a connection made meanwhile is not in the answer.
            let checked = |c: &Connection| sessions.binary_search(&c.session).is_ok();
            close_where(inner, CloseReason::SessionEnded, |c| {
                checked(c) && !live.contains_key(&c.session)
            });
            // A role change whose announcement was missed.
            close_where(inner, CloseReason::RoleChanged, |c| {
                checked(c) && live.get(&c.session).is_some_and(|role| *role != c.role)
            });
        }
        Err(err) => err.log_if_internal(),
    }
}

async fn fetch_events(conn: &mut AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<RecordEvent>> {
    Ok(diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} FROM record_events WHERE id = ANY($1) ORDER BY id"
    ))
    .bind::<Array<BigInt>, _>(ids)
    .load(conn)
    .await?)
}

async fn fetch_notifications(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> AppResult<Vec<NotificationRow>> {
    Ok(diesel::sql_query(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ANY($1) ORDER BY id"
    ))
    .bind::<Array<BigInt>, _>(ids)
    .load(conn)
    .await?)
}
