#!/usr/bin/env bash
# Install the Debian packages the test bed and the demo need (influxdb, postgresql,
# chromium), non-interactively and only when something is missing.
set -euo pipefail

missing=()
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system-deps: influxdb, postgresql and chromium are installed"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "system-deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo -n)
fi

# The packages' postinst would start system-wide influxd (on all interfaces) and a
# PostgreSQL cluster on 5432; the test bed runs its own, so tell invoke-rc.d not to.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    added_policy=1
fi
cleanup() { if [[ $added_policy -eq 1 ]]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "system-deps: installed ${missing[*]} in $(( $(date +%s) - start )) s"
