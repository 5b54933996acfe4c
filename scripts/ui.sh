#!/usr/bin/env bash
# `make ui`: the same servers and environment as the demo, then the Dagster UI on
# http://127.0.0.1:3000 until Ctrl-C.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/demo_env.sh"
trap stop_demo_servers EXIT
start_demo_servers
cd "$ROOT"
"$ROOT/.venv/bin/dagster" dev -h 127.0.0.1 -p "${DAGSTER_PORT:-3000}" -w workspace.yaml
