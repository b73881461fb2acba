//! The `mycrm` command line. Every option has an environment variable (12-factor); secrets are
//! never echoed (`hide_env_values`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::auth::{CreateUser, Role};
use crate::config::{AuthConfig, BootstrapConfig, Config, GraphqlLimits, HttpConfig};
use crate::demo::{DemoOptions, DemoSize};
use crate::server::{self, build_app, startup_error, with_database};
use crate::telemetry::{self, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "mycrm",
    version,
    about = "MyCRM: a self-hostable CRM backend (GraphQL over PostgreSQL)"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of `serve`, the default command.
    #[command(flatten)]
    serve: ServeArgs,
}

// Parsed once at start-up: the size of the largest variant (the server's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (the default): GraphQL, subscriptions, GraphiQL, REST, workers.
    Serve(ServeArgs),
    /// Run background job workers only (scale out: more `worker` processes on one database;
    /// give them the same DATABASE_URL as the servers).
    Worker(WorkerArgs),
    /// Apply pending database migrations and exit.
    Migrate(StoreArgs),
    /// Print the GraphQL schema (SDL) to stdout.
    ExportSchema,
    /// Load a demo workspace (3 users, companies, contacts, leads, opportunities, tasks,
    /// activities) into the database. The users' password comes from MYCRM_PASSWORD or is
    /// generated and printed.
    Demo(DemoArgs),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user. The password comes from MYCRM_PASSWORD or is asked for.
    Create(UserCreateArgs),
}

/// Where the data lives.
#[derive(Args, Debug, Clone)]
struct StoreArgs {
    /// Directory for the embedded PostgreSQL cluster and generated secrets.
    #[arg(long, env = "MYCRM_DATA_DIR", default_value = "./var")]
    data_dir: PathBuf,
    /// Use this PostgreSQL database instead of the embedded one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Database connections per process.
    #[arg(long, env = "MYCRM_DB_POOL_SIZE", default_value_t = 16)]
    db_pool_size: usize,
    /// Log format on stderr.
    #[arg(long, env = "MYCRM_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// How job workers run (in `serve` and `worker`).
#[derive(Args, Debug, Clone)]
struct JobArgs {
    /// Jobs a process runs at once.
    #[arg(long, env = "MYCRM_WORKER_CONCURRENCY", default_value_t = 4)]
    concurrency: usize,
    /// Queues to take jobs from, comma-separated.
    #[arg(
        long,
        env = "MYCRM_WORKER_QUEUES",
        value_delimiter = ',',
        default_value = "default"
    )]
    queues: Vec<String>,
    /// Seconds a running job stays claimed without a heartbeat: the jobs of a worker that
    /// dies run again elsewhere within about this long plus a quarter.
    #[arg(long, env = "MYCRM_JOB_LEASE_SECONDS", default_value_t = 20)]
    lease_seconds: u64,
    /// Days finished jobs stay visible in the job API before the hourly purge deletes them.
    #[arg(long, env = "MYCRM_JOB_HISTORY_DAYS", default_value_t = 14)]
    job_history_days: u64,
    /// Largest CSV upload accepted, in MB (HTTP 413 above).
    #[arg(long, env = "MYCRM_IMPORT_MAX_MB", default_value_t = 100)]
    import_max_mb: u64,
    /// CSV files with more lines than this import in the background (the answer carries the
    /// job ID); smaller ones answer when done.
    #[arg(long, env = "MYCRM_IMPORT_INLINE_ROWS", default_value_t = 2000)]
    import_inline_rows: u64,
    /// Where mail goes: `smtps://user:pass@host`, `smtp://host:587?tls=required`, or
    /// `smtp://host:port` for an unencrypted local relay. Unset: `.eml` files in
    /// `<data dir>/mail`.
    #[arg(long, env = "MYCRM_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of outgoing mail.
    #[arg(
        long,
        env = "MYCRM_MAIL_FROM",
        default_value = "MyCRM <no-reply@mycrm.localhost>"
    )]
    mail_from: String,
    /// Let workflow webhooks call loopback, private and link-local addresses (refused by
    /// default: they reach this machine's and this network's internal services).
    #[arg(long, env = "MYCRM_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
    /// Workflow runs a workspace may start per minute.
    #[arg(long, env = "MYCRM_WORKFLOW_RUNS_PER_MINUTE", default_value_t = 600)]
    workflow_runs_per_minute: i64,
    /// The push gateway notifications are POSTed to as JSON (a Web Push relay, say); unset:
    /// no push channel.
    #[arg(long, env = "MYCRM_PUSH_URL")]
    push_url: Option<String>,
    /// Sent to the push gateway as `Authorization: Bearer <token>`.
    #[arg(long, env = "MYCRM_PUSH_TOKEN", hide_env_values = true)]
    push_token: Option<String>,
    /// The SMS provider's HTTP API notifications are POSTed to as JSON; unset: no sms channel.
    #[arg(long, env = "MYCRM_SMS_URL")]
    sms_url: Option<String>,
    /// Sent to the SMS gateway as `Authorization: Bearer <token>`.
    #[arg(long, env = "MYCRM_SMS_TOKEN", hide_env_values = true)]
    sms_token: Option<String>,
}

impl JobArgs {
    fn apply(&self, config: &mut Config) {
        config.jobs.concurrency = self.concurrency.clamp(1, 1024);
        config.jobs.set_lease(std::time::Duration::from_secs(
            self.lease_seconds.clamp(2, 3600),
        ));
        config.imports.max_upload_bytes = self.import_max_mb.clamp(1, 100_000) * 1024 * 1024;
        config.imports.inline_rows = self.import_inline_rows;
        config.mail.smtp_url = self.smtp_url.clone().filter(|u| !u.trim().is_empty());
        config.mail.from = self.mail_from.clone();
        config.workflows.allow_private_webhooks = self.webhooks_allow_private;
        config.workflows.runs_per_minute = self.workflow_runs_per_minute.max(1);
        let gateway = |url: &Option<String>, token: &Option<String>| {
            url.clone()
                .filter(|u| !u.trim().is_empty())
                .map(|url| crate::config::Gateway {
                    url,
                    token: token.clone().filter(|t| !t.is_empty()),
                })
        };
        config.notifications.push = gateway(&self.push_url, &self.push_token);
        config.notifications.sms = gateway(&self.sms_url, &self.sms_token);
        config.jobs.history_retention =
            std::time::Duration::from_secs(self.job_history_days.clamp(1, 3650) * 24 * 3600);
        let queues: Vec<String> = self
            .queues
            .iter()
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty())
            .collect();
        if !queues.is_empty() {
            config.jobs.queues = queues;
        }
    }
}

#[derive(Args, Debug)]
struct WorkerArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    jobs: JobArgs,
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    jobs: JobArgs,
    /// Address to listen on.
    #[arg(long, env = "MYCRM_BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Do not run background workers in this process.
    #[arg(long)]
    no_workers: bool,
    /// HS256 signing secret for access tokens (at least 32 bytes). Default: generated once and
    /// kept in the data dir. Set the same value on every server of a cluster.
    #[arg(long, env = "MYCRM_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long, env = "MYCRM_ACCESS_TOKEN_TTL_SECS", default_value_t = 1800)]
    access_token_ttl_secs: u64,
    /// Refresh token lifetime in days.
    #[arg(long, env = "MYCRM_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30)]
    refresh_token_ttl_days: u64,
    /// Whether `signUp` may create new workspaces (off: admins invite their users).
    #[arg(long, env = "MYCRM_ALLOW_SIGN_UP", default_value_t = false, action = ArgAction::Set)]
    allow_sign_up: bool,
    /// Failed logins on one account from one address within the window, before that address
    /// may not try the account again (other addresses are not affected).
    #[arg(long, env = "MYCRM_LOGIN_MAX_FAILURES", default_value_t = 5)]
    login_max_failures: u32,
    /// Failed logins on one account from all addresses within the window, past which only
    /// addresses that have not failed on it may try.
    #[arg(long, env = "MYCRM_LOGIN_MAX_ACCOUNT_FAILURES", default_value_t = 100)]
    login_max_account_failures: u32,
    /// Failed logins per client address within the window.
    #[arg(long, env = "MYCRM_LOGIN_MAX_FAILURES_PER_IP", default_value_t = 50)]
    login_max_failures_per_ip: u32,
    /// The failed-login window in seconds.
    #[arg(long, env = "MYCRM_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900)]
    login_failure_window_secs: u64,
    /// Largest request body in bytes (GraphQL, REST, WebSocket messages).
    #[arg(long, env = "MYCRM_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    body_limit_bytes: usize,
    /// Trust X-Forwarded-For for the client address (only behind your own reverse proxy).
    #[arg(long, env = "MYCRM_TRUST_FORWARDED_FOR", default_value_t = false, action = ArgAction::Set)]
    trust_forwarded_for: bool,
    /// Browser origins allowed to call the API from another site, comma-separated
    /// (`https://app.example.com`), or `*` for any. Default: same origin only.
    #[arg(long, env = "MYCRM_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Deepest field nesting a GraphQL query may have (introspection not counted).
    #[arg(long, env = "MYCRM_MAX_QUERY_DEPTH", default_value_t = 12)]
    max_query_depth: usize,
    /// Highest complexity score a GraphQL query may have.
    #[arg(long, env = "MYCRM_MAX_QUERY_COMPLEXITY", default_value_t = 20_000)]
    max_query_complexity: usize,
    /// Most fields one GraphQL operation may select once its fragments are expanded.
    #[arg(long, env = "MYCRM_MAX_QUERY_SELECTIONS", default_value_t = 2_000)]
    max_query_selections: usize,
    /// Most aliased fields in one GraphQL operation.
    #[arg(long, env = "MYCRM_MAX_QUERY_ALIASES", default_value_t = 100)]
    max_query_aliases: usize,
    /// Most fields reading lists or statistics in one GraphQL operation.
    #[arg(long, env = "MYCRM_MAX_QUERY_READS", default_value_t = 30)]
    max_query_reads: usize,
    /// Most top-level mutation fields in one GraphQL operation.
    #[arg(long, env = "MYCRM_MAX_ROOT_MUTATIONS", default_value_t = 20)]
    max_root_mutations: usize,
    /// Seconds a GraphQL request may run before it is answered TIMEOUT.
    #[arg(long, env = "MYCRM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// PostgreSQL statement_timeout for the server's statements, in seconds (0: none).
    #[arg(long, env = "MYCRM_STATEMENT_TIMEOUT_SECS", default_value_t = 20)]
    statement_timeout_secs: u64,
    /// Email of the admin created on first start.
    #[arg(long, env = "MYCRM_ADMIN_EMAIL")]
    admin_email: Option<String>,
    /// Password of the admin created on first start (generated and printed once when unset).
    #[arg(long, env = "MYCRM_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
}

#[derive(Args, Debug)]
struct UserCreateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Login email.
    #[arg(long)]
    email: String,
    /// admin, manager or member.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// Display name (default: the part of the email before @).
    #[arg(long)]
    name: Option<String>,
    /// Workspace ID or name (default: the only workspace).
    #[arg(long)]
    workspace: Option<String>,
}

#[derive(Args, Debug)]
struct DemoArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Name of the new workspace (it must not exist yet).
    #[arg(long, default_value = "Demo Sales")]
    workspace_name: String,
    /// The users are ada@ (admin), max@ (manager) and mia@ (member) this domain.
    #[arg(long, default_value = "demo.mycrm.example")]
    email_domain: String,
    #[arg(long, default_value_t = DemoSize::default().companies)]
    companies: i64,
    #[arg(long, default_value_t = DemoSize::default().contacts)]
    contacts: i64,
    #[arg(long, default_value_t = DemoSize::default().leads)]
    leads: i64,
    #[arg(long, default_value_t = DemoSize::default().opportunities)]
    opportunities: i64,
    #[arg(long, default_value_t = DemoSize::default().tasks)]
    tasks: i64,
    #[arg(long, default_value_t = DemoSize::default().activities)]
    activities: i64,
    /// Qualified leads to convert (creating contacts, companies and opportunities).
    #[arg(long, default_value_t = DemoSize::default().conversions)]
    conversions: i64,
}

/// Stack of each runtime thread. Requests are parsed, validated and executed on these, and
/// async-graphql recurses over nested input values; `graphql::screen` bounds that nesting
/// (`MAX_INPUT_NESTING`), and this leaves ample headroom above it (about 25 KB a level in a
/// release build). Only pages actually touched are committed, so it costs address space.
pub const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(&text.to_lowercase()).ok_or_else(|| "expected admin, manager or member".to_string())
}

impl StoreArgs {
    fn config(&self) -> Config {
        let mut config = Config::new(self.data_dir.clone());
        config.database.url = self.database_url.clone().filter(|u| !u.trim().is_empty());
        config.database.pool_size = self.db_pool_size.max(1);
        config
    }
}

impl ServeArgs {
    fn config(&self) -> Config {
        let mut config = self.store.config();
        config.run_workers = !self.no_workers;
        self.jobs.apply(&mut config);
        config.auth = AuthConfig {
            jwt_secret: self.jwt_secret.clone().filter(|s| !s.is_empty()),
            access_token_ttl: Duration::from_secs(self.access_token_ttl_secs.max(1)),
            refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl_days.max(1) * 24 * 3600),
            allow_sign_up: self.allow_sign_up,
            max_login_failures_per_account: self.login_max_failures.max(1),
            max_login_failures_per_account_total: self.login_max_account_failures.max(1),
            max_login_failures_per_ip: self.login_max_failures_per_ip.max(1),
            login_failure_window: Duration::from_secs(self.login_failure_window_secs.max(1)),
        };
        config.http = HttpConfig {
            bind: self.bind,
            body_limit_bytes: self.body_limit_bytes.max(1024),
            trust_forwarded_for: self.trust_forwarded_for,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
        };
        config.graphql = GraphqlLimits {
            max_depth: self.max_query_depth.max(1),
            max_complexity: self.max_query_complexity.max(1),
            max_selections: self.max_query_selections.max(1),
            max_aliases: self.max_query_aliases,
            max_reads: self.max_query_reads.max(1),
            max_root_mutations: self.max_root_mutations.max(1),
        };
        config.database.statement_timeout = Duration::from_secs(self.statement_timeout_secs);
        config.bootstrap = BootstrapConfig {
            admin_email: self.admin_email.clone().filter(|e| !e.trim().is_empty()),
            admin_password: self.admin_password.clone().filter(|p| !p.is_empty()),
        };
        config
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Some(Command::Serve(args)) => args.store.log_format,
        Some(Command::Migrate(store)) => store.log_format,
        Some(Command::Demo(args)) => args.store.log_format,
        Some(Command::Worker(args)) => args.store.log_format,
        Some(Command::User {
            command: UserCommand::Create(args),
        }) => args.store.log_format,
        Some(Command::ExportSchema) => LogFormat::Text,
        None => cli.serve.store.log_format,
    };
    telemetry::init(log_format);
    if let Some(Command::ExportSchema) = cli.command {
        print!("{}", crate::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => server::serve(cli.serve.config()).await,
        Some(Command::Serve(args)) => server::serve(args.config()).await,
        Some(Command::Migrate(store)) => {
            with_database(&store.config(), |_| async {
                println!("migrations are up to date");
                Ok(())
            })
            .await
        }
        Some(Command::Demo(args)) => load_demo(args).await,
        Some(Command::Worker(args)) => {
            let mut config = args.store.config();
            args.jobs.apply(&mut config);
            server::work(config).await
        }
        Some(Command::User {
            command: UserCommand::Create(args),
        }) => create_user(args).await,
        Some(Command::ExportSchema) => Ok(()),
    }
}

async fn create_user(args: UserCreateArgs) -> anyhow::Result<()> {
    let password = read_password()?;
    let config = args.store.config();
    with_database(&config.clone(), |url| async move {
        let app = build_app(&config, &url)?;
        let workspace = app
            .auth
            .find_workspace(args.workspace.as_deref())
            .await
            .map_err(startup_error)?;
        let name = args
            .name
            .clone()
            .unwrap_or_else(|| args.email.split('@').next().unwrap_or("").to_string());
        let user = app
            .auth
            .create_user_in(
                workspace.id,
                CreateUser {
                    email: args.email.clone(),
                    name,
                    role: args.role,
                    password,
                },
            )
            .await
            .map_err(startup_error)?;
        println!(
            "created {} user {} (id {}) in workspace \"{}\"",
            user.role, user.email, user.id, workspace.name
        );
        app.db.close();
        Ok(())
    })
    .await
}

async fn load_demo(args: DemoArgs) -> anyhow::Result<()> {
    let size = DemoSize {
        companies: args.companies.max(0),
        contacts: args.contacts.max(0),
        leads: args.leads.max(0),
        opportunities: args.opportunities.max(0),
        tasks: args.tasks.max(0),
        activities: args.activities.max(0),
        conversions: args.conversions.max(0),
    };
    let (password, generated) = match std::env::var("MYCRM_PASSWORD") {
        Ok(password) if !password.is_empty() => (password, false),
        _ => (crate::auth::passwords::generate(), true),
    };
    let options = DemoOptions {
        workspace_name: args.workspace_name.clone(),
        email_domain: args.email_domain.clone(),
        password: password.clone(),
        size,
    };
    let config = args.store.config();
    with_database(&config.clone(), |url| async move {
        let app = build_app(&config, &url)?;
        let started = std::time::Instant::now();
        let demo = crate::demo::load(&app, &options, |step, done, total| {
            eprintln!("demo: {step} {done}/{total}");
        })
        .await
        .map_err(startup_error)?;
        println!(
            "loaded demo workspace \"{}\" in {:.1} s ({} leads converted)",
            options.workspace_name,
            started.elapsed().as_secs_f64(),
            demo.converted
        );
        for user in &demo.users {
            println!("  {:<8} {}", user.role.to_string(), user.email);
        }
        if generated {
            println!("  password (all three): {password}");
        } else {
            println!("  password: the one in MYCRM_PASSWORD");
        }
        app.db.close();
        Ok(())
    })
    .await
}

/// MYCRM_PASSWORD, or asked twice on the terminal.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("MYCRM_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!("set MYCRM_PASSWORD (no terminal to ask for the password on)");
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let second = rpassword::prompt_password("Repeat password: ").context("reading the password")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}
