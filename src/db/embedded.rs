//! The private PostgreSQL cluster `mycrm` starts when no `DATABASE_URL` is given.
//!
//! It lives in `<data-dir>/postgres`, is created with `initdb` on first use, listens only on a
//! Unix socket (no TCP port), and runs as a child process that dies with us: the child gets
//! `SIGINT` (PostgreSQL's "fast shutdown") through `PR_SET_PDEATHSIG` even if `mycrm` is killed
//! with `SIGKILL`, so no orphan cluster outlives its owner. When we run as root, PostgreSQL runs
//! as the `postgres` system user because it refuses to run as root.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid, User};

/// The superuser `initdb` creates; the application connects as this role.
pub const SUPERUSER: &str = "mycrm";
/// The socket file is `.s.PGSQL.<port>`; the port is only a name here since TCP is off.
const SOCKET_PORT: u16 = 5432;
/// `sun_path` is 108 bytes on Linux including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running private cluster. Call [`EmbeddedPostgres::stop`] for an orderly shutdown.
pub struct EmbeddedPostgres {
    pgdata: PathBuf,
    socket_dir: SocketDir,
    pid: Pid,
    exited: mpsc::Receiver<std::io::Result<ExitStatus>>,
    stopped: bool,
    /// Held for our lifetime so that two `mycrm` processes never drive one cluster.
    _lock: Option<Flock<File>>,
}

/// The system account PostgreSQL runs as (ourselves unless we are root).
#[derive(Clone, Debug)]
struct RunAs {
    uid: Uid,
    gid: Gid,
}

impl EmbeddedPostgres {
    /// Starts (creating on first use) the cluster for `data_dir` and waits until it accepts
    /// connections. Blocking; call it from a plain thread or `spawn_blocking`.
    pub fn start(data_dir: &Path) -> Result<Self> {
        let mut search = BinSearch::from_environment();
        // An existing cluster must be run by its own major version.
        search.wanted_major = fs::read_to_string(data_dir.join("postgres").join("PG_VERSION"))
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let bin_dir = find_bin_dir(&search).ok_or_else(|| {
            anyhow!(
                "PostgreSQL server binaries (initdb, postgres) were not found in PATH, \
                 `pg_config --bindir` or /usr/lib/postgresql/*/bin. Install the PostgreSQL \
                 server (Debian/Ubuntu: `apt-get install postgresql`), point MYCRM_PG_BIN_DIR \
                 at its bin directory, or set DATABASE_URL to an existing database."
            )
        })?;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving data dir {}", data_dir.display()))?;
        let lock = lock_data_dir(&data_dir)?;
        let run_as = run_as_user()?;
        if let Some(user) = &run_as {
            ensure_reachable(&data_dir, user.uid)?;
        }

        let pgdata = data_dir.join("postgres");
        if !pgdata.join("PG_VERSION").exists() {
            init_cluster(&bin_dir, &data_dir, &pgdata, run_as.as_ref())?;
        }
        let socket_dir = choose_socket_dir(&data_dir, run_as.as_ref())?;
        write_settings(&pgdata, &socket_dir.path)?;
        clear_stale_lock(&pgdata)?;

        let log_path = data_dir.join("postgres.log");
        let (pid, exited) = spawn_postmaster(&bin_dir, &pgdata, &log_path, run_as.as_ref())?;
        let mut cluster = EmbeddedPostgres {
            pgdata,
            socket_dir,
            pid,
            exited,
            stopped: false,
            _lock: lock,
        };
        if let Err(err) = cluster.wait_until_ready(&log_path) {
            cluster.stop_quietly();
            return Err(err);
        }
        tracing::info!(pgdata = %cluster.pgdata.display(), "embedded PostgreSQL is ready");
        Ok(cluster)
    }

    /// A connection URL for `database` over the Unix socket.
    pub fn url(&self, database: &str) -> String {
        socket_url(&self.socket_dir.path, SUPERUSER, database)
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Fast shutdown: open sessions are ended, the cluster is checkpointed and the postmaster exits.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_quietly(&mut self) {
        if let Err(err) = self.stop_inner() {
            tracing::warn!(error = %format!("{err:#}"), "stopping embedded PostgreSQL");
        }
    }

    fn stop_inner(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let result = self.stop_postmaster();
        if self.socket_dir.temporary {
            let _ = fs::remove_dir_all(&self.socket_dir.path);
        }
        result
    }

    fn stop_postmaster(&mut self) -> Result<()> {
        // Already gone (crashed or killed by someone else)?
        if let Ok(status) = self.exited.try_recv() {
            tracing::warn!(?status, "embedded PostgreSQL had already exited");
            return Ok(());
        }
        let _ = kill(self.pid, Signal::SIGINT);
        match self.exited.recv_timeout(STOP_TIMEOUT) {
            Ok(_) => {
                tracing::info!("embedded PostgreSQL stopped");
                Ok(())
            }
            Err(_) => {
                // Immediate shutdown: the next start runs crash recovery, nothing is lost.
                let _ = kill(self.pid, Signal::SIGQUIT);
                let _ = self.exited.recv_timeout(STOP_TIMEOUT);
                bail!("embedded PostgreSQL did not stop within {STOP_TIMEOUT:?}; sent SIGQUIT")
            }
        }
    }

    /// PostgreSQL writes "ready" as the 8th line of postmaster.pid once it accepts connections
    /// (the same signal `pg_ctl -w` waits for).
    fn wait_until_ready(&self, log_path: &Path) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let pidfile = self.pgdata.join("postmaster.pid");
        loop {
            if let Ok(status) = self.exited.try_recv() {
                bail!(
                    "PostgreSQL exited during start-up ({}); see {}:\n{}",
                    describe_status(status),
                    log_path.display(),
                    tail(log_path, 15)
                );
            }
            if let Ok(text) = fs::read_to_string(&pidfile) {
                let mut lines = text.lines();
                let owner = lines.next().and_then(|l| l.trim().parse::<i32>().ok());
                let status = lines.nth(6).map(str::trim);
                if owner == Some(self.pid.as_raw()) && status == Some("ready") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL did not become ready within {START_TIMEOUT:?}; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop_quietly();
    }
}

/// Builds a URL for a Unix socket directory: tokio-postgres reads a percent-encoded host that
/// starts with `/` as a socket directory (and only that host, so no TCP fallback can happen).
pub fn socket_url(socket_dir: &Path, user: &str, database: &str) -> String {
    format!(
        "postgres://{user}@{}:{SOCKET_PORT}/{database}",
        percent_encode(&socket_dir.to_string_lossy())
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn describe_status(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(err) => err.to_string(),
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Where to look for `initdb` and `postgres`, in order.
#[derive(Debug, Default)]
pub struct BinSearch {
    /// `MYCRM_PG_BIN_DIR`: used alone when set.
    pub explicit: Option<PathBuf>,
    pub path_dirs: Vec<PathBuf>,
    pub pg_config_bindir: Option<PathBuf>,
    /// Directories holding one `<version>/bin` per installed major version.
    pub versioned_roots: Vec<PathBuf>,
    /// The major version of an existing cluster: its `<root>/<major>/bin` wins over the others.
    pub wanted_major: Option<u32>,
}

impl BinSearch {
    pub fn from_environment() -> Self {
        let path_dirs = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let pg_config_bindir = Command::new("pg_config")
            .arg("--bindir")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        BinSearch {
            explicit: std::env::var_os("MYCRM_PG_BIN_DIR").map(PathBuf::from),
            path_dirs,
            pg_config_bindir,
            versioned_roots: vec![PathBuf::from("/usr/lib/postgresql")],
            wanted_major: None,
        }
    }
}

/// The first directory holding both `initdb` and `postgres`.
pub fn find_bin_dir(search: &BinSearch) -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = &search.explicit {
        return has_server(dir).then(|| dir.clone());
    }
    if let Some(major) = search.wanted_major {
        let matching = search
            .versioned_roots
            .iter()
            .map(|root| root.join(major.to_string()).join("bin"))
            .find(|dir| has_server(dir));
        if matching.is_some() {
            return matching;
        }
    }
    if let Some(dir) = search.path_dirs.iter().find(|d| has_server(d)) {
        return Some(dir.clone());
    }
    if let Some(dir) = search.pg_config_bindir.as_ref().filter(|d| has_server(d)) {
        return Some(dir.clone());
    }
    // Highest major version first.
    let mut candidates: Vec<(u32, PathBuf)> = search
        .versioned_roots
        .iter()
        .filter_map(|root| fs::read_dir(root).ok())
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, dir)| dir)
}

fn lock_data_dir(data_dir: &Path) -> Result<Option<Flock<File>>> {
    let path = data_dir.join("mycrm.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            locked.set_len(0)?;
            writeln!(locked, "{}", std::process::id())?;
            Ok(Some(locked))
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "the data dir {} is in use by another mycrm process (pid {}); stop it or choose \
                 another --data-dir",
                data_dir.display(),
                holder.trim()
            )
        }
        Err((_, errno)) => Err(anyhow!(errno).context(format!("locking {}", path.display()))),
    }
}

fn run_as_user() -> Result<Option<RunAs>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name("postgres")
        .context("looking up the postgres system user")?
        .ok_or_else(|| {
            anyhow!(
                "PostgreSQL refuses to run as root and there is no `postgres` system user to run \
                 it as; create one (`useradd --system postgres`), run mycrm as another user, or \
                 set DATABASE_URL"
            )
        })?;
    Ok(Some(RunAs {
        uid: user.uid,
        gid: user.gid,
    }))
}

/// The postgres user must be able to walk down to the data dir.
fn ensure_reachable(data_dir: &Path, uid: Uid) -> Result<()> {
    for dir in data_dir.ancestors() {
        let meta = fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        let others_may_enter = meta.mode() & 0o001 != 0;
        if !others_may_enter && meta.uid() != uid.as_raw() {
            bail!(
                "PostgreSQL runs as the `postgres` user, which cannot enter {} (mode {:o}); choose \
                 a --data-dir it can reach (for example under /var/lib or /srv) or set DATABASE_URL",
                dir.display(),
                meta.mode() & 0o777
            );
        }
    }
    Ok(())
}

/// Creates `dir` (mode 0700) owned by the account PostgreSQL runs as.
fn prepare_owned_dir(dir: &Path, run_as: Option<&RunAs>) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(user) = run_as {
        nix::unistd::chown(dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("chown {}", dir.display()))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// `initdb` into a scratch directory, then rename: an interrupted first start never leaves a
/// half-initialised cluster behind.
fn init_cluster(
    bin_dir: &Path,
    data_dir: &Path,
    pgdata: &Path,
    run_as: Option<&RunAs>,
) -> Result<()> {
    if pgdata.exists() {
        bail!(
            "{} exists but holds no PostgreSQL cluster (no PG_VERSION); move it away",
            pgdata.display()
        );
    }
    let scratch = data_dir.join("postgres.initdb-tmp");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    prepare_owned_dir(&scratch, run_as)?;
    tracing::info!(pgdata = %pgdata.display(), "creating the embedded PostgreSQL cluster (initdb)");
    let mut cmd = Command::new(bin_dir.join("initdb"));
    cmd.arg("-D")
        .arg(&scratch)
        .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"])
        .current_dir(data_dir)
        .stdin(Stdio::null());
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let out = cmd.output().context("running initdb")?;
    if !out.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::rename(&scratch, pgdata)?;
    // Our settings live in their own file so that a new socket dir never rewrites the main one.
    let mut conf = OpenOptions::new()
        .append(true)
        .open(pgdata.join("postgresql.conf"))?;
    writeln!(conf, "\ninclude_if_exists = 'mycrm.conf'")?;
    Ok(())
}

fn write_settings(pgdata: &Path, socket_dir: &Path) -> Result<()> {
    let quoted = socket_dir.to_string_lossy().replace('\'', "''");
    let text = format!(
        "# Written by mycrm on every start; edit postgresql.conf for your own settings.\n\
         listen_addresses = ''\n\
         port = {SOCKET_PORT}\n\
         unix_socket_directories = '{quoted}'\n\
         unix_socket_permissions = 0700\n\
         max_connections = 200\n"
    );
    fs::write(pgdata.join("mycrm.conf"), text)?;
    Ok(())
}

/// `<data-dir>/run` when its socket path fits in `sun_path`, else a fresh directory with an
/// unpredictable name under /tmp (created here, so nobody can have planted a symlink there).
fn choose_socket_dir(data_dir: &Path, run_as: Option<&RunAs>) -> Result<SocketDir> {
    let preferred = data_dir.join("run");
    if socket_path_fits(&preferred) {
        prepare_owned_dir(&preferred, run_as)?;
        // A crash can leave the socket and its lock file behind; we hold the data-dir lock, so
        // no live server of ours uses them.
        let socket = preferred.join(format!(".s.PGSQL.{SOCKET_PORT}"));
        let _ = fs::remove_file(socket.with_extension(format!("{SOCKET_PORT}.lock")));
        let _ = fs::remove_file(&socket);
        return Ok(SocketDir {
            path: preferred,
            temporary: false,
        });
    }
    for _ in 0..10 {
        let suffix: String = (0..12)
            .map(|_| format!("{:x}", rand::random::<u8>() % 16))
            .collect();
        let candidate = std::env::temp_dir().join(format!("mycrm-sock-{suffix}"));
        if !socket_path_fits(&candidate) {
            bail!("the temporary directory path is too long for a Unix socket");
        }
        match fs::create_dir(&candidate) {
            Ok(()) => {
                prepare_owned_dir(&candidate, run_as)?;
                tracing::info!(
                    socket_dir = %candidate.display(),
                    "the data dir path is too long for a Unix socket; using a private socket directory"
                );
                return Ok(SocketDir {
                    path: candidate,
                    temporary: true,
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err).context("creating a socket directory"),
        }
    }
    bail!("could not create a private socket directory")
}

fn socket_path_fits(dir: &Path) -> bool {
    dir.join(format!(".s.PGSQL.{SOCKET_PORT}"))
        .as_os_str()
        .len()
        <= MAX_SOCKET_PATH
}

/// Where the cluster's socket lives; a temporary one is removed when the cluster stops.
struct SocketDir {
    path: PathBuf,
    temporary: bool,
}

/// A postmaster.pid left by a crash (power loss, `kill -9` of PostgreSQL itself) would make
/// PostgreSQL refuse to start when its PID now belongs to another process. Since we hold the
/// data-dir lock, a live postmaster in our cluster can only be an orphan of an earlier run.
fn clear_stale_lock(pgdata: &Path) -> Result<()> {
    let pidfile = pgdata.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pidfile) else {
        return Ok(());
    };
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok());
    match pid {
        Some(pid) if pid > 0 && is_postmaster_of(pid, pgdata) => {
            tracing::warn!(pid, "stopping an orphaned PostgreSQL of this data dir");
            let pid = Pid::from_raw(pid);
            let _ = kill(pid, Signal::SIGINT);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while kill(pid, None).is_ok() {
                if Instant::now() > deadline {
                    let _ = kill(pid, Signal::SIGQUIT);
                    bail!("an orphaned PostgreSQL (pid {pid}) of this data dir would not stop");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        _ => {
            tracing::warn!("removing a stale postmaster.pid left by an earlier crash");
            fs::remove_file(&pidfile)?;
        }
    }
    Ok(())
}

/// A postmaster changes its working directory to its data directory.
fn is_postmaster_of(pid: i32, pgdata: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let comm = fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    let cwd = fs::read_link(proc_dir.join("cwd")).ok();
    comm.trim().starts_with("postgres") && cwd.as_deref() == Some(pgdata)
}

type Spawned = (Pid, mpsc::Receiver<std::io::Result<ExitStatus>>);

/// Starts the postmaster from a dedicated thread that waits for it. `PR_SET_PDEATHSIG` fires
/// when the *thread* that forked the child ends, so that thread must outlive the cluster:
/// a tokio worker or a per-test runtime thread would not.
fn spawn_postmaster(
    bin_dir: &Path,
    pgdata: &Path,
    log_path: &Path,
    run_as: Option<&RunAs>,
) -> Result<Spawned> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = Command::new(bin_dir.join("postgres"));
    cmd.arg("-D")
        .arg(pgdata)
        .current_dir(pgdata.parent().unwrap_or(pgdata))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: Ctrl-C in a terminal signals only mycrm, which drains HTTP
        // first and then stops the cluster itself.
        .process_group(0);
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    // SAFETY: prctl is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
        });
    }
    let (pid_tx, pid_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("postgres-supervisor".into())
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = pid_tx.send(Ok(child.id()));
                let _ = exit_tx.send(child.wait());
            }
            Err(err) => {
                let _ = pid_tx.send(Err(err));
            }
        })?;
    let pid = pid_rx
        .recv()
        .context("postgres supervisor thread ended")?
        .context("starting postgres")?;
    Ok((Pid::from_raw(pid as i32), exit_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_binaries_means_none() {
        let empty = std::env::temp_dir().join(format!("mycrm-nobin-{}", std::process::id()));
        fs::create_dir_all(&empty).unwrap();
        let search = BinSearch {
            explicit: None,
            path_dirs: vec![empty.clone()],
            pg_config_bindir: Some(empty.clone()),
            versioned_roots: vec![empty.clone()],
            wanted_major: Some(15),
        };
        assert_eq!(find_bin_dir(&search), None);
        fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn explicit_dir_without_binaries_is_not_used() {
        let search = BinSearch {
            explicit: Some(PathBuf::from("/nonexistent")),
            path_dirs: vec![PathBuf::from("/usr/lib/postgresql/15/bin")],
            ..Default::default()
        };
        assert_eq!(find_bin_dir(&search), None);
    }

    #[test]
    fn socket_url_encodes_the_directory() {
        let url = socket_url(Path::new("/tmp/my dir/run"), "mycrm", "app");
        assert_eq!(url, "postgres://mycrm@%2Ftmp%2Fmy%20dir%2Frun:5432/app");
    }
}
