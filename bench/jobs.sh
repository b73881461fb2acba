#!/usr/bin/env bash
# Job queue benchmark (issue 4): burn down 200,000 no-op jobs with one and with two
# `mycrm worker` processes (jobs/s), the enqueue-to-start latency of 1,000 sequential jobs on an
# idle queue (p50, p99, from the jobs' own created_at and started_at), how long the jobs of a
# SIGKILLed worker wait before they run again; then the same burn-down and latency for the peer,
# graphile-worker 0.17.3, on the same PostgreSQL in the same run, with its own perf-test task
# (log_if_999) and its `--once` runner at the same concurrency.
#
#   bash bench/jobs.sh        # JOBS=200000 CONCURRENCY=16 BENCH_DIR=/tmp/mycrm-bench-jobs
#                             # PEER=0 skips graphile-worker (needs node and npm)
#
# MyCRM jobs are enqueued the way `jobs::queue::enqueue_in` does it: INSERT plus pg_notify in
# one statement; graphile-worker's by its `add_jobs` / `add_job` functions.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/mycrm-bench-jobs}
JOBS=${JOBS:-200000}
CONCURRENCY=${CONCURRENCY:-16}
PG_PORT=55433
source "$ROOT/bench/common.sh"

build_release
# A fresh cluster every run: the burn-down figures depend on the table's history.
rm -rf "$WORK/pg"
start_postgres
DATABASE_URL=$DB_URL "$MYCRM" migrate --data-dir "$WORK/var" >/dev/null

# "<label> over N jobs: p50 .. ms, p99 .. ms" from a table's enqueue and start times.
latency_report() { # label table enqueued-column started-column
    psql_q "SELECT '$1 over ' || count(*) || ' jobs: p50 ' \
        || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM $4 - $3)) * 1000)::numeric, 2) \
        || ' ms, p99 ' \
        || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM $4 - $3)) * 1000)::numeric, 2) \
        || ' ms' FROM $2" | tee -a "$WORK/results.txt"
}

enqueue_all() {
    psql_q "INSERT INTO jobs (kind) SELECT 'system.noop' FROM generate_series(1, $JOBS); \
            SELECT pg_notify('mycrm_jobs', 'default')" >/dev/null
    psql_q "VACUUM ANALYZE jobs" >/dev/null
}

workers() { # count
    for _ in $(seq 1 "$1"); do
        DATABASE_URL=$DB_URL RUST_LOG=warn "$MYCRM" worker --data-dir "$WORK/var" \
            --concurrency "$CONCURRENCY" >>"$WORK/worker.log" 2>&1 &
        PIDS+=($!)
    done
}

stop_workers() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${PIDS[@]}" 2>/dev/null || true
    PIDS=()
}

burn_down() { # processes
    enqueue_all
    local start end
    start=$(date +%s.%N)
    workers "$1"
    while [ "$(psql_q "SELECT count(*) FROM jobs")" != 0 ]; do sleep 0.2; done
    end=$(date +%s.%N)
    stop_workers
    local completed
    completed=$(psql_q "SELECT count(*) FROM job_history WHERE state = 'completed'")
    python3 -c "import sys; s, e, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); \
print(f'burn-down {sys.argv[4]} worker process(es): {n} jobs in {e - s:.1f} s = {n / (e - s):.0f} jobs/s')" \
        "$start" "$end" "$JOBS" "$1" | tee -a "$WORK/results.txt"
    [ "$completed" -ge "$JOBS" ] || { echo "only $completed jobs completed" >&2; exit 1; }
    psql_q "TRUNCATE job_history" >/dev/null
}

: >"$WORK/results.txt"
log "burn-down, one worker process (concurrency $CONCURRENCY)"
burn_down 1
log "burn-down, two worker processes"
burn_down 2

log "enqueue-to-start latency, 1,000 sequential jobs on an idle queue"
workers 1
sleep 1
# One psql session enqueues the 1,000 jobs 10 ms apart (each job is long done by the next
# one): spawning a psql and a backend per job would compete with the worker for the two cores.
for i in $(seq 1 1000); do
    echo "WITH inserted AS (INSERT INTO jobs (kind, args) VALUES ('system.noop', '{\"n\": $i}') \
          RETURNING queue) SELECT pg_notify('mycrm_jobs', queue) FROM inserted;"
    echo "SELECT pg_sleep(0.01);"
done >"$WORK/latency.sql"
psql "$DB_URL" -XAtq -f "$WORK/latency.sql" >/dev/null
until [ "$(psql_q "SELECT count(*) FROM jobs")" = 0 ]; do sleep 0.05; done
stop_workers
latency_report latency job_history created_at started_at

log "recovery: the jobs of a SIGKILLed worker (default 20 s lease)"
psql_q "TRUNCATE job_history" >/dev/null
psql_q "INSERT INTO jobs (kind, args) SELECT 'system.sleep', '{\"seconds\": 30}' FROM generate_series(1, 4)" >/dev/null
workers 1
until [ "$(psql_q "SELECT count(*) FROM jobs WHERE state = 'running'")" = 4 ]; do sleep 0.05; done
kill -9 "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()
killed=$(date +%s.%N)
workers 1
until [ "$(psql_q "SELECT count(*) FROM jobs WHERE state = 'running' AND attempt = 2")" = 4 ]; do sleep 0.05; done
rerun=$(date +%s.%N)
stop_workers
psql_q "DELETE FROM jobs" >/dev/null
python3 -c "import sys; print(f'killed worker: its 4 jobs running again {float(sys.argv[2]) - float(sys.argv[1]):.1f} s after SIGKILL')" \
    "$killed" "$rerun" | tee -a "$WORK/results.txt"

if [ "${PEER:-1}" = 1 ]; then
    PEERS="$ROOT/bench/peers"
    [ -d "$PEERS/node_modules/graphile-worker" ] || (cd "$PEERS" && npm ci --no-audit --no-fund >/dev/null)
    GW="node $PEERS/node_modules/graphile-worker/dist/cli.js -c $DB_URL"
    cd "$ROOT/bench/graphile_worker"
    $GW --schema-only >/dev/null
    log "peer: graphile-worker $(node -p "require('$PEERS/node_modules/graphile-worker/package.json').version")"
    gw_burn_down() { # processes
        psql_q "SELECT graphile_worker.add_jobs(array_agg(ROW('log_if_999', json_build_object('id', i), \
                  NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec)) \
                FROM generate_series(1, $JOBS) i" >/dev/null
        psql_q "VACUUM ANALYZE graphile_worker._private_jobs" >/dev/null
        local start end pids=()
        start=$(date +%s.%N)
        for _ in $(seq 1 "$1"); do
            $GW --once -j "$CONCURRENCY" -m $((CONCURRENCY + 1)) >>"$WORK/graphile.log" 2>&1 &
            pids+=($!)
        done
        wait "${pids[@]}"
        end=$(date +%s.%N)
        local left
        left=$(psql_q "SELECT count(*) FROM graphile_worker._private_jobs")
        [ "$left" = 0 ] || { echo "graphile-worker left $left jobs" >&2; exit 1; }
        python3 -c "import sys; s, e, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); \
print(f'graphile-worker burn-down {sys.argv[4]} process(es): {n} jobs in {e - s:.1f} s = {n / (e - s):.0f} jobs/s')" \
            "$start" "$end" "$JOBS" "$1" | tee -a "$WORK/results.txt"
    }
    gw_burn_down 1
    gw_burn_down 2
    psql_q "CREATE TABLE bench_latency (id int, enqueued_at timestamptz, started_at timestamptz)" >/dev/null
    $GW -j "$CONCURRENCY" -m $((CONCURRENCY + 1)) >>"$WORK/graphile.log" 2>&1 &
    PIDS+=($!)
    sleep 2
    for i in $(seq 1 1000); do
        echo "SELECT graphile_worker.add_job('latency', json_build_object('id', $i, 'at', now()));"
        echo "SELECT pg_sleep(0.01);"
    done >"$WORK/gw-latency.sql"
    psql "$DB_URL" -XAtq -f "$WORK/gw-latency.sql" >/dev/null
    until [ "$(psql_q "SELECT count(*) FROM bench_latency")" = 1000 ]; do sleep 0.05; done
    stop_workers
    latency_report "graphile-worker latency" bench_latency enqueued_at started_at
fi

log "results"
cat "$WORK/results.txt"
