//! The real `mycrm` binary: zero-config start with its own PostgreSQL, first-start bootstrap,
//! restart on the same data, SIGTERM, stale postmaster.pid, crash of the parent, and the
//! operator subcommands.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const PASSWORD: &str = "process-test-password";

struct Server {
    child: Child,
    base: String,
    stdout: Vec<String>,
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("mycrm-test-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mycrm(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mycrm"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("MYCRM_JWT_SECRET")
        .env("MYCRM_DATA_DIR", dir)
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `mycrm serve` and waits for its "listening" line.
fn start(dir: &Path, admin_env: bool) -> Server {
    start_with(mycrm(dir), admin_env)
}

/// Starts `cmd` as `mycrm serve` (a command that already names `serve` and its flags keeps them).
fn start_with(mut cmd: Command, admin_env: bool) -> Server {
    if cmd.get_args().next().is_none() {
        cmd.arg("serve");
    }
    cmd.args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if admin_env {
        cmd.env("MYCRM_ADMIN_EMAIL", "boss@example.com")
            .env("MYCRM_ADMIN_PASSWORD", PASSWORD);
    } else {
        cmd.env_remove("MYCRM_ADMIN_EMAIL")
            .env_remove("MYCRM_ADMIN_PASSWORD");
    }
    // Waited for in `Server::stop` (the tests that kill it wait themselves).
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("spawning mycrm");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("mycrm did not start; output: {lines:#?}"));
        if let Some(rest) = line.strip_prefix("mycrm listening on ") {
            let base = rest.split_whitespace().next().unwrap().to_string();
            lines.push(line);
            return Server {
                child,
                base,
                stdout: lines,
            };
        }
        lines.push(line);
    }
}

impl Server {
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn login(&self, email: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken user { email } } }",
            json!({ "e": email, "p": password }),
        )
        .await
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        wait_with_timeout(&mut self.child, Duration::from_secs(60))
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until no postmaster runs for `dir` (its postmaster.pid is removed on a clean stop).
fn assert_cluster_stopped(dir: &Path) {
    let pidfile = dir.join("postgres/postmaster.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pidfile.exists() {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL still running for {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn start_bootstrap_restart_and_stop() {
    let dir = data_dir("lifecycle");
    let server = start(&dir, true);
    assert!(server
        .stdout
        .iter()
        .any(|l| l.contains("First start") && l.contains("boss@example.com")));
    let session = server.login("boss@example.com", PASSWORD).await;
    let token = session["data"]["login"]["accessToken"]
        .as_str()
        .expect("login")
        .to_string();
    let me = server
        .gql(Some(&token), "{ me { email role } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "ADMIN");
    // The cluster listens on a Unix socket inside the data dir.
    assert!(dir.join("run").join(".s.PGSQL.5432").exists());
    let status = server.stop();
    assert!(status.success(), "exit status {status}");
    assert_cluster_stopped(&dir);

    // Second start: same data, no new admin, and the signing secret was kept so the token
    // from the first run still works.
    let server = start(&dir, true);
    assert!(!server.stdout.iter().any(|l| l.contains("First start")));
    let me = server
        .gql(Some(&token), "{ me { email } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["email"], "boss@example.com", "{me}");
    assert!(server.stop().success());
    assert_cluster_stopped(&dir);

    // A stale postmaster.pid from a crash (its PID now dead, or reused by an unrelated
    // process) does not prevent the next start.
    let mut finished = Command::new("true").spawn().unwrap();
    let dead_pid = finished.id();
    finished.wait().unwrap();
    // A live process of the account PostgreSQL runs as: PostgreSQL alone would refuse to start.
    let mut unrelated = Command::new("sleep");
    unrelated.arg("60");
    if nix::unistd::Uid::effective().is_root() {
        let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        std::os::unix::process::CommandExt::uid(&mut unrelated, postgres.uid.as_raw());
    }
    let mut unrelated = unrelated.spawn().unwrap();
    for pid in [dead_pid, unrelated.id()] {
        std::fs::write(
            dir.join("postgres/postmaster.pid"),
            format!(
                "{pid}\n{}\n1700000000\n5432\n\n\n  0  0\nready\n",
                dir.join("postgres").display()
            ),
        )
        .unwrap();
        let server = start(&dir, true);
        assert!(server.login("boss@example.com", PASSWORD).await["errors"].is_null());
        assert!(server.stop().success());
        assert_cluster_stopped(&dir);
    }
    unrelated.kill().unwrap();
    unrelated.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_too_long_for_a_socket_path_still_works() {
    let dir = data_dir(&"long-data-dir-".repeat(8));
    assert!(dir.join("run/.s.PGSQL.5432").as_os_str().len() > 107);
    let server = start(&dir, true);
    assert!(server.login("boss@example.com", PASSWORD).await["errors"].is_null());
    assert!(server.stop().success());
    assert_cluster_stopped(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_database_url_no_cluster_is_started() {
    let url = crate::harness::fresh_database().await;
    let dir = data_dir("external");
    let mut cmd = mycrm(&dir);
    cmd.env("DATABASE_URL", &url);
    let server = start_with(cmd, true);
    assert!(server.login("boss@example.com", PASSWORD).await["errors"].is_null());
    assert!(server.stop().success());
    assert!(!dir.join("postgres").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_server_leaves_no_cluster_behind() {
    let dir = data_dir("killed");
    let mut server = start(&dir, true);
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGKILL).unwrap();
    wait_with_timeout(&mut server.child, Duration::from_secs(10));
    // The cluster got SIGINT from the kernel when its parent died.
    assert_cluster_stopped(&dir);
    let server = start(&dir, true);
    assert!(server.login("boss@example.com", PASSWORD).await["errors"].is_null());
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_admin_password_is_printed_once() {
    let dir = data_dir("generated");
    let server = start(&dir, false);
    let at = server
        .stdout
        .iter()
        .position(|l| l.contains("admin@localhost with password"))
        .expect("the first-start banner");
    let password = server.stdout[at + 2].trim().to_string();
    assert!(password.len() >= 16);
    let session = server.login("admin@localhost", &password).await;
    assert!(session["errors"].is_null(), "{session}");
    assert!(server.stop().success());
    let server = start(&dir, false);
    assert!(!server.stdout.iter().any(|l| l.contains("with password")));
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_commands() {
    let dir = data_dir("operator");
    let migrate = mycrm(&dir).arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert_cluster_stopped(&dir);

    // No workspace yet: user create says so and exits 1.
    let no_workspace = mycrm(&dir)
        .args([
            "user",
            "create",
            "--email",
            "sam@example.com",
            "--role",
            "member",
        ])
        .env("MYCRM_PASSWORD", "sam-password-1")
        .output()
        .unwrap();
    assert_eq!(no_workspace.status.code(), Some(1));

    let server = start(&dir, true);
    assert!(server.stop().success());
    let created = mycrm(&dir)
        .args([
            "user",
            "create",
            "--email",
            "sam@example.com",
            "--role",
            "manager",
        ])
        .env("MYCRM_PASSWORD", "sam-password-1")
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let weak = mycrm(&dir)
        .args([
            "user",
            "create",
            "--email",
            "weak@example.com",
            "--role",
            "member",
        ])
        .env("MYCRM_PASSWORD", "short")
        .output()
        .unwrap();
    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));

    let server = start(&dir, true);
    let session = server.login("sam@example.com", "sam-password-1").await;
    assert!(session["errors"].is_null(), "{session}");
    assert_eq!(
        server.login("weak@example.com", "short").await["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert!(server.stop().success());

    let sdl = mycrm(&dir).arg("export-schema").output().unwrap();
    assert!(sdl.status.success());
    assert_eq!(
        String::from_utf8(sdl.stdout).unwrap(),
        mycrm::graphql::sdl()
    );
}

#[test]
fn without_postgresql_binaries_one_clear_error() {
    let dir = data_dir("nobinaries");
    let output = mycrm(&dir)
        .arg("serve")
        .env("MYCRM_PG_BIN_DIR", dir.join("empty"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PostgreSQL server binaries"), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_process_runs_jobs_and_stops_on_sigterm() {
    let url = crate::harness::fresh_database().await;
    // Migrate, and enqueue a job, through the library on the same database.
    let app = mycrm::server::build_app(&crate::harness::test_config(), &url).unwrap();
    let queue = mycrm::jobs::JobQueue::new(app.db.clone(), "test".into(), Duration::from_secs(30));
    let id = queue
        .enqueue(&mycrm::jobs::new_job(&mycrm::jobs::Noop {}))
        .await
        .unwrap()
        .unwrap();
    let dir = data_dir("worker");
    let mut child = mycrm(&dir)
        .env("DATABASE_URL", &url)
        .args(["worker", "--concurrency", "2", "--queues", "default"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut done = false;
    for _ in 0..400 {
        let mut conn = app.db.get().await.unwrap();
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let row: N = diesel_async::RunQueryDsl::get_result(
            diesel::sql_query(
                "SELECT count(*) AS n FROM job_history WHERE id = $1 AND state = 'completed'",
            )
            .bind::<diesel::sql_types::BigInt, _>(id),
            &mut conn,
        )
        .await
        .unwrap();
        if row.n == 1 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done, "the worker process did not run the job");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_with_timeout(&mut child, Duration::from_secs(60)).success());
    assert!(
        !dir.join("postgres").exists(),
        "no cluster with DATABASE_URL"
    );
}

#[derive(diesel::QueryableByName, Debug)]
struct JobRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempt: i32,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    errors: Value,
}

/// The job as stored now, live or finished (None while the database is unreachable).
async fn job_row(db: &mycrm::db::DbPool, id: i64) -> Option<JobRow> {
    let mut conn = db.get().await.ok()?;
    diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT state, attempt, errors FROM jobs WHERE id = $1 \
             UNION ALL SELECT state, attempt, errors FROM job_history WHERE id = $1",
        )
        .bind::<diesel::sql_types::BigInt, _>(id),
        &mut conn,
    )
    .await
    .ok()
}

/// Polls until the job is in `state` (up to `within`).
async fn wait_for_state(db: &mycrm::db::DbPool, id: i64, state: &str, within: Duration) -> JobRow {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(row) = job_row(db, id).await {
            if row.state == state {
                return row;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} never reached {state}: {:?}",
            job_row(db, id).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn worker_process(dir: &Path, url: &str) -> Child {
    mycrm(dir)
        .env("DATABASE_URL", url)
        .env("MYCRM_JOB_LEASE_SECONDS", "2")
        .args(["worker", "--concurrency", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_of_a_worker_killed_mid_run_runs_again_after_its_lease() {
    let url = crate::harness::fresh_database().await;
    let app = mycrm::server::build_app(&crate::harness::test_config(), &url).unwrap();
    let queue = mycrm::jobs::JobQueue::new(app.db.clone(), "test".into(), Duration::from_secs(30));
    let id = queue
        .enqueue(&mycrm::jobs::new_job(&mycrm::jobs::Sleep { seconds: 2 }))
        .await
        .unwrap()
        .unwrap();
    let dir = data_dir("killed-worker");
    let mut doomed = worker_process(&dir, &url);
    wait_for_state(&app.db, id, "running", Duration::from_secs(30)).await;
    kill(Pid::from_raw(doomed.id() as i32), Signal::SIGKILL).unwrap();
    doomed.wait().unwrap();

    // Nobody finishes it for the dead worker; a new worker takes it once the lease expired.
    let mut heir = worker_process(&dir, &url);
    let done = wait_for_state(&app.db, id, "completed", Duration::from_secs(60)).await;
    assert_eq!(done.attempt, 2, "the killed attempt counts");
    assert!(
        done.errors
            .to_string()
            .contains("stopped renewing its lease"),
        "{}",
        done.errors
    );
    kill(Pid::from_raw(heir.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_with_timeout(&mut heir, Duration::from_secs(60)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_carry_on_after_postgresql_restarts() {
    use mycrm::db::embedded::EmbeddedPostgres;
    let dir = data_dir("pg-restart");
    let cluster_dir = dir.join("cluster");
    let cluster = {
        let cluster_dir = cluster_dir.clone();
        tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&cluster_dir))
            .await
            .unwrap()
            .expect("starting a private cluster")
    };
    let url = cluster.url("postgres");
    let app = mycrm::server::build_app(&crate::harness::test_config(), &url).unwrap();
    mycrm::db::migrations::run_pending(&url).await.unwrap();
    let queue = mycrm::jobs::JobQueue::new(app.db.clone(), "test".into(), Duration::from_secs(30));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut config = mycrm::jobs::worker::WorkerConfig {
        poll: Duration::from_millis(200),
        ..Default::default()
    };
    config.set_lease(Duration::from_secs(5));
    let worker = tokio::spawn(mycrm::jobs::worker::run(
        app.clone(),
        std::sync::Arc::new(mycrm::jobs::registry()),
        config,
        url.clone(),
        shutdown.clone(),
    ));
    let noop = mycrm::jobs::new_job(&mycrm::jobs::Noop {});
    let before = queue.enqueue(&noop).await.unwrap().unwrap();
    wait_for_state(&app.db, before, "completed", Duration::from_secs(30)).await;

    // Restart PostgreSQL under the running worker: every connection it had is gone.
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap()
        .unwrap();
    let cluster = {
        let cluster_dir = cluster_dir.clone();
        tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&cluster_dir))
            .await
            .unwrap()
            .expect("restarting the cluster")
    };
    assert_eq!(cluster.url("postgres"), url);
    // The first statement on a dead pooled connection may fail; a client retries.
    let mut after = None;
    for _ in 0..20 {
        if let Ok(Some(id)) = queue.enqueue(&noop).await {
            after = Some(id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = after.expect("enqueueing after the restart");
    wait_for_state(&app.db, after, "completed", Duration::from_secs(60)).await;
    shutdown.cancel();
    worker.await.unwrap();
    app.db.close();
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap()
        .unwrap();
}

/// Two `mycrm serve` processes on one database: a change and a notification made through
/// one reach a subscriber connected to the other (LISTEN/NOTIFY), in both directions.
#[tokio::test(flavor = "multi_thread")]
async fn live_subscribers_get_changes_made_by_another_process() {
    use crate::live::{event, open, subscribe, TRANSPORT_WS};
    let url = crate::harness::fresh_database().await;
    let server = |name: &str, workers: bool| {
        let mut cmd = mycrm(&data_dir(name));
        cmd.env("DATABASE_URL", &url)
            .env(
                "MYCRM_JWT_SECRET",
                "a-secret-both-processes-share-0123456789",
            )
            .arg("serve");
        if !workers {
            cmd.arg("--no-workers");
        }
        cmd
    };
    let first = start_with(server("live-a", true), true);
    let second = start_with(server("live-b", false), true);
    let ws = |s: &Server| format!("{}/graphql/ws", s.base.replacen("http", "ws", 1));

    let admin = first.login("boss@example.com", PASSWORD).await;
    let admin = admin["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let member = first
        .gql(
            Some(&admin),
            "mutation { createUser(input: {email: \"mo@example.com\", name: \"Mo\", role: MEMBER, password: \"member-password-1\"}) { user { id } } }",
            json!({}),
        )
        .await;
    let member_id = member["data"]["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let member = second.login("mo@example.com", "member-password-1").await;
    let member = member["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();

    // Subscribed on the second process; changes made through the first.
    let mut records = open(&ws(&second), TRANSPORT_WS, &admin).await;
    subscribe(
        &mut records,
        TRANSPORT_WS,
        "r",
        "subscription { recordChanged(entity: LEAD) { recordId action } }",
    )
    .await;
    let mut bell = open(&ws(&second), TRANSPORT_WS, &member).await;
    subscribe(
        &mut bell,
        TRANSPORT_WS,
        "n",
        "subscription { notificationReceived { kind recordId } }",
    )
    .await;
    // A subscription starts after its message is read: give it the time to, then make the change.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let created = first
        .gql(
            Some(&admin),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": { "firstName": "Cross", "assignedToId": member_id } }),
        )
        .await;
    let lead = created["data"]["createLead"]["lead"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = event(&mut records).await["recordChanged"].clone();
    assert_eq!(got["recordId"], lead.as_str(), "{got}");
    assert_eq!(got["action"], "created");
    // The assignment notice is made by the first process's workers.
    let got = event(&mut bell).await["notificationReceived"].clone();
    assert_eq!(got["kind"], "ASSIGNMENT", "{got}");
    assert_eq!(got["recordId"], lead.as_str());

    // And the other way round.
    let mut on_first = open(&ws(&first), TRANSPORT_WS, &admin).await;
    subscribe(
        &mut on_first,
        TRANSPORT_WS,
        "r",
        "subscription { recordChanged(entity: LEAD) { recordId action } }",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    second
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateLead(id: $id, input: {status: CONTACTED}) { lead { id } } }",
            json!({ "id": lead }),
        )
        .await;
    let got = event(&mut on_first).await["recordChanged"].clone();
    assert_eq!(got["action"], "updated", "{got}");
    assert!(second.stop().success());
    assert!(first.stop().success());
}
