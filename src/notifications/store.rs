//! The notification tables' SQL: preferences, notifications, deliveries, followers.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Jsonb, Nullable, SmallInt, Text, Time, Timestamptz,
};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Map, Value};

use super::preferences::{Channel, Digest, Kind, Preferences, QuietHours, ALL_DAYS};
use crate::error::AppResult;

#[derive(QueryableByName)]
struct PreferenceRow {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    timezone: String,
    #[diesel(sql_type = Jsonb)]
    channels: Value,
    #[diesel(sql_type = Jsonb)]
    matrix: Value,
    #[diesel(sql_type = Text)]
    digest: String,
    #[diesel(sql_type = SmallInt)]
    digest_weekday: i16,
    #[diesel(sql_type = Time)]
    digest_time: NaiveTime,
    #[diesel(sql_type = Bool)]
    dnd_enabled: bool,
    #[diesel(sql_type = Time)]
    dnd_start: NaiveTime,
    #[diesel(sql_type = Time)]
    dnd_end: NaiveTime,
    #[diesel(sql_type = Array<SmallInt>)]
    dnd_days: Vec<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    sms_number: Option<String>,
}

fn iso_day(day: i16) -> Option<Weekday> {
    usize::try_from(day - 1)
        .ok()
        .and_then(|i| ALL_DAYS.get(i).copied())
}

impl PreferenceRow {
    fn into_preferences(self) -> Preferences {
        let defaults = Preferences::default();
        let channels = self
            .channels
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, on)| Some((Channel::parse(name)?, on.as_bool()?)))
            .collect();
        let mut matrix = BTreeMap::new();
        for (kind, switches) in self.matrix.as_object().into_iter().flatten() {
            let Some(kind) = Kind::parse(kind) else {
                continue;
            };
            for (channel, on) in switches.as_object().into_iter().flatten() {
                if let (Some(channel), Some(on)) = (Channel::parse(channel), on.as_bool()) {
                    matrix.insert((kind, channel), on);
                }
            }
        }
        Preferences {
            timezone: self.timezone.parse().unwrap_or(defaults.timezone),
            channels,
            matrix,
            digest: Digest::parse(&self.digest).unwrap_or(Digest::Off),
            digest_weekday: iso_day(self.digest_weekday).unwrap_or(Weekday::Mon),
            digest_time: self.digest_time,
            quiet: QuietHours {
                enabled: self.dnd_enabled,
                start: self.dnd_start,
                end: self.dnd_end,
                days: self.dnd_days.into_iter().filter_map(iso_day).collect(),
            },
            sms_number: self.sms_number,
        }
    }
}

/// The preferences of each user (defaults for those who never set any).
pub async fn preferences(
    conn: &mut AsyncPgConnection,
    users: &[i64],
) -> AppResult<HashMap<i64, Preferences>> {
    let rows: Vec<PreferenceRow> = diesel::sql_query(
        "SELECT user_id, timezone, channels, matrix, digest, digest_weekday, digest_time, \
           dnd_enabled, dnd_start, dnd_end, dnd_days, sms_number \
         FROM notification_preferences WHERE user_id = ANY($1)",
    )
    .bind::<Array<BigInt>, _>(users)
    .load(conn)
    .await?;
    let mut found: HashMap<i64, Preferences> = rows
        .into_iter()
        .map(|r| (r.user_id, r.into_preferences()))
        .collect();
    for user in users {
        found.entry(*user).or_default();
    }
    Ok(found)
}

pub async fn save_preferences(
    conn: &mut AsyncPgConnection,
    user: i64,
    prefs: &Preferences,
) -> AppResult<()> {
    let channels: Map<String, Value> = prefs
        .channels
        .iter()
        .map(|(c, on)| (c.name().to_string(), json!(on)))
        .collect();
    let mut matrix = Map::new();
    for ((kind, channel), on) in &prefs.matrix {
        let entry = matrix
            .entry(kind.name().to_string())
            .or_insert_with(|| json!({}));
        entry[channel.name()] = json!(on);
    }
    let days: Vec<i16> = prefs
        .quiet
        .days
        .iter()
        .map(|d| d.number_from_monday() as i16)
        .collect();
    diesel::sql_query(
        "INSERT INTO notification_preferences (user_id, timezone, channels, matrix, digest, \
           digest_weekday, digest_time, dnd_enabled, dnd_start, dnd_end, dnd_days, sms_number) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (user_id) DO UPDATE SET timezone = $2, channels = $3, matrix = $4, \
           digest = $5, digest_weekday = $6, digest_time = $7, dnd_enabled = $8, \
           dnd_start = $9, dnd_end = $10, dnd_days = $11, sms_number = $12, updated_at = now()",
    )
    .bind::<BigInt, _>(user)
    .bind::<Text, _>(prefs.timezone.name())
    .bind::<Jsonb, _>(Value::Object(channels))
    .bind::<Jsonb, _>(Value::Object(matrix))
    .bind::<Text, _>(prefs.digest.name())
    .bind::<SmallInt, _>(prefs.digest_weekday.number_from_monday() as i16)
    .bind::<Time, _>(prefs.digest_time)
    .bind::<Bool, _>(prefs.quiet.enabled)
    .bind::<Time, _>(prefs.quiet.start)
    .bind::<Time, _>(prefs.quiet.end)
    .bind::<Array<SmallInt>, _>(days)
    .bind::<Nullable<Text>, _>(prefs.sms_number.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Also read from the live channel's JSON (`row_to_json`), hence `Deserialize`.
#[derive(Debug, Clone, QueryableByName, serde::Deserialize)]
pub struct NotificationRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub workspace_id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub message: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub entity: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub record_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub actor_id: Option<i64>,
    #[diesel(sql_type = Jsonb)]
    pub data: Value,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub read_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

pub const NOTIFICATION_COLUMNS: &str = "id, workspace_id, user_id, kind, title, message, entity, \
    record_id, actor_id, data, read_at, created_at";

/// One notification per recipient; `read` ones are stored already read (the user switched
/// the bell off for the type but another channel carries it).
pub struct NewNotification<'a> {
    pub user_id: i64,
    pub read: bool,
    pub notice: &'a super::Notice,
}

pub async fn insert_notifications(
    conn: &mut AsyncPgConnection,
    rows: &[NewNotification<'_>],
) -> AppResult<Vec<NotificationRow>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: &dyn Fn(&NewNotification) -> Value| rows.iter().map(f).collect::<Vec<_>>();
    Ok(diesel::sql_query(format!(
        "INSERT INTO notifications (workspace_id, user_id, kind, title, message, entity, \
           record_id, actor_id, data, read_at) \
         SELECT (n->>'workspace_id')::bigint, (n->>'user_id')::bigint, n->>'kind', \
           n->>'title', n->>'message', n->>'entity', (n->>'record_id')::bigint, \
           (n->>'actor_id')::bigint, n->'data', \
           CASE WHEN (n->>'read')::boolean THEN now() END \
         FROM unnest($1::jsonb[]) WITH ORDINALITY AS t(n, i) ORDER BY i \
         RETURNING {NOTIFICATION_COLUMNS}"
    ))
    .bind::<Array<Jsonb>, _>(column(&|r| {
        json!({
            "workspace_id": r.notice.workspace_id,
            "user_id": r.user_id,
            "kind": r.notice.kind.name(),
            "title": r.notice.title,
            "message": r.notice.message,
            "entity": r.notice.entity,
            "record_id": r.notice.record_id,
            "actor_id": r.notice.actor_id,
            "data": r.notice.data,
            "read": r.read,
        })
    }))
    .load(conn)
    .await?)
}

/// A delivery to make: `held` ones wait for the quiet hours to end.
pub struct NewDelivery {
    pub notification_id: i64,
    pub user_id: i64,
    pub channel: Channel,
    pub deliver_at: DateTime<Utc>,
    pub held: bool,
}

pub async fn insert_deliveries(
    conn: &mut AsyncPgConnection,
    rows: &[NewDelivery],
) -> AppResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Id> = diesel::sql_query(
        "INSERT INTO notification_deliveries (notification_id, user_id, channel, status, \
           deliver_at) \
         SELECT n, u, c, CASE WHEN h THEN 'held' ELSE 'pending' END, d \
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bool[], $5::timestamptz[]) \
           WITH ORDINALITY AS t(n, u, c, h, d, i) ORDER BY i RETURNING id",
    )
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.notification_id).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.user_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.channel.name()).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(rows.iter().map(|r| r.held).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.deliver_at).collect::<Vec<_>>())
    .load(conn)
    .await?;
    Ok(ids.into_iter().map(|i| i.id).collect())
}

#[derive(Debug, Clone, QueryableByName)]
pub struct DeliveryRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub notification_id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub job_id: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub deliver_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub sent_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

pub const DELIVERY_COLUMNS: &str = "id, notification_id, user_id, channel, status, attempts, \
    error, job_id, deliver_at, sent_at, created_at";

/// The users following each record (`(entity, record_id)` pairs).
pub async fn followers(
    conn: &mut AsyncPgConnection,
    entity: &str,
    records: &[i64],
) -> AppResult<HashMap<i64, Vec<i64>>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        record_id: i64,
        #[diesel(sql_type = BigInt)]
        user_id: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT record_id, user_id FROM record_followers \
         WHERE entity = $1 AND record_id = ANY($2)",
    )
    .bind::<Text, _>(entity)
    .bind::<Array<BigInt>, _>(records)
    .load(conn)
    .await?;
    let mut by_record: HashMap<i64, Vec<i64>> = HashMap::new();
    for row in rows {
        by_record
            .entry(row.record_id)
            .or_default()
            .push(row.user_id);
    }
    Ok(by_record)
}
