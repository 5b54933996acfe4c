#!/usr/bin/env bash
# `make demo`: simulated home (or HA_URL/HA_TOKEN) + local InfluxDB, run the jobs
# in-process, print a summary, stop what was started.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/demo_env.sh"
trap stop_demo_servers EXIT
start_demo_servers
cd "$ROOT"
"$PY" -m ha_pipeline.demo
