"""Sensor benchmark: one ``registry_change_sensor`` tick against a simulated home.

For 1k devices / 10k entities and 10k devices / 100k entities, the simulator
(``python -m ha_pipeline.simulator``) runs in its own process, as HA would, on a free
127.0.0.1 port. Printed per size, median of 3 each:

- the sensor tick: the real sensor function through ``evaluate_tick`` with the ``ha`` resource
  pointed at the simulator, on an unchanged home (cursor from a first tick, so each timed tick
  ends in "unchanged"); target < 15 s at 100k entities, a quarter of Dagster's 60 s sensor
  timeout, so a machine four times slower than a quiet one still makes it;
- the old path as the baseline, in the same process: the full ``registry_snapshot()`` (pydantic
  models) and ``registry_fingerprint(snapshot)``; for a well-formed home both give the same digest.

Wall time is shown next to our CPU time and the simulator's (the simulator's CPU is the stand-in
for HA's work, not a cost of ours), with the 1-minute load average before each measurement.

Run on a quiet machine: ``flock /tmp/ha_bench.lock .venv/bin/python benchmarks/sensor.py [--sizes 1000,10000]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ha_pipeline.defs.resources import HomeAssistantResource  # noqa: E402
from ha_pipeline.defs.sensors import registry_change_sensor  # noqa: E402
from ha_pipeline.homeassistant.registry import registry_fingerprint  # noqa: E402
from ha_pipeline_tests.testbed.process import ServerProcess, free_port  # noqa: E402

TOKEN = "benchmark-token"
ENTITIES_PER_DEVICE = 10
AREAS = 100
REPEATS = 3
TARGET_SECONDS = 15.0
TARGET_AT_DEVICES = 10_000


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_simulator(tmp: Path, devices: int) -> tuple[ServerProcess, str]:
    port = free_port()
    argv = [sys.executable, "-m", "ha_pipeline.simulator", "--host", "127.0.0.1", "--port", str(port),
            "--token", TOKEN, "--seed", "0", "--areas", str(AREAS), "--devices", str(devices),
            "--entities-per-device", str(ENTITIES_PER_DEVICE), "--event-rate", "0.01"]
    proc = ServerProcess("simulator", argv, tmp / f"simulator-{devices}.log", cwd=Path(__file__).resolve().parents[1])

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    try:
        proc.wait_ready(listening, 300, "port listens")
    except BaseException:
        proc.stop()
        raise
    return proc, f"http://127.0.0.1:{port}"


def measure(fn: Callable[[], Any], sim_pid: int) -> tuple[str, float, Any]:
    """Median of ``REPEATS`` calls: a printable figure, the median wall seconds, the last value."""
    laps = []
    value = None
    for _ in range(REPEATS):
        load = os.getloadavg()[0]
        sim0, wall0, cpu0 = proc_cpu(sim_pid), time.perf_counter(), time.process_time()
        value = fn()
        laps.append((time.perf_counter() - wall0, time.process_time() - cpu0, proc_cpu(sim_pid) - sim0, load))
    wall, cpu, sim, load = (statistics.median(lap[i] for lap in laps) for i in range(4))
    spread = f"{min(lap[0] for lap in laps):.2f}–{max(lap[0] for lap in laps):.2f}"
    return f"{wall:.2f} s ({spread}; cpu {cpu:.2f}, simulator {sim:.2f}; load {load:.2f})", wall, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="device counts, 10 entities each")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        for devices in (int(n) for n in args.sizes.split(",")):
            sim, url = start_simulator(Path(tmp), devices)
            try:
                ha = HomeAssistantResource(url=url, token=TOKEN)
                first = registry_change_sensor.evaluate_tick(dg.build_sensor_context(resources={"ha": ha}))
                [request] = first.run_requests
                cursor = f"1:{request.run_key.rsplit('-', 1)[0]}"

                def tick() -> Any:
                    return registry_change_sensor.evaluate_tick(
                        dg.build_sensor_context(cursor=cursor, resources={"ha": ha}))

                def old_path() -> str:
                    with ha.client() as client:
                        return registry_fingerprint(client.registry_snapshot())

                size = f"{devices} devices / {devices * ENTITIES_PER_DEVICE} entities"
                figure, wall, result = measure(tick, sim.pid)
                unchanged = not result.run_requests and "unchanged" in (result.skip_message or "")
                target = f"< {TARGET_SECONDS:g} s" if devices >= TARGET_AT_DEVICES else "printed"
                ok = "-" if devices < TARGET_AT_DEVICES else "ok" if wall < TARGET_SECONDS and unchanged else "MISSED"
                rows.append((f"sensor tick, unchanged home, {size}", figure + ("" if unchanged else " NOT SKIPPED"),
                             target, ok))
                figure, _, old = measure(old_path, sim.pid)
                same = "same digest" if old == cursor.split(":", 1)[1] else "DIGEST DIFFERS"
                rows.append((f"  baseline: registry_snapshot() + registry_fingerprint, {size}",
                             f"{figure}, {same}", "printed", "-"))
            finally:
                sim.stop()

    print(f"load average (1/5/15 min) at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    header = ("what", "figure (median of 3, range)", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()
