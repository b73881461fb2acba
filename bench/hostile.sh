#!/usr/bin/env bash
# Hostile-input benchmark (issue 22): every hostile request of the issue, sent anonymously at
# 20 requests/s in all, while wrk drives the contacts page of the read benchmark; and the same
# contacts page without the hostile load, for comparison.
#
#   bash bench/hostile.sh          # DURATION=30 (seconds) by default; BENCH_DIR=/tmp/mycrm-hostile
#
# Targets: each hostile request answered with its code in p99 < 50 ms; the contacts page loses
# < 10% of its requests/s under the hostile load.
#
# Layout (as bench/crm_read.sh): PostgreSQL and the release `mycrm serve` pinned to core 1, wrk
# and the hostile driver (bench/hostile_driver.py) on core 0; 32 connections for the page.
# Needs: cargo, wrk (apt-get install wrk), python3, PostgreSQL 15 server binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/mycrm-hostile}
DURATION=${DURATION:-30}
RATE=${RATE:-20}
CONNECTIONS=32
PG_PORT=55452
MYCRM_PORT=8131
PASSWORD=bench-password-1
PG_CPUS=1
source "$ROOT/bench/common.sh"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

build_release
start_postgres "-c max_connections=100"
if [ "$(psql_q "SELECT to_regclass('public.contacts') IS NOT NULL")" != t ] ||
    [ "$(psql_q "SELECT count(*) FROM contacts")" -lt 100000 ]; then
    log "loading the data set (mycrm demo)"
    DATABASE_URL=$DB_URL MYCRM_PASSWORD=$PASSWORD "$MYCRM" demo --data-dir "$WORK/var" --workspace-name "Bench" \
        --email-domain bench.example --companies 1000 --contacts 100000 --leads 100000 \
        --opportunities 20000 --tasks 20000 --activities 100000 --conversions 100
fi
DATABASE_URL=$DB_URL "$MYCRM" migrate --data-dir "$WORK/var" >/dev/null
psql_q "ANALYZE" >/dev/null

log "MyCRM (release, core 1)"
DATABASE_URL=$DB_URL RUST_LOG=error taskset -c 1 "$MYCRM" serve --data-dir "$WORK/var" \
    --bind "127.0.0.1:$MYCRM_PORT" --no-workers >"$WORK/mycrm.log" 2>&1 &
PIDS+=($!)
wait_for_mycrm "$MYCRM_PORT"
TOKEN=$(mycrm_token "$MYCRM_PORT" ada@bench.example "$PASSWORD")
URL="http://127.0.0.1:$MYCRM_PORT/graphql"

CONTACTS='{ contacts(first: 50, orderBy: [{field: CREATED_AT, direction: DESC}]) { edges { node { id firstName email company { name } owner { email } } } } }'
python3 -c 'import json, sys; print(json.dumps({"query": sys.argv[1]}))' "$CONTACTS" >"$WORK/contacts.json"
cat >"$WORK/contacts.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
local f = assert(io.open("$WORK/contacts.json"))
wrk.body = f:read("*a")
f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local errors = 0
  for _, t in ipairs(threads) do errors = errors + t:get("bad") end
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors + summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

page() { # label
    local line
    line=$(taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$WORK/contacts.lua" "$URL" |
        grep '^RESULT')
    printf '%-40s %s\n' "$1" "${line#RESULT }" | tee -a "$WORK/results.txt"
}

: >"$WORK/results.txt"
log "warm-up"
taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d5s -s "$WORK/contacts.lua" "$URL" >/dev/null
log "hostile requests alone (${RATE}/s for ${DURATION}s)"
taskset -c 0 python3 "$ROOT/bench/hostile_driver.py" "$URL" "$RATE" "$DURATION" >"$WORK/hostile-alone.json"
log "contacts page alone"
page "contacts page, no hostile load"
log "contacts page with the hostile requests at ${RATE}/s"
taskset -c 0 python3 "$ROOT/bench/hostile_driver.py" "$URL" "$RATE" "$DURATION" >"$WORK/hostile-loaded.json" &
DRIVER=$!
page "contacts page, hostile load"
wait "$DRIVER"
curl -sf -o /dev/null "http://127.0.0.1:$MYCRM_PORT/healthz" && echo "healthz: ok after the run" | tee -a "$WORK/results.txt"

python3 - "$WORK/hostile-alone.json" "$WORK/hostile-loaded.json" <<'PY' | tee -a "$WORK/results.txt"
import json, sys
alone, loaded = (json.load(open(p)) for p in sys.argv[1:3])
print(f"{'hostile request':42} {'sent':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99 loaded':>11}  codes")
for a, l in zip(alone, loaded):
    codes = ", ".join(f"{k} x{v}" for k, v in a["codes"].items())
    ok = "" if list(a["codes"]) == [a["expected"]] else "  <- expected " + a["expected"]
    print(f"{a['request']:42} {a['sent']:>5} {a['p50_ms']:>8} {a['p99_ms']:>8} {l['p99_ms']:>11}  {codes}{ok}")
PY
