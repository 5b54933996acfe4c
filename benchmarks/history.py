"""History benchmark: one day of HA history through the events and summaries path into a real InfluxDB 1.x.

A simulated home of ~2,000 entities (``ha_pipeline.simulator``, in its own process, as HA would be)
is generated with an event rate that makes one UTC day hold ``--rows`` fetched history rows.
The benchmark drives the plain functions the Dagster assets call (``ha_pipeline/defs/assets/history.py``):
``timeseries/archive.py``'s ``fetch_plan``, ``fetch_hour`` (each hour asked from ``fetch_start``, 1 µs
before it) and ``archive_hours`` (one pipelined write of the hours the archive does not hold yet, a
prune of the hours that held points, HA's start-time states written beside the events, a per-hour
count before and after), then ``LastStates``/``hour_start_states`` fed HA's archived start states
(``ha_start_states``), ``hourly_summaries``, ``_write_summaries``, ``reduce_hourly``, as a
24-partition backfill run does, and prints one table of figures vs the targets of issue 5:

1. normalise + enrich + write of the day's fetched rows (HA's compressed rows as the client returned
   them, fetched up front and handed to ``fetch_hour`` from memory), against the raw ingest ceiling:
   the line protocol of the same points (events and start states) pre-built and POSTed in batches
   straight to ``/write`` (measured before and after, same process); the write of hour h overlaps
   the normalise of hour h+1, so the stage times are the wall time spent in each call, not each
   stage's cost alone;
2. the same day written again into the filled bucket (a re-run or backfill): every hour then held
   points, so each hour's write is settled and its archived keys are read and compared before the
   next hour is written (the prune, which deletes nothing here);
3. the whole partition path (fetch over the simulator's WebSocket with our client, normalise,
   write, count back), and the fetch alone;
4. the rollup of the day (read the raw points and HA's start states + hourly summaries + daily from
   hourly + writes), against just reading those raw points (read measured before and after the rollup).

Wall time is next to CPU time of this process and of influxd (the machine is shared): the CPU
figures travel, the wall-time ratios are measured back to back in one process.
It starts its own influxd and simulator (temp dir, 127.0.0.1, free ports) and stops them by pid.

    .venv/bin/python benchmarks/history.py [--rows 2000000] [--entities 2000] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
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
from ha_pipeline.timeseries.archive import (  # noqa: E402
    EVENT_FIELDS,
    EVENT_TAGS,
    START_STATE_FIELDS,
    START_STATE_TAGS,
    START_STATES_MEASUREMENT,
    ArchiveMismatch,
    ArchiveResult,
    EntityRules,
    FetchedHour,
    FetchPlan,
    archive_hours,
    archived_entities,
    fetch_hour,
    fetch_plan,
    fetch_start,
    hour_windows,
)
from ha_pipeline.timeseries.backend import make_backend  # noqa: E402
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings, default_bucket_specs  # noqa: E402
from ha_pipeline.timeseries.events import empty_events, history_to_events, start_states_from_history  # noqa: E402
from ha_pipeline.timeseries.line_protocol import prepare_lines  # noqa: E402
from ha_pipeline.timeseries.rollups import SUMMARY_COLUMNS, hourly_summaries, reduce_hourly  # noqa: E402
from ha_pipeline.timeseries.start_states import LastStates, ha_start_states, hour_start_states  # noqa: E402
from ha_pipeline_tests.testbed.influxdb import start_influxdb  # noqa: E402
from ha_pipeline_tests.testbed.process import ServerProcess, free_port  # noqa: E402

# The summaries' writer and the run configs' defaults live in the asset module (so importing dagster).
from ha_pipeline.defs.assets.history import EventsConfig, SummariesConfig, _write_summaries  # noqa: E402

TOKEN = "history-benchmark-token"
SEED, AREAS, PER_DEVICE = 0, 20, 4
ENTITY_BATCH = EventsConfig().entity_batch_size
NO_RULES = EntityRules()  # the events asset's default filter archives every entity

# One hour's answer as the client returned it, per ``no_attributes`` flag of the request.
HourRows = dict[bool, dict[str, list[dict]]]


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

    def __sub__(self, other: "Timing") -> "Timing":
        return Timing(self.wall - other.wall, self.cpu - other.cpu, self.influx_cpu - other.influx_cpu,
                      self.sim_cpu - other.sim_cpu)

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


def stage_text(seconds: Counter[str]) -> str:
    """``archive_hours``' own wall time per stage, as the asset's ``seconds_per_stage`` shows it."""
    return ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()) + " s"


def peak_rss_mib() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def client_history(client: HomeAssistantClient):
    """The events asset's ``history`` callable over our client."""
    def history(start: datetime, end: datetime, ids: list[str], no_attributes: bool) -> dict[str, list[dict]]:
        return client.history_during_period(start, end, ids, batch_size=ENTITY_BATCH, no_attributes=no_attributes)
    return history


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
    hours = hour_windows(day, day_end)
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
                inventory = {tag["entity_id"]: tag for tag in store.entity_tags()}
                plan = fetch_plan([s.entity_id for s in client.states()], inventory, (), NO_RULES)
                print(f"inventory: {len(inventory):,} entities tagged; fetching {len(plan.plain_ids):,} without "
                      f"and {len(plan.attribute_ids):,} with attributes")

                # --- A: fetch alone, as fetch_hour asks (kept in memory: the input of B) ---
                history = client_history(client)
                fetched: list[HourRows] = []
                fetch_t = Timing()
                for start, end in hours:
                    answer: HourRows = {}
                    for ids, no_attributes in ((plan.plain_ids, True), (plan.attribute_ids, False)):
                        if ids:
                            t, answer[no_attributes] = clock(lambda i=ids, n=no_attributes, s=start, e=end:
                                                             history(fetch_start(s), e, i, n))
                            fetch_t += t
                    fetched.append(answer)
            n_fetched = sum(len(rows) for h in fetched for part in h.values() for rows in part.values())
            print(f"A fetch alone: {n_fetched:,} rows in {fetch_t.text()} = {n_fetched / fetch_t.wall:,.0f} rows/s")

            def from_memory(answer: HourRows):
                """A ``history`` callable that hands ``fetch_hour`` the rows fetched in A."""
                return lambda start, end, ids, no_attributes: answer[no_attributes]

            # --- B + C: normalise + enrich + write, bracketed by the raw ceiling ---------
            ours_spec = bucket(raw_spec, "bench_events")
            backend.ensure_bucket(ours_spec)

            @dataclasses.dataclass
            class Archived:
                total: Timing
                normalise: Timing
                seconds: Counter[str]
                result: ArchiveResult | None
                error: str | None

            def archive_from_memory() -> Archived:
                """``archive_hours`` over the day, fed ``FetchedHour``s built by ``fetch_hour`` from A's rows."""
                norm = Timing()
                seconds: Counter[str] = Counter()

                def produce() -> Iterator[FetchedHour]:
                    nonlocal norm
                    for (start, end), answer in zip(hours, fetched):
                        t, hour = clock(lambda a=answer, s=start, e=end:
                                        fetch_hour(from_memory(a), s, e, plan, inventory, seconds))
                        norm += t
                        yield hour

                def run() -> tuple[ArchiveResult | None, str | None]:
                    try:
                        return archive_hours(backend, ours_spec, (day, day_end), produce(),
                                             set(plan.entity_ids), seconds), None
                    except ArchiveMismatch as exc:  # the asset fails the run with this sentence
                        return None, str(exc)[:200]
                total, (result, error) = clock(run)
                return Archived(total, norm, seconds, result, error)

            # the ceiling's input: the very points B writes (events, then start states), serialised up front
            probe_events, probe_states = [], []
            for (s, e), answer in zip(hours, fetched):
                rows = {k: v for part in answer.values() for k, v in part.items()}
                probe_events.append(history_to_events(rows, s, e, inventory, fetched_from=fetch_start(s))[0])
                probe_states.append(start_states_from_history(rows, fetch_start(s), s))
            bodies: list[bytes] = []
            n_events_probe = n_states_probe = 0
            for frames_, measurement, tags, fields in (
                (probe_events, raw_spec.measurement, EVENT_TAGS, EVENT_FIELDS),
                (probe_states, START_STATES_MEASUREMENT, START_STATE_TAGS, START_STATE_FIELDS),
            ):
                prepared = prepare_lines(pd.concat(frames_, ignore_index=True), measurement, tags, fields,
                                         precision="us")
                bodies += [prepared.body(a, b) for a, b in prepared.chunk_bounds(backend.batch_lines)]
                if measurement == raw_spec.measurement:
                    n_events_probe = prepared.lines
                else:
                    n_states_probe = prepared.lines
            n_points = n_events_probe + n_states_probe
            del probe_events, probe_states, prepared

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
            first = archive_from_memory()
            ceiling(best_conns)
            ceiling_rate = sum(ceiling_runs[best_conns]) / len(ceiling_runs[best_conns])
            rss_after_b = peak_rss_mib()

            def written(run: Archived) -> tuple[int, int]:
                return (run.result.total("written"), run.result.start_states) if run.result else (0, 0)

            n_written, n_states = written(first)
            rest = first.total - first.normalise
            print(f"B normalise+enrich (fetch_hour from memory): {first.normalise.text()}; archive_hours' own: "
                  f"{rest.text()}; stages {stage_text(first.seconds)}; {n_written:,} points + {n_states:,} start "
                  f"states, rejects {dict(first.result.rejects) if first.result else '?'}")
            if first.error or n_written != n_events_probe or n_states != n_states_probe:
                add("points stored = points written (B)",
                    first.error or f"{n_written:,} events + {n_states:,} start states written of "
                                   f"{n_events_probe:,} + {n_states_probe:,}", "equal", False)
            ours_rate = (n_written + n_states) / first.total.wall
            add(f"normalise + enrich + write, {n_fetched:,} fetched rows → {n_written:,} points + {n_states:,} start states",
                f"{ours_rate:,.0f} points/s = {ours_rate / ceiling_rate:.0%} of ceiling; {first.total.text()}",
                "≥ 60 % of ceiling", ours_rate >= 0.6 * ceiling_rate)
            add(f"  raw ingest ceiling ({best_conns} conn, mean of {len(ceiling_runs[best_conns])} runs around it)",
                f"{ceiling_rate:,.0f} points/s ({n_points / ceiling_rate:.1f} s)")
            plain_rate = (n_written + n_states) / (first.total.wall - first.seconds["verify"])
            add("  the same without the count-back (before and after)",
                f"{plain_rate:,.0f} points/s = {plain_rate / ceiling_rate:.0%} of ceiling")
            add("  of which normalise + enrich (fetch_hour, while earlier hours are POSTed)",
                f"{first.normalise.text()} = {n_fetched / first.normalise.wall:,.0f} rows/s")
            add("  of which write + count-back (archive_hours: serialise, wait for the POSTs, count)",
                f"{rest.wall:.1f} s (count-back {first.seconds['verify']:.1f}); cpu {rest.cpu:.1f}, "
                f"influxd {rest.influx_cpu:.1f}")

            # --- B again: the same day into the filled bucket (a re-run: write, read keys, prune) ----
            again = archive_from_memory()
            rss_after_rerun = peak_rss_mib()
            rest = again.total - again.normalise
            pruned = again.result.total("replaced") + again.result.total("removed") if again.result else -1
            kept = again.result.total("kept") if again.result else -1
            print(f"B re-run: normalise {again.normalise.text()}; archive_hours' own {rest.text()}; "
                  f"stages {stage_text(again.seconds)}; {pruned} points pruned, {kept} kept")
            if again.error:
                add("points stored = points written (B re-run)", again.error, "equal", False)
            again_points = sum(written(again))
            again_rate = again_points / again.total.wall
            add(f"re-run of the day into the filled bucket, {again_points:,} points (write, then prune each hour)",
                f"{again_rate:,.0f} points/s = {again.total.wall / first.total.wall:.2f}× the first write; "
                f"{again.total.text()}")
            add("  of which prune (read each hour's archived keys, compare, delete)",
                f"{again.seconds['prune']:.1f} s; deleted {pruned}, kept {kept}", "deletes 0", pruned == 0 and kept == 0)
            add("  of which write (each hour settled before its prune: no pipelining across hours)",
                f"{again.seconds['write']:.1f} s (first write: {first.seconds['write']:.1f} s)")
            del fetched

            # --- D: the whole partition path, 24 hours as one backfill run ----------------
            whole_spec = bucket(raw_spec, "bench_events_whole")
            backend.ensure_bucket(whole_spec)
            whole_seconds: Counter[str] = Counter()
            failed: list[str] = []

            def whole_path() -> tuple[ArchiveResult | None, FetchPlan]:
                with HomeAssistantClient(sim_url, TOKEN) as client:
                    started = time.monotonic()
                    current = [state.entity_id for state in client.states()]
                    run_plan = fetch_plan(current, inventory, archived_entities(backend, whole_spec, day, day_end),
                                          NO_RULES)
                    whole_seconds["fetch"] += time.monotonic() - started
                    history = client_history(client)
                    hours_ = (fetch_hour(history, s, e, run_plan, inventory, whole_seconds) for s, e in hours)
                    try:
                        return archive_hours(backend, whole_spec, (day, day_end), hours_, set(run_plan.entity_ids),
                                             whole_seconds), run_plan
                    except ArchiveMismatch as exc:
                        failed.append(str(exc)[:200])
                        return None, run_plan

            whole_t, (whole, _) = clock(whole_path)
            rss_after_d = peak_rss_mib()
            whole_events, whole_states = (whole.total("written"), whole.start_states) if whole else (0, 0)
            print(f"D whole path: {whole_t.text()}; stages {stage_text(whole_seconds)}")
            add(f"whole partition path, 24 hours, {whole_events:,} points + {whole_states:,} start states "
                "(fetch + normalise + write + count-back)",
                f"{whole_t.text()} = {(whole_events + whole_states) / whole_t.wall:,.0f} points/s")
            if failed:
                add("count-back (the asset would fail the run)", failed[0], "passes", False)
            add("  of which fetch (our client ← simulator WebSocket)",
                f"{whole_seconds['fetch']:.1f} s = {n_fetched / whole_seconds['fetch']:,.0f} rows/s")
            add("  of which normalise / write / count-back",
                f"{whole_seconds['normalise']:.1f} / {whole_seconds['write']:.1f} / {whole_seconds['verify']:.1f} s")
            add("fetch alone (A, before B), same 24 hours",
                f"{fetch_t.text()} = {n_fetched / fetch_t.wall:,.0f} rows/s")
            sim.stop()
            sim = None
            clock.sim_pid = None

            # --- E: rollup of the day vs just reading it, as influxdb/hourly_summaries reads ------
            lookback = timedelta(hours=SummariesConfig().start_state_lookback_hours)
            hourly_out = bucket(hourly_spec, "bench_events_hourly")
            daily_out = bucket(daily_spec, "bench_events_daily")
            backend.ensure_bucket(hourly_out)
            backend.ensure_bucket(daily_out)
            entity_meta = inventory

            def read_alone() -> int:
                return len(backend.read(ours_spec.name, ours_spec.measurement, day, day_end))

            roll: dict[str, Timing] = {k: Timing() for k in ("read", "read HA start states", "hourly compute",
                                                              "hourly write", "daily read+compute+write")}

            def rollup() -> tuple[int, int, int, int]:
                # influxdb/hourly_summaries over the day (one backfill run of 24 partitions)
                t, rows = clock(lambda: backend.read(ours_spec.name, ours_spec.measurement, day - lookback, day_end))
                roll["read"] += t
                if rows.empty:
                    rows = empty_events()
                t, from_ha = clock(lambda: ha_start_states(
                    backend.read(ours_spec.name, START_STATES_MEASUREMENT, day, day_end)))
                roll["read HA start states"] += t
                entity_hours = 0
                t, last = clock(lambda: LastStates(rows))
                roll["hourly compute"] += t
                for start, end in hours:
                    def compute(s: datetime = start, e: datetime = end) -> pd.DataFrame:
                        in_hour = rows[(rows["time"] >= s) & (rows["time"] < e)]
                        states = hour_start_states(last, in_hour, s, lookback, from_ha.get(pd.Timestamp(s)))
                        return hourly_summaries(in_hour, s, e, start_states=states, entity_meta=entity_meta)
                    t, frame = clock(compute)
                    roll["hourly compute"] += t
                    t, _ = clock(lambda f=frame, s=start, e=end: _write_summaries(backend, hourly_out, f, s, e))
                    roll["hourly write"] += t
                    entity_hours += len(frame)

                # influxdb/daily_summaries for the day
                def daily() -> int:
                    hourly_frame = backend.read(hourly_out.name, hourly_out.measurement, day, day_end).reindex(
                        columns=list(SUMMARY_COLUMNS))
                    frame = reduce_hourly(hourly_frame, "day", "UTC")
                    return _write_summaries(backend, daily_out, frame, day, day_end)
                t, n_daily = clock(daily)
                roll["daily read+compute+write"] += t
                return len(rows), sum(len(v) for v in from_ha.values()), entity_hours, n_daily

            read1_t, n_read = clock(read_alone)
            roll_t, (n_rolled, n_ha_states, entity_hours, n_daily) = clock(rollup)
            read2_t, _ = clock(read_alone)
            read_wall = (read1_t.wall + read2_t.wall) / 2
            read_cpu = (read1_t.cpu + read2_t.cpu) / 2
            read_influx = (read1_t.influx_cpu + read2_t.influx_cpu) / 2
            print(f"E read alone: {read1_t.text()} before, {read2_t.text()} after; {n_read:,} points")
            print("E rollup stages: " + "; ".join(f"{k} {v.text()}" for k, v in roll.items()))
            ratio = roll_t.wall / read_wall
            cpu_ratio = (roll_t.cpu + roll_t.influx_cpu) / (read_cpu + read_influx)
            add(f"rollup of 1 day × {n_rolled:,} raw points + {n_ha_states:,} HA start states → "
                f"{entity_hours:,} entity-hours, {n_daily:,} entity-days",
                f"{roll_t.text()} = {ratio:.2f}× the read (cpu incl. influxd {cpu_ratio:.2f}×)",
                "≤ 2× read time", ratio <= 2.0)
            add("  just reading those raw points (mean of before/after)",
                f"{read_wall:.1f} s (cpu {read_cpu:.1f}, influxd {read_influx:.1f}) = {n_read / read_wall:,.0f} points/s")
            for k, v in roll.items():
                add(f"  of which {k}", v.text())
            add("peak RSS of this process after B / B re-run / D / E",
                f"{rss_after_b:,.0f} / {rss_after_rerun:,.0f} / {rss_after_d:,.0f} / {peak_rss_mib():,.0f} MiB")
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
