//! The notification API's operations: a user's own notifications, unread count, marking
//! read, preferences and deliveries. Everything here is the viewer's own: there is no way to
//! read another user's notifications.

use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::preferences::{Gateways, Preferences, PreferencesPatch};
use super::store::{self, DeliveryRow, NotificationRow, DELIVERY_COLUMNS, NOTIFICATION_COLUMNS};
use crate::auth::Viewer;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::pagination::Page;

/// Notifications or deliveries per page at most.
pub const MAX_PAGE: i64 = 200;

/// At most this many IDs in one `markNotificationsRead`.
pub const MAX_MARK: usize = 1000;

pub struct NotificationService {
    pub(super) db: DbPool,
    pub(super) gateways: Gateways,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl NotificationService {
    pub fn new(db: DbPool, gateways: Gateways) -> Self {
        NotificationService { db, gateways }
    }

    pub fn gateways(&self) -> Gateways {
        self.gateways
    }

    /// The viewer's notifications, newest first.
    pub async fn notifications(
        &self,
        viewer: &Viewer,
        unread_only: bool,
        after: Option<i64>,
        first: i64,
    ) -> AppResult<Page<NotificationRow>> {
        let first = first.clamp(1, MAX_PAGE);
        let mut conn = self.db.get().await?;
        let rows: Vec<NotificationRow> = diesel::sql_query(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
             WHERE user_id = $1 AND ($2 = false OR read_at IS NULL) \
               AND ($3::bigint IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind::<BigInt, _>(viewer.user_id.0)
        .bind::<Bool, _>(unread_only)
        .bind::<Nullable<BigInt>, _>(after)
        .bind::<BigInt, _>(first + 1)
        .load(&mut conn)
        .await?;
        let total = count(&mut conn, viewer, unread_only).await?;
        Ok(Page::from_overfetch(rows, first, after.is_some(), total))
    }

    pub async fn unread_count(&self, viewer: &Viewer) -> AppResult<i64> {
        let mut conn = self.db.get().await?;
        count(&mut conn, viewer, true).await
    }

    /// Marks some of the viewer's notifications read; IDs of others' are ignored. Returns
    /// how many changed.
    pub async fn mark_read(&self, viewer: &Viewer, ids: &[i64]) -> AppResult<usize> {
        if ids.len() > MAX_MARK {
            return Err(AppError::bad_input(
                "ids",
                format!("at most {MAX_MARK} notifications at once"),
            ));
        }
        let mut conn = self.db.get().await?;
        Ok(diesel::sql_query(
            "UPDATE notifications SET read_at = now() \
             WHERE user_id = $1 AND id = ANY($2) AND read_at IS NULL",
        )
        .bind::<BigInt, _>(viewer.user_id.0)
        .bind::<Array<BigInt>, _>(ids)
        .execute(&mut conn)
        .await?)
    }

    pub async fn mark_all_read(&self, viewer: &Viewer) -> AppResult<usize> {
        let mut conn = self.db.get().await?;
        Ok(diesel::sql_query(
            "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind::<BigInt, _>(viewer.user_id.0)
        .execute(&mut conn)
        .await?)
    }

    pub async fn preferences(&self, viewer: &Viewer) -> AppResult<Preferences> {
        let mut conn = self.db.get().await?;
        let mut all = store::preferences(&mut conn, &[viewer.user_id.0]).await?;
        Ok(all.remove(&viewer.user_id.0).unwrap_or_default())
    }

    pub async fn update_preferences(
        &self,
        viewer: &Viewer,
        patch: PreferencesPatch,
    ) -> AppResult<Preferences> {
        let current = self.preferences(viewer).await?;
        let next = current.apply(patch, self.gateways)?;
        let mut conn = self.db.get().await?;
        store::save_preferences(&mut conn, viewer.user_id.0, &next).await?;
        Ok(next)
    }

    /// The viewer's deliveries outside the app, newest first, optionally in one status.
    pub async fn deliveries(
        &self,
        viewer: &Viewer,
        status: Option<&str>,
        after: Option<i64>,
        first: i64,
    ) -> AppResult<Page<DeliveryRow>> {
        let first = first.clamp(1, MAX_PAGE);
        let mut conn = self.db.get().await?;
        let rows: Vec<DeliveryRow> = diesel::sql_query(format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries \
             WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) \
               AND ($3::bigint IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind::<BigInt, _>(viewer.user_id.0)
        .bind::<Nullable<Text>, _>(status)
        .bind::<Nullable<BigInt>, _>(after)
        .bind::<BigInt, _>(first + 1)
        .load(&mut conn)
        .await?;
        let total: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM notification_deliveries \
             WHERE user_id = $1 AND ($2::text IS NULL OR status = $2)",
        )
        .bind::<BigInt, _>(viewer.user_id.0)
        .bind::<Nullable<Text>, _>(status)
        .get_result(&mut conn)
        .await?;
        Ok(Page::from_overfetch(rows, first, after.is_some(), total.n))
    }
}

async fn count(conn: &mut AsyncPgConnection, viewer: &Viewer, unread_only: bool) -> AppResult<i64> {
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM notifications \
         WHERE user_id = $1 AND ($2 = false OR read_at IS NULL)",
    )
    .bind::<BigInt, _>(viewer.user_id.0)
    .bind::<Bool, _>(unread_only)
    .get_result(conn)
    .await?;
    Ok(row.n)
}
