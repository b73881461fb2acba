//! `mycrm serve`: database (embedded or given), migrations, first-start bootstrap, workers,
//! the HTTP server, and an orderly stop on Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::auth::{bootstrap, passwords, secret};
use crate::config::Config;
use crate::db::{self, migrations, Database};
use crate::error::AppError;
use crate::{http, workers};

/// How long in-flight requests may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Opens the database, runs `work` with it and always stops an embedded cluster afterwards.
pub async fn with_database<F, Fut, T>(config: &Config, work: F) -> anyhow::Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let database = Database::open(&config.database, &config.data_dir).await?;
    let outcome = match migrations::run_pending(&database.url).await {
        Ok(_) => work(database.url.clone()).await,
        Err(err) => Err(err),
    };
    let stopped = database.shutdown().await;
    let value = outcome?;
    stopped?;
    Ok(value)
}

/// Builds the app for a migrated database: pool, signing secret, services.
pub fn build_app(config: &Config, database_url: &str) -> anyhow::Result<Arc<App>> {
    let pool = db::build_pool(
        &db::with_statement_timeout(database_url, config.database.statement_timeout),
        config.database.pool_size,
    )?;
    let secret = secret::load_or_create(config.auth.jwt_secret.as_deref(), &config.data_dir)?;
    Ok(App::new(config.clone(), pool, database_url, &secret))
}

/// Turns an AppError from start-up work into a message that names the setting at fault.
pub fn startup_error(err: AppError) -> anyhow::Error {
    match err.field() {
        Some(field) => anyhow::anyhow!("{field}: {err}"),
        None => anyhow::Error::new(err),
    }
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    with_database(&config.clone(), |url| async move {
        let app = build_app(&config, &url)?;
        passwords::warm_up().await.map_err(startup_error)?;
        if let Some(admin) = bootstrap::ensure_first_admin(&app.db, &config.bootstrap)
            .await
            .map_err(startup_error)?
        {
            announce_first_admin(&admin);
        }
        let shutdown = CancellationToken::new();
        let router = http::router(http::AppState::new(app.clone(), shutdown.clone()))?;
        let listener =
            bind(config.http.bind).with_context(|| format!("binding {}", config.http.bind))?;
        let addr = listener.local_addr()?;
        cancel_on_signal(shutdown.clone())?;
        let workers = config
            .run_workers
            .then(|| workers::spawn(app.clone(), url.clone(), shutdown.clone()));
        println!("mycrm listening on http://{addr} (GraphiQL: http://{addr}/graphql)");
        tracing::info!(%addr, "listening");

        let server = http::serve(listener, router, shutdown.clone());
        tokio::pin!(server);
        let served = tokio::select! {
            result = &mut server => result,
            _ = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
                Ok(())
            }
        };
        shutdown.cancel();
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        app.db.close();
        tracing::info!("HTTP server stopped");
        served.context("serving HTTP")
    })
    .await
}

/// Listens on `addr` with a long accept queue: many WebSocket clients reconnecting at once
/// (after a deploy) would overflow the default 128 and wait a second each for a retry.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// `mycrm worker`: job workers (and the purge) only, until Ctrl-C or SIGTERM; running jobs get
/// their grace period.
pub async fn work(config: Config) -> anyhow::Result<()> {
    with_database(&config.clone(), |url| async move {
        let app = build_app(&config, &url)?;
        let shutdown = CancellationToken::new();
        cancel_on_signal(shutdown.clone())?;
        println!(
            "mycrm worker running queues {} with concurrency {}",
            config.jobs.queues.join(","),
            config.jobs.concurrency
        );
        workers::spawn(app.clone(), url.clone(), shutdown).await?;
        app.db.close();
        Ok(())
    })
    .await
}

fn announce_first_admin(admin: &bootstrap::BootstrappedAdmin) {
    match &admin.generated_password {
        Some(password) => println!(
            "\nFirst start: created workspace \"{}\" and admin {} with password\n\n    {password}\n\n\
             It is shown only this once. Log in and change it (changePassword), or set \
             MYCRM_ADMIN_EMAIL and MYCRM_ADMIN_PASSWORD before the first start.\n",
            bootstrap::DEFAULT_WORKSPACE_NAME,
            admin.email
        ),
        None => println!(
            "First start: created workspace \"{}\" and admin {} (password from MYCRM_ADMIN_PASSWORD)",
            bootstrap::DEFAULT_WORKSPACE_NAME,
            admin.email
        ),
    }
}

/// Installs the SIGINT/SIGTERM handlers at once (before the server announces itself, so an
/// early signal is never fatal) and cancels `shutdown` when one arrives.
fn cancel_on_signal(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = shutdown.cancelled() => return,
        }
        tracing::info!("stop signal received; shutting down");
        shutdown.cancel();
    });
    Ok(())
}
