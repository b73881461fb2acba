#!/usr/bin/env bash
# Workflow engine benchmark (issue 7). A release `mycrm serve` (in-process workers) on a
# private PostgreSQL, a workspace with 1,000 leads and 100 active workflows of mixed triggers
# and conditions (bench/workflows_driver.py lists them), then:
#
# 1. Throughput: 100,000 lead changes committed at once to the change stream (record_events,
#    as the CRM writes them); timed until the `workflows` consumer's cursor has passed them
#    all: events matched per second. About 5% start a run, whose jobs run meanwhile.
# 2. Latency: 500 changes per second for 20 s, each in its own transaction; for the changes
#    that start a run (1 in 10), the time from the change's commit to its run's first action
#    taking effect (its step committed): p50 and p99.
#
#   bash bench/workflows.sh      # BENCH_DIR=/tmp/mycrm-bench-workflows
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/mycrm-bench-workflows}
PG_PORT=55437
PORT=18437
PASSWORD=bench-password-1
source "$ROOT/bench/common.sh"

log "psycopg in $WORK/venv (the paced driver)"
if [ ! -x "$WORK/venv/bin/python" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q "psycopg[binary]"
fi

build_release
start_postgres "${PG_OPTS:-}"
psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Xq -c "DROP DATABASE mycrm" \
    -c "CREATE DATABASE mycrm"
DATABASE_URL=$DB_URL MYCRM_ADMIN_EMAIL=ada@bench.example MYCRM_ADMIN_PASSWORD=$PASSWORD \
    RUST_LOG=warn "$MYCRM" serve --data-dir "$WORK/var" --bind "127.0.0.1:$PORT" \
    --workflow-runs-per-minute 1000000 >"$WORK/mycrm.log" 2>&1 &
PIDS+=($!)
wait_for_mycrm "$PORT"
TOKEN=$(mycrm_token "$PORT" ada@bench.example "$PASSWORD")

"$WORK/venv/bin/python" "$ROOT/bench/workflows_driver.py" \
    --graphql "http://127.0.0.1:$PORT/graphql" --token "$TOKEN" --db "$DB_URL" \
    | tee "$WORK/results.txt"
