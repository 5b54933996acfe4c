"""Runs benchmark: what a Dagster run of the project costs beyond its data work (issue 16).

Starts a simulated home of ~200 entities (``ha_pipeline.simulator``, its own process, as HA would
be) and a local InfluxDB 1.x (the test bed's ``start_influxdb``), on free 127.0.0.1 ports, with a
temporary DAGSTER_HOME holding the project's dagster.yaml. Every run is launched as the daemon's
run launcher does it, as a fresh process that loads the definitions and executes the run
(``dagster job execute``), so process start-up and definitions loading are counted. Prints:

1. the definitions load time (``python -c "import ha_pipeline.definitions"``) against a bare
   ``python -c "import dagster"`` (fresh interpreters, alternated, median of ``--repeat``);
2. ``discovery_job`` (first sync, then re-syncs): the run process's wall time next to the time its
   steps took (the event log's step start to end);
3. ``events_job``: 24 separate hourly runs of one day (the median run: wall next to the data work
   it reports, the sum of ``seconds_per_stage`` of ``influxdb/events``), then one run of the next
   day's 24 partitions, and the ratio of the 24 runs' total wall time to that one run;
4. the peak RSS of every run's process (``wait4``'s ``ru_maxrss``, which covers reaped children).

The machine is shared: every figure carries the 1-minute load average when it was measured, and
the targets are ratios measured back to back in this one run.

    .venv/bin/python benchmarks/runs.py [--devices 50] [--repeat 5] [--discovery-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ha_pipeline_tests.testbed.influxdb import start_influxdb  # noqa: E402
from ha_pipeline_tests.testbed.process import ServerProcess, free_port  # noqa: E402

TOKEN = "runs-benchmark-token"
BIN = Path(sys.executable).parent
PARTITION_FMT = "%Y-%m-%d-%H:%M"  # hourly_partitions.fmt


def load1() -> float:
    return os.getloadavg()[0]


@dataclass
class Run:
    """One run process: wall time, peak RSS, and what the run's event log says."""

    wall: float
    max_rss_mb: float
    load: float
    run_id: str = ""
    run_seconds: float = 0.0  # the run's own start to end (after the process loaded the definitions)
    step_seconds: dict[str, float] = field(default_factory=dict)
    data_seconds: float = 0.0  # sum of seconds_per_stage of influxdb/events
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def steps_total(self) -> float:
        return sum(self.step_seconds.values())


def wait_rusage(proc: subprocess.Popen) -> tuple[int, float]:
    """Reap ``proc`` with wait4: exit code and peak RSS in MiB of it (and its reaped children)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024


def fresh_import_seconds(statement: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-W", "ignore", "-c", statement], env=env, check=True, cwd=ROOT)
    return time.perf_counter() - started


def start_simulator(tmp: Path, devices: int) -> tuple[ServerProcess, str]:
    port = free_port()
    argv = [sys.executable, "-m", "ha_pipeline.simulator", "--host", "127.0.0.1", "--port", str(port),
            "--token", TOKEN, "--devices", str(devices), "--entities-per-device", "4"]
    proc = ServerProcess("simulator", argv, tmp / "simulator.log", cwd=ROOT)

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    try:
        proc.wait_ready(listening, 120, "port listens")
    except BaseException:
        proc.stop()
        raise
    return proc, f"http://127.0.0.1:{port}"


class Runner:
    """Launches runs with the CLI against one DAGSTER_HOME and reads them back from its instance."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        import dagster as dg

        self.dg = dg
        self.env = env
        self.log_dir = log_dir
        self.instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        self.count = 0

    def run(self, job: str, tags: dict[str, str] | None = None) -> Run:
        self.count += 1
        log = self.log_dir / f"run-{self.count:03d}-{job}.log"
        argv = [str(BIN / "dagster"), "job", "execute", "-m", "ha_pipeline.definitions", "-j", job]
        if tags:
            argv += ["--tags", json.dumps(tags)]
        load = load1()
        started = time.perf_counter()
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            code, rss = wait_rusage(proc)
        wall = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"runs: {job} {tags or ''} failed (exit {code}); log {log}:\n"
                             + log.read_text(errors="replace")[-3000:])
        return self._read_back(Run(wall=wall, max_rss_mb=rss, load=load))

    def _read_back(self, run: Run) -> Run:
        dg = self.dg
        [record] = self.instance.get_run_records(limit=1)
        run.run_id = record.dagster_run.run_id
        if record.start_time and record.end_time:
            run.run_seconds = record.end_time - record.start_time
        types = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                 dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_MATERIALIZATION}
        starts: dict[str, float] = {}
        for rec in self.instance.get_records_for_run(run.run_id, of_type=types, limit=10_000).records:
            entry = rec.event_log_entry
            event = entry.dagster_event
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[event.step_key] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                mat = entry.asset_materialization
                if mat.asset_key == dg.AssetKey(["influxdb", "events"]) and "seconds_per_stage" in mat.metadata:
                    stages = mat.metadata["seconds_per_stage"].value
                    for stage, seconds in stages.items():
                        run.stages[stage] = run.stages.get(stage, 0.0) + float(seconds)
            elif event.step_key in starts:
                run.step_seconds[event.step_key] = entry.timestamp - starts[event.step_key]
        run.data_seconds = sum(run.stages.values())
        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50, help="simulated devices, 4 entities each")
    parser.add_argument("--repeat", type=int, default=5, help="fresh imports per load figure (median)")
    parser.add_argument("--discovery-runs", type=int, default=3)
    parser.add_argument("--hours", type=int, default=24, help="hours per day of runs (separate vs one run)")
    args = parser.parse_args()

    results: list[tuple[str, str, str, str]] = []

    def add(what: str, figure: str, target: str = "printed", ok: bool | None = None, load: float | None = None) -> None:
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        figure = figure if load is None else f"{figure} [load {load:.1f}]"
        results.append((what, figure, target, mark))
        print(f"  {what}: {figure}", flush=True)

    with tempfile.TemporaryDirectory(prefix="runs-bench-") as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("HA_", "INFLUXDB_", "DAGSTER_"))}

        # 1. Definitions load vs import dagster: fresh interpreters, alternated so drifts in load hit both.
        load = load1()
        bare, defs_load = [], []
        for _ in range(args.repeat):
            bare.append(fresh_import_seconds("import dagster", base_env))
            defs_load.append(fresh_import_seconds("import ha_pipeline.definitions", base_env))
        bare_s, defs_s = statistics.median(bare), statistics.median(defs_load)
        add(f"`import dagster` (median of {args.repeat})", f"{bare_s:.2f} s", load=load)
        add(f"`import ha_pipeline.definitions` (median of {args.repeat})", f"{defs_s:.2f} s = {defs_s / bare_s:.2f}x",
            "<= 1.5x import dagster", defs_s / bare_s <= 1.5, load=load1())

        influx = start_influxdb(tmp / "influxdb")
        sim = None
        try:
            sim, ha_url = start_simulator(tmp, args.devices)
            env = {**base_env, "DAGSTER_HOME": str(home), "HA_URL": ha_url, "HA_TOKEN": TOKEN,
                   "INFLUXDB_URL": influx.url, "INFLUXDB_API_VERSION": "1",
                   "HA_PIPELINE_DATA_DIR": str(tmp / "data"), "HA_PIPELINE_AUTOMATION": "off"}
            os.environ["DAGSTER_HOME"] = str(home)  # dagster.yaml keeps the storage under $DAGSTER_HOME
            subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=ROOT, env=env, check=True,
                           capture_output=True)
            runner = Runner(env, tmp)

            # 2. Discovery: the first sync, then re-syncs of the unchanged home.
            discovery = [runner.run("discovery_job") for _ in range(args.discovery_runs)]
            entities = _entity_count(runner)
            for i, run in enumerate(discovery):
                label = "first sync" if i == 0 else "unchanged re-sync"
                add(f"discovery_job, {entities} entities, {label}: wall vs its steps",
                    f"{run.wall:.1f} s vs {run.steps_total:.2f} s in {len(run.step_seconds)} steps "
                    f"(run {run.run_seconds:.1f} s), peak RSS {run.max_rss_mb:.0f} MiB", load=run.load)

            # 3. events_job: a day as separate hourly runs, the next day as one run of its partitions.
            last_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            one_run_start = last_hour - timedelta(hours=args.hours - 1)
            separate_start = one_run_start - timedelta(hours=args.hours)
            separate = [
                runner.run("events_job", {"dagster/partition": (separate_start + timedelta(hours=h)).strftime(PARTITION_FMT)})
                for h in range(args.hours)
            ]
            one = runner.run("events_job", {
                "dagster/asset_partition_range_start": one_run_start.strftime(PARTITION_FMT),
                "dagster/asset_partition_range_end": last_hour.strftime(PARTITION_FMT),
            })

            median = sorted(separate, key=lambda r: r.wall)[len(separate) // 2]
            overhead = median.wall - median.data_seconds
            ok = overhead <= 3.0 or median.wall <= 4 * median.data_seconds
            steps = ", ".join(f"{key.split('__')[-1]} {s:.2f}" for key, s in median.step_seconds.items())
            add(f"one hourly events_job run, {entities} entities (median of {len(separate)}): wall vs data work",
                f"{median.wall:.1f} s vs {median.data_seconds:.2f} s (overhead {overhead:.1f} s, "
                f"{median.wall / max(median.data_seconds, 1e-9):.1f}x)",
                "overhead <= 3 s or wall <= 4x data work", ok, load=median.load)
            add("  its steps (s)", f"{steps}; run {median.run_seconds:.1f} s after loading; stages "
                + ", ".join(f"{k} {v:.2f}" for k, v in median.stages.items()))
            total = sum(r.wall for r in separate)
            loads = [r.load for r in separate]
            add(f"{len(separate)} separate hourly runs", f"{total:.1f} s in total, peak RSS "
                f"{max(r.max_rss_mb for r in separate):.0f} MiB, data work {sum(r.data_seconds for r in separate):.1f} s",
                load=statistics.mean(loads))
            add(f"one {args.hours}-partition run", f"{one.wall:.1f} s (data work {one.data_seconds:.1f} s), "
                f"peak RSS {one.max_rss_mb:.0f} MiB", load=one.load)
            add(f"{len(separate)} separate runs vs one {args.hours}-partition run", f"{total / one.wall:.2f}x",
                "<= 3x", total / one.wall <= 3)
        finally:
            if sim is not None:
                sim.stop()
            influx.stop()

    print(f"load average (1/5/15 min) at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    header = ("what", "figure", "target", "")
    widths = [max(len(r[i]) for r in [*results, header]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *results]:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def _entity_count(runner: Runner) -> int:
    """Entities HA listed in the first discovery (its `ha_count` for sqlite/entities)."""
    event = runner.instance.get_latest_materialization_event(runner.dg.AssetKey(["sqlite", "entities"]))
    return int(event.asset_materialization.metadata["ha_count"].value) if event else 0


if __name__ == "__main__":
    main()
