#!/usr/bin/env bash
# A local InfluxDB 1.x for `make demo` / `make ui`: data under .data/influxdb, HTTP and
# RPC bound to 127.0.0.1, pidfile .data/influxdb/influxd.pid.
#   scripts/influxdb.sh start   -> prints the URL (reuses a running instance)
#   scripts/influxdb.sh stop    -> stops the pid in the pidfile
#   scripts/influxdb.sh url     -> prints the URL of the running instance
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${HA_PIPELINE_DATA_DIR:-$ROOT/.data}/influxdb"
PIDFILE="$DIR/influxd.pid"
PORTFILE="$DIR/http.port"
PORT="${INFLUXDB_PORT:-8086}"

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Set `key = value` in [section] ("" = top level) of `influxd config` output.
set_key() {
    awk -v sec="$1" -v key="$2" -v val="$3" '
        /^\[/ { cur = substr($0, 2, index($0, "]") - 2) }
        cur == sec && $1 == key && $2 == "=" { sub(/=.*/, "= " val) }
        { print }'
}

start() {
    if running; then
        echo "http://127.0.0.1:$(cat "$PORTFILE")"
        return
    fi
    mkdir -p "$DIR"
    port_free "$PORT" || PORT="$(free_port)"
    rpc="$(free_port)"
    influxd config 2>/dev/null \
        | set_key "" bind-address "\"127.0.0.1:$rpc\"" \
        | set_key "" reporting-enabled false \
        | set_key meta dir "\"$DIR/meta\"" \
        | set_key data dir "\"$DIR/data\"" \
        | set_key data wal-dir "\"$DIR/wal\"" \
        | set_key data query-log-enabled false \
        | set_key http bind-address "\"127.0.0.1:$PORT\"" \
        > "$DIR/influxdb.conf"
    nohup influxd -config "$DIR/influxdb.conf" >>"$DIR/influxd.log" 2>&1 </dev/null &
    echo $! > "$PIDFILE"
    echo "$PORT" > "$PORTFILE"
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/ping" 2>/dev/null \
           || python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/ping', timeout=1)" 2>/dev/null; then
            echo "http://127.0.0.1:$PORT"
            return
        fi
        running || break
        sleep 0.2
    done
    echo "influxdb.sh: influxd did not answer /ping; log: $DIR/influxd.log" >&2
    tail -20 "$DIR/influxd.log" >&2 || true
    stop
    exit 1
}

stop() {
    if running; then
        pid="$(cat "$PIDFILE")"
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) running && echo "http://127.0.0.1:$(cat "$PORTFILE")" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
