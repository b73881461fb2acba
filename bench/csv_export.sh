#!/usr/bin/env bash
# CSV export benchmark (issue 5): export 1,000,000 leads through `GET /api/v1/export/leads/`
# (every column, streamed) and compare with PostgreSQL's own `COPY leads TO` of the same table,
# the physical limit on this machine. Reports rows/s for both and the server's peak RSS.
#
#   bash bench/csv_export.sh      # LEADS=1000000 BENCH_DIR=/tmp/mycrm-bench-csv
#
# The import half of issue 5's benchmark is bench/csv_import.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/mycrm-bench-csv}
LEADS=${LEADS:-1000000}
PG_PORT=55434
PORT=18434
PASSWORD=bench-password-1
source "$ROOT/bench/common.sh"

build_release
start_postgres
DATABASE_URL=$DB_URL "$MYCRM" migrate --data-dir "$WORK/var" >/dev/null
if [ "$(psql_q "SELECT count(*) FROM leads")" -lt "$LEADS" ]; then
    log "loading $LEADS leads (mycrm demo)"
    DATABASE_URL=$DB_URL MYCRM_PASSWORD=$PASSWORD "$MYCRM" demo --data-dir "$WORK/var" \
        --workspace-name "Bench" --email-domain bench.example --companies 10 --contacts 10 \
        --leads "$LEADS" --opportunities 0 --tasks 0 --activities 0 --conversions 0
    psql_q "VACUUM ANALYZE leads" >/dev/null
fi
ROWS=$(psql_q "SELECT count(*) FROM leads WHERE deleted_at IS NULL")

: >"$WORK/results.txt"
log "PostgreSQL: COPY leads TO (CSV, to a file through psql, as curl writes the export)"
start=$(date +%s.%N)
psql "$DB_URL" -Xq -c "\\copy leads TO '$WORK/copy.csv' WITH (FORMAT csv, HEADER)"
rm -f "$WORK/copy.csv"
end=$(date +%s.%N)
python3 -c "import sys; s, e, n = map(float, sys.argv[1:4]); \
print(f'COPY leads TO: {int(n)} rows in {e - s:.2f} s = {n / (e - s):,.0f} rows/s')" \
    "$start" "$end" "$ROWS" | tee -a "$WORK/results.txt"

log "MyCRM: GET /api/v1/export/leads/ (every column)"
DATABASE_URL=$DB_URL RUST_LOG=warn "$MYCRM" serve --data-dir "$WORK/var" --bind "127.0.0.1:$PORT" \
    --no-workers >"$WORK/mycrm.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
wait_for_mycrm "$PORT"
TOKEN=$(mycrm_token "$PORT" ada@bench.example "$PASSWORD")
rss_before=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
start=$(date +%s.%N)
curl -sf -H "Authorization: Bearer $TOKEN" -o "$WORK/leads.csv" \
    "http://127.0.0.1:$PORT/api/v1/export/leads/"
end=$(date +%s.%N)
rss_peak=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
exported=$(($(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))))' "$WORK/leads.csv") - 1))
[ "$exported" = "$ROWS" ] || { echo "exported $exported rows, expected $ROWS" >&2; exit 1; }
python3 -c "import sys; s, e, n = map(float, sys.argv[1:4]); \
print(f'MyCRM export: {int(n)} rows in {e - s:.2f} s = {n / (e - s):,.0f} rows/s; \
{float(sys.argv[5]) / 1024:.1f} MB CSV; server peak RSS {float(sys.argv[4]) / 1024:.0f} MB \
(before the export: {float(sys.argv[6]) / 1024:.0f} MB)')" \
    "$start" "$end" "$exported" "$rss_peak" "$(($(stat -c %s "$WORK/leads.csv") / 1024))" "$rss_before" |
    tee -a "$WORK/results.txt"
rm -f "$WORK/leads.csv"

log "results"
cat "$WORK/results.txt"
