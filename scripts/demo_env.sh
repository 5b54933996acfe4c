# Sourced by demo.sh and ui.sh: start the simulated home and a local InfluxDB, export the
# environment the code location reads, and stop both again (by their pids) on exit.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
export HA_PIPELINE_DATA_DIR="${HA_PIPELINE_DATA_DIR:-$ROOT/.data}"
export DAGSTER_HOME="${DAGSTER_HOME:-$HA_PIPELINE_DATA_DIR/dagster_home}"
SIM_PIDFILE="$HA_PIPELINE_DATA_DIR/simulator.pid"
DEMO_STARTED_INFLUX=0

start_demo_servers() {
    mkdir -p "$HA_PIPELINE_DATA_DIR" "$DAGSTER_HOME"
    cp "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"

    if [[ -z "${HA_URL:-}" ]]; then
        # No real HA given: serve the simulated home on a free loopback port.
        local port
        port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        export HA_TOKEN="demo-simulator-token"
        export HA_URL="http://127.0.0.1:$port"
        "$PY" -m ha_pipeline.simulator --port "$port" --token "$HA_TOKEN" \
            >"$HA_PIPELINE_DATA_DIR/simulator.log" 2>&1 </dev/null &
        echo $! > "$SIM_PIDFILE"
        for _ in $(seq 1 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            kill -0 "$(cat "$SIM_PIDFILE")" 2>/dev/null || break
            sleep 0.2
        done
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "demo: the simulator did not start; log: $HA_PIPELINE_DATA_DIR/simulator.log" >&2
            tail -20 "$HA_PIPELINE_DATA_DIR/simulator.log" >&2
            return 1
        fi
        echo "demo: simulated home at $HA_URL"
    else
        echo "demo: using Home Assistant at $HA_URL"
    fi

    if [[ -z "${INFLUXDB_URL:-}" ]]; then
        INFLUXDB_URL="$("$ROOT/scripts/influxdb.sh" start)"
        export INFLUXDB_URL
        export INFLUXDB_API_VERSION=1
        DEMO_STARTED_INFLUX=1
        echo "demo: InfluxDB $INFLUXDB_URL (data in $HA_PIPELINE_DATA_DIR/influxdb)"
    fi
}

stop_demo_servers() {
    if [[ -f "$SIM_PIDFILE" ]]; then
        local pid
        pid="$(cat "$SIM_PIDFILE")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$SIM_PIDFILE"
    fi
    if [[ $DEMO_STARTED_INFLUX -eq 1 ]]; then
        "$ROOT/scripts/influxdb.sh" stop
    fi
}
