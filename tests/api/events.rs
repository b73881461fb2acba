//! The change stream's read side against a real PostgreSQL: commit-order sealing, a cursor
//! per consumer, exactly-once effects, retries, restarts, concurrent dispatchers and NOTIFY.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use mycrm::events::dispatcher::{self, Delivery, DispatcherConfig};
use mycrm::events::{seal, Consumer, RecordEvent};

use crate::harness::*;

/// Writes what it is handed into `delivered`, in the delivery's transaction; fails its first
/// `fail_first` batches.
struct Recorder {
    name: &'static str,
    fail_first: AtomicUsize,
}

impl Recorder {
    fn new(name: &'static str) -> Arc<Self> {
        Self::failing(name, 0)
    }

    fn failing(name: &'static str, times: usize) -> Arc<Self> {
        Arc::new(Recorder {
            name,
            fail_first: AtomicUsize::new(times),
        })
    }
}

impl Consumer for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self
                .fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err("the downstream system is down".into());
            }
            let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            diesel::sql_query(
                "INSERT INTO delivered (consumer, seq, event_id) \
                 SELECT $1, s, i FROM unnest($2::bigint[], $3::bigint[]) AS d(s, i)",
            )
            .bind::<Text, _>(self.name)
            .bind::<diesel::sql_types::Array<BigInt>, _>(seqs)
            .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
            .execute(conn)
            .await
            .map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

async fn connect(app: &TestApp) -> AsyncPgConnection {
    let mut conn = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS delivered (n BIGSERIAL, consumer TEXT, seq BIGINT, \
         event_id BIGINT)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn
}

#[derive(QueryableByName, Debug)]
struct Delivered {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
}

/// What `consumer` was handed, in the order it was handed.
async fn delivered(conn: &mut AsyncPgConnection, consumer: &str) -> Vec<Delivered> {
    diesel::sql_query("SELECT seq, event_id FROM delivered WHERE consumer = $1 ORDER BY n")
        .bind::<Text, _>(consumer)
        .load(conn)
        .await
        .unwrap()
}

/// Inserts one raw event for lead `record` of workspace 1.
async fn raw_event(conn: &mut AsyncPgConnection, record: i64) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let id: Id = diesel::sql_query(
        "INSERT INTO record_events (workspace_id, entity, record_id, action) \
         VALUES (1, 'lead', $1, 'updated') RETURNING id",
    )
    .bind::<BigInt, _>(record)
    .get_result(conn)
    .await
    .unwrap();
    id.id
}

/// One delivery of up to 100 events to `consumer`.
async fn deliver(conn: &mut AsyncPgConnection, consumer: &Arc<dyn Consumer>) -> Delivery {
    dispatcher::deliver(conn, consumer.as_ref(), 100)
        .await
        .unwrap()
}

async fn create_lead(app: &TestApp, token: &str, n: usize) -> String {
    let answer = app
        .gql(
            Some(token),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": { "firstName": format!("Lead {n}"), "email": format!("lead{n}@acme.test") } }),
        )
        .await;
    answer["data"]["createLead"]["lead"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string()
}

#[tokio::test]
async fn a_late_commit_is_not_skipped_and_a_rollback_never_arrives() {
    let app = TestApp::spawn().await;
    let mut conn = connect(&app).await;
    let consumer: Arc<dyn Consumer> = Recorder::new("late");
    dispatcher::register(&mut conn, std::slice::from_ref(&consumer))
        .await
        .unwrap();

    // Transaction A draws the lower event ID but commits last.
    let mut slow = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    diesel::sql_query("BEGIN").execute(&mut slow).await.unwrap();
    let first = raw_event(&mut slow, 1).await;
    // B commits at once with a higher ID; C rolls back.
    let second = raw_event(&mut conn, 2).await;
    let mut aborted = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut aborted)
        .await
        .unwrap();
    let rolled_back = raw_event(&mut aborted, 3).await;
    diesel::sql_query("ROLLBACK")
        .execute(&mut aborted)
        .await
        .unwrap();
    assert!(first < second && second < rolled_back);

    assert_eq!(seal::seal(&mut conn).await.unwrap(), Some(1));
    assert_eq!(deliver(&mut conn, &consumer).await, Delivery::Handled(1));
    diesel::sql_query("COMMIT")
        .execute(&mut slow)
        .await
        .unwrap();
    assert_eq!(seal::seal(&mut conn).await.unwrap(), Some(1));
    assert_eq!(deliver(&mut conn, &consumer).await, Delivery::Handled(1));
    let got = delivered(&mut conn, "late").await;
    let ids: Vec<i64> = got.iter().map(|d| d.event_id).collect();
    assert_eq!(ids, vec![second, first], "commit order, nothing skipped");
    assert!(got[0].seq < got[1].seq);
    assert!(!ids.contains(&rolled_back));
    // Nothing more, however often we look.
    seal::seal(&mut conn).await.unwrap();
    assert_eq!(deliver(&mut conn, &consumer).await, Delivery::Handled(0));
}

#[tokio::test]
async fn a_failing_consumer_keeps_its_place_and_a_restart_resumes_from_the_cursor() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut conn = connect(&app).await;
    let steady: Arc<dyn Consumer> = Recorder::new("steady");
    let flaky: Arc<dyn Consumer> = Recorder::failing("flaky", 2);
    let both = [steady.clone(), flaky.clone()];
    dispatcher::register(&mut conn, &both).await.unwrap();
    for n in 0..3 {
        create_lead(&app, &admin, n).await;
    }
    seal::seal(&mut conn).await.unwrap();

    for _ in 0..2 {
        assert!(matches!(
            deliver(&mut conn, &flaky).await,
            Delivery::Failed(e) if e.contains("downstream")
        ));
    }
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = BigInt)]
        position: i64,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        failures: i32,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        last_error: Option<String>,
    }
    let state = |name: &'static str| {
        diesel::sql_query(
            "SELECT position, failures, last_error FROM event_consumers WHERE name = $1",
        )
        .bind::<Text, _>(name)
    };
    let failing: State = state("flaky").get_result(&mut conn).await.unwrap();
    assert_eq!((failing.position, failing.failures), (0, 2));
    assert_eq!(
        failing.last_error.as_deref(),
        Some("the downstream system is down")
    );
    assert!(
        delivered(&mut conn, "flaky").await.is_empty(),
        "rolled back"
    );
    // The other consumer is not held up.
    assert_eq!(deliver(&mut conn, &steady).await, Delivery::Handled(3));
    assert_eq!(deliver(&mut conn, &flaky).await, Delivery::Handled(3));
    let recovered: State = state("flaky").get_result(&mut conn).await.unwrap();
    assert_eq!((recovered.position, recovered.failures), (3, 0));
    assert!(recovered.last_error.is_none());

    // While another process holds a consumer, this one leaves it alone.
    let mut other = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut other)
        .await
        .unwrap();
    diesel::sql_query("SELECT 1 FROM event_consumers WHERE name = 'steady' FOR UPDATE")
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(deliver(&mut conn, &steady).await, Delivery::Busy);
    diesel::sql_query("ROLLBACK")
        .execute(&mut other)
        .await
        .unwrap();

    // A restarted process (new consumer objects, same names) picks up after the cursor.
    let restarted: Arc<dyn Consumer> = Recorder::new("steady");
    dispatcher::register(&mut conn, std::slice::from_ref(&restarted))
        .await
        .unwrap();
    assert_eq!(deliver(&mut conn, &restarted).await, Delivery::Handled(0));
    create_lead(&app, &admin, 10).await;
    seal::seal(&mut conn).await.unwrap();
    assert_eq!(deliver(&mut conn, &restarted).await, Delivery::Handled(1));
    let seqs: Vec<i64> = delivered(&mut conn, "steady")
        .await
        .iter()
        .map(|d| d.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "each event once, in order");

    // A consumer registered now starts at the end of the stream, not at its beginning.
    let late: Arc<dyn Consumer> = Recorder::new("newcomer");
    dispatcher::register(&mut conn, std::slice::from_ref(&late))
        .await
        .unwrap();
    assert_eq!(deliver(&mut conn, &late).await, Delivery::Handled(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_deliver_each_event_once_in_order_per_record() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut conn = connect(&app).await;
    let consumers: Vec<Arc<dyn Consumer>> = vec![Recorder::new("alpha"), Recorder::new("beta")];
    dispatcher::register(&mut conn, &consumers).await.unwrap();

    let shutdown = CancellationToken::new();
    let config = DispatcherConfig {
        batch: 7,
        poll: Duration::from_millis(50),
        ..Default::default()
    };
    let mut dispatchers = Vec::new();
    for _ in 0..2 {
        dispatchers.push(tokio::spawn(dispatcher::run(
            app.app.db.clone(),
            consumers.clone(),
            config.clone(),
            app.database_url.clone(),
            shutdown.clone(),
        )));
    }
    // Concurrent writers: creates, then racing updates of the same few records.
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(create_lead(&app, &admin, n).await);
    }
    let update =
        "mutation($id: ID!, $i: LeadInput!) { updateLead(id: $id, input: $i) { lead { id } } }";
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, url, token, ids) = (
            app.client.clone(),
            app.url("/graphql"),
            admin.clone(),
            ids.clone(),
        );
        writers.push(tokio::spawn(async move {
            for round in 0..10 {
                let id = &ids[(w + round) % ids.len()];
                let body = json!({ "query": update, "variables": { "id": id, "i": { "jobTitle": format!("w{w} r{round}") } } });
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let total: N = diesel::sql_query("SELECT count(*) AS n FROM record_events")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(total.n, 44);
    let mut caught_up = false;
    for _ in 0..200 {
        let behind: N = diesel::sql_query(
            "SELECT count(*) AS n FROM event_consumers WHERE position < 44 AND name IN ('alpha', 'beta')",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        if behind.n == 0 {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    for d in dispatchers {
        d.await.unwrap();
    }
    assert!(caught_up, "both consumers reach the end of the stream");

    #[derive(QueryableByName)]
    struct Event {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = BigInt)]
        record_id: i64,
        #[diesel(sql_type = BigInt)]
        seq: i64,
    }
    let events: Vec<Event> = diesel::sql_query("SELECT id, record_id, seq FROM record_events")
        .load(&mut conn)
        .await
        .unwrap();
    let record_of: std::collections::HashMap<i64, i64> =
        events.iter().map(|e| (e.id, e.record_id)).collect();
    let mut seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=44).collect::<Vec<_>>(),
        "every event numbered once"
    );
    for name in ["alpha", "beta"] {
        let got = delivered(&mut conn, name).await;
        let order: Vec<i64> = got.iter().map(|d| d.seq).collect();
        assert_eq!(
            order,
            (1..=44).collect::<Vec<_>>(),
            "{name}: once each, in order"
        );
        // Per record, handed over in the order the changes were made.
        let mut last_per_record = std::collections::HashMap::new();
        for d in &got {
            let record = record_of[&d.event_id];
            if let Some(previous) = last_per_record.insert(record, d.event_id) {
                assert!(
                    previous < d.event_id,
                    "{name}: record {record} out of order"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_the_dispatcher_without_polling() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut conn = connect(&app).await;
    let consumers: Vec<Arc<dyn Consumer>> = vec![Recorder::new("live")];
    dispatcher::register(&mut conn, &consumers).await.unwrap();
    let shutdown = CancellationToken::new();
    let config = DispatcherConfig {
        // Far longer than the test waits: only a notification can wake it.
        poll: Duration::from_secs(600),
        ..Default::default()
    };
    let running = tokio::spawn(dispatcher::run(
        app.app.db.clone(),
        consumers,
        config,
        app.database_url.clone(),
        shutdown.clone(),
    ));
    // Let the dispatcher finish its first round and LISTEN.
    tokio::time::sleep(Duration::from_millis(500)).await;
    create_lead(&app, &admin, 1).await;
    let mut arrived = false;
    for _ in 0..100 {
        if !delivered(&mut conn, "live").await.is_empty() {
            arrived = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    assert!(arrived, "the new lead's event was delivered");
}
