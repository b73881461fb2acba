//! Database access: the connection pool, the embedded cluster, migrations and the generated
//! diesel schema. Domains get a [`DbPool`] and write their own queries against `schema`.

pub mod copy;
pub mod embedded;
pub mod listen;
pub mod migrations;
pub mod schema;
pub mod types;

use anyhow::Context;
use diesel::connection::InstrumentationEvent;
use diesel::sql_types::{Bool, Text};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::config::DatabaseConfig;
use embedded::EmbeddedPostgres;

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

/// Name of the application database inside the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "mycrm";

/// How long a request waits for a free connection (or for a new one) before failing, instead
/// of queueing forever when the database is slow or gone.
const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn build_pool(url: &str, max_size: usize) -> anyhow::Result<DbPool> {
    build_pool_counted(url, max_size, None)
}

/// Counts the SQL statements a pool's connections run (tests prove "no N+1" with it; a
/// metrics endpoint can read it).
#[derive(Clone, Default, Debug)]
pub struct StatementCounter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        std::sync::atomic::AtomicU64::load(&self.0, std::sync::atomic::Ordering::Relaxed)
    }
}

/// A pool whose connections report every statement to `counter` (when given).
pub fn build_pool_counted(
    url: &str,
    max_size: usize,
    counter: Option<StatementCounter>,
) -> anyhow::Result<DbPool> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // No `SELECT 1` on every checkout: a request checks out a connection several times (auth,
    // page, each relation), and the ping doubled its round trips. A connection that died (a
    // database restart) fails the one statement that finds out and is then discarded.
    config.recycling_method = RecyclingMethod::Fast;
    if let Some(counter) = counter {
        config.custom_setup = Box::new(move |url| {
            let counter = counter.clone();
            let url = url.to_string();
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                    if let InstrumentationEvent::StartQuery { .. } = event {
                        counter.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
                Ok(conn)
            })
        });
    }
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// `url` with PostgreSQL's `statement_timeout` set for every connection made from it (as a
/// connection option: no extra round trip). Work that may legitimately run longer (the demo
/// generator) lifts it for its own connection; CSV exports stream on connections of their own.
pub fn with_statement_timeout(url: &str, timeout: std::time::Duration) -> String {
    if timeout.is_zero() {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}options=-c%20statement_timeout%3D{}",
        timeout.as_millis()
    )
}

/// The database this process uses: an operator-given URL, or the private cluster we run.
pub struct Database {
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded cluster under `data_dir` and makes
    /// sure its application database exists.
    pub async fn open(config: &DatabaseConfig, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        if let Some(url) = &config.url {
            return Ok(Database {
                url: url.clone(),
                embedded: None,
            });
        }
        let dir = data_dir.to_path_buf();
        let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir)).await??;
        create_database_if_missing(&cluster.url("postgres"), EMBEDDED_DATABASE).await?;
        Ok(Database {
            url: cluster.url(EMBEDDED_DATABASE),
            embedded: Some(cluster),
        })
    }

    /// Stops the embedded cluster, if we started one. Close pools first.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(cluster) = self.embedded {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        Ok(())
    }
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// `CREATE DATABASE` has no `IF NOT EXISTS`; check the catalog first. `name` is ours, never a
/// user's, but it is still quoted as an identifier.
pub async fn create_database_if_missing(server_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(server_url)
        .await
        .context("connecting to the PostgreSQL server")?;
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(name)
            .get_result(&mut conn)
            .await?;
    if !found.exists {
        diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(name)))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
    }
    Ok(())
}

/// Quotes an SQL identifier (doubling embedded quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `true` when the database answers a trivial query.
pub async fn ping(pool: &DbPool) -> bool {
    let Ok(mut conn) = pool.get().await else {
        return false;
    };
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .is_ok()
}
