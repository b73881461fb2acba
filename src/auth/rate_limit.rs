//! Failed-login throttling per account and per client address.
//!
//! Failures are rows in `login_failures`, so every mycrm process shares the counts. An account
//! or address over its limit is refused before its password is even checked, until the oldest
//! failure in the window ages out.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::config::AuthConfig;
use crate::db::schema::login_failures;
use crate::error::{AppError, AppResult};

/// Refuses the attempt when the account or the address has too many recent failures.
pub async fn check(
    conn: &mut AsyncPgConnection,
    config: &AuthConfig,
    email: &str,
    client_ip: &str,
) -> AppResult<()> {
    let window =
        chrono::Duration::from_std(config.login_failure_window).map_err(AppError::internal)?;
    let since = Utc::now() - window;
    let limits = [
        (
            Key::Email(email),
            config.max_login_failures_per_account,
            "this account",
        ),
        (
            Key::Address(client_ip),
            config.max_login_failures_per_ip,
            "your address",
        ),
    ];
    for (key, limit, whom) in limits {
        let recent = recent_failures(conn, key, since, limit).await?;
        if recent.len() as u32 >= limit {
            return Err(limited(&recent, window, whom));
        }
    }
    Ok(())
}

enum Key<'a> {
    Email(&'a str),
    Address(&'a str),
}

/// Times of the newest `limit` failures for `key` since `since`, newest first.
async fn recent_failures(
    conn: &mut AsyncPgConnection,
    key: Key<'_>,
    since: DateTime<Utc>,
    limit: u32,
) -> AppResult<Vec<DateTime<Utc>>> {
    let mut query = login_failures::table
        .filter(login_failures::failed_at.gt(since))
        .select(login_failures::failed_at)
        .order(login_failures::failed_at.desc())
        .limit(i64::from(limit))
        .into_boxed();
    query = match key {
        Key::Email(email) => query.filter(login_failures::email.eq(email.to_string())),
        Key::Address(ip) => query.filter(login_failures::client_ip.eq(ip.to_string())),
    };
    Ok(query.load(conn).await?)
}

/// `recent` is newest first and as long as the limit; its last entry is the one whose ageing
/// out frees a slot.
fn limited(recent: &[DateTime<Utc>], window: chrono::Duration, whom: &str) -> AppError {
    let frees_at = recent.last().copied().unwrap_or_else(Utc::now) + window;
    let retry_after_secs = (frees_at - Utc::now()).num_seconds().max(1) as u64;
    AppError::RateLimited {
        message: format!(
            "too many failed login attempts for {whom}; try again in {retry_after_secs} seconds"
        ),
        retry_after_secs,
    }
}

pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    email: &str,
    client_ip: &str,
) -> AppResult<()> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::email.eq(email),
            login_failures::client_ip.eq(client_ip),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A successful login clears the account's failures (not the address's: one good password
/// must not reset an attacker's count against other accounts).
pub async fn clear_account(conn: &mut AsyncPgConnection, email: &str) -> AppResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::email.eq(email)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops failures older than `keep` (maintenance).
pub async fn purge_older_than(
    conn: &mut AsyncPgConnection,
    keep: chrono::Duration,
) -> AppResult<usize> {
    Ok(diesel::delete(
        login_failures::table.filter(login_failures::failed_at.lt(Utc::now() - keep)),
    )
    .execute(conn)
    .await?)
}
