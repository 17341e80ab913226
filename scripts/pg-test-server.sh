#!/usr/bin/env bash
# A throw-away PostgreSQL server for the test suite.
#
#   scripts/pg-test-server.sh start   # install (Debian, as root) if needed, init, start;
#                                     # the URL is the last line of stdout
#   scripts/pg-test-server.sh url     # print the URL
#   scripts/pg-test-server.sh status  # exit 0 if running
#   scripts/pg-test-server.sh stop    # stop it (the data stays in .pgtest/)
#   scripts/pg-test-server.sh destroy # stop it and delete .pgtest/
#
#   export OPENLEDGER_TEST_PG_URL="$(scripts/pg-test-server.sh start | tail -n1)"
#
# The cluster lives in $REPO/.pgtest (gitignored; override with OPENLEDGER_TEST_PG_DIR),
# listens on 127.0.0.1 only, port ${OPENLEDGER_TEST_PG_PORT:-55432}, its unix socket in
# .pgtest/run, trust authentication (it is for local tests only: never expose it) and
# fsync off (fast, not crash-safe). As root it runs as the `postgres` OS user.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGTEST="${OPENLEDGER_TEST_PG_DIR:-$REPO/.pgtest}"
DATA="$PGTEST/data"
RUN="$PGTEST/run"
LOG="$PGTEST/postgres.log"
PORT="${OPENLEDGER_TEST_PG_PORT:-55432}"
DBNAME="openledger_test"
PGUSER_NAME="postgres"

log() { echo "pg-test-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

url() { echo "postgresql+psycopg://${PGUSER_NAME}@127.0.0.1:${1:-$PORT}/${DBNAME}"; }

find_bindir() {
    local initdb
    initdb="$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)"
    if [ -n "$initdb" ]; then
        dirname "$initdb"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

install_postgres() {
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and this is not root. Fix: run \
'sudo apt-get install -y postgresql' (or run this script as root), then retry."
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is \
missing. Fix: install PostgreSQL (initdb, pg_ctl) with your system's package manager."
    log "installing PostgreSQL (apt-get install postgresql)..."
    # Keep the package from starting its own cluster on port 5432 (we only need binaries).
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    local rc=0
    {
        apt-get update -q >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                postgresql >&2
    } || rc=$?
    [ "$added_policy" -eq 1 ] && rm -f "$policy"
    [ "$rc" -eq 0 ] || die "apt-get install postgresql failed (exit $rc). Fix: check the \
network and apt sources, then retry."
}

BINDIR=""
need_bindir() {
    BINDIR="$(find_bindir)"
    if [ -z "$BINDIR" ]; then
        install_postgres
        BINDIR="$(find_bindir)"
        [ -n "$BINDIR" ] || die "initdb not found after installing PostgreSQL."
    fi
}

# Run a PostgreSQL tool as the cluster owner: postgres refuses to run as root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$PGUSER_NAME" -- "$@")
    else
        "$@"
    fi
}

is_running() {
    [ -f "$DATA/PG_VERSION" ] && as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

running_port() {
    # Line 4 of postmaster.pid is the port the server listens on.
    sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || echo "$PORT"
}

prepare_dirs() {
    mkdir -p "$PGTEST" "$RUN"
    if [ "$(id -u)" -eq 0 ]; then
        id "$PGUSER_NAME" >/dev/null 2>&1 || die "no '$PGUSER_NAME' OS user. Fix: install \
the postgresql package (it creates the user), or run as a non-root user."
        chown -R "$PGUSER_NAME:" "$PGTEST"
        runuser -u "$PGUSER_NAME" -- test -w "$PGTEST" || die "the '$PGUSER_NAME' user \
cannot reach $PGTEST (a parent directory is not traversable). Fix: set \
OPENLEDGER_TEST_PG_DIR to a directory under /tmp, or chmod o+x the parent directories."
    fi
}

cmd_start() {
    need_bindir
    if is_running; then
        log "already running ($DATA)"
        url "$(running_port)"
        return 0
    fi
    prepare_dirs
    if [ ! -f "$DATA/PG_VERSION" ]; then
        log "initialising a cluster in $DATA"
        rm -rf "$DATA"
        as_owner "$BINDIR/initdb" -D "$DATA" -U "$PGUSER_NAME" -E UTF8 --no-locale \
            -A trust >"$PGTEST/initdb.log" 2>&1 ||
            die "initdb failed; see $PGTEST/initdb.log"
    fi
    log "starting PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') on \
127.0.0.1:$PORT"
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $RUN -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >&2 || die "PostgreSQL did not start; see $LOG (port $PORT in use? set \
OPENLEDGER_TEST_PG_PORT)"
    local i
    for i in $(seq 1 60); do
        if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U "$PGUSER_NAME"; then
            break
        fi
        [ "$i" -eq 60 ] && die "PostgreSQL is not ready after 30 s; see $LOG"
        sleep 0.5
    done
    local exists
    exists="$("$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U "$PGUSER_NAME" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")"
    if [ "$exists" != "1" ]; then
        "$BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U "$PGUSER_NAME" "$DBNAME"
        log "created database $DBNAME"
    fi
    url "$PORT"
}

cmd_stop() {
    need_bindir
    if is_running; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2
    else
        log "not running"
    fi
}

cmd_url() {
    BINDIR="$(find_bindir)"
    if [ -n "$BINDIR" ] && is_running; then
        url "$(running_port)"
    else
        url
    fi
}

cmd_status() {
    BINDIR="$(find_bindir)"
    if [ -n "$BINDIR" ] && is_running; then
        log "running on 127.0.0.1:$(running_port) ($DATA)"
    else
        log "not running"
        return 1
    fi
}

cmd_destroy() {
    BINDIR="$(find_bindir)"
    if [ -n "$BINDIR" ] && is_running; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >&2
    fi
    rm -rf "$PGTEST"
    log "removed $PGTEST"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
url) cmd_url ;;
status) cmd_status ;;
destroy) cmd_destroy ;;
*)
    echo "usage: $0 start|stop|url|status|destroy" >&2
    exit 2
    ;;
esac
