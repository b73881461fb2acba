//! Failed-login throttling. The policy (README, "Limits"), within a sliding window:
//!
//! - **per account and address** (`max_login_failures_per_account`, 5): an address that got
//!   an account's password wrong that often may not try that account again. Other addresses
//!   are not affected, so nobody can lock someone else out by failing on purpose;
//! - **per address** (`max_login_failures_per_ip`, 50): an address guessing across many
//!   accounts is stopped;
//! - **per account, all addresses** (`max_login_failures_per_account_total`, 100): against
//!   guessing spread over many addresses. Past it, only addresses that have not failed on the
//!   account in the window may try (so its owner, from their own address, still gets in), and
//!   each such address fails at most once before it is refused too.
//!
//! Failures are rows in `login_failures`, so every mycrm process shares the counts. Each
//! attempt is recorded as a failure *before* the password is checked and cleared when it
//! succeeds, so parallel guesses count at once. A refused attempt is refused before its
//! password is even checked, until the oldest failure in the window ages out.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::config::AuthConfig;
use crate::db::schema::login_failures;
use crate::error::{AppError, AppResult};

/// An attempt in progress, counted as a failure until [`succeed`] clears it.
#[must_use]
pub struct Attempt(());

/// Refuses the attempt when the account or the address has too many recent failures, else
/// records it. Check and record happen under a per-account lock so that concurrent attempts
/// on one account are counted one after the other.
pub async fn begin_attempt(
    conn: &mut AsyncPgConnection,
    config: &AuthConfig,
    email: &str,
    client_ip: &str,
) -> AppResult<Attempt> {
    let config = config.clone();
    let email = email.to_string();
    let client_ip = client_ip.to_string();
    conn.transaction::<_, AppError, _>(async move |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('mycrm-login:' || $1))")
            .bind::<diesel::sql_types::Text, _>(&email)
            .execute(conn)
            .await?;
        check(conn, &config, &email, &client_ip).await?;
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::email.eq(&email),
                login_failures::client_ip.eq(&client_ip),
            ))
            .execute(conn)
            .await?;
        Ok(Attempt(()))
    })
    .await
}

/// The attempt succeeded: this address's failures on the account are forgotten. Not the
/// other addresses' (an attacker's count must not reset when the owner logs in), nor this
/// address's failures on other accounts.
pub async fn succeed(
    conn: &mut AsyncPgConnection,
    _attempt: Attempt,
    email: &str,
    client_ip: &str,
) -> AppResult<()> {
    diesel::delete(
        login_failures::table
            .filter(login_failures::email.eq(email))
            .filter(login_failures::client_ip.eq(client_ip)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn check(
    conn: &mut AsyncPgConnection,
    config: &AuthConfig,
    email: &str,
    client_ip: &str,
) -> AppResult<()> {
    let window =
        chrono::Duration::from_std(config.login_failure_window).map_err(AppError::internal)?;
    let since = Utc::now() - window;
    let here = recent_failures(
        conn,
        Key::EmailFrom(email, client_ip),
        since,
        config.max_login_failures_per_account,
    )
    .await?;
    if here.len() as u32 >= config.max_login_failures_per_account {
        return Err(limited(&here, window, "this account from your address"));
    }
    let address = recent_failures(
        conn,
        Key::Address(client_ip),
        since,
        config.max_login_failures_per_ip,
    )
    .await?;
    if address.len() as u32 >= config.max_login_failures_per_ip {
        return Err(limited(&address, window, "your address"));
    }
    // Spread guessing: past the account-wide limit, an address that has failed on the
    // account waits; one that has not (the owner's, say) still gets its attempt.
    if !here.is_empty() {
        let total = config.max_login_failures_per_account_total;
        let everywhere = recent_failures(conn, Key::Email(email), since, total).await?;
        if everywhere.len() as u32 >= total {
            return Err(limited(&here, window, "this account from your address"));
        }
    }
    Ok(())
}

enum Key<'a> {
    Email(&'a str),
    EmailFrom(&'a str, &'a str),
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
        Key::EmailFrom(email, ip) => query
            .filter(login_failures::email.eq(email.to_string()))
            .filter(login_failures::client_ip.eq(ip.to_string())),
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
