//! The job queue against a real PostgreSQL: claims, retries, discards, panics, leases,
//! unique keys, rollbacks, NOTIFY wake-ups and shutdown.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use mycrm::app::App;
use mycrm::jobs::worker::{self, WorkerConfig};
use mycrm::jobs::{new_job, Backoff, Job, JobContext, JobQueue, NewJob, Registry};

use crate::harness::*;

/// Returns its input, after reporting progress.
#[derive(Serialize, Deserialize)]
struct Echo {
    value: i64,
}

impl Job for Echo {
    const KIND: &'static str = "test.echo";
    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        ctx.progress(50, "half way")
            .await
            .map_err(|e| e.to_string())?;
        Ok(json!({ "echo": self.value }))
    }
}

/// Always fails.
#[derive(Serialize, Deserialize)]
struct Broken;

impl Job for Broken {
    const KIND: &'static str = "test.broken";
    const MAX_ATTEMPTS: i32 = 3;
    async fn run(self, _: JobContext) -> Result<Value, String> {
        Err("the remote side said no".into())
    }
}

/// Panics on its first attempt, then succeeds.
#[derive(Serialize, Deserialize)]
struct Flaky;

impl Job for Flaky {
    const KIND: &'static str = "test.flaky";
    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        if ctx.attempt == 1 {
            panic!("boom on the first try");
        }
        Ok(json!("fine"))
    }
}

/// Runs until cancelled.
#[derive(Serialize, Deserialize)]
struct Sleepy;

impl Job for Sleepy {
    const KIND: &'static str = "test.sleepy";
    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        ctx.cancellation().cancelled().await;
        Err("stopped".into())
    }
}

fn registry() -> Arc<Registry> {
    let mut registry = Registry::default();
    registry
        .register::<Echo>()
        .register::<Broken>()
        .register::<Flaky>()
        .register::<Sleepy>();
    Arc::new(registry)
}

fn fast() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        lease: Duration::from_secs(5),
        heartbeat: Duration::from_millis(200),
        poll: Duration::from_millis(50),
        grace: Duration::from_millis(300),
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(40),
        },
        ..WorkerConfig::default()
    }
}

async fn job_app() -> (Arc<App>, String) {
    let url = fresh_database().await;
    let app = mycrm::server::build_app(&test_config(), &url).expect("building the app");
    (app, url)
}

/// Starts a worker; cancel the token to stop it, then await the handle.
fn start(
    app: &Arc<App>,
    url: &str,
    config: WorkerConfig,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let handle = tokio::spawn(worker::run(
        app.clone(),
        registry(),
        config,
        url.to_string(),
        stop.clone(),
    ));
    (stop, handle)
}

#[derive(diesel::QueryableByName, Debug)]
struct Finished {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempt: i32,
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    progress: i16,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Jsonb>)]
    result: Option<Value>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    errors: Value,
}

async fn history(app: &App) -> Vec<Finished> {
    let mut conn = app.db.get().await.unwrap();
    diesel::sql_query(
        "SELECT id, state, attempt, progress, result, errors FROM job_history ORDER BY id",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

async fn live_jobs(app: &App) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.get().await.unwrap();
    let row: N = diesel::sql_query("SELECT count(*) AS n FROM jobs")
        .get_result(&mut conn)
        .await
        .unwrap();
    row.n
}

/// Waits (up to a generous bound, not a timing assertion) until `n` jobs are finished.
async fn wait_finished(app: &App, n: usize) -> Vec<Finished> {
    for _ in 0..400 {
        let done = history(app).await;
        if done.len() >= n {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("jobs did not finish: {:?}", history(app).await);
}

fn queue(app: &App) -> JobQueue {
    JobQueue::new(app.db.clone(), worker::worker_id(), Duration::from_secs(30))
}

#[tokio::test]
async fn jobs_complete_and_leave_the_hot_table() {
    let (app, url) = job_app().await;
    let q = queue(&app);
    for value in 0..20 {
        q.enqueue(&new_job(&Echo { value })).await.unwrap().unwrap();
    }
    let (stop, handle) = start(&app, &url, fast());
    let done = wait_finished(&app, 20).await;
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(live_jobs(&app).await, 0);
    let mut echoed: Vec<i64> = done
        .iter()
        .map(|j| {
            assert_eq!(j.state, "completed");
            assert_eq!(j.attempt, 1);
            assert_eq!(j.progress, 100);
            j.result.as_ref().unwrap()["echo"].as_i64().unwrap()
        })
        .collect();
    echoed.sort_unstable();
    assert_eq!(echoed, (0..20).collect::<Vec<_>>());

    // History is kept for the retention period, then purged; recent jobs stay.
    let mut conn = app.db.get().await.unwrap();
    diesel::sql_query(
        "UPDATE job_history SET finished_at = now() - interval '15 days' \
         WHERE id IN (SELECT id FROM job_history ORDER BY id LIMIT 5)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let purged = mycrm::jobs::queue::purge_history(&mut conn, Duration::from_secs(14 * 24 * 3600))
        .await
        .unwrap();
    assert_eq!(purged, 5);
    assert_eq!(history(&app).await.len(), 15);
}

#[tokio::test]
async fn failures_back_off_then_are_discarded_with_every_error() {
    let (app, url) = job_app().await;
    queue(&app).enqueue(&new_job(&Broken)).await.unwrap();
    let (stop, handle) = start(&app, &url, fast());
    let done = wait_finished(&app, 1).await;
    stop.cancel();
    handle.await.unwrap();
    let job = &done[0];
    assert_eq!(job.state, "discarded");
    assert_eq!(job.attempt, 3);
    let errors = job.errors.as_array().unwrap();
    assert_eq!(errors.len(), 3, "{errors:?}");
    for (i, error) in errors.iter().enumerate() {
        assert_eq!(error["attempt"], i as i64 + 1);
        assert_eq!(error["error"], "the remote side said no");
    }
}

#[tokio::test]
async fn unknown_kinds_bad_arguments_and_panics_do_not_stop_the_worker() {
    let (app, url) = job_app().await;
    let q = queue(&app);
    let unknown = q
        .enqueue(&NewJob::new("test.nobody", json!({})))
        .await
        .unwrap()
        .unwrap();
    let bad = q
        .enqueue(&NewJob::new(
            "test.echo",
            json!({ "value": "not a number" }),
        ))
        .await
        .unwrap()
        .unwrap();
    let flaky = q.enqueue(&new_job(&Flaky)).await.unwrap().unwrap();
    let good = q
        .enqueue(&new_job(&Echo { value: 7 }))
        .await
        .unwrap()
        .unwrap();
    let (stop, handle) = start(&app, &url, fast());
    let done = wait_finished(&app, 4).await;
    stop.cancel();
    handle.await.unwrap();
    let find = |id: i64| done.iter().find(|j| j.id == id).unwrap();
    assert_eq!(find(unknown).state, "discarded");
    assert!(find(unknown).errors[0]["error"]
        .as_str()
        .unwrap()
        .contains("unknown job kind \"test.nobody\""));
    assert_eq!(find(bad).state, "discarded");
    assert_eq!(find(bad).attempt, 1, "bad arguments are not retried");
    assert!(find(bad).errors[0]["error"]
        .as_str()
        .unwrap()
        .contains("do not fit job kind test.echo"));
    assert_eq!(find(flaky).state, "completed");
    assert_eq!(find(flaky).attempt, 2);
    assert!(find(flaky).errors[0]["error"]
        .as_str()
        .unwrap()
        .contains("panicked: boom on the first try"));
    assert_eq!(find(good).state, "completed");
}

#[tokio::test]
async fn unique_keys_delays_and_rolled_back_enqueues() {
    let (app, _) = job_app().await;
    let q = queue(&app);
    let mut job = new_job(&Echo { value: 1 });
    job.unique_key = Some("rescore:1".into());
    assert!(q.enqueue(&job).await.unwrap().is_some());
    assert!(
        q.enqueue(&job).await.unwrap().is_none(),
        "one live job per key"
    );

    let mut later = new_job(&Echo { value: 2 });
    later.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    q.enqueue(&later).await.unwrap().unwrap();
    let claimed = q.claim(&["default".into()], 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "the delayed job is not due");
    assert_eq!(claimed[0].unique_key.as_deref(), Some("rescore:1"));
    // Finished, the key is free again.
    assert!(q.complete(&claimed[0], json!(null)).await.unwrap());
    assert!(q.enqueue(&job).await.unwrap().is_some());

    // A job enqueued in a transaction that rolls back never exists.
    let before = live_jobs(&app).await;
    let mut conn = app.db.get().await.unwrap();
    let rolled_back = conn
        .transaction::<(), mycrm::error::AppError, _>(async |conn| {
            mycrm::jobs::queue::enqueue_in(conn, &new_job(&Echo { value: 3 })).await?;
            Err(mycrm::error::AppError::bad_input("x", "changed my mind"))
        })
        .await;
    assert!(rolled_back.is_err());
    drop(conn);
    assert_eq!(live_jobs(&app).await, before);
}

#[tokio::test]
async fn concurrent_claims_never_share_a_job() {
    let (app, _) = job_app().await;
    let q = queue(&app);
    for value in 0..200 {
        q.enqueue(&new_job(&Echo { value })).await.unwrap();
    }
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let q = queue(&app);
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = q.claim(&["default".into()], 7).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((total, all.len()), (200, 200));
}

#[tokio::test]
async fn expired_leases_are_rescued_and_the_job_runs_again() {
    let (app, url) = job_app().await;
    // A "worker" that claims with a short lease and dies.
    let dead = JobQueue::new(
        app.db.clone(),
        "dead-worker".into(),
        Duration::from_millis(50),
    );
    let id = dead
        .enqueue(&new_job(&Echo { value: 5 }))
        .await
        .unwrap()
        .unwrap();
    let claimed = dead.claim(&["default".into()], 1).await.unwrap();
    assert_eq!(claimed[0].id, id);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(queue(&app).rescue_expired().await.unwrap(), 1);
    // The dead worker's late outcome is ignored.
    assert!(!dead.complete(&claimed[0], json!("late")).await.unwrap());
    let (stop, handle) = start(&app, &url, fast());
    let done = wait_finished(&app, 1).await;
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(done[0].state, "completed");
    assert_eq!(done[0].attempt, 2, "the lost attempt counts");
    assert!(done[0].errors[0]["error"]
        .as_str()
        .unwrap()
        .contains("stopped renewing its lease"));
}

#[tokio::test]
async fn an_expired_last_attempt_is_discarded_with_a_full_error_entry() {
    let (app, _) = job_app().await;
    let dead = JobQueue::new(
        app.db.clone(),
        "dead-worker".into(),
        Duration::from_millis(50),
    );
    let mut job = new_job(&Echo { value: 1 });
    job.max_attempts = 1;
    dead.enqueue(&job).await.unwrap().unwrap();
    dead.claim(&["default".into()], 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(queue(&app).rescue_expired().await.unwrap(), 1);
    let done = history(&app).await;
    assert_eq!(done[0].state, "discarded");
    let entry = &done[0].errors[0];
    assert_eq!(entry["attempt"], 1);
    assert!(entry["at"].is_string(), "{entry}");
    assert!(entry["error"]
        .as_str()
        .unwrap()
        .contains("stopped renewing its lease"));
}

#[tokio::test]
async fn notify_wakes_an_idle_worker_and_shutdown_releases_unfinished_jobs() {
    let (app, url) = job_app().await;
    // Polling once a minute: only the NOTIFY can make this job run in the test's time.
    let config = WorkerConfig {
        poll: Duration::from_secs(60),
        ..fast()
    };
    let (stop, handle) = start(&app, &url, config);
    tokio::time::sleep(Duration::from_millis(300)).await;
    queue(&app)
        .enqueue(&new_job(&Echo { value: 9 }))
        .await
        .unwrap();
    let done = wait_finished(&app, 1).await;
    assert_eq!(done[0].state, "completed");

    // A job still running at shutdown is cancelled after the grace period and released.
    let sleepy = queue(&app)
        .enqueue(&new_job(&Sleepy))
        .await
        .unwrap()
        .unwrap();
    for _ in 0..200 {
        if live_running(&app).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    handle.await.unwrap();
    let mut conn = app.db.get().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempt: i32,
    }
    let row: Row = diesel::sql_query("SELECT state, attempt FROM jobs WHERE id = $1")
        .bind::<diesel::sql_types::BigInt, _>(sleepy)
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!((row.state.as_str(), row.attempt), ("available", 0));
}

async fn live_running(app: &App) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.get().await.unwrap();
    let row: N = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE state = 'running'")
        .get_result(&mut conn)
        .await
        .unwrap();
    row.n
}

/// (user id, workspace id) of a token's user.
async fn whoami(app: &TestApp, token: &str) -> (i64, i64) {
    let me = app
        .gql(Some(token), "{ me { id workspace { id } } }", json!({}))
        .await;
    let id = me["data"]["me"]["id"].as_str().unwrap().parse().unwrap();
    let ws = me["data"]["me"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (id, ws)
}

async fn enqueue_for(app: &TestApp, workspace: i64, user: i64, job: NewJob) -> String {
    let mut job = job;
    job.workspace_id = Some(workspace);
    job.created_by = Some(user);
    queue(&app.app)
        .enqueue(&job)
        .await
        .unwrap()
        .unwrap()
        .to_string()
}

const JOB: &str = "query($id: ID!) { job(id: $id) { id kind state progress attempt maxAttempts errors { attempt message } result } }";
const CANCEL: &str = "mutation($id: ID!) { cancelJob(id: $id) { job { state } } }";
const RETRY: &str =
    "mutation($id: ID!) { retryJob(id: $id) { job { state attempt errors { message } } } }";

#[tokio::test]
async fn job_api_scopes_lists_cancels_and_retries() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (admin_id, workspace) = whoami(&app, &admin).await;
    let (_, mia) = app.user_with_role("mia@example.com", "MEMBER").await;
    let (mia_id, _) = whoami(&app, &mia).await;
    let other = app
        .other_workspace("Other", "o@other.test", "other-password-1")
        .await;
    let other = token_of(&other);
    let (other_id, other_ws) = whoami(&app, &other).await;

    let mias = enqueue_for(&app, workspace, mia_id, new_job(&Echo { value: 1 })).await;
    let admins = enqueue_for(&app, workspace, admin_id, new_job(&Broken)).await;
    let foreign = enqueue_for(&app, other_ws, other_id, new_job(&Echo { value: 2 })).await;

    // Members see the jobs they started; nobody sees another workspace's.
    let seen = app.gql(Some(&mia), JOB, json!({ "id": mias })).await;
    assert_eq!(seen["data"]["job"]["state"], "AVAILABLE", "{seen}");
    assert_eq!(seen["data"]["job"]["kind"], "test.echo");
    for (token, id) in [(&mia, &admins), (&mia, &foreign), (&admin, &foreign)] {
        let hidden = app.gql(Some(token), JOB, json!({ "id": id })).await;
        assert_eq!(error_code(&hidden), "NOT_FOUND");
    }
    let list = "{ jobs(first: 10) { jobs { totalCount nodes { id state } } counts { state kind count } oldestAvailableSeconds } }";
    assert_eq!(
        error_code(&app.gql(Some(&mia), list, json!({})).await),
        "FORBIDDEN"
    );
    let listed = app.gql(Some(&admin), list, json!({})).await;
    assert_eq!(listed["data"]["jobs"]["jobs"]["totalCount"], 2, "{listed}");
    assert_eq!(
        listed["data"]["jobs"]["counts"].as_array().unwrap().len(),
        2
    );
    assert!(listed["data"]["jobs"]["oldestAvailableSeconds"].is_number());

    // A waiting job is cancelled at once; cancelling twice is a conflict; retry brings it back.
    let cancelled = app.gql(Some(&admin), CANCEL, json!({ "id": admins })).await;
    assert_eq!(
        cancelled["data"]["cancelJob"]["job"]["state"], "CANCELLED",
        "{cancelled}"
    );
    let again = app.gql(Some(&admin), CANCEL, json!({ "id": admins })).await;
    assert_eq!(error_code(&again), "CONFLICT");
    let retried = app.gql(Some(&admin), RETRY, json!({ "id": admins })).await;
    assert_eq!(
        retried["data"]["retryJob"]["job"]["state"], "AVAILABLE",
        "{retried}"
    );

    // Run everything: Broken ends discarded with its errors; retry gives it fresh attempts.
    let url = app.database_url.clone();
    let (stop, handle) = start(&app.app, &url, fast());
    wait_finished(&app.app, 3).await;
    stop.cancel();
    handle.await.unwrap();
    let broken = app.gql(Some(&admin), JOB, json!({ "id": admins })).await;
    let job = &broken["data"]["job"];
    assert_eq!(job["state"], "DISCARDED", "{broken}");
    assert_eq!(job["attempt"], 3);
    assert_eq!(job["errors"].as_array().unwrap().len(), 3);
    let retried = app.gql(Some(&admin), RETRY, json!({ "id": admins })).await;
    let job = &retried["data"]["retryJob"]["job"];
    assert_eq!(
        (job["state"].as_str(), job["attempt"].as_i64()),
        (Some("AVAILABLE"), Some(0))
    );
    assert_eq!(
        job["errors"].as_array().unwrap().len(),
        3,
        "errors are kept"
    );
    let done = app.gql(Some(&mia), JOB, json!({ "id": mias })).await;
    assert_eq!(done["data"]["job"]["state"], "COMPLETED");
    assert_eq!(done["data"]["job"]["progress"], 100);
    assert_eq!(done["data"]["job"]["result"]["echo"], 1);
    assert_eq!(
        error_code(&app.gql(Some(&mia), RETRY, json!({ "id": mias })).await),
        "CONFLICT"
    );
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_handler() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (admin_id, workspace) = whoami(&app, &admin).await;
    let id = enqueue_for(&app, workspace, admin_id, new_job(&Sleepy)).await;
    let url = app.database_url.clone();
    let (stop, handle) = start(&app.app, &url, fast());
    for _ in 0..200 {
        if live_running(&app.app).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let asked = app.gql(Some(&admin), CANCEL, json!({ "id": id })).await;
    assert_eq!(
        asked["data"]["cancelJob"]["job"]["state"], "RUNNING",
        "{asked}"
    );
    let done = wait_finished(&app.app, 1).await;
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(done[0].state, "cancelled");
}

#[tokio::test]
async fn completions_move_in_one_batch_and_skip_jobs_no_longer_held() {
    let (app, _) = job_app().await;
    let q = queue(&app);
    for value in 0..3 {
        q.enqueue(&new_job(&Echo { value })).await.unwrap().unwrap();
    }
    let mut claimed = q.claim(&["default".to_string()], 3).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // One of them was rescued and claimed again meanwhile: its old attempt is not ours.
    claimed[2].attempt += 1;
    let done: Vec<_> = claimed
        .into_iter()
        .map(|job| {
            let result = json!({ "id": job.id });
            (job, result)
        })
        .collect();
    assert_eq!(q.complete_many(&done).await.unwrap(), 2);
    let finished = history(&app).await;
    assert_eq!(finished.len(), 2);
    for job in &finished {
        assert_eq!(job.state, "completed");
        assert_eq!(job.progress, 100);
        assert!(job.result.is_some());
    }
    assert_eq!(live_jobs(&app).await, 1);
}
