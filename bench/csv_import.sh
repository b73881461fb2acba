#!/usr/bin/env bash
# CSV import benchmark (issue 5): import a generated 1,000,000-row leads CSV through
# `POST /api/v1/import/leads/` (full validation, change-stream events, undo records; run as a
# background job) and compare with PostgreSQL's own `COPY ... FROM` of the same file into a
# bare table of the same columns, the physical limit on this machine. Reports rows/s for both
# and the server's peak RSS. Each run starts from an empty database.
#
#   bash bench/csv_import.sh      # ROWS=1000000 BENCH_DIR=/tmp/mycrm-bench-import
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/mycrm-bench-import}
ROWS=${ROWS:-1000000}
PG_PORT=55435
PORT=18435
PASSWORD=bench-password-1
source "$ROOT/bench/common.sh"

FILE="$WORK/leads_$ROWS.csv"
if [ ! -f "$FILE" ]; then
    log "generating $FILE"
    python3 - "$FILE" "$ROWS" <<'PY'
import csv, random, sys
path, n = sys.argv[1], int(sys.argv[2])
random.seed(7)
sources = ["website", "referral", "social_media", "email_campaign", "cold_call", "trade_show", "event", "other"]
statuses = ["new", "contacted", "qualified", "unqualified", "lost"]
titles = ["CEO", "VP Sales", "Head of Growth", "Engineer", "Director of IT", "Office Manager"]
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["first_name", "last_name", "email", "phone", "company_name", "job_title",
                "industry", "company_size", "country", "city", "lead_source", "status",
                "priority", "estimated_value", "probability", "next_follow_up_at", "notes", "tags"])
    for i in range(n):
        w.writerow([f"First{i}", f"Last{i % 977}", f"lead{i}@bench-import.example",
                    f"+1 555 {i % 10000:04d}", f"Company {i % 5000}", random.choice(titles),
                    random.choice(["Software", "Retail", "Health", "Finance"]),
                    random.randint(1, 5000), "United States", random.choice(["Austin", "Boston", "Denver"]),
                    random.choice(sources), random.choice(statuses),
                    random.choice(["low", "medium", "high", "urgent"]),
                    f"{random.randint(100, 100000)}.{random.randint(0, 99):02d}", random.randint(0, 100),
                    f"2027-0{random.randint(1, 9)}-1{random.randint(0, 9)}T09:30:00Z",
                    "Met at the trade show" if i % 3 == 0 else "", "vip;emea" if i % 5 == 0 else ""])
PY
fi
BYTES=$(stat -c %s "$FILE")

build_release
start_postgres "${PG_OPTS:-}"
psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Xq -c "DROP DATABASE mycrm" \
    -c "CREATE DATABASE mycrm"
DATABASE_URL=$DB_URL "$MYCRM" migrate --data-dir "$WORK/var" >/dev/null

: >"$WORK/results.txt"
log "PostgreSQL: COPY ... FROM the same file into a bare table of the same columns"
psql_q "CREATE TABLE bare_leads (first_name text, last_name text, email text, phone text,
    company_name text, job_title text, industry text, company_size integer, country text,
    city text, lead_source text, status text, priority text, estimated_value numeric(18,2),
    probability smallint, next_follow_up_at timestamptz, notes text, tags text)" >/dev/null
start=$(date +%s.%N)
psql "$DB_URL" -Xq -c "\\copy bare_leads FROM '$FILE' WITH (FORMAT csv, HEADER)"
end=$(date +%s.%N)
python3 -c "import sys; s, e, n = map(float, sys.argv[1:4]); \
print(f'COPY FROM: {int(n)} rows in {e - s:.2f} s = {n / (e - s):,.0f} rows/s')" \
    "$start" "$end" "$ROWS" | tee -a "$WORK/results.txt"

# The same rows into a table shaped like `leads` (its columns, checks, generated search column
# and all nine indexes, trigram GIN included; `LIKE leads INCLUDING ALL`), from the bare table
# with one INSERT ... SELECT: what PostgreSQL alone needs to put the file where an import
# must put it. No events, no validation, no undo records.
log "PostgreSQL: the same rows into a copy of the leads table, indexes included"
psql_q "CREATE TABLE indexed_leads (LIKE leads INCLUDING ALL)" >/dev/null
start=$(date +%s.%N)
psql_q "INSERT INTO indexed_leads (workspace_id, first_name, last_name, email, phone, company_name,
    job_title, industry, company_size, country, city, lead_source, status, priority,
    estimated_value, probability, next_follow_up_at, notes, tags, owner_id)
  SELECT 1, first_name, last_name, email, phone, company_name, job_title, industry,
    company_size, country, city, lead_source, status, priority, estimated_value, probability,
    next_follow_up_at, nullif(notes, ''), coalesce(string_to_array(nullif(tags, ''), ';'), '{}'), 1
  FROM bare_leads" >/dev/null
end=$(date +%s.%N)
copied=$(python3 -c "import sys; print(float(sys.argv[1]))" "$(grep -o '[0-9.]* s =' "$WORK/results.txt" | head -1 | cut -d' ' -f1)")
python3 -c "import sys; s, e, n, c = map(float, sys.argv[1:5]); \
print(f'COPY FROM + INSERT into an indexed copy of leads: {int(n)} rows in {c + e - s:.2f} s = {n / (c + e - s):,.0f} rows/s \
(INSERT ... SELECT alone {e - s:.2f} s)')" \
    "$start" "$end" "$ROWS" "$copied" | tee -a "$WORK/results.txt"
psql_q "DROP TABLE bare_leads; DROP TABLE indexed_leads" >/dev/null

log "MyCRM: POST /api/v1/import/leads/ (background job, 1 worker process in-process)"
DATABASE_URL=$DB_URL MYCRM_ADMIN_EMAIL=ada@bench.example MYCRM_ADMIN_PASSWORD=$PASSWORD \
    RUST_LOG=warn "$MYCRM" serve --data-dir "$WORK/var" --bind "127.0.0.1:$PORT" \
    --import-max-mb 1000 --import-inline-rows 0 >"$WORK/mycrm.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
wait_for_mycrm "$PORT"
TOKEN=$(mycrm_token "$PORT" ada@bench.example "$PASSWORD")
rss_before=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
start=$(date +%s.%N)
IMPORT=$(curl -sf -H "Authorization: Bearer $TOKEN" -F "file=@$FILE;type=text/csv" \
    "http://127.0.0.1:$PORT/api/v1/import/leads/" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["import_id"])')
uploaded=$(date +%s.%N)
rss_upload=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
# A progress line every 5 s (and the server's RSS over time in $WORK/rss.log).
: >"$WORK/rss.log"
polls=0
while :; do
    line=$(curl -sf "http://127.0.0.1:$PORT/graphql" -H "Authorization: Bearer $TOKEN" \
        -H 'content-type: application/json' \
        -d "{\"query\": \"{ import(id: \\\"$IMPORT\\\") { status imported errors } }\"}")
    status=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["import"]["status"])')
    case $status in completed | failed) break ;; esac
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
    done_rows=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["import"]["imported"])')
    echo "$(date +%s) $done_rows $rss" >>"$WORK/rss.log"
    polls=$((polls + 1))
    if [ $((polls % 10)) = 0 ]; then
        printf '\r%s rows imported, RSS %s MB   ' "$done_rows" "$((rss / 1024))" >&2
    fi
    sleep 0.5
done
echo >&2
end=$(date +%s.%N)
rss_peak=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
echo "$line"
imported=$(psql_q "SELECT count(*) FROM leads")
[ "$imported" = "$ROWS" ] || { echo "imported $imported rows, expected $ROWS" >&2; exit 1; }
python3 -c "import sys; s, u, e, n, rss, before, size = map(float, sys.argv[1:8]); \
print(f'MyCRM import: {int(n)} rows ({size / 1e6:.0f} MB) in {e - s:.2f} s = {n / (e - s):,.0f} rows/s \
(upload {u - s:.2f} s, import {e - u:.2f} s); server peak RSS {rss / 1024:.0f} MB \
(before: {before / 1024:.0f} MB, after the upload: {float(sys.argv[8]) / 1024:.0f} MB)')" \
    "$start" "$uploaded" "$end" "$imported" "$rss_peak" "$rss_before" "$BYTES" "$rss_upload" |
    tee -a "$WORK/results.txt"

log "results"
cat "$WORK/results.txt"
