//! Runtime configuration as plain structs. `cli` fills them from flags and environment
//! variables; tests build them directly with [`Config::for_tests`]-style overrides.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the database is: a URL given by the operator, or the private cluster under the data dir.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`. When `None`, an embedded cluster is started in `<data_dir>/postgres`.
    pub url: Option<String>,
    /// Connections kept by the pool of one process.
    pub pool_size: usize,
    /// PostgreSQL's `statement_timeout` for the statements of requests (jobs and streams set
    /// their own). Zero: none.
    pub statement_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// HS256 signing secret. `None` means "use the one generated in the data dir".
    pub jwt_secret: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Whether `signUp` may create new workspaces (off by default: a self-hosted install's
    /// admins invite their users).
    pub allow_sign_up: bool,
    /// Failed logins on one account from one client address within `login_failure_window`
    /// before that address may not try the account again (`auth::rate_limit`).
    pub max_login_failures_per_account: u32,
    /// Failed logins on one account from all addresses within the window, past which only
    /// addresses that have not failed on it may try.
    pub max_login_failures_per_account_total: u32,
    /// Failed logins from one client address within `login_failure_window`.
    pub max_login_failures_per_ip: u32,
    pub login_failure_window: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            access_token_ttl: Duration::from_secs(30 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            allow_sign_up: false,
            max_login_failures_per_account: 5,
            max_login_failures_per_account_total: 100,
            max_login_failures_per_ip: 50,
            login_failure_window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    /// Largest request body accepted on the GraphQL and REST routes.
    pub body_limit_bytes: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// Browser origins (`https://app.example.com`) allowed to call the API cross-origin;
    /// `*` allows any. Empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Longest a GraphQL request or REST call may run before it is answered TIMEOUT (streams
    /// such as CSV exports and WebSocket subscriptions are not bounded by it).
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            body_limit_bytes: 1024 * 1024,
            trust_forwarded_for: false,
            cors_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Bounds on one GraphQL operation, checked before it runs (`graphql::screen`). README's
/// "Limits" section lists them with the fixed bounds.
#[derive(Clone, Debug)]
pub struct GraphqlLimits {
    /// Deepest field nesting (introspection not counted).
    pub max_depth: usize,
    /// async-graphql's complexity score (a list field costs its page size × its selection).
    pub max_complexity: usize,
    /// Fields selected once fragments are expanded.
    pub max_selections: usize,
    /// Fields with an alias, once fragments are expanded.
    pub max_aliases: usize,
    /// Fields that read lists or statistics (every top-level query field, every connection and
    /// every nested list of records).
    pub max_reads: usize,
    /// Top-level fields of a mutation (each one writes).
    pub max_root_mutations: usize,
}

impl Default for GraphqlLimits {
    fn default() -> Self {
        GraphqlLimits {
            max_depth: 12,
            max_complexity: 20_000,
            max_selections: 2_000,
            max_aliases: 100,
            max_reads: 30,
            max_root_mutations: 20,
        }
    }
}

/// First-start bootstrap: the workspace and admin created when the database has no user.
#[derive(Clone, Debug, Default)]
pub struct BootstrapConfig {
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
}

/// CSV imports.
#[derive(Clone, Debug)]
pub struct ImportConfig {
    /// Largest upload accepted (HTTP 413 above).
    pub max_upload_bytes: u64,
    /// Files with more lines than this run as a background job; smaller ones answer when done.
    pub inline_rows: u64,
    /// CSV exports that may run at once; each holds a database connection outside the pool
    /// for as long as its client reads (RATE_LIMITED past it).
    pub max_concurrent_exports: usize,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            max_upload_bytes: 100 * 1024 * 1024,
            inline_rows: 2000,
            max_concurrent_exports: 4,
        }
    }
}

/// Workflow automation.
#[derive(Clone, Debug)]
pub struct WorkflowConfig {
    /// How many workflow runs may lead to one another through their own changes before the
    /// engine stops the chain (the loop guard).
    pub max_depth: i32,
    /// Runs a workspace may start per minute; events past it start none (each is logged).
    pub runs_per_minute: i64,
    /// Let webhooks call loopback, private and link-local addresses (tests, local setups).
    pub allow_private_webhooks: bool,
    pub webhook_timeout: std::time::Duration,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            max_depth: 3,
            runs_per_minute: 600,
            allow_private_webhooks: false,
            webhook_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// An HTTP gateway notifications are POSTed to (push relay, SMS provider).
#[derive(Clone)]
pub struct Gateway {
    pub url: String,
    /// `Authorization: Bearer <token>`; never logged.
    pub token: Option<String>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Notification channels outside the app (mail is `Config::mail`).
#[derive(Clone, Debug, Default)]
pub struct NotificationConfig {
    pub push: Option<Gateway>,
    pub sms: Option<Gateway>,
}

/// Live subscriptions (`notificationReceived`, `recordChanged`) of one server process.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Events waiting for one subscriber.
    pub subscriber_buffer: usize,
    /// How long the fan-out waits for room in a full buffer before it drops the subscriber
    /// (its socket closed with 1008), so a slow one holds the others back at most this long.
    pub stall_limit: Duration,
    /// Live subscriptions one WebSocket connection may hold at once.
    pub max_subscriptions_per_connection: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            subscriber_buffer: 256,
            stall_limit: Duration::from_secs(1),
            max_subscriptions_per_connection: 20,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub graphql: GraphqlLimits,
    pub bootstrap: BootstrapConfig,
    /// Run the in-process background workers (`--no-workers` turns them off).
    pub run_workers: bool,
    /// How job workers of this process run (`mycrm worker`, or in-process in `serve`).
    pub jobs: crate::jobs::worker::WorkerConfig,
    pub imports: ImportConfig,
    pub mail: crate::mail::MailConfig,
    pub workflows: WorkflowConfig,
    pub notifications: NotificationConfig,
    pub live: LiveConfig,
}

impl Config {
    /// Defaults for everything; used by the CLI as a base and by tests.
    pub fn new(data_dir: PathBuf) -> Self {
        Config {
            data_dir: data_dir.clone(),
            database: DatabaseConfig {
                url: None,
                pool_size: 16,
                statement_timeout: Duration::from_secs(20),
            },
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            graphql: GraphqlLimits::default(),
            bootstrap: BootstrapConfig::default(),
            run_workers: true,
            jobs: crate::jobs::worker::WorkerConfig::default(),
            imports: ImportConfig::default(),
            mail: crate::mail::MailConfig::new(&data_dir),
            workflows: WorkflowConfig::default(),
            notifications: NotificationConfig::default(),
            live: LiveConfig::default(),
        }
    }
}
