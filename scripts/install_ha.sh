#!/usr/bin/env bash
# Build .ha-venv: Home Assistant 2024.1.6 plus exactly the requirements of the
# integrations our test config loads, pinned by HA's own package_constraints.txt.
# HA is started with --skip-pip (offline), so everything it imports must be here.
# Idempotent: a stamp records what was installed; re-runs return at once.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HA_VERSION="2024.1.6"
VENV="${HA_VENV:-$ROOT/.ha-venv}"
PYTHON="${PYTHON:-python3.11}"
CUSTOM="$ROOT/ha_pipeline_tests/testbed/ha_config/custom_components"
# Integrations the test bed's configuration.yaml loads (keep in step with
# ha_pipeline_tests/testbed/homeassistant.py), plus what bootstrap always sets up; the last
# three lines are what HA's own `demo` integration sets up: its platforms and helpers.
DOMAINS=(homeassistant persistent_notification logger system_log
         http api config websocket_api onboarding auth history recorder
         input_boolean input_number input_select template
         sensor binary_sensor switch light ha_pipeline_testbed
         demo sun input_button script scene
         air_quality alarm_control_panel button camera calendar climate cover date datetime
         event fan humidifier lock media_player number select siren stt text time update
         vacuum water_heater weather tts mailbox notify image_processing device_tracker)

STAMP="$VENV/.installed"
# The stamp changes with this script, the requirements walker and our integration's manifest.
WANT="homeassistant==$HA_VERSION $(cat "${BASH_SOURCE[0]}" "$ROOT/scripts/ha_requirements.py" \
    "$CUSTOM"/*/manifest.json | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "install_ha: $VENV is up to date"
    exit 0
fi

start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$VENV/bin/pip" install --quiet --upgrade "pip<25" wheel
"$VENV/bin/pip" download --quiet --no-deps --only-binary=:all: -d "$work" "homeassistant==$HA_VERSION"
wheel_file="$(ls "$work"/homeassistant-*.whl)"
"$PYTHON" "$ROOT/scripts/ha_requirements.py" "$wheel_file" "$work/constraints.txt" \
    "${DOMAINS[@]}" --custom "$CUSTOM" > "$work/requirements.txt"
echo "python-dateutil" >> "$work/requirements.txt"   # calendar needs it; HA 2024.1 does not declare it
echo "install_ha: integration requirements: $(tr '\n' ' ' < "$work/requirements.txt")"
"$VENV/bin/pip" install --quiet -c "$work/constraints.txt" "$wheel_file" -r "$work/requirements.txt"
"$VENV/bin/python" -c "import homeassistant.const as c; assert c.__version__ == '$HA_VERSION', c.__version__"

echo "$WANT" > "$STAMP"
echo "install_ha: installed Home Assistant $HA_VERSION into $VENV in $(( $(date +%s) - start )) s"
