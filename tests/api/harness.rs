//! Test harness: one private PostgreSQL per test binary (or `TEST_DATABASE_URL`), a template
//! database migrated once, and a fresh database plus a real HTTP server per test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use mycrm::app::App;
use mycrm::config::{BootstrapConfig, Config};
use mycrm::db::embedded::EmbeddedPostgres;
use mycrm::db::{self, quote_ident};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The PostgreSQL server all tests of this binary share.
type UrlFor = Box<dyn Fn(&str) -> String + Send + Sync>;

struct Cluster {
    /// URL of a database by name.
    url_for: UrlFor,
    template: String,
    _embedded: std::sync::Mutex<Option<EmbeddedPostgres>>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        // Start-up runs in its own thread and runtime: the caller's test runtime ends with its
        // test, and migrations need a multi-thread runtime.
        std::thread::spawn(start_cluster)
            .join()
            .expect("starting the test PostgreSQL")
    })
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (server, _) = base.rsplit_once('/').expect("DATABASE URL has a path");
    format!("{server}/{database}{query}")
}

/// Removes data dirs of earlier test runs whose process is gone (a crashed or killed run).
fn clean_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(pid) = name
            .strip_prefix("mycrm-test-")
            .and_then(|p| p.parse::<u32>().ok())
        {
            if !PathBuf::from(format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn start_cluster() -> Cluster {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pid = std::process::id();
    let (url_for, template, embedded): (UrlFor, String, _) =
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => (
                Box::new(move |db: &str| replace_database(&url, db)),
                format!("mycrm_template_{pid}"),
                None,
            ),
            Err(_) => {
                clean_leftovers();
                let dir = std::env::temp_dir().join(format!("mycrm-test-{pid}"));
                let pg = EmbeddedPostgres::start(&dir).expect("embedded PostgreSQL for tests");
                let base = pg.url("postgres");
                (
                    Box::new(move |db: &str| replace_database(&base, db)),
                    "mycrm_template".to_string(),
                    Some(pg),
                )
            }
        };
    let template_url = url_for(&template);
    let server_url = url_for("postgres");
    runtime.block_on(async {
        db::create_database_if_missing(&server_url, &template)
            .await
            .expect("creating the template database");
        db::migrations::run_pending(&template_url)
            .await
            .expect("migrating the template database");
    });
    Cluster {
        url_for,
        template,
        _embedded: std::sync::Mutex::new(embedded),
    }
}

/// A fresh, migrated database for one test; returns its URL.
pub async fn fresh_database() -> String {
    let cluster = cluster();
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(&(cluster.url_for)("postgres"))
        .await
        .expect("connecting to the test server");
    diesel::sql_query(format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quote_ident(&name),
        quote_ident(&cluster.template)
    ))
    .execute(&mut conn)
    .await
    .expect("creating a test database");
    (cluster.url_for)(&name)
}

pub fn test_config() -> Config {
    let dir = std::env::temp_dir().join(format!("mycrm-test-{}", std::process::id()));
    let mut config = Config::new(dir);
    config.database.pool_size = 4;
    config.auth.jwt_secret = Some(JWT_SECRET.into());
    config.http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.bootstrap = BootstrapConfig {
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
    };
    config
}

/// A running server on its own database, with the first admin bootstrapped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub client: reqwest::Client,
    /// The test's database (for processes and listeners of its own).
    pub database_url: String,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customize: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        customize(&mut config);
        let url = fresh_database().await;
        let app = mycrm::server::build_app(&config, &url).expect("building the app");
        mycrm::auth::bootstrap::ensure_first_admin(&app.db, &config.bootstrap)
            .await
            .expect("bootstrapping the admin");
        Self::serve(app, url).await
    }

    /// A server whose pool counts every SQL statement it runs.
    pub async fn spawn_counting() -> (Self, mycrm::db::StatementCounter) {
        let config = test_config();
        let url = fresh_database().await;
        let counter = mycrm::db::StatementCounter::default();
        let pool =
            mycrm::db::build_pool_counted(&url, config.database.pool_size, Some(counter.clone()))
                .expect("building the pool");
        let app = mycrm::app::App::new(config.clone(), pool, &url, JWT_SECRET.as_bytes());
        mycrm::auth::bootstrap::ensure_first_admin(&app.db, &config.bootstrap)
            .await
            .expect("bootstrapping the admin");
        (Self::serve(app, url).await, counter)
    }

    /// Serves an already built app (for tests that need an unusual one).
    pub async fn serve(app: Arc<App>, database_url: String) -> Self {
        let listener = tokio::net::TcpListener::bind(app.config.http.bind)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let state = mycrm::http::AppState::new(app.clone(), shutdown.clone());
        let router = mycrm::http::router(state).expect("building the router");
        tokio::spawn(mycrm::http::serve(listener, router, shutdown.clone()));
        TestApp {
            addr,
            app,
            client: reqwest::Client::new(),
            database_url,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// A GraphQL request, optionally with a bearer token; returns the JSON answer.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        response.json().await.expect("JSON answer")
    }

    /// Logs in; returns the `login` payload or panics with the errors.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let answer = self.try_login(email, password).await;
        assert!(answer["errors"].is_null(), "login failed: {answer}");
        answer["data"]["login"].clone()
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id email role } } }",
            json!({ "e": email, "p": password }),
        )
        .await
    }

    pub async fn admin_token(&self) -> String {
        token_of(&self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await)
    }

    /// Creates a user as the admin; returns (id, access token).
    pub async fn user_with_role(&self, email: &str, role: &str) -> (String, String) {
        let admin = self.admin_token().await;
        let created = self
            .gql(
                Some(&admin),
                "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
                json!({ "i": { "email": email, "name": "Test User", "role": role, "password": "user-password-1" } }),
            )
            .await;
        assert!(created["errors"].is_null(), "createUser failed: {created}");
        let id = created["data"]["createUser"]["user"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let token = token_of(&self.login(email, "user-password-1").await);
        (id, token)
    }

    /// A second workspace with its admin, made the way an operator does (`mycrm demo`), and
    /// that admin's login payload (`accessToken`, `user { id email role }`). Tests of other
    /// tenants use it; `signUp` itself (a confirmation by email) is tested in `auth`.
    pub async fn other_workspace(&self, workspace: &str, email: &str, password: &str) -> Value {
        self.app
            .auth
            .create_workspace(mycrm::auth::SignUp {
                workspace_name: workspace.into(),
                name: "Other Admin".into(),
                email: email.into(),
                password: password.into(),
            })
            .await
            .expect("creating another workspace");
        self.login(email, password).await
    }

    /// Runs SQL scalars for "nothing was written" checks.
    pub async fn count(&self, table: &str) -> i64 {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.app.db.get().await.unwrap();
        let row: Count =
            diesel::sql_query(format!("SELECT count(*) AS n FROM {}", quote_ident(table)))
                .get_result(&mut conn)
                .await
                .unwrap();
        row.n
    }

    /// Creates a lead through GraphQL; returns its ID.
    pub async fn create_lead(&self, token: &str, input: Value) -> String {
        let answer = self
            .gql(
                Some(token),
                "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
                json!({ "i": input }),
            )
            .await;
        answer["data"]["createLead"]["lead"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_string()
    }

    /// Creates a task through the API; its ID.
    pub async fn create_task(&self, token: &str, input: Value) -> String {
        let answer = self
            .gql(
                Some(token),
                "mutation($i: TaskInput!) { createTask(input: $i) { task { id } } }",
                json!({ "i": input }),
            )
            .await;
        answer["data"]["createTask"]["task"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_string()
    }

    /// One string field of every node of a list (`data.<list>.nodes[].<key>`), in order.
    pub async fn node_strings(
        &self,
        token: &str,
        query: &str,
        variables: Value,
        list: &str,
        key: &str,
    ) -> Vec<String> {
        let answer = self.gql(Some(token), query, variables).await;
        answer["data"][list]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {answer}"))
            .iter()
            .map(|n| n[key].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The rows of a query as JSON objects (for checks the API does not show directly).
    pub async fn rows(&self, sql: &str) -> Value {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Rows {
            #[diesel(sql_type = diesel::sql_types::Jsonb)]
            rows: Value,
        }
        let mut conn = self.app.db.get().await.unwrap();
        let row: Rows = diesel::sql_query(format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]') AS rows FROM ({sql}) t"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        row.rows
    }

    /// Runs a statement directly (to set up or age data faster than the API can); the number
    /// of rows it touched.
    pub async fn execute(&self, sql: &str) -> usize {
        let mut conn = self.app.db.get().await.unwrap();
        diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn)
            .await
            .unwrap()
    }
}

pub fn token_of(payload: &Value) -> String {
    payload["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string()
}

/// The code of the first error of a GraphQL answer.
pub fn error_code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {answer}"))
}

pub fn error_field(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a field, got {answer}"))
}
