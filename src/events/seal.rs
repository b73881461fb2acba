//! Numbering committed events in commit order.
//!
//! Event IDs are drawn when a row is inserted, and transactions commit in another order, so
//! reading "ID greater than the last one seen" would skip an event whose transaction commits
//! late. Instead one process at a time (the row lock on `event_stream`) gives every event it
//! can see committed and not yet numbered the next `seq`, in ID order. Whatever a later seal
//! numbers committed after this one's snapshot, so `seq` only grows in the order consumers
//! must see. Two changes to one record are ordered too: the second waits on the first's row
//! lock and draws its event ID after the first committed.

use diesel::sql_types::BigInt;
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::error::{AppError, AppResult};

/// Events numbered per transaction: bounds the seal's lock time and its UPDATE.
const SEAL_BATCH: i64 = 5000;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Numbers one batch of committed events. Returns how many were numbered, or `None` when
/// another process is sealing right now (its seal covers the same events).
pub async fn seal_batch(conn: &mut AsyncPgConnection) -> AppResult<Option<i64>> {
    conn.transaction::<_, AppError, _>(async move |conn| {
        #[derive(QueryableByName)]
        struct Sealed {
            #[diesel(sql_type = BigInt)]
            sealed_seq: i64,
        }
        let Some(stream) =
            diesel::sql_query("SELECT sealed_seq FROM event_stream FOR UPDATE SKIP LOCKED")
                .get_result::<Sealed>(conn)
                .await
                .optional()?
        else {
            return Ok(None);
        };
        // A new statement, so a new snapshot taken after the lock: it sees every transaction
        // that committed before this seal began.
        let numbered: Count = diesel::sql_query(
            "WITH batch AS ( \
               SELECT id, row_number() OVER (ORDER BY id) AS n FROM record_events \
               WHERE seq IS NULL ORDER BY id LIMIT $2), \
             numbered AS ( \
               UPDATE record_events e SET seq = $1 + batch.n FROM batch \
               WHERE e.id = batch.id RETURNING 1) \
             SELECT count(*) AS n FROM numbered",
        )
        .bind::<BigInt, _>(stream.sealed_seq)
        .bind::<BigInt, _>(SEAL_BATCH)
        .get_result(conn)
        .await?;
        if numbered.n > 0 {
            diesel::sql_query("UPDATE event_stream SET sealed_seq = sealed_seq + $1")
                .bind::<BigInt, _>(numbered.n)
                .execute(conn)
                .await?;
        }
        Ok(Some(numbered.n))
    })
    .await
}

/// Numbers every event committed so far, batch after batch. Returns how many, or `None` when
/// another process holds the seal (the caller should look again shortly: that seal may have
/// started before the events the caller cares about committed).
pub async fn seal(conn: &mut AsyncPgConnection) -> AppResult<Option<i64>> {
    let mut total = 0;
    loop {
        match seal_batch(conn).await? {
            None => return Ok(None),
            Some(n) if n < SEAL_BATCH => return Ok(Some(total + n)),
            Some(n) => total += n,
        }
    }
}
