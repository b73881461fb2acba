//! Digests: one email per user at the time they chose (daily, or weekly on a weekday) in their
//! own timezone, listing their unread notifications, tasks due today, overdue tasks, leads
//! newly assigned to them and their opportunities that changed stage. Nothing is sent when
//! there is nothing to say.
//!
//! A minute tick (`notifications.digests`) claims each due (user, slot) with a unique key and
//! enqueues one `SendDigest` job per claim in the same transaction: a slot makes one digest
//! whatever the number of processes, and a failed send is retried by the job queue. A slot is
//! claimed only within [`CATCH_UP`] after it passed, so turning digests on at 15:00 for 09:00
//! starts tomorrow, and a server down for days sends one digest, not a backlog.

use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::preferences::{Channel, Digest};
use super::store;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::jobs::queue::enqueue_many_in;
use crate::jobs::{new_job, Job, JobContext};

/// How long after its slot a digest may still go out.
const CATCH_UP: i64 = 60;
/// Most lines of one section (the counts stay exact).
const SECTION_LINES: i64 = 20;

/// The minute tick's job: claims the digests that are due.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DigestTick {}

impl Job for DigestTick {
    const KIND: &'static str = "notification.digests";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        let claimed = claim_due(&ctx.app.db, Utc::now())
            .await
            .map_err(|e| e.to_string())?;
        Ok(json!({ "claimed": claimed }))
    }
}

/// Claims the digests due at `now` (a parameter so tests can move the clock) and enqueues
/// their jobs; returns how many were claimed.
pub async fn claim_due(db: &DbPool, now: DateTime<Utc>) -> AppResult<usize> {
    #[derive(QueryableByName)]
    struct Subscriber {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = BigInt)]
        workspace_id: i64,
    }
    let mut conn = db.get().await?;
    let subscribers: Vec<Subscriber> = diesel::sql_query(
        "SELECT p.user_id, u.workspace_id FROM notification_preferences p \
         JOIN users u ON u.id = p.user_id AND u.is_active WHERE p.digest <> 'off'",
    )
    .load(&mut conn)
    .await?;
    let ids: Vec<i64> = subscribers.iter().map(|s| s.user_id).collect();
    let preferences = store::preferences(&mut conn, &ids).await?;
    let mut due = Vec::new();
    for subscriber in &subscribers {
        let Some(prefs) = preferences.get(&subscriber.user_id) else {
            continue;
        };
        // A digest is an email: with email off, there is none.
        if !prefs.channel_on(Channel::Email) {
            continue;
        }
        let Some(slot) = prefs.digest_due(now) else {
            continue;
        };
        if slot > now - Duration::minutes(CATCH_UP) {
            due.push((subscriber, slot, slot - prefs.digest.period()));
        }
    }
    if due.is_empty() {
        return Ok(0);
    }
    conn.transaction::<_, AppError, _>(async move |conn| {
        let mut jobs = Vec::new();
        for (subscriber, slot, since) in due {
            let claimed = diesel::sql_query(
                "INSERT INTO notification_digests (user_id, slot, since) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind::<BigInt, _>(subscriber.user_id)
            .bind::<Timestamptz, _>(slot)
            .bind::<Timestamptz, _>(since)
            .execute(conn)
            .await?;
            if claimed == 1 {
                let mut job = new_job(&SendDigest {
                    user_id: subscriber.user_id,
                    slot,
                });
                job.workspace_id = Some(subscriber.workspace_id);
                jobs.push(job);
            }
        }
        enqueue_many_in(conn, &jobs).await?;
        Ok(jobs.len())
    })
    .await
}

/// Builds and mails one user's digest for one slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendDigest {
    pub user_id: i64,
    pub slot: DateTime<Utc>,
}

impl Job for SendDigest {
    const KIND: &'static str = "notification.digest";
    const MAX_ATTEMPTS: i32 = 5;

    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        let mut conn = ctx.app.db.get().await.map_err(|e| e.to_string())?;
        let Some(content) = content(&mut conn, self.user_id, self.slot)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(json!({ "status": "gone" }));
        };
        let items = content.items();
        if items == 0 {
            mark(&mut conn, &self, "empty", 0).await?;
            return Ok(json!({ "status": "empty" }));
        }
        let mailer = ctx.app.mail.get()?;
        mailer
            .send(crate::mail::Email {
                to: &content.email,
                cc: None,
                subject: &content.subject(),
                body: &content.body(),
                message_id: Some(format!(
                    "<digest-{}-{}@mycrm>",
                    self.user_id,
                    self.slot.timestamp()
                )),
            })
            .await
            .map_err(|e| e.message)?;
        mark(&mut conn, &self, "sent", items).await?;
        Ok(json!({ "status": "sent", "items": items }))
    }
}

async fn mark(
    conn: &mut AsyncPgConnection,
    digest: &SendDigest,
    status: &str,
    items: usize,
) -> Result<(), String> {
    diesel::sql_query(
        "UPDATE notification_digests SET status = $3, items = $4, \
           sent_at = CASE WHEN $3 = 'sent' THEN now() END WHERE user_id = $1 AND slot = $2",
    )
    .bind::<BigInt, _>(digest.user_id)
    .bind::<Timestamptz, _>(digest.slot)
    .bind::<Text, _>(status)
    .bind::<diesel::sql_types::Integer, _>(items as i32)
    .execute(conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// One line of a section.
#[derive(Debug, QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    text: String,
    /// The section's full size (repeated on each line).
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// What one digest says.
#[derive(Debug)]
struct DigestContent {
    email: String,
    name: String,
    frequency: Digest,
    unread: Vec<Line>,
    due_today: Vec<Line>,
    overdue: Vec<Line>,
    assigned_leads: Vec<Line>,
    moved_opportunities: Vec<Line>,
}

impl DigestContent {
    fn sections(&self) -> [(&'static str, &Vec<Line>); 5] {
        [
            ("Unread notifications", &self.unread),
            ("Tasks due today", &self.due_today),
            ("Overdue tasks", &self.overdue),
            ("Leads newly assigned to you", &self.assigned_leads),
            ("Opportunities that moved", &self.moved_opportunities),
        ]
    }

    fn items(&self) -> usize {
        self.sections()
            .iter()
            .map(|(_, lines)| lines.iter().next().map_or(0, |l| l.total as usize))
            .sum()
    }

    fn subject(&self) -> String {
        let counts: Vec<String> = self
            .sections()
            .iter()
            .filter_map(|(title, lines)| {
                let n = lines.iter().next()?.total;
                Some(format!("{n} {}", title.to_lowercase()))
            })
            .collect();
        let kind = match self.frequency {
            Digest::Weekly => "weekly",
            _ => "daily",
        };
        format!("Your {kind} MyCRM digest: {}", counts.join(", "))
    }

    fn body(&self) -> String {
        let mut body = format!("Hello {},\n\nHere is what needs you.\n", self.name);
        for (title, lines) in self.sections() {
            let Some(first) = lines.iter().next() else {
                continue;
            };
            body.push_str(&format!("\n{title} ({}):\n", first.total));
            for line in lines {
                body.push_str(&format!("  - {}\n", line.text));
            }
            let more = first.total - lines.len() as i64;
            if more > 0 {
                body.push_str(&format!("  ... and {more} more\n"));
            }
        }
        body.push_str("\nYou get this because digests are on in your notification preferences.\n");
        body
    }
}

/// The digest of `user` for `slot`, or None when the user or the claim is gone.
async fn content(
    conn: &mut AsyncPgConnection,
    user: i64,
    slot: DateTime<Utc>,
) -> AppResult<Option<DigestContent>> {
    #[derive(QueryableByName)]
    struct Claim {
        #[diesel(sql_type = Text)]
        email: String,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        workspace_id: i64,
        #[diesel(sql_type = Timestamptz)]
        since: DateTime<Utc>,
        #[diesel(sql_type = Text)]
        status: String,
    }
    let claim: Option<Claim> = diesel::sql_query(
        "SELECT u.email, u.name, u.workspace_id, d.since, d.status FROM notification_digests d \
         JOIN users u ON u.id = d.user_id AND u.is_active WHERE d.user_id = $1 AND d.slot = $2",
    )
    .bind::<BigInt, _>(user)
    .bind::<Timestamptz, _>(slot)
    .get_result(conn)
    .await
    .map(Some)
    .or_else(|e| match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e),
    })?;
    // Gone, or already sent by an earlier attempt whose completion was lost.
    let Some(claim) = claim.filter(|c| c.status != "sent") else {
        return Ok(None);
    };
    let prefs = store::preferences(conn, &[user])
        .await?
        .remove(&user)
        .unwrap_or_default();
    // "Today" is the user's local day of the slot; overdue means due before today, so a
    // task is listed once.
    let (day_start, day_end) = prefs.local_day(slot);
    let ws = claim.workspace_id;
    let unread = lines(
        conn,
        "SELECT title AS text, count(*) OVER () AS total FROM notifications \
         WHERE user_id = $1 AND workspace_id = $2 AND read_at IS NULL AND created_at <= $4 \
         ORDER BY id DESC LIMIT $5",
        (user, ws, claim.since, slot),
    )
    .await?;
    let due_today = lines(
        conn,
        "SELECT title || ' (due ' || to_char(due_at AT TIME ZONE 'UTC', 'HH24:MI') || ' UTC)' \
           AS text, count(*) OVER () AS total FROM tasks \
         WHERE assigned_to_id = $1 AND workspace_id = $2 AND deleted_at IS NULL \
           AND status IN ('pending', 'in_progress') AND due_at >= $3 AND due_at < $4 \
         ORDER BY due_at, id LIMIT $5",
        (user, ws, day_start, day_end),
    )
    .await?;
    let overdue = lines(
        conn,
        "SELECT title || ' (was due ' || to_char(due_at AT TIME ZONE 'UTC', \
             'YYYY-MM-DD HH24:MI') || ' UTC)' AS text, count(*) OVER () AS total FROM tasks \
         WHERE assigned_to_id = $1 AND workspace_id = $2 AND deleted_at IS NULL \
           AND status IN ('pending', 'in_progress') AND due_at < $3 \
         ORDER BY due_at, id LIMIT $5",
        (user, ws, day_start, slot),
    )
    .await?;
    // Assigned in the period and still theirs.
    let assigned_leads = lines(
        conn,
        "SELECT coalesce(nullif(btrim(concat_ws(' ', l.first_name, l.last_name)), ''), \
             l.email, '#' || l.id) || coalesce(' (' || l.company_name || ')', '') AS text, \
           count(*) OVER () AS total FROM leads l \
         WHERE l.assigned_to_id = $1 AND l.workspace_id = $2 AND l.deleted_at IS NULL \
           AND EXISTS (SELECT 1 FROM record_events e WHERE e.workspace_id = $2 \
             AND e.entity = 'lead' AND e.record_id = l.id AND e.occurred_at > $3 \
             AND e.occurred_at <= $4 AND e.changes -> 'assigned_to_id' ->> 'new' = $1::text) \
         ORDER BY l.id LIMIT $5",
        (user, ws, claim.since, slot),
    )
    .await?;
    let moved_opportunities = lines(
        conn,
        "SELECT o.name || ': ' || (e.changes -> 'stage' ->> 'old') || ' -> ' \
             || (e.changes -> 'stage' ->> 'new') AS text, count(*) OVER () AS total \
         FROM record_events e JOIN opportunities o ON o.id = e.record_id \
         WHERE e.workspace_id = $2 AND e.entity = 'opportunity' AND e.changes ? 'stage' \
           AND e.action = 'updated' AND e.occurred_at > $3 AND e.occurred_at <= $4 \
           AND o.deleted_at IS NULL AND (o.owner_id = $1 OR o.assigned_to_id = $1) \
         ORDER BY e.id LIMIT $5",
        (user, ws, claim.since, slot),
    )
    .await?;
    Ok(Some(DigestContent {
        email: claim.email,
        name: claim.name,
        frequency: prefs.digest,
        unread,
        due_today,
        overdue,
        assigned_leads,
        moved_opportunities,
    }))
}

/// Runs one section's query: `$1` user, `$2` workspace, `$3`/`$4` its time range, `$5` the
/// line limit.
async fn lines(
    conn: &mut AsyncPgConnection,
    sql: &str,
    (user, workspace, from, to): (i64, i64, DateTime<Utc>, DateTime<Utc>),
) -> AppResult<Vec<Line>> {
    Ok(diesel::sql_query(sql)
        .bind::<BigInt, _>(user)
        .bind::<BigInt, _>(workspace)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<BigInt, _>(SECTION_LINES)
        .load(conn)
        .await?)
}
