# Shared by the benchmark scripts (sourced, not run). The script sets ROOT, WORK and PG_PORT
# first; this gives it logging, a private PostgreSQL on 127.0.0.1:$PG_PORT with database
# `mycrm` at $DB_URL, the release binary at $MYCRM, and a cleanup that stops every process in
# PIDS and the cluster on exit.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/mycrm"

log() { printf '\n== %s\n' "$*" >&2; }
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
psql_q() { psql "$DB_URL" -XAtq -c "$1"; }

mkdir -p "$WORK"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

build_release() {
    # MYCRM_BIN: measure a release binary built beforehand (say, in another target dir).
    if [ -n "${MYCRM_BIN:-}" ]; then MYCRM=$MYCRM_BIN; return; fi
    log "building the release binary"
    (cd "$ROOT" && cargo build --release --locked -q)
    MYCRM="${CARGO_TARGET_DIR:-$ROOT/target}/release/mycrm"
}

# Starts the cluster in $WORK/pg (created on first use) with `shared_buffers=1GB` plus any
# extra server options given, pinned to the cores in PG_CPUS when set, and creates `mycrm`.
start_postgres() { # [extra server options]
    log "PostgreSQL on 127.0.0.1:$PG_PORT${PG_CPUS:+ (cores $PG_CPUS)}"
    if [ ! -f "$WORK/pg/PG_VERSION" ]; then
        rm -rf "$WORK/pg"
        mkdir -p "$WORK/pg"
        [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
        as_postgres "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    local pin=()
    [ -n "${PG_CPUS:-}" ] && pin=(taskset -c "$PG_CPUS")
    as_postgres "${pin[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w start -o \
        "-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp -c shared_buffers=1GB \
         -c log_min_messages=warning ${1:-}" >/dev/null
    if ! psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -XAtq \
        -c "SELECT 1 FROM pg_database WHERE datname = 'mycrm'" | grep -q 1; then
        psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Xq -c "CREATE DATABASE mycrm"
    fi
}

# Waits until the MyCRM server at 127.0.0.1:$1 answers /healthz (about 20 s at most).
wait_for_mycrm() { # port
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/healthz" && return 0
        sleep 0.2
    done
    echo "mycrm on port $1 did not come up" >&2
    return 1
}

# Logs in through the REST route and prints the access token.
mycrm_token() { # port email password
    curl -sf "http://127.0.0.1:$1/api/auth/login/" -H 'content-type: application/json' \
        -d "{\"username\": \"$2\", \"password\": \"$3\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
