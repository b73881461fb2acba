//! Schedules against a real PostgreSQL with a fake clock: one run per slot across racing
//! schedulers, catch-up within the grace period, no overlapping runs; the built-in due-date
//! checks end to end through a worker; `schedules` and `triggerSchedule`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use mycrm::jobs::schedule::{Fired, Schedule, Scheduler};
use mycrm::jobs::{Job, JobContext, JobQueue};

use crate::harness::*;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tick {}

impl Job for Tick {
    const KIND: &'static str = "test.tick";
    async fn run(self, _: JobContext) -> Result<Value, String> {
        Ok(Value::Null)
    }
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.app.db.get().await.unwrap();
    let row: N = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
    row.n
}

/// Runs the one waiting job to completion, as a worker would.
async fn finish_one(queue: &JobQueue) {
    let jobs = queue.claim(&["default".to_string()], 1).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(queue.complete(&jobs[0], Value::Null).await.unwrap());
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, h, m, s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_racing_schedulers_make_exactly_one_job_per_slot() {
    let app = TestApp::spawn_with(|c| c.database.pool_size = 8).await;
    let schedule = Schedule::of::<Tick>("test.every_second", "* * * * * *", Tz::UTC)
        .with_grace(Duration::from_secs(30));
    let schedulers: Vec<Scheduler> = (0..3)
        .map(|_| Scheduler::new(app.app.db.clone(), vec![schedule.clone()]))
        .collect();
    let queue = JobQueue::new(app.app.db.clone(), "test".into(), Duration::from_secs(30));
    let start = at(0, 0, 0);
    const SLOTS: i64 = 10_000;
    // A cheap deterministic jitter: each scheduler sees the slot at a slightly different time.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for slot in 0..SLOTS {
        let base = start + chrono::Duration::seconds(slot);
        let mut nows = [base; 3];
        for now in nows.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *now = base + chrono::Duration::milliseconds((seed % 900) as i64);
        }
        let (a, b, c) = tokio::join!(
            schedulers[0].fire_due(nows[0]),
            schedulers[1].fire_due(nows[1]),
            schedulers[2].fire_due(nows[2]),
        );
        let outcomes: Vec<Fired> = [a, b, c]
            .into_iter()
            .flat_map(|r| r.unwrap().into_iter().map(|(_, fired)| fired))
            .collect();
        assert_eq!(outcomes.len(), 3, "each scheduler fires each slot once");
        let enqueued = outcomes
            .iter()
            .filter(|f| matches!(f, Fired::Enqueued(_)))
            .count();
        let already = outcomes.iter().filter(|f| **f == Fired::AlreadyRun).count();
        assert_eq!((enqueued, already), (1, 2), "slot {slot}: {outcomes:?}");
        finish_one(&queue).await;
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM schedule_runs WHERE job_id IS NOT NULL"
        )
        .await,
        SLOTS
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(DISTINCT id) AS n FROM job_history WHERE kind = 'test.tick' AND state = 'completed'"
        )
        .await,
        SLOTS
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM jobs").await, 0);
}

#[tokio::test]
async fn missed_slots_catch_up_once_within_grace_and_runs_never_overlap() {
    let app = TestApp::spawn().await;
    let hourly = Schedule::of::<Tick>("test.hourly", "0 0 * * * *", Tz::UTC)
        .with_grace(Duration::from_secs(600));
    let queue = JobQueue::new(app.app.db.clone(), "test".into(), Duration::from_secs(30));

    // Every process was down at 10:00; the first one up at 10:05 runs the slot late, once.
    let first = Scheduler::new(app.app.db.clone(), vec![hourly.clone()]);
    let fired = first.fire_due(at(10, 5, 0)).await.unwrap();
    assert!(matches!(fired[..], [("test.hourly", Fired::Enqueued(_))]));
    // A process that starts after it (or the same one restarted) does not run it again.
    let restarted = Scheduler::new(app.app.db.clone(), vec![hourly.clone()]);
    assert_eq!(
        restarted.fire_due(at(10, 6, 0)).await.unwrap(),
        vec![("test.hourly", Fired::AlreadyRun)]
    );
    // 11:00 was missed by more than the grace period: it is not run at 11:20.
    assert!(restarted.fire_due(at(11, 20, 0)).await.unwrap().is_empty());
    // 12:00 comes while the 10:00 run still waits: skipped, not queued behind it.
    assert_eq!(
        restarted.fire_due(at(12, 0, 1)).await.unwrap(),
        vec![("test.hourly", Fired::Skipped)]
    );
    finish_one(&queue).await;
    let fired = restarted.fire_due(at(13, 0, 0)).await.unwrap();
    assert!(matches!(fired[..], [("test.hourly", Fired::Enqueued(_))]));

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Run {
        #[diesel(sql_type = Text)]
        reason: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        has_job: bool,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        slot: DateTime<Utc>,
    }
    let mut conn = app.app.db.get().await.unwrap();
    let runs: Vec<Run> = diesel::sql_query(
        "SELECT reason, job_id IS NOT NULL AS has_job, slot FROM schedule_runs ORDER BY slot",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let runs: Vec<(&str, bool, DateTime<Utc>)> = runs
        .iter()
        .map(|r| (r.reason.as_str(), r.has_job, r.slot))
        .collect();
    assert_eq!(
        runs,
        vec![
            ("catch_up", true, at(10, 0, 0)),
            ("tick", false, at(12, 0, 0)),
            ("tick", true, at(13, 0, 0)),
        ]
    );
}

#[test]
fn slots_follow_the_schedule_timezone_across_daylight_saving() {
    let weekly = Schedule::of::<Tick>("test.weekly", "0 0 2 * * Mon", chrono_tz::Europe::Berlin);
    // 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
    assert_eq!(
        weekly.next_after(Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap())
    );
    assert_eq!(
        weekly.next_after(Utc.with_ymd_and_hms(2026, 6, 2, 0, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2026, 6, 8, 0, 0, 0).unwrap())
    );
    assert_eq!(
        weekly.slot_at(Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap())
    );
}

#[test]
fn every_builtin_schedule_has_a_registered_job() {
    let registry = mycrm::jobs::registry();
    let now = Utc::now();
    for schedule in mycrm::jobs::schedule::builtin() {
        assert!(schedule.next_after(now).is_some(), "{}", schedule.name);
    }
    for kind in ["tasks.overdue", "tasks.due_soon"] {
        assert!(registry.kinds().contains(&kind), "{kind}");
    }
}

const SCHEDULES: &str =
    "{ schedules { name cron timezone nextRunAt lastRunAt lastRunReason lastRunSkipped lastJobState } }";
const TRIGGER: &str = "mutation($n: String!) { triggerSchedule(name: $n) { schedule { name lastRunReason lastJobState } } }";

async fn create_task(app: &TestApp, token: &str, title: &str, input: Value) -> String {
    let mut input = input;
    input["title"] = json!(title);
    app.create_task(token, input).await
}

/// Actions of task events written by the due-date checks, as (task title, action).
async fn due_events(app: &TestApp) -> Vec<(String, String)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        title: String,
        #[diesel(sql_type = Text)]
        action: String,
    }
    let mut conn = app.app.db.get().await.unwrap();
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT t.title, e.action FROM record_events e JOIN tasks t ON t.id = e.record_id \
         WHERE e.entity = 'task' AND e.action IN ('overdue', 'due_soon') ORDER BY e.id",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| (r.title, r.action)).collect()
}

/// Triggers `name` and waits for the worker to finish its job.
async fn trigger_and_wait(app: &TestApp, admin: &str, name: &str) {
    let answer = app.gql(Some(admin), TRIGGER, json!({ "n": name })).await;
    assert_eq!(
        answer["data"]["triggerSchedule"]["schedule"]["lastRunReason"], "manual",
        "{answer}"
    );
    for _ in 0..200 {
        let list = app.gql(Some(admin), SCHEDULES, json!({})).await;
        let done = list["data"]["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name && s["lastJobState"] == "COMPLETED");
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} did not complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_date_checks_emit_each_event_once_and_admins_see_and_trigger_schedules() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, member) = app.user_with_role("mia@acme.test", "MEMBER").await;
    let hour = |h: i64| (Utc::now() + chrono::Duration::hours(h)).to_rfc3339();
    let late = create_task(&app, &admin, "late", json!({ "dueAt": hour(-2) })).await;
    create_task(&app, &admin, "soon", json!({ "dueAt": hour(3) })).await;
    create_task(&app, &admin, "later", json!({ "dueAt": hour(72) })).await;
    create_task(
        &app,
        &admin,
        "done",
        json!({ "dueAt": hour(-5), "status": "COMPLETED" }),
    )
    .await;
    create_task(&app, &admin, "undated", json!({})).await;

    let list = app.gql(Some(admin.as_str()), SCHEDULES, json!({})).await;
    let schedules = list["data"]["schedules"].as_array().unwrap();
    let names: Vec<&str> = schedules
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "tasks.overdue",
            "tasks.due_soon",
            "lead_scoring.retrain",
            "workflows.time_based",
            "notifications.digests"
        ]
    );
    assert_eq!(schedules[2]["cron"], "0 0 * * * *");
    assert_eq!(schedules[0]["cron"], "0 */30 * * * *");
    assert_eq!(schedules[0]["timezone"], "UTC");
    assert!(schedules[0]["nextRunAt"].is_string());
    assert!(schedules[0]["lastRunAt"].is_null());
    assert_eq!(
        error_code(&app.gql(Some(&member), SCHEDULES, json!({})).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(
            &app.gql(Some(&member), TRIGGER, json!({ "n": "tasks.overdue" }))
                .await
        ),
        "FORBIDDEN"
    );
    let unknown = app.gql(Some(&admin), TRIGGER, json!({ "n": "nope" })).await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT");
    assert_eq!(error_field(&unknown), "name");

    // A second trigger while the first run still waits is refused, and leaves no run.
    let first = app
        .gql(Some(&admin), TRIGGER, json!({ "n": "tasks.overdue" }))
        .await;
    assert_eq!(
        first["data"]["triggerSchedule"]["schedule"]["lastJobState"],
        "AVAILABLE"
    );
    let again = app
        .gql(Some(&admin), TRIGGER, json!({ "n": "tasks.overdue" }))
        .await;
    assert_eq!(error_code(&again), "CONFLICT");
    assert_eq!(error_field(&again), "name");
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM schedule_runs").await,
        1
    );

    // A real worker runs the jobs.
    let shutdown = CancellationToken::new();
    let mut config = mycrm::jobs::worker::WorkerConfig {
        poll: Duration::from_millis(50),
        ..Default::default()
    };
    config.set_lease(Duration::from_secs(10));
    let worker = tokio::spawn(mycrm::jobs::worker::run(
        app.app.clone(),
        Arc::new(mycrm::jobs::registry()),
        config,
        app.database_url.clone(),
        shutdown.clone(),
    ));
    for _ in 0..200 {
        if count(&app, "SELECT count(*) AS n FROM jobs").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger_and_wait(&app, &admin, "tasks.due_soon").await;
    let expected = vec![
        ("late".to_string(), "overdue".to_string()),
        ("soon".to_string(), "due_soon".to_string()),
    ];
    assert_eq!(due_events(&app).await, expected);

    // Once per due date: running the checks again emits nothing new...
    trigger_and_wait(&app, &admin, "tasks.overdue").await;
    trigger_and_wait(&app, &admin, "tasks.due_soon").await;
    assert_eq!(due_events(&app).await, expected);
    // ...until the task moves to a new date that has passed too.
    let moved = app
        .gql(
            Some(&admin),
            "mutation($id: ID!, $i: TaskInput!) { updateTask(id: $id, input: $i) { task { id } } }",
            json!({ "id": late, "i": { "dueAt": hour(-1) } }),
        )
        .await;
    assert!(moved["errors"].is_null(), "{moved}");
    trigger_and_wait(&app, &admin, "tasks.overdue").await;
    let events = due_events(&app).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2], ("late".to_string(), "overdue".to_string()));
    // The markers are bookkeeping: the task's history shows the move and the overdue
    // events, never the marker columns.
    let history = app
        .gql(
            Some(&admin),
            "query($id: ID!) { recordHistory(entity: TASK, id: $id) { action changes } }",
            json!({ "id": late }),
        )
        .await;
    let text = history.to_string();
    assert!(!text.contains("event_for"), "{text}");
    let actions: Vec<&str> = history["data"]["recordHistory"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"))
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "overdue").count(), 2);

    let list = app.gql(Some(&admin), SCHEDULES, json!({})).await;
    let overdue = &list["data"]["schedules"][0];
    assert_eq!(overdue["lastRunReason"], "manual");
    assert_eq!(overdue["lastRunSkipped"], false);
    assert_eq!(overdue["lastJobState"], "COMPLETED");
    assert!(overdue["lastRunAt"].is_string());
    shutdown.cancel();
    worker.await.unwrap();
}
