"""History benchmark: one day of HA history through the events and summaries path into a real InfluxDB 1.x.

A simulated home of ~2,000 entities (``ha_pipeline.simulator``, in its own process, as HA would be)
is generated with an event rate that makes one UTC day hold ``--rows`` fetched history rows.
The benchmark drives the same plain functions the Dagster assets chain
(``ha_pipeline/defs/assets/history.py``: ``_fetch_hour``, ``history_to_events``, ``HourlyRewrite``
(one delete of the run's hours, one pipelined write fed hour by hour, one per-hour count-back),
``LastStates``/``hour_start_states``, ``hourly_summaries``, ``_write_summaries``, ``reduce_hourly``),
as a 24-partition backfill run does, and prints one table of figures vs the targets of issue 5:

1. normalise + enrich + write of the day's fetched rows (HA's compressed rows as the client returned
   them, fetched up front), against the raw ingest ceiling: the line protocol of the same points
   pre-built and POSTed in batches straight to ``/write`` (measured before and after, same process);
   the write of hour h overlaps the normalise of hour h+1, so the stage times are the wall time
   spent in each call, not each stage's cost alone;
2. the whole partition path (fetch over the simulator's WebSocket with our client, normalise,
   delete + write, count back), and the fetch alone;
3. the rollup of the day (read the raw points + hourly summaries + daily from hourly + writes),
   against just reading those points (read measured before and after the rollup).

Wall time is next to CPU time of this process and of influxd (the machine is shared): the CPU
figures travel, the wall-time ratios are measured back to back in one process.
It starts its own influxd and simulator (temp dir, 127.0.0.1, free ports) and stops them by pid.

    .venv/bin/python benchmarks/history.py [--rows 2000000] [--entities 2000] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ha_pipeline.homeassistant.client import HomeAssistantClient  # noqa: E402
from ha_pipeline.metadata import MetadataStore  # noqa: E402
from ha_pipeline.simulator import SimulatedHome  # noqa: E402
from ha_pipeline.simulator import recorder  # noqa: E402
from ha_pipeline.timeseries.backend import make_backend  # noqa: E402
from ha_pipeline.timeseries.influx_v1 import InfluxV1Backend  # noqa: E402
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings, default_bucket_specs  # noqa: E402
from ha_pipeline.timeseries.events import empty_events, history_to_events  # noqa: E402
from ha_pipeline.timeseries.line_protocol import prepare_lines  # noqa: E402
from ha_pipeline.timeseries.rollups import SUMMARY_COLUMNS, hourly_summaries, reduce_hourly  # noqa: E402
from ha_pipeline_tests.testbed.influxdb import start_influxdb  # noqa: E402
from ha_pipeline_tests.testbed.process import ServerProcess, free_port  # noqa: E402

# The asset module is the only home of the per-hour helpers and of the start states (the state in
# force at an hour's start): importing it (and so dagster) is what makes this the real path.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from ha_pipeline.defs.assets.history import (  # noqa: E402
        EVENT_FIELDS,
        EVENT_TAGS,
        HourlyRewrite,
        SummariesConfig,
        _fetch_hour,
        LastStates,
        _write_summaries,
        hour_start_states,
    )

TOKEN = "history-benchmark-token"
SEED, AREAS, PER_DEVICE = 0, 20, 4
ENTITY_BATCH = 200  # EventsConfig.entity_batch_size default
HOUR = timedelta(hours=1)


# --- measuring ------------------------------------------------------------------------------
def proc_cpu(pid: int) -> float:
    """utime + stime of another process, seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Timing:
    wall: float = 0.0
    cpu: float = 0.0  # this process (all threads)
    influx_cpu: float = 0.0
    sim_cpu: float = 0.0

    def __iadd__(self, other: "Timing") -> "Timing":
        self.wall += other.wall
        self.cpu += other.cpu
        self.influx_cpu += other.influx_cpu
        self.sim_cpu += other.sim_cpu
        return self

    def text(self) -> str:
        extra = f", influxd {self.influx_cpu:.1f}" if self.influx_cpu >= 0.05 else ""
        extra += f", simulator {self.sim_cpu:.1f}" if self.sim_cpu >= 0.05 else ""
        return f"{self.wall:.1f} s (cpu {self.cpu:.1f}{extra})"


class Clock:
    """Times a call: wall, our CPU, and the CPU of the influxd / simulator children."""

    def __init__(self, influx_pid: int, sim_pid: int | None = None):
        self.influx_pid, self.sim_pid = influx_pid, sim_pid

    def __call__(self, fn: Callable[[], Any]) -> tuple[Timing, Any]:
        i0 = proc_cpu(self.influx_pid)
        s0 = proc_cpu(self.sim_pid) if self.sim_pid else 0.0
        w0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        timing = Timing(time.perf_counter() - w0, time.process_time() - c0, proc_cpu(self.influx_pid) - i0,
                        (proc_cpu(self.sim_pid) - s0) if self.sim_pid else 0.0)
        return timing, value


# --- the simulated home ---------------------------------------------------------------------
def home_params(entities: int) -> dict[str, int]:
    return {"seed": SEED, "areas": AREAS, "devices": max(1, round(entities / PER_DEVICE)),
            "entities_per_device": PER_DEVICE}


def calibrate(entities: int, rows: int, day: float) -> tuple[float, int]:
    """Event rate for ~``rows`` raw points (events) in the day; the fetch adds one start row per entity and hour."""
    rate = 4.0  # a cheap probe, then one correction step: rows are not linear in the rate (pairs, repeats)
    for _ in range(2):
        home = SimulatedHome.generate(event_rate=rate, now=day + 86400, **home_params(entities))
        ids = list(home.sources)
        history = recorder.history_during_period(home, day, day + 86400, ids, significant_changes_only=False,
                                                 include_start_time_state=False, no_attributes=True)
        events = sum(len(v) for v in history.values())
        rate = rate * rows / max(events, 1)
    return rate, len(home.entities)


def start_simulator(tmp: Path, entities: int, rate: float) -> tuple[ServerProcess, str]:
    port = free_port()
    p = home_params(entities)
    argv = [sys.executable, "-m", "ha_pipeline.simulator", "--host", "127.0.0.1", "--port", str(port),
            "--token", TOKEN, "--seed", str(p["seed"]), "--areas", str(p["areas"]), "--devices", str(p["devices"]),
            "--entities-per-device", str(p["entities_per_device"]), "--event-rate", f"{rate:.6f}"]
    proc = ServerProcess("simulator", argv, tmp / "simulator.log", cwd=Path(__file__).resolve().parents[1])

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    try:
        proc.wait_ready(listening, 120, "port listens")
    except BaseException:
        proc.stop()
        raise
    return proc, f"http://127.0.0.1:{port}"


def fetch_plan(client: HomeAssistantClient, tags_by_entity: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(plain ids, ids fetched with attributes), chosen as the events asset does (no filter)."""
    known = {state.entity_id for state in client.states()} | tags_by_entity.keys()
    entity_ids = sorted(known)
    attribute_ids = [e for e in entity_ids
                     if e not in tags_by_entity or tags_by_entity[e].get("state_class") == "total"]
    plain_ids = sorted(set(entity_ids) - set(attribute_ids))
    return plain_ids, attribute_ids


class StreamedReadBackend(InfluxV1Backend):
    """``InfluxV1Backend`` whose streamed ``/query`` answers are split into lines from 1 MiB pieces.

    ``InfluxV1Backend.read`` calls ``response.iter_lines()`` with requests' default 512-byte pieces;
    a chunked answer is one JSON line per 50k points (~5 MB), and requests re-splits the whole
    pending line after every piece, so reading is quadratic in the line length. This is the
    suggested one-argument fix (``iter_lines(chunk_size=1 << 20)``), used only when the real read
    measures more than twice as slow on the same hour, and said so in the table.
    """

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = super()._request(method, path, **kwargs)
        if kwargs.get("stream"):
            lines = response.iter_lines
            response.iter_lines = lambda *a, **k: lines(chunk_size=1 << 20)  # type: ignore[method-assign]
        return response


# --- the raw ceiling ------------------------------------------------------------------------
def post_all(url: str, db: str, bodies: list[bytes], connections: int, precision: str) -> None:
    sessions = [requests.Session() for _ in range(connections)]

    def post(i: int) -> None:
        response = sessions[i % connections].post(f"{url}/write", params={"db": db, "precision": precision},
                                                  data=bodies[i], timeout=300)
        if response.status_code != 204:
            raise RuntimeError(f"write failed: HTTP {response.status_code} {response.text[:200]}")

    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(post, range(len(bodies))))
    for s in sessions:
        s.close()


# --- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000,
                        help="history rows (= raw points) in the day; the fetch adds a start row per entity and hour")
    parser.add_argument("--entities", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 200k rows")
    args = parser.parse_args()
    if args.quick:
        args.rows = min(args.rows, 200_000)

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    day_end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = day_end - timedelta(days=1)
    hours = [(day + i * HOUR, day + (i + 1) * HOUR) for i in range(24)]
    rate, n_entities = calibrate(args.entities, args.rows, day.timestamp())
    print(f"simulated home: {n_entities:,} registry entities, event rate {rate:.2f} rows/entity/h; "
          f"day {day:%Y-%m-%d} UTC")

    specs = default_bucket_specs({})
    raw_spec, hourly_spec, daily_spec = specs["events"], specs["events_hourly"], specs["events_daily"]

    def bucket(spec: BucketSpec, name: str) -> BucketSpec:
        return dataclasses.replace(spec, name=name)

    results: list[tuple[str, str, str, str]] = []

    def add(what: str, figure: str, target: str = "printed", ok: bool | None = None) -> None:
        results.append((what, figure, target, "-" if ok is None else "ok" if ok else "MISSED"))

    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp_name:
        tmp = Path(tmp_name)
        influx = start_influxdb(tmp / "influx")
        sim: ServerProcess | None = None
        try:
            sim, sim_url = start_simulator(tmp, args.entities, rate)
            clock = Clock(influx.pid, sim.pid)
            print(f"influxd {influx.version} at {influx.url} (pid {influx.pid}); simulator at {sim_url} (pid {sim.pid})")
            backend = make_backend(InfluxSettings(url=influx.url, api_version=1))
            print(f"backend: batch {backend.batch_lines:,} lines, {backend.max_in_flight} in flight")

            # inventory: the registry from the simulator through our client into SQLite
            store = MetadataStore(f"sqlite:///{tmp / 'inventory.db'}")
            store.upgrade()
            with HomeAssistantClient(sim_url, TOKEN) as client:
                store.sync(client.registry_snapshot().as_rows())
                tags_by_entity = {tag["entity_id"]: tag for tag in store.entity_tags()}
                entity_meta = tags_by_entity
                plain_ids, attribute_ids = fetch_plan(client, tags_by_entity)
                print(f"inventory: {len(tags_by_entity):,} entities tagged; fetching {len(plain_ids):,} without "
                      f"and {len(attribute_ids):,} with attributes")

                # --- A: fetch alone (kept in memory: the input of B) ---------------------
                fetched: list[dict[str, list[dict]]] = []
                fetch_t = Timing()
                for start, end in hours:
                    t, history = clock(lambda s=start, e=end: _fetch_hour(client, s, e, plain_ids, attribute_ids,
                                                                           ENTITY_BATCH))
                    fetch_t += t
                    fetched.append(history)
            n_fetched = sum(len(rows) for h in fetched for rows in h.values())
            print(f"A fetch alone: {n_fetched:,} rows in {fetch_t.text()} = {n_fetched / fetch_t.wall:,.0f} rows/s")

            # --- B + C: normalise + enrich + write, bracketed by the raw ceiling ---------
            ours_spec = bucket(raw_spec, "bench_events")
            backend.ensure_bucket(ours_spec)

            def normalise_and_write() -> tuple[Timing, Timing, Timing, list[pd.DataFrame], Counter]:
                norm, write = Timing(), Timing()
                frames: list[pd.DataFrame] = []
                rejects: Counter[str] = Counter()
                # HourlyRewrite deletes the day once, then one pipelined write takes the hours
                delete, rewrite = clock(lambda: HourlyRewrite(backend, ours_spec, day, day_end))
                with rewrite:
                    for (start, end), history in zip(hours, fetched):
                        t, (frame, hour_rejects) = clock(lambda h=history, s=start, e=end:
                                                         history_to_events(h, s, e, tags_by_entity))
                        norm += t
                        rejects.update(hour_rejects)
                        t, _ = clock(lambda f=frame, s=start: rewrite.add(s, f))
                        write += t
                        frames.append(frame)
                    t, _ = clock(rewrite.close)
                    write += t
                return norm, delete, write, frames, rejects

            # the ceiling's input: the very points B writes, serialised up front (untimed)
            probe = pd.concat([history_to_events(h, s, e, tags_by_entity)[0] for (s, e), h in zip(hours, fetched)],
                              ignore_index=True)
            prepared = prepare_lines(probe, raw_spec.measurement, EVENT_TAGS, EVENT_FIELDS, precision="us")
            bodies = [prepared.body(a, b) for a, b in prepared.chunk_bounds(backend.batch_lines)]
            n_points = prepared.lines
            del probe, prepared

            ceiling_runs: dict[int, list[float]] = {}

            def ceiling(connections: int) -> float:
                db = f"ceiling_{connections}_{len(ceiling_runs.get(connections, []))}"
                backend.ensure_bucket(bucket(raw_spec, db))
                t, _ = clock(lambda: post_all(influx.url, db, bodies, connections, "u"))
                rate_ = n_points / t.wall
                ceiling_runs.setdefault(connections, []).append(rate_)
                print(f"C ceiling, {len(bodies)} bodies of ≤{backend.batch_lines:,} lines × {connections} connection(s): "
                      f"{t.text()} = {rate_:,.0f} points/s")
                return rate_

            best_conns = max((1, 2), key=ceiling)
            norm_t, delete_t, write_t, frames, rejects = normalise_and_write()
            ceiling(best_conns)
            ceiling_rate = sum(ceiling_runs[best_conns]) / len(ceiling_runs[best_conns])
            n_written = sum(len(f) for f in frames)
            ours_t = Timing()
            for t in (norm_t, delete_t, write_t):
                ours_t += t
            ours_rate = n_written / ours_t.wall
            print(f"B normalise+enrich: {norm_t.text()}; delete: {delete_t.text()}; write: {write_t.text()}; "
                  f"{n_written:,} points, rejects {dict(rejects) or 'none'}")
            stored = backend.count(ours_spec.name, ours_spec.measurement, day, day_end)
            if stored != n_written or n_written != n_points:
                # the asset's verify would fail such hours: find the rows that share a stored key
                collisions = exact = 0
                for f in frames:
                    ns = f["time"].dt.as_unit("ns").astype("int64")
                    collisions += int(f.assign(us=ns // 1000).duplicated(["entity_id", "us"]).sum())
                    exact += int(f.duplicated(["entity_id", "time"]).sum())
                add("points stored = points written (B)",
                    f"{stored:,} stored of {n_written:,}: {collisions} rows share (entity, µs) after truncation, "
                    f"{exact} share the exact time", "equal", False)
            add(f"normalise + enrich + write, {n_fetched:,} fetched rows → {n_written:,} points",
                f"{ours_rate:,.0f} points/s = {ours_rate / ceiling_rate:.0%} of ceiling; {ours_t.text()}",
                "≥ 60 % of ceiling", ours_rate >= 0.6 * ceiling_rate)
            add(f"  raw ingest ceiling ({best_conns} conn, mean of {len(ceiling_runs[best_conns])} runs around it)",
                f"{ceiling_rate:,.0f} points/s ({n_points / ceiling_rate:.1f} s)")
            plain_rate = n_written / (norm_t.wall + write_t.wall)
            add("  the same without the DELETE of the day (write only)",
                f"{plain_rate:,.0f} points/s = {plain_rate / ceiling_rate:.0%} of ceiling")
            add("  of which normalise + enrich (history_to_events, while earlier hours are POSTed)",
                f"{norm_t.text()} = {n_fetched / norm_t.wall:,.0f} rows/s")
            add("  of which delete + write (serialise, wait for the POSTs)",
                f"{delete_t.wall + write_t.wall:.1f} s (delete {delete_t.wall:.1f}); cpu {delete_t.cpu + write_t.cpu:.1f}, "
                f"influxd {delete_t.influx_cpu + write_t.influx_cpu:.1f}")
            del frames, fetched

            # --- D: the whole partition path, 24 hours as one backfill run ----------------
            whole_spec = bucket(raw_spec, "bench_events_whole")
            stages: dict[str, Timing] = {k: Timing() for k in ("fetch", "normalise", "write", "verify")}

            failed_hours: list[str] = []

            def whole_path() -> int:
                kept = 0
                backend.ensure_bucket(whole_spec)
                with HomeAssistantClient(sim_url, TOKEN) as client:
                    t, (plain, with_attrs) = clock(lambda: fetch_plan(client, tags_by_entity))
                    stages["fetch"] += t
                    t, rewrite = clock(lambda: HourlyRewrite(backend, whole_spec, day, day_end))
                    stages["write"] += t
                    with rewrite:
                        for start, end in hours:
                            t, history = clock(lambda s=start, e=end: _fetch_hour(client, s, e, plain, with_attrs,
                                                                                   ENTITY_BATCH))
                            stages["fetch"] += t
                            t, (frame, _) = clock(lambda h=history, s=start, e=end:
                                                  history_to_events(h, s, e, tags_by_entity))
                            stages["normalise"] += t
                            del history
                            t, _ = clock(lambda f=frame, s=start: rewrite.add(s, f))
                            stages["write"] += t
                            kept += len(frame)
                        t, _ = clock(rewrite.close)
                        stages["write"] += t

                def verify() -> str | None:
                    try:
                        rewrite.verify()
                    except Exception as exc:  # dagster.Failure: the asset fails the run, naming the hour
                        return str(exc)[:160]
                    return None
                t, error = clock(verify)
                stages["verify"] += t
                if error:
                    failed_hours.append(error)
                return kept

            whole_t, kept = clock(whole_path)
            print("D whole path stages: " + "; ".join(f"{k} {v.text()}" for k, v in stages.items()))
            add(f"whole partition path, 24 hours, {kept:,} points (fetch + normalise + delete/write + verify)",
                f"{whole_t.text()} = {kept / whole_t.wall:,.0f} points/s")
            if failed_hours:
                add("count-back verify (the asset would fail the run)", failed_hours[0], "passes", False)
            add("  of which fetch (our client ← simulator WebSocket)",
                f"{stages['fetch'].text()} = {n_fetched / stages['fetch'].wall:,.0f} rows/s")
            add("fetch alone (A, before B), same 24 hours",
                f"{fetch_t.text()} = {n_fetched / fetch_t.wall:,.0f} rows/s")
            if sim is not None:
                sim.stop()
                sim = None
                clock.sim_pid = None

            # --- E: rollup of the day vs just reading it ---------------------------------
            lookback = timedelta(hours=SummariesConfig().start_state_lookback_hours)
            hourly_out = bucket(hourly_spec, "bench_events_hourly")
            daily_out = bucket(daily_spec, "bench_events_daily")
            backend.ensure_bucket(hourly_out)
            backend.ensure_bucket(daily_out)

            # the real read of one hour vs the same with the suggested fix (see StreamedReadBackend)
            sample = hours[12]
            t_real, n_sample = clock(lambda: len(backend.read(ours_spec.name, ours_spec.measurement, *sample)))
            fixed = StreamedReadBackend(InfluxSettings(url=influx.url, api_version=1))
            t_fixed, _ = clock(lambda: len(fixed.read(ours_spec.name, ours_spec.measurement, *sample)))
            slow_read = t_real.wall > 2 * t_fixed.wall
            print(f"E read of one hour ({n_sample:,} points): InfluxV1Backend.read {t_real.text()}, "
                  f"with iter_lines(chunk_size=1 MiB) {t_fixed.text()}")
            add(f"InfluxV1Backend.read of one hour, {n_sample:,} points",
                f"{n_sample / t_real.wall:,.0f} points/s; with 1 MiB iter_lines {n_sample / t_fixed.wall:,.0f} points/s",
                "≥ raw pull rate", not slow_read)
            if slow_read:
                print("E the real read is quadratic in the answer's line length: the day is read and rolled up "
                      "with StreamedReadBackend (the suggested fix), labelled [fixed read] below")
                backend.close()
                backend = fixed
            else:
                fixed.close()
            label = " [fixed read]" if slow_read else ""

            def read_alone() -> int:
                return len(backend.read(ours_spec.name, ours_spec.measurement, day, day_end))

            roll: dict[str, Timing] = {k: Timing() for k in ("read", "hourly compute", "hourly write",
                                                              "daily read+compute+write")}

            def rollup() -> tuple[int, int, int]:
                # influxdb/hourly_summaries over the day (one backfill run of 24 partitions)
                t, rows = clock(lambda: backend.read(ours_spec.name, ours_spec.measurement, day - lookback, day_end))
                roll["read"] += t
                if rows.empty:
                    rows = empty_events()
                written = entity_hours = 0
                t, last = clock(lambda: LastStates(rows))
                roll["hourly compute"] += t
                for start, end in hours:
                    def compute(s: datetime = start, e: datetime = end) -> pd.DataFrame:
                        in_hour = rows[(rows["time"] >= s) & (rows["time"] < e)]
                        return hourly_summaries(in_hour, s, e, start_states=hour_start_states(last, in_hour, s, lookback),
                                                entity_meta=entity_meta)
                    t, frame = clock(compute)
                    roll["hourly compute"] += t
                    t, n = clock(lambda f=frame, s=start, e=end: _write_summaries(backend, hourly_out, f, s, e))
                    roll["hourly write"] += t
                    written += n
                    entity_hours += len(frame)

                # influxdb/daily_summaries for the day
                def daily() -> int:
                    hourly_frame = backend.read(hourly_out.name, hourly_out.measurement, day, day_end).reindex(
                        columns=list(SUMMARY_COLUMNS))
                    frame = reduce_hourly(hourly_frame, "day", "UTC")
                    return _write_summaries(backend, daily_out, frame, day, day_end)
                t, n_daily = clock(daily)
                roll["daily read+compute+write"] += t
                return len(rows), entity_hours, n_daily

            read1_t, n_read = clock(read_alone)
            roll_t, (n_rolled, entity_hours, n_daily) = clock(rollup)
            read2_t, _ = clock(read_alone)
            read_wall = (read1_t.wall + read2_t.wall) / 2
            read_cpu = (read1_t.cpu + read2_t.cpu) / 2
            read_influx = (read1_t.influx_cpu + read2_t.influx_cpu) / 2
            print(f"E read alone: {read1_t.text()} before, {read2_t.text()} after; {n_read:,} points")
            print("E rollup stages: " + "; ".join(f"{k} {v.text()}" for k, v in roll.items()))
            ratio = roll_t.wall / read_wall
            cpu_ratio = (roll_t.cpu + roll_t.influx_cpu) / (read_cpu + read_influx)
            add(f"rollup{label} of 1 day × {n_rolled:,} raw points → {entity_hours:,} entity-hours, {n_daily:,} entity-days",
                f"{roll_t.text()} = {ratio:.2f}× the read (cpu incl. influxd {cpu_ratio:.2f}×)",
                "≤ 2× read time", ratio <= 2.0)
            add(f"  just reading those points{label} (mean of before/after)",
                f"{read_wall:.1f} s (cpu {read_cpu:.1f}, influxd {read_influx:.1f}) = {n_read / read_wall:,.0f} points/s")
            for k, v in roll.items():
                add(f"  of which {k}", v.text())
            backend.close()
        finally:
            if sim is not None:
                sim.stop()
            influx.stop()

    width = max(len(r[0]) for r in results)
    fig_width = max(len(r[1]) for r in results)
    print("\n--- summary ---")
    print(f"{'what':<{width}}  {'figure':<{fig_width}}  {'target':<18}  result")
    for what, figure, target, ok in results:
        print(f"{what:<{width}}  {figure:<{fig_width}}  {target:<18}  {ok}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
