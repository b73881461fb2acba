//! Live subscriptions benchmark client (issue 8), run by `bench/live.sh`.
//!
//! Opens N WebSocket connections (graphql-transport-ws) to one `mycrm serve`, each subscribed
//! to `recordChanged` of its own lead, and measures:
//!
//! * server memory per idle subscriber (VmRSS of the server process before and after);
//! * a burst: one statement writing one event for every lead (all subscribers get one);
//! * "hot": the first H connections also subscribe to one hot lead; one event every 100 ms
//!   for it, each delivered to H subscribers (fan-out latency p50/p99/max);
//! * "spread": R events/s for D seconds, each for a random lead among the N, each delivered to
//!   that lead's one subscriber (latency p50/p99/max, losses, achieved rate).
//!
//! Events are written straight into `record_events` (autocommit, one transaction each, as the
//! CRM writes them); the trigger announces them at commit. Latency = the time the client reads
//! the message - the event's `occurredAt` (the writing transaction's start, same clock), so it
//! includes the writing transaction itself (its round trip is reported too).
//!
//! cargo build --release --example live_bench; see bench/live.sh for the arguments.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

#[derive(Parser, Debug, Clone)]
#[command(about = "MyCRM live subscriptions benchmark client")]
struct Args {
    /// The server's base URL (http://127.0.0.1:PORT).
    #[arg(long)]
    url: String,
    /// The server's database (events are written there directly).
    #[arg(long)]
    db: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    password: String,
    /// WebSocket connections, each subscribed to its own lead.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// The server process (memory and CPU are read from /proc).
    #[arg(long)]
    server_pid: u32,
    /// PostgreSQL's postmaster (its CPU, with its backends', is reported per phase).
    #[arg(long)]
    pg_pid: Option<u32>,
    /// Connections that also subscribe to the hot lead.
    #[arg(long, default_value_t = 1_000)]
    hot_subscribers: usize,
    /// Events for the hot lead, one every --hot-interval-ms.
    #[arg(long, default_value_t = 200)]
    hot_events: usize,
    #[arg(long, default_value_t = 100)]
    hot_interval_ms: u64,
    /// Spread scenario: events per second over all leads ...
    #[arg(long, default_value_t = 1_000)]
    rate: usize,
    /// ... for this many seconds.
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Database connections writing the spread events.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Pause before each memory reading, so the server has settled.
    #[arg(long, default_value_t = 2)]
    settle_s: u64,
}

/// One event read by one subscription.
struct Delivery {
    sub: u8,
    event: i64,
    /// Read time - occurredAt.
    latency_us: i64,
    /// Read time (unix µs).
    at_us: i64,
}

/// Things that went wrong, shared by the connection tasks.
#[derive(Default)]
struct Stats {
    connected: AtomicU64,
    connect_failed: AtomicU64,
    /// Connections that ended while the benchmark still wanted them.
    dropped: AtomicU64,
    pings: AtomicU64,
    close_codes: Mutex<HashMap<String, u64>>,
    errors: Mutex<Vec<String>>,
    error_count: AtomicU64,
}

impl Stats {
    fn error(&self, text: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < 20 {
            errors.push(text);
        }
    }
    fn closed(&self, code: String) {
        *self.close_codes.lock().unwrap().entry(code).or_default() += 1;
    }
}

const PHASE_IDLE: u8 = 0;
const PHASE_HOT: u8 = 1;
const PHASE_CLOSE: u8 = 2;

fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn record_query(lead: i64) -> String {
    format!(
        "subscription {{ recordChanged(entity: LEAD, id: \"{lead}\") {{ id recordId occurredAt }} }}"
    )
}

fn subscribe_message(id: &str, lead: i64) -> Message {
    Message::text(
        json!({"id": id, "type": "subscribe", "payload": {"query": record_query(lead)}})
            .to_string(),
    )
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

type Socket = WebSocketStream<TcpStream>;

/// Opens one connection: TCP, upgrade, connection_init/ack, the own-lead subscription.
async fn open(addr: SocketAddr, ws_url: &str, token: &str, lead: i64) -> Result<Socket, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("tcp: {e}"))?;
    tcp.set_nodelay(true).ok();
    let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    // tungstenite's default read buffer (128 KiB, allocated up front) times 10,000 would be
    // the client's biggest cost.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::text(init.to_string()))
        .await
        .map_err(|e| format!("send init: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let env: Envelope =
                    serde_json::from_str(&text).map_err(|e| format!("bad message: {e}"))?;
                match env.kind.as_str() {
                    "connection_ack" => break,
                    "ping" => {
                        ws.send(Message::text(r#"{"type":"pong"}"#))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    _ => return Err(format!("before ack: {text}")),
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed before ack: {frame:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("before ack: {e}")),
            None => return Err("eof before ack".into()),
        }
    }
    ws.send(subscribe_message("1", lead))
        .await
        .map_err(|e| format!("send subscribe: {e}"))?;
    Ok(ws)
}

/// One connection's life after it is open: reads events until told to close.
async fn run_connection(
    mut ws: Socket,
    hot_lead: Option<i64>,
    mut phase: watch::Receiver<u8>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    stats: Arc<Stats>,
) {
    let mut closing = false;
    loop {
        tokio::select! {
            message = ws.next() => {
                let message = match message {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        if !closing {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                            stats.error(format!("read: {e}"));
                            stats.closed("error".into());
                        }
                        return;
                    }
                    None => {
                        if !closing {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                            stats.closed("eof".into());
                        }
                        return;
                    }
                };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(frame) => {
                        if !closing {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                            let code = frame
                                .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                                .unwrap_or_else(|| "none".into());
                            stats.closed(code);
                        }
                        continue; // tungstenite answers; the stream then ends
                    }
                    _ => continue,
                };
                let now = unix_us();
                handle_text(&text, now, &mut ws, &deliveries, &stats).await;
            }
            changed = phase.changed(), if !closing => {
                if changed.is_err() {
                    return;
                }
                let now = *phase.borrow_and_update();
                match now {
                    PHASE_HOT => {
                        if let Some(hot) = hot_lead {
                            if let Err(e) = ws.send(subscribe_message("2", hot)).await {
                                stats.error(format!("send hot subscribe: {e}"));
                            }
                        }
                    }
                    PHASE_CLOSE => {
                        closing = true;
                        let _ = ws.close(None).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn handle_text(
    text: &str,
    now_us: i64,
    ws: &mut Socket,
    deliveries: &mpsc::UnboundedSender<Delivery>,
    stats: &Stats,
) {
    let env: Envelope = match serde_json::from_str(text) {
        Ok(env) => env,
        Err(e) => {
            stats.error(format!("unreadable message ({e}): {text}"));
            return;
        }
    };
    match env.kind.as_str() {
        "next" => {
            let payload = env.payload.unwrap_or(Value::Null);
            let change = &payload["data"]["recordChanged"];
            let event = change["id"].as_str().and_then(|s| s.parse::<i64>().ok());
            let occurred = change["occurredAt"]
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
            match (event, occurred) {
                (Some(event), Some(occurred)) => {
                    let sub = if env.id.as_deref() == Some("2") { 2 } else { 1 };
                    let _ = deliveries.send(Delivery {
                        sub,
                        event,
                        latency_us: now_us - occurred.timestamp_micros(),
                        at_us: now_us,
                    });
                }
                _ => stats.error(format!("next without an event: {text}")),
            }
        }
        "ping" => {
            stats.pings.fetch_add(1, Ordering::Relaxed);
            let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
        }
        "pong" | "connection_ack" => {}
        _ => stats.error(format!("unexpected message: {text}")),
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readings

fn proc_status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// VmRSS once it has settled: sampled every 500 ms until three samples in a row are within
/// 256 kB of each other (the allocator returns freed pages with a delay), at most 20 s.
async fn settled_rss(pid: &str) -> u64 {
    let mut last = Vec::new();
    for _ in 0..40 {
        last.push(proc_status_kb(pid, "VmRSS"));
        if last.len() >= 3 {
            let tail = &last[last.len() - 3..];
            if tail.iter().max().unwrap() - tail.iter().min().unwrap() <= 256 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    *last.last().unwrap()
}

/// TcpExt counters of this network namespace (listen queue overflows show as SYN retries).
fn tcp_ext(names: &[&str]) -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines();
    while let (Some(head), Some(values)) = (lines.next(), lines.next()) {
        if !head.starts_with("TcpExt:") {
            continue;
        }
        let keys: Vec<&str> = head.split_whitespace().collect();
        let vals: Vec<&str> = values.split_whitespace().collect();
        return names
            .iter()
            .map(|n| {
                keys.iter()
                    .position(|k| k == n)
                    .and_then(|i| vals.get(i)?.parse().ok())
                    .unwrap_or(0)
            })
            .collect();
    }
    vec![0; names.len()]
}
const TCP_COUNTERS: [&str; 3] = ["ListenOverflows", "ListenDrops", "TCPTimeouts"];

fn fd_count(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks (100 per second).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After "(comm)": state is field 3, utime 14, stime 15 (1-based) -> indexes 11, 12.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// (busy, total) ticks of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// utime + stime of a process and its children (PostgreSQL: the postmaster and its backends).
fn tree_ticks(root: &str) -> u64 {
    let mut total = cpu_ticks(root);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1).map(str::to_string));
            if ppid.as_deref() == Some(root) {
                total += cpu_ticks(pid);
            }
        }
    }
    total
}

/// CPU use over a phase, in % of one core: server, client, PostgreSQL, and everything else
/// on the machine (other processes, the kernel); machine busy in % of all cores.
struct CpuMeter {
    server: String,
    pg: Option<String>,
    at: Instant,
    server_ticks: u64,
    client_ticks: u64,
    pg_ticks: u64,
    machine: (u64, u64),
}

#[derive(Clone, Copy, Default)]
struct CpuUse {
    seconds: f64,
    server_pct: f64,
    client_pct: f64,
    pg_pct: f64,
    other_pct: f64,
    machine_busy_pct: f64,
}

impl CpuMeter {
    fn start(server: &str, pg: Option<u32>) -> Self {
        let pg = pg.map(|p| p.to_string());
        CpuMeter {
            server: server.to_string(),
            at: Instant::now(),
            server_ticks: cpu_ticks(server),
            client_ticks: cpu_ticks("self"),
            pg_ticks: pg.as_deref().map(tree_ticks).unwrap_or(0),
            pg,
            machine: machine_ticks(),
        }
    }

    fn stop(&self) -> CpuUse {
        let secs = self.at.elapsed().as_secs_f64().max(1e-6);
        let (busy, total) = machine_ticks();
        let d_total = (total - self.machine.1).max(1) as f64;
        let server = cpu_ticks(&self.server).saturating_sub(self.server_ticks) as f64;
        let client = cpu_ticks("self").saturating_sub(self.client_ticks) as f64;
        let pg = self
            .pg
            .as_deref()
            .map(tree_ticks)
            .unwrap_or(0)
            .saturating_sub(self.pg_ticks) as f64;
        let busy = busy.saturating_sub(self.machine.0) as f64;
        CpuUse {
            seconds: secs,
            server_pct: server / secs,
            client_pct: client / secs,
            pg_pct: pg / secs,
            other_pct: ((busy - server - client - pg) / secs).max(0.0),
            machine_busy_pct: 100.0 * busy / d_total,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Figures

#[derive(Clone, Copy, Default, Debug)]
struct Dist {
    n: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn dist(values: &mut [i64]) -> Dist {
    if values.is_empty() {
        return Dist::default();
    }
    values.sort_unstable();
    let n = values.len();
    let at = |q: f64| {
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        values[rank - 1] as f64 / 1000.0
    };
    Dist {
        n,
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: values[n - 1] as f64 / 1000.0,
    }
}

fn dist_json(d: &Dist) -> Value {
    let r = |x: f64| (x * 100.0).round() / 100.0;
    json!({"n": d.n, "p50_ms": r(d.p50_ms), "p90_ms": r(d.p90_ms), "p99_ms": r(d.p99_ms), "max_ms": r(d.max_ms)})
}

fn show(label: &str, d: &Dist) {
    println!(
        "  {label:<44} n={:<7} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        d.n, d.p50_ms, d.p90_ms, d.p99_ms, d.max_ms
    );
}

fn show_cpu(c: &CpuUse) {
    println!(
        "  CPU over {:.1} s, % of one core: server {:.0}, client {:.0}, PostgreSQL {:.0}, \
         other {:.0}; machine busy {:.0}% of {} cores",
        c.seconds,
        c.server_pct,
        c.client_pct,
        c.pg_pct,
        c.other_pct,
        c.machine_busy_pct,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
}

fn cpu_json(c: &CpuUse) -> Value {
    json!({"server_pct_of_core": c.server_pct.round(), "client_pct_of_core": c.client_pct.round(),
           "postgres_pct_of_core": c.pg_pct.round(), "other_pct_of_core": c.other_pct.round(),
           "machine_busy_pct": c.machine_busy_pct.round()})
}

/// Reads deliveries until `done` says so or `timeout` passes.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Delivery>,
    into: &mut Vec<Delivery>,
    timeout: Duration,
    mut done: impl FnMut(&[Delivery]) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done(into) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(d)) => {
                into.push(d);
                while let Ok(d) = rx.try_recv() {
                    into.push(d);
                }
            }
            Ok(None) | Err(_) => return false,
        }
    }
    true
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> usize {
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------------------

const EVENT_SQL: &str = "INSERT INTO record_events (workspace_id, entity, record_id, action, actor_id, changes) \
     VALUES ($1, 'lead', $2, 'updated', $3, '{\"status\": {\"old\": \"new\", \"new\": \"contacted\"}}') \
     RETURNING id";

async fn pg(db: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection: {e}");
        }
    });
    Ok(client)
}

async fn login(args: &Args) -> anyhow::Result<String> {
    let body = json!({
        "query": "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ accessToken } }",
        "variables": {"e": args.email, "p": args.password},
    });
    let response: Value = reqwest::Client::new()
        .post(format!("{}/graphql", args.url))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    response["data"]["login"]["accessToken"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("login failed: {response}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.subscribers;
    let hot_n = args.hot_subscribers.min(n);
    let server = args.server_pid.to_string();
    let started = Instant::now();
    let mut summary = serde_json::Map::new();

    // --- Data: the admin, N leads and one hot lead -----------------------------------------
    let db = pg(&args.db).await?;
    let row = db
        .query_one(
            "SELECT id, workspace_id FROM users WHERE email = $1",
            &[&args.email],
        )
        .await?;
    let (user_id, workspace_id): (i64, i64) = (row.get(0), row.get(1));
    println!("admin: user {user_id}, workspace {workspace_id}");
    let lead_rows = db
        .query(
            "INSERT INTO leads (workspace_id, owner_id, first_name, email) \
             SELECT $1, $2, 'Live', 'live' || g || '@bench.test' FROM generate_series(1, $3::bigint) g \
             RETURNING id",
            &[&workspace_id, &user_id, &(n as i64 + 1)],
        )
        .await?;
    let mut leads: Vec<i64> = lead_rows.iter().map(|r| r.get(0)).collect();
    leads.sort_unstable();
    let hot_lead = leads.pop().unwrap();
    println!("{} leads created (hot lead {hot_lead})", leads.len());

    let token: Arc<str> = login(&args).await?.into();
    let base = args.url.trim_end_matches('/');
    let host = base.strip_prefix("http://").unwrap_or(base);
    let addr: SocketAddr = tokio::net::lookup_host(host)
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))?;
    let ws_url: Arc<str> = format!("ws://{host}/graphql/ws").into();

    // --- Connect ----------------------------------------------------------------------------
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    let rss0 = settled_rss(&server).await;
    let threads0 = proc_status_kb(&server, "Threads");
    let client_rss0 = proc_status_kb("self", "VmRSS");
    println!(
        "\nserver before: VmRSS {rss0} kB, {threads0} threads, {} fds",
        fd_count(&server)
    );

    let stats = Arc::new(Stats::default());
    let (phase_tx, phase_rx) = watch::channel(PHASE_IDLE);
    let (del_tx, mut del_rx) = mpsc::unbounded_channel::<Delivery>();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let checkpoint = (n / 10).max(1); // memory also read at 10% (the marginal cost after it)
    let mut rss_checkpoint = 0;
    let tcp0 = tcp_ext(&TCP_COUNTERS);
    let connect_meter = CpuMeter::start(&server, args.pg_pid);
    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    let mut open_times: Vec<i64> = Vec::with_capacity(n);
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<i64>();
    let mut launched = 0usize;
    let mut finished = 0usize;
    for (i, &lead) in leads.iter().enumerate() {
        // Pause at the checkpoint until those connections are open, for the marginal figure.
        if i == checkpoint {
            while finished < checkpoint {
                if let Some(us) = opened_rx.recv().await {
                    if us >= 0 {
                        open_times.push(us);
                    }
                    finished += 1;
                }
            }
            tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
            rss_checkpoint = settled_rss(&server).await;
        }
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (ws_url, token, phase, deliveries, stats, opened) = (
            ws_url.clone(),
            token.clone(),
            phase_rx.clone(),
            del_tx.clone(),
            stats.clone(),
            opened_tx.clone(),
        );
        let hot = (i < hot_n).then_some(hot_lead);
        launched += 1;
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ws = open(addr, &ws_url, &token, lead).await;
            drop(permit);
            match ws {
                Ok(ws) => {
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    let _ = opened.send(t.elapsed().as_micros() as i64);
                    drop(opened);
                    run_connection(ws, hot, phase, deliveries, stats).await;
                }
                Err(e) => {
                    stats.connect_failed.fetch_add(1, Ordering::Relaxed);
                    stats.error(format!("connect: {e}"));
                    let _ = opened.send(-1);
                }
            }
        }));
        while let Ok(us) = opened_rx.try_recv() {
            if us >= 0 {
                open_times.push(us);
            }
            finished += 1;
        }
    }
    while finished < launched {
        match opened_rx.recv().await {
            Some(us) => {
                if us >= 0 {
                    open_times.push(us);
                }
                finished += 1;
            }
            None => break,
        }
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let connect_cpu = connect_meter.stop();
    let connected = stats.connected.load(Ordering::Relaxed);
    let open_dist = dist(&mut open_times);
    println!(
        "{connected} of {n} connections open and subscribed in {connect_secs:.1} s \
         ({:.0}/s, {} at a time), {} failed",
        connected as f64 / connect_secs,
        args.connect_concurrency,
        stats.connect_failed.load(Ordering::Relaxed)
    );
    show(
        "connection open (tcp+upgrade+init+ack+subscribe)",
        &open_dist,
    );
    show_cpu(&connect_cpu);
    let tcp1 = tcp_ext(&TCP_COUNTERS);
    let tcp_delta: Vec<String> = TCP_COUNTERS
        .iter()
        .zip(tcp1.iter().zip(&tcp0))
        .map(|(n, (a, b))| format!("{n} +{}", a - b))
        .collect();
    println!("  kernel TCP counters meanwhile: {}", tcp_delta.join(", "));

    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    let rss1 = settled_rss(&server).await;
    let threads1 = proc_status_kb(&server, "Threads");
    let fds1 = fd_count(&server);
    let client_rss1 = proc_status_kb("self", "VmRSS");
    let per_sub = (rss1 as f64 - rss0 as f64) * 1024.0 / connected.max(1) as f64;
    let marginal_n = connected.saturating_sub(checkpoint as u64).max(1);
    let per_sub_marginal = (rss1 as f64 - rss_checkpoint as f64) * 1024.0 / marginal_n as f64;
    println!(
        "server after: VmRSS {rss1} kB, {threads1} threads, {fds1} fds; at {checkpoint} \
         connections: {rss_checkpoint} kB"
    );
    println!(
        "MEMORY per idle subscriber (connection + 1 subscription): {:.1} KB \
         ((after - before) / {connected}); marginal from {checkpoint} to {connected}: {:.1} KB",
        per_sub / 1024.0,
        per_sub_marginal / 1024.0
    );
    println!(
        "client: VmRSS {} kB ({:.1} KB per connection)",
        client_rss1,
        (client_rss1 as f64 - client_rss0 as f64) / connected.max(1) as f64
    );
    summary.insert(
        "memory".into(),
        json!({
            "connections": connected, "server_rss_before_kb": rss0, "server_rss_after_kb": rss1,
            "server_rss_at_checkpoint_kb": rss_checkpoint, "checkpoint_connections": checkpoint,
            "per_subscriber_kb": (per_sub / 102.4).round() / 10.0,
            "per_subscriber_marginal_kb": (per_sub_marginal / 102.4).round() / 10.0,
            "server_threads": threads1, "server_fds": fds1, "client_rss_kb": client_rss1,
            "connect_seconds": (connect_secs * 10.0).round() / 10.0,
            "connect_open_ms": dist_json(&open_dist), "connect_tcp_counters": tcp_delta,
        }),
    );

    // --- Check: one statement, one event for every lead (every subscriber gets exactly one) -
    println!("\n== burst check: one statement writes one event per lead ({n} events)");
    drain(&mut del_rx);
    let meter = CpuMeter::start(&server, args.pg_pid);
    let t = Instant::now();
    let rows = db
        .query(
            "INSERT INTO record_events (workspace_id, entity, record_id, action, actor_id, changes) \
             SELECT $1, 'lead', l, 'updated', $2, '{\"status\": {\"old\": \"new\", \"new\": \"contacted\"}}' \
             FROM unnest($3::bigint[]) l RETURNING id",
            &[&workspace_id, &user_id, &leads],
        )
        .await?;
    let commit_ms = t.elapsed().as_secs_f64() * 1000.0;
    let burst_ids: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let mut got = Vec::new();
    let expected = connected as usize;
    collect(&mut del_rx, &mut got, Duration::from_secs(30), |d| {
        d.len() >= expected
    })
    .await;
    let all_ms = t.elapsed().as_secs_f64() * 1000.0;
    let burst_cpu = meter.stop();
    let mut lat: Vec<i64> = got
        .iter()
        .filter(|d| burst_ids.contains(&d.event))
        .map(|d| d.latency_us)
        .collect();
    let burst = dist(&mut lat);
    println!(
        "  statement took {commit_ms:.0} ms; {} of {expected} deliveries, the last {:.0} ms after \
         the statement returned",
        burst.n,
        all_ms - commit_ms
    );
    show("latency from transaction start", &burst);
    show_cpu(&burst_cpu);
    summary.insert(
        "burst_one_statement".into(),
        json!({"events": burst_ids.len(), "delivered": burst.n, "statement_ms": commit_ms.round(),
               "latency": dist_json(&burst), "cpu": cpu_json(&burst_cpu)}),
    );

    // --- Hot lead: H connections subscribe to it too ----------------------------------------
    let hot_connected = hot_n.min(connected as usize);
    println!("\n== hot lead: {hot_n} connections add a second subscription (lead {hot_lead})");
    phase_tx.send_replace(PHASE_HOT);
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    let rss2 = settled_rss(&server).await;
    println!(
        "  server VmRSS {rss2} kB: {:.1} KB per extra subscription",
        (rss2 as f64 - rss1 as f64) / hot_n.max(1) as f64
    );
    // Warm-up: one event, until all H have it.
    drain(&mut del_rx);
    let mut warm = Vec::new();
    let mut warm_ok = false;
    for _ in 0..5 {
        db.query_one(EVENT_SQL, &[&workspace_id, &hot_lead, &user_id])
            .await?;
        warm.clear();
        warm_ok = collect(&mut del_rx, &mut warm, Duration::from_secs(5), |d| {
            d.iter().filter(|x| x.sub == 2).count() >= hot_connected
        })
        .await;
        if warm_ok {
            break;
        }
        println!(
            "  warm-up event reached {} of {hot_connected}; again",
            warm.iter().filter(|x| x.sub == 2).count()
        );
    }
    println!("  warm-up event reached all {hot_connected}: {warm_ok}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain(&mut del_rx);

    println!(
        "\n== scenario 1: {} events for the hot lead, one every {} ms, each to {hot_connected} \
         subscribers",
        args.hot_events, args.hot_interval_ms
    );
    let meter = CpuMeter::start(&server, args.pg_pid);
    let writer = {
        let db_url = args.db.clone();
        let (count, every) = (args.hot_events, args.hot_interval_ms);
        tokio::spawn(async move {
            let client = pg(&db_url).await?;
            let stmt = client.prepare(EVENT_SQL).await?;
            let mut ticks = tokio::time::interval(Duration::from_millis(every));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut ids = Vec::with_capacity(count);
            let mut round_trips = Vec::with_capacity(count);
            let mut acks = HashMap::with_capacity(count);
            for _ in 0..count {
                ticks.tick().await;
                let t = Instant::now();
                let row = client
                    .query_one(&stmt, &[&workspace_id, &hot_lead, &user_id])
                    .await?;
                let ack = unix_us();
                round_trips.push(t.elapsed().as_micros() as i64);
                ids.push(row.get::<_, i64>(0));
                acks.insert(row.get::<_, i64>(0), ack);
            }
            anyhow::Ok((ids, round_trips, acks))
        })
    };
    let mut hot = Vec::with_capacity(args.hot_events * hot_connected);
    let want = args.hot_events * hot_connected;
    collect(
        &mut del_rx,
        &mut hot,
        Duration::from_millis(args.hot_events as u64 * args.hot_interval_ms + 10_000),
        |d| d.len() >= want,
    )
    .await;
    let hot_cpu = meter.stop();
    let (hot_ids, mut hot_rtt, hot_acks) = writer.await??;
    let hot_set: std::collections::HashSet<i64> = hot_ids.iter().copied().collect();
    let mut per_event: HashMap<i64, (usize, i64)> = HashMap::new();
    let mut last_at: HashMap<i64, i64> = HashMap::new();
    let mut hot_lat = Vec::with_capacity(hot.len());
    let mut hot_after_ack = Vec::with_capacity(hot.len());
    for d in hot
        .iter()
        .filter(|d| d.sub == 2 && hot_set.contains(&d.event))
    {
        hot_lat.push(d.latency_us);
        if let Some(ack) = hot_acks.get(&d.event) {
            hot_after_ack.push(d.at_us - ack);
            let last = last_at.entry(d.event).or_insert(i64::MIN);
            *last = (*last).max(d.at_us - ack);
        }
        let e = per_event.entry(d.event).or_default();
        e.0 += 1;
        e.1 = e.1.max(d.latency_us);
    }
    let complete = per_event
        .values()
        .filter(|(c, _)| *c == hot_connected)
        .count();
    let mut slowest: Vec<i64> = per_event.values().map(|(_, m)| *m).collect();
    let hot_all = dist(&mut hot_lat);
    let hot_slowest = dist(&mut slowest);
    let hot_rtt = dist(&mut hot_rtt);
    let hot_ack = dist(&mut hot_after_ack);
    let mut last_after_ack: Vec<i64> = last_at.into_values().collect();
    let hot_last_ack = dist(&mut last_after_ack);
    let server_us_per_delivery =
        hot_cpu.server_pct * 10_000.0 * hot_cpu.seconds / hot_all.n.max(1) as f64;
    println!(
        "  {} deliveries of {want} expected; {complete} of {} events reached all {hot_connected}",
        hot_all.n,
        hot_ids.len()
    );
    show("latency, every delivery", &hot_all);
    show("latency, each event's last delivery", &hot_slowest);
    show("writer: INSERT+COMMIT round trip", &hot_rtt);
    show("read time - writer's commit ack, every delivery", &hot_ack);
    show(
        "read time - writer's commit ack, each event's last",
        &hot_last_ack,
    );
    show_cpu(&hot_cpu);
    println!("  server CPU per delivery: {server_us_per_delivery:.0} µs");
    summary.insert(
        "hot_one_event_to_subscribers".into(),
        json!({"subscribers": hot_connected, "events": hot_ids.len(), "interval_ms": args.hot_interval_ms,
               "deliveries": hot_all.n, "expected": want, "events_complete": complete,
               "latency": dist_json(&hot_all), "per_event_last_delivery": dist_json(&hot_slowest),
               "writer_round_trip": dist_json(&hot_rtt), "after_commit_ack": dist_json(&hot_ack),
               "per_event_last_after_commit_ack": dist_json(&hot_last_ack),
               "server_cpu_us_per_delivery": server_us_per_delivery.round(), "cpu": cpu_json(&hot_cpu)}),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain(&mut del_rx);

    // --- Spread: R events/s over all leads ---------------------------------------------------
    let total = args.rate * args.duration_s as usize;
    println!(
        "\n== scenario 2: {} events/s for {} s over all {n} leads ({total} events, {} writers)",
        args.rate, args.duration_s, args.writers
    );
    let meter = CpuMeter::start(&server, args.pg_pid);
    let leads = Arc::new(leads);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let (db_url, leads) = (args.db.clone(), leads.clone());
        let (rate, writers_n) = (args.rate as f64, args.writers);
        writers.push(tokio::spawn(async move {
            let client = pg(&db_url).await?;
            let stmt = client.prepare(EVENT_SQL).await?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64 + 1);
            let mut out = Vec::new(); // (event id, round trip µs, lateness µs, ack unix µs)
            let mut k = w;
            while k < total {
                let due = t0 + Duration::from_secs_f64(k as f64 / rate);
                tokio::time::sleep_until(due).await;
                let late = tokio::time::Instant::now().saturating_duration_since(due);
                let lead = leads[rng.gen_range(0..leads.len())];
                let t = Instant::now();
                let row = client
                    .query_one(&stmt, &[&workspace_id, &lead, &user_id])
                    .await?;
                out.push((
                    row.get::<_, i64>(0),
                    t.elapsed().as_micros() as i64,
                    late.as_micros() as i64,
                    unix_us(),
                ));
                k += writers_n;
            }
            anyhow::Ok(out)
        }));
    }
    let mut spread = Vec::with_capacity(total);
    let writing = futures_util::future::join_all(writers);
    let mut writing = std::pin::pin!(writing);
    let written = loop {
        tokio::select! {
            done = &mut writing => break done,
            Some(d) = del_rx.recv() => spread.push(d),
        }
    };
    let write_secs = (tokio::time::Instant::now() - t0).as_secs_f64();
    let mut ids: HashMap<i64, i64> = HashMap::with_capacity(total);
    let mut rtt = Vec::with_capacity(total);
    let mut late = Vec::with_capacity(total);
    for w in written {
        for (id, r, l, ack) in w?? {
            ids.insert(id, ack);
            rtt.push(r);
            late.push(l);
        }
    }
    let inserted = ids.len();
    collect(&mut del_rx, &mut spread, Duration::from_secs(10), |d| {
        d.iter().filter(|x| x.sub == 1).count() >= inserted
    })
    .await;
    let spread_cpu = meter.stop();
    let mut seen: HashMap<i64, u32> = HashMap::with_capacity(inserted);
    let mut lat = Vec::with_capacity(spread.len());
    let mut after_ack = Vec::with_capacity(spread.len());
    let mut stray = 0;
    for d in &spread {
        if let (1, Some(ack)) = (d.sub, ids.get(&d.event)) {
            *seen.entry(d.event).or_default() += 1;
            lat.push(d.latency_us);
            after_ack.push(d.at_us - ack);
        } else {
            stray += 1;
        }
    }
    let lost = inserted - seen.len();
    let duplicates: u32 = seen.values().map(|c| c - 1).sum();
    let spread_d = dist(&mut lat);
    let rtt_d = dist(&mut rtt);
    let late_d = dist(&mut late);
    let ack_d = dist(&mut after_ack);
    let achieved = inserted as f64 / write_secs;
    println!(
        "  {inserted} events written in {write_secs:.1} s ({achieved:.0}/s); {} delivered, \
         {lost} lost, {duplicates} duplicates, {stray} other",
        seen.len()
    );
    show("latency", &spread_d);
    show("writer: INSERT+COMMIT round trip", &rtt_d);
    show("writer: start behind schedule", &late_d);
    show("read time - writer's commit ack", &ack_d);
    show_cpu(&spread_cpu);
    summary.insert(
        "spread_events_per_second".into(),
        json!({"target_rate": args.rate, "achieved_rate": achieved.round(), "seconds": args.duration_s,
               "events": inserted, "delivered": seen.len(), "lost": lost, "duplicates": duplicates,
               "latency": dist_json(&spread_d), "writer_round_trip": dist_json(&rtt_d),
               "writer_behind_schedule": dist_json(&late_d), "after_commit_ack": dist_json(&ack_d),
               "writers": args.writers, "cpu": cpu_json(&spread_cpu)}),
    );

    // --- End ----------------------------------------------------------------------------------
    let rss3 = proc_status_kb(&server, "VmRSS");
    let dropped = stats.dropped.load(Ordering::Relaxed);
    let closes = stats.close_codes.lock().unwrap().clone();
    println!(
        "\nserver VmRSS at the end: {rss3} kB (peak VmHWM {} kB)",
        proc_status_kb(&server, "VmHWM")
    );
    println!(
        "connections the server ended during the run: {dropped} {closes:?}; server pings: {}",
        stats.pings.load(Ordering::Relaxed)
    );
    let error_count = stats.error_count.load(Ordering::Relaxed);
    println!("client-side errors: {error_count}");
    for e in stats.errors.lock().unwrap().iter() {
        println!("  {e}");
    }
    phase_tx.send_replace(PHASE_CLOSE);
    let closing = futures_util::future::join_all(tasks);
    let _ = tokio::time::timeout(Duration::from_secs(20), closing).await;
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    println!(
        "after closing all: server VmRSS {} kB, {} fds",
        proc_status_kb(&server, "VmRSS"),
        fd_count(&server)
    );
    summary.insert(
        "health".into(),
        json!({"dropped_connections": dropped, "close_codes": closes, "client_errors": error_count,
               "server_rss_end_kb": rss3, "server_vmhwm_kb": proc_status_kb(&server, "VmHWM")}),
    );
    summary.insert("total_seconds".into(), json!(started.elapsed().as_secs()));
    println!("\nJSON {}", Value::Object(summary));
    Ok(())
}
