# A real PostgreSQL for the tests, started by the test itself: its own
# cluster on a free port on 127.0.0.1, run as the `postgres` user (PostgreSQL
# refuses root). Sourced by e2e tests and by the metadata store tests' runner:
#   postgres_start    sets PG_URL (postgresql://larder@127.0.0.1:PORT/larder)
#   postgres_pause / postgres_resume   stop the server and start it again (data kept)
#   postgres_stop
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

postgres_start() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    PG_DIR=$(mktemp -d /tmp/larder-pg.XXXXXX)
    chown postgres: "$PG_DIR"
    local port
    port=$(free_port)
    runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 > "$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    PG_BIN=$bin PG_PORT=$port
    postgres_resume || return 1
    psql -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE USER larder" -c "CREATE DATABASE larder OWNER larder" > /dev/null
    PG_URL=postgresql://larder@127.0.0.1:$port/larder
}

postgres_resume() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off" start \
        > /dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
}

postgres_pause() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop > /dev/null
}

postgres_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop > /dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
    PG_DIR=
}
