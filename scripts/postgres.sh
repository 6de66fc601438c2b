#!/usr/bin/env bash
# A private PostgreSQL server for Herald's tests and benchmarks, on loopback.
#
#   scripts/postgres.sh start   # install if missing, initialise, start; prints the URL
#   scripts/postgres.sh stop    # stop it (the data directory stays)
#   scripts/postgres.sh url     # print the URL
#
# It uses Debian's `postgresql` package (installed with apt-get when no server
# binaries are found and we are root). The cluster lives in $HERALD_PG_DIR
# (default /tmp/herald-pg), listens on 127.0.0.1:$HERALD_PG_PORT (default
# 54329) with trust authentication for the `postgres` superuser, and never
# touches the system's own cluster. Tests reach it through HERALD_TEST_PG
# (tests/common/pg.rs starts it through this script when that is unset).
#
# fsync is off by default: the tests kill Herald, never the server, so the
# server's own durability is not what they test, and fsync on a shared CI disk
# costs minutes. Benchmarks set HERALD_PG_FSYNC=on (BENCHMARKS.md says which).
set -euo pipefail

DIR="${HERALD_PG_DIR:-/tmp/herald-pg}"
PORT="${HERALD_PG_PORT:-54329}"
FSYNC="${HERALD_PG_FSYNC:-off}"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"

find_bin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
            echo "$d"
            return 0
        fi
    done
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

install() {
    if find_bin >/dev/null; then return 0; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "postgres.sh: installing Debian's postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends postgresql >&2
        # Debian's package starts its own cluster on 5432; we do not use it.
        find_bin >/dev/null && return 0
    fi
    echo "postgres.sh: no PostgreSQL server binaries found; install Debian's postgresql package" >&2
    exit 1
}

# Run a server binary as the user that owns the cluster: PostgreSQL refuses
# to run as root, so as root we use the `postgres` account the package made.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$DIR/data/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

start() {
    install
    BIN="$(find_bin)"
    if running; then
        echo "$URL"
        return 0
    fi
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        as_owner "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$DIR/initdb.log" 2>&1 ||
            { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=$FSYNC -c max_connections=300 -c shared_buffers=128MB" \
        start >&2 || { tail -n 30 "$DIR/server.log" >&2; exit 1; }
    echo "$URL"
}

stop() {
    BIN="$(find_bin)" || exit 0
    if running; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    install) install ;;
    *) echo "usage: $0 start|stop|url|install" >&2; exit 2 ;;
esac
