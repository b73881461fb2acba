#!/usr/bin/env bash
# Live subscriptions benchmark (issue 8). One release `mycrm serve` on a private PostgreSQL and
# 10,000 WebSocket connections (graphql-transport-ws), each subscribed to `recordChanged` of
# its own lead; the client is examples/live_bench.rs (one tokio runtime, a task per
# connection). Events are written straight into `record_events`, each in its own transaction,
# as the CRM writes them; the trigger announces them at commit, so what is timed is exactly the
# fan-out from commit to the subscriber reading the message (latency = read time - the event's
# `occurredAt`, i.e. from the writing transaction's start: it includes that transaction, whose
# round trip is printed alongside).
#
# 1. Memory: the server's VmRSS before and after the 10,000 connections are open and
#    subscribed, divided by 10,000 (and the marginal cost from 1,000 to 10,000).
#    A check follows: one statement writes an event for every lead; each subscriber must get
#    exactly one.
# 2. One event to 1,000 subscribers: the first 1,000 connections also subscribe to one hot
#    lead; 200 events for it, one every 100 ms: latency p50/p99/max over all 200,000
#    deliveries and over each event's last delivery.
# 3. 1,000 events/s spread over all: 20 s of events for random leads among the 10,000, paced
#    from 8 database connections, each delivered to its lead's one subscriber: latency
#    p50/p99/max, achieved rate, events lost.
#
# Client, server and PostgreSQL share the machine: each phase prints the CPU each of them used
# (and "other": anything else running, e.g. a build; run it on an otherwise idle machine, or
# give PostgreSQL, the server and the client priority over it with NICE=-10, as root).
#
#   bash bench/live.sh      # BENCH_DIR=/tmp/mycrm-bench-live; SUBSCRIBERS=10000
#   NICE=-10 bash bench/live.sh                  # benchmark processes before anything else
#   SERVE_ARGS=--no-workers bash bench/live.sh   # without the in-process job workers
#   LIVE_BENCH_ARGS="--rate 500 --duration-s 10" bash bench/live.sh   # see live_bench --help
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/mycrm-bench-live}
PG_PORT=55439
PORT=18439
PASSWORD=bench-password-1
SUBSCRIBERS=${SUBSCRIBERS:-10000}
NICE=${NICE:-0}
source "$ROOT/bench/common.sh"

# Each side holds one socket per connection: raise the open files limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((SUBSCRIBERS + 1000)) ]; then
    echo "open files limit $(ulimit -n) is too low for $SUBSCRIBERS connections" >&2
    exit 1
fi

build_release
log "building the client (examples/live_bench.rs)"
(cd "$ROOT" && cargo build --release --locked --example live_bench -q)
start_postgres "-c max_connections=200 ${PG_OPTS:-}"
PG_PID=$(head -1 "$WORK/pg/postmaster.pid")
if [ "$NICE" != 0 ]; then # backends forked from now on inherit the postmaster's priority
    renice -n "$NICE" -p "$PG_PID" $(pgrep -P "$PG_PID") >/dev/null
fi
psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Xq -c "DROP DATABASE mycrm" \
    -c "CREATE DATABASE mycrm"
log "mycrm serve on 127.0.0.1:$PORT (open files limit $(ulimit -n))"
DATABASE_URL=$DB_URL MYCRM_ADMIN_EMAIL=ada@bench.example MYCRM_ADMIN_PASSWORD=$PASSWORD \
    RUST_LOG=${RUST_LOG:-warn,mycrm::events::live=info} nice -n "$NICE" "$MYCRM" serve \
    --data-dir "$WORK/var" --bind "127.0.0.1:$PORT" ${SERVE_ARGS:-} >"$WORK/mycrm.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
wait_for_mycrm "$PORT"

log "client: $SUBSCRIBERS subscribers"
{
    echo "MyCRM live subscriptions benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
        "$(free -g | awk '/^Mem:/ {print $2}') GB RAM; PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}')"
    echo "nice: $NICE (PostgreSQL, server, client)"
    rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if ! (cd "$ROOT" && git diff --quiet HEAD -- src migrations Cargo.toml 2>/dev/null); then
        rev="$rev + uncommitted changes"
    fi
    echo "git: ${BENCH_REV:-$rev}"
    nice -n "$NICE" "$ROOT/target/release/examples/live_bench" --url "http://127.0.0.1:$PORT" \
        --db "$DB_URL" --email ada@bench.example --password "$PASSWORD" --subscribers "$SUBSCRIBERS" \
        --server-pid "$SERVER_PID" --pg-pid "$PG_PID" \
        ${LIVE_BENCH_ARGS:-}
    echo
    echo "server log: $(grep -c ' WARN ' "$WORK/mycrm.log" || true) warnings," \
        "$(grep -c ' ERROR ' "$WORK/mycrm.log" || true) errors," \
        "$(grep -c 'dropping subscribers' "$WORK/mycrm.log" || true) slow-subscriber drops" \
        "($WORK/mycrm.log)"
    grep -E ' (WARN|ERROR) ' "$WORK/mycrm.log" | cut -d' ' -f2- | sort | uniq -c | sort -rn |
        head -10 || true
} 2>&1 | tee "$WORK/results.txt"
