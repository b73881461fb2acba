#!/usr/bin/env bash
# CRM read benchmark (issue 3): MyCRM against PostGraphile 4 on the same PostgreSQL database.
#
#   bash bench/crm_read.sh            # DURATION=30s by default; BENCH_DIR=/tmp/mycrm-bench
#
# What it does:
#   1. starts a private PostgreSQL 15 cluster on 127.0.0.1:55432 (as the postgres user when
#      run as root), pinned to core 1;
#   2. loads the data set once with `mycrm demo`: 1,000 companies, 100,000 contacts and 100,000
#      leads with owners (plus opportunities, tasks, activities);
#   3. runs the release `mycrm serve` and PostGraphile 4 (bench/peers) against that database,
#      both pinned to core 1, in turn;
#   4. drives each with wrk on core 0, 32 connections, one thread, for two queries: a contacts
#      page with company and owner, and a leads search; every answer is checked (a GraphQL
#      error or a non-200 counts as an error and is reported);
#   5. prints requests/s and latency percentiles per server and query, and the plan of
#      MyCRM's search query (auto_explain of the real statement);
#   6. measures the ceilings: PostgreSQL alone running MyCRM's statements for each answer
#      (pgbench, no HTTP server), and async-graphql alone executing the contacts page from
#      memory (examples/graphql_floor.rs).
#
# Needs: cargo, wrk (apt-get install wrk), node + npm (PostGraphile is installed into
# bench/peers/node_modules from its package-lock.json), PostgreSQL 15 server binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/mycrm-bench}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
CONNECTIONS=32
# Where PostgreSQL runs: with the server under test (1, the default) or with wrk (0).
PG_CORES=${PG_CORES:-1}
PG_PORT=55432
MYCRM_PORT=8101
PEER_PORT=8102
PASSWORD=bench-password-1
PG_CPUS=$PG_CORES
source "$ROOT/bench/common.sh"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

build_release
log "installing the peer"
(cd "$ROOT/bench/peers" && npm ci --no-audit --no-fund --silent)
POSTGRAPHILE="$ROOT/bench/peers/node_modules/.bin/postgraphile"

start_postgres "-c max_connections=100 -c shared_preload_libraries=auto_explain"
if [ "$(psql_q "SELECT to_regclass('public.leads') IS NOT NULL")" != t ] ||
    [ "$(psql_q "SELECT count(*) FROM leads")" -lt 100000 ]; then
    log "loading the data set (mycrm demo)"
    DATABASE_URL=$DB_URL MYCRM_PASSWORD=$PASSWORD "$MYCRM" demo --data-dir "$WORK/var" --workspace-name "Bench" \
        --email-domain bench.example --companies 1000 --contacts 100000 --leads 100000 \
        --opportunities 20000 --tasks 20000 --activities 100000 --conversions 100
fi
# Migrations first (a data set loaded by an older build may lack some), then fresh statistics,
# so that plans do not depend on when autovacuum last sampled the tables.
DATABASE_URL=$DB_URL "$MYCRM" migrate --data-dir "$WORK/var" >/dev/null
psql_q "ANALYZE" >/dev/null
WORKSPACE=$(psql_q "SELECT id FROM workspaces WHERE name = 'Bench'")
psql_q "SELECT 'rows: ' || (SELECT count(*) FROM companies) || ' companies, ' \
    || (SELECT count(*) FROM contacts) || ' contacts, ' || (SELECT count(*) FROM leads) \
    || ' leads, ' || (SELECT count(*) FROM users) || ' users'" >&2

CONTACTS_MYCRM='{ contacts(first: 50, orderBy: [{field: CREATED_AT, direction: DESC}]) { edges { node { id firstName email company { name } owner { email } } } } }'
SEARCH_MYCRM='{ leads(search: "acme", first: 50) { edges { node { id firstName lastName email companyName owner { email } } } } }'
# PostGraphile sees every workspace: the condition gives it the same rows MyCRM's scope gives.
CONTACTS_PEER="{ allContacts(first: 50, orderBy: [CREATED_AT_DESC, ID_DESC], condition: {workspaceId: \"$WORKSPACE\", deletedAt: null}) { edges { node { id firstName email companyByCompanyId { name } userByOwnerId { email } } } } }"
SEARCH_PEER="{ allLeads(first: 50, orderBy: [CREATED_AT_DESC, ID_DESC], condition: {workspaceId: \"$WORKSPACE\", deletedAt: null}, filter: {searchText: {includes: \"acme\"}}) { edges { node { id firstName lastName email companyName userByOwnerId { email } } } } }"

# The JSON request body of a query, in a file (wrk and curl both read it).
body_file() { # file query
    python3 -c 'import json, sys; print(json.dumps({"query": sys.argv[1]}))' "$2" >"$1"
}

# A wrk script posting one GraphQL query; answers that are not 200 or carry "errors" count.
wrk_script() { # file body-file token
    local auth=""
    [ -n "$3" ] && auth="wrk.headers[\"Authorization\"] = \"Bearer $3\""
    cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
$auth
local f = assert(io.open("$2"))
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
  io.write(string.format("RESULT requests=%d rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors + summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
EOF
}

# Checks one answer by hand before measuring: 50 edges, no errors.
check_answer() { # url body-file token label
    local answer
    answer=$(curl -sf "$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} \
        -d @"$2")
    python3 - "$4" "$answer" <<'EOF'
import json, sys
label, answer = sys.argv[1], json.loads(sys.argv[2])
assert "errors" not in answer, answer
edges = next(iter(answer["data"].values()))["edges"]
assert len(edges) == 50, (label, len(edges))
print(f"{label}: 50 rows, first {json.dumps(edges[0]['node'])[:160]}", file=sys.stderr)
EOF
}

measure() { # label script url
    taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" -s "$2" "$3" >/dev/null
    local line
    line=$(taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 10s -s "$2" "$3" | grep '^RESULT')
    printf '%-34s %s\n' "$1" "${line#RESULT }" | tee -a "$WORK/results.txt"
}

wait_for() { # url: up when it answers a GraphQL POST
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "$1" -H 'content-type: application/json' \
            -d '{"query": "{ __typename }"}' && return 0
        sleep 0.2
    done
    echo "server at $1 did not come up" >&2
    return 1
}

: >"$WORK/results.txt"

log "MyCRM (release, core 1)"
DATABASE_URL=$DB_URL RUST_LOG=warn taskset -c 1 "$MYCRM" serve --data-dir "$WORK/var" --bind "127.0.0.1:$MYCRM_PORT" \
    --no-workers >"$WORK/mycrm.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$MYCRM_PORT/graphql"
TOKEN=$(mycrm_token "$MYCRM_PORT" ada@bench.example "$PASSWORD")
URL="http://127.0.0.1:$MYCRM_PORT/graphql"
body_file "$WORK/mycrm-contacts.json" "$CONTACTS_MYCRM"
body_file "$WORK/mycrm-search.json" "$SEARCH_MYCRM"
check_answer "$URL" "$WORK/mycrm-contacts.json" "$TOKEN" "mycrm contacts"
check_answer "$URL" "$WORK/mycrm-search.json" "$TOKEN" "mycrm search"
wrk_script "$WORK/mycrm-contacts.lua" "$WORK/mycrm-contacts.json" "$TOKEN"
wrk_script "$WORK/mycrm-search.lua" "$WORK/mycrm-search.json" "$TOKEN"
measure "mycrm contacts page" "$WORK/mycrm-contacts.lua" "$URL"
measure "mycrm leads search" "$WORK/mycrm-search.lua" "$URL"

log "the plan of MyCRM's search query (auto_explain, one request)"
psql_q "ALTER SYSTEM SET auto_explain.log_min_duration = 0" >/dev/null
psql_q "ALTER SYSTEM SET auto_explain.log_analyze = on" >/dev/null
psql_q "ALTER SYSTEM SET auto_explain.log_buffers = on" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
mark=$(wc -l <"$WORK/pg/server.log")
check_answer "$URL" "$WORK/mycrm-search.json" "$TOKEN" "mycrm search (explained)"
psql_q "ALTER SYSTEM RESET ALL" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
tail -n +"$((mark + 1))" "$WORK/pg/server.log" |
    awk '/Query Text: SELECT leads\.\* FROM leads/ {on = 1} on && !/^\t/ {on = 0} on' \
    >"$WORK/search-plan.txt"
cat "$WORK/search-plan.txt" >&2
# The same statement for a rare term (one person's email): the trigram index answers it.
psql "$DB_URL" -Xq -c "EXPLAIN (ANALYZE, BUFFERS) SELECT leads.* FROM leads \
    WHERE leads.workspace_id = $WORKSPACE AND leads.deleted_at IS NULL \
    AND (leads.search_text LIKE '%olivia.lewis5%') \
    ORDER BY leads.created_at DESC, leads.id DESC LIMIT 51" | tee "$WORK/search-plan-rare.txt" >&2
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()

log "PostGraphile 4 (core 1)"
NODE_ENV=production taskset -c 1 "$POSTGRAPHILE" -c "$DB_URL" --host 127.0.0.1 --port "$PEER_PORT" \
    --schema public --append-plugins postgraphile-plugin-connection-filter \
    --disable-query-log --disable-graphiql >"$WORK/postgraphile.log" 2>&1 &
PIDS+=($!)
PEER_URL="http://127.0.0.1:$PEER_PORT/graphql"
wait_for "$PEER_URL"
body_file "$WORK/peer-contacts.json" "$CONTACTS_PEER"
body_file "$WORK/peer-search.json" "$SEARCH_PEER"
check_answer "$PEER_URL" "$WORK/peer-contacts.json" "" "postgraphile contacts"
check_answer "$PEER_URL" "$WORK/peer-search.json" "" "postgraphile search"
wrk_script "$WORK/peer-contacts.lua" "$WORK/peer-contacts.json" ""
wrk_script "$WORK/peer-search.lua" "$WORK/peer-search.json" ""
measure "postgraphile contacts page" "$WORK/peer-contacts.lua" "$PEER_URL"
measure "postgraphile leads search" "$WORK/peer-search.lua" "$PEER_URL"

kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()

# The ceilings no server can pass on this machine, measured the same way:
# - PostgreSQL alone: pgbench (where wrk runs, same connections, one thread) sending exactly
#   the statements MyCRM sends for one answer (the search is planned per call: the extended
#   protocol; the contacts page uses prepared statements), with no HTTP server at all;
# - async-graphql alone: examples/graphql_floor.rs executing the contacts page from memory on
#   the server's core.
log "ceilings: PostgreSQL alone (pgbench) and async-graphql alone"
PAGE="SELECT contacts.* FROM contacts WHERE contacts.workspace_id = $WORKSPACE AND contacts.deleted_at IS NULL ORDER BY contacts.created_at DESC, contacts.id DESC LIMIT 51"
COMPANY_IDS=$(psql_q "SELECT string_agg(DISTINCT company_id::text, ',') FROM ($PAGE) p")
OWNER_IDS=$(psql_q "SELECT string_agg(DISTINCT owner_id::text, ',') FROM ($PAGE) p")
SEARCH_OWNER_IDS=$(psql_q "SELECT string_agg(DISTINCT owner_id::text, ',') FROM (SELECT owner_id \
    FROM leads WHERE workspace_id = $WORKSPACE AND deleted_at IS NULL AND search_text LIKE '%acme%' \
    ORDER BY created_at DESC, id DESC LIMIT 51) p")
USERS="SELECT users.id, users.workspace_id, users.email, users.name, users.role, users.is_active, \
users.last_login_at, users.deactivated_at, users.created_at, users.updated_at FROM users"
{
    echo "$PAGE;"
    echo "SELECT companies.* FROM companies WHERE companies.workspace_id = $WORKSPACE AND companies.id = ANY('{$COMPANY_IDS}');"
    echo "$USERS WHERE users.id = ANY('{$OWNER_IDS}') AND users.workspace_id = $WORKSPACE;"
} >"$WORK/pgbench-contacts.sql"
{
    echo "SELECT leads.* FROM leads WHERE leads.workspace_id = $WORKSPACE AND leads.deleted_at IS NULL AND (leads.search_text LIKE '%acme%') ORDER BY leads.created_at DESC, leads.id DESC LIMIT 51;"
    echo "$USERS WHERE users.id = ANY('{$SEARCH_OWNER_IDS}') AND users.workspace_id = $WORKSPACE;"
} >"$WORK/pgbench-search.sql"
pg_ceiling() { # label protocol script
    local tps
    tps=$(taskset -c 0 "$PG_BIN/pgbench" -n -M "$2" -c "$CONNECTIONS" -j 1 -T "${DURATION%s}" \
        -f "$3" "$DB_URL" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
    printf '%-34s rps=%s (PostgreSQL alone: its statements for one answer, %s protocol)\n' \
        "$1" "$tps" "$2" | tee -a "$WORK/results.txt"
}
pg_ceiling "ceiling contacts page" prepared "$WORK/pgbench-contacts.sql"
pg_ceiling "ceiling leads search" extended "$WORK/pgbench-search.sql"
(cd "$ROOT" && cargo build --release --locked -q --example graphql_floor)
printf '%-34s %s\n' "floor async-graphql contacts page" \
    "$(taskset -c 1 "$ROOT/target/release/examples/graphql_floor" 20000)" | tee -a "$WORK/results.txt"

log "results ($DURATION per run, $CONNECTIONS connections, wrk on core 0, server on core 1, PostgreSQL on core $PG_CORES)"
cat "$WORK/results.txt"
