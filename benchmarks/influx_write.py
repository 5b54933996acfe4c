"""Write throughput into a real InfluxDB 1.x: server ceiling vs our end-to-end write vs Point-per-row.

For the same frame of realistic HA events (DESIGN.md schema, ~2,000 entity series) it prints:

1. the raw ceiling: pre-built line protocol POSTed in batches straight to ``/write``, for each
   batch size × number of connections (each run into a fresh database);
2. the project's end-to-end write, ``InfluxV1Backend.write(df)`` (serialise + batch + POST);
3. serialisation alone: our ``prepare_lines`` on the whole frame vs influxdb-client's
   ``Point`` per row on a subset;

and the ratios end-to-end / ceiling (target ≥ 0.80) and ours / Point-per-row (target ≥ 15×).
It starts its own influxd (temp dir, 127.0.0.1, free ports) and stops it by pid.

    .venv/bin/python benchmarks/influx_write.py [--rows 2000000] [--point-rows 200000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings  # noqa: E402
from ha_pipeline.timeseries.influx_v1 import InfluxV1Backend  # noqa: E402
from ha_pipeline.timeseries.line_protocol import prepare_lines  # noqa: E402
from ha_pipeline_tests.testbed.influxdb import start_influxdb  # noqa: E402

MEASUREMENT = "home_assistant_events"
TAGS = ["entity_id", "domain", "device_class", "area", "device_name", "integration"]
FIELDS = ["state_value", "normalized_value", "previous_state", "duration_seconds", "unit_of_measurement"]


def events_frame(rows: int, series: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """Realistic HA events: a week of state rows over ``series`` entities, one row per entity and second at most."""
    rng = np.random.default_rng(seed)
    domains = np.array(["sensor", "sensor", "binary_sensor", "light", "switch", "climate", "sensor"], dtype=object)
    ent_domain = domains[np.arange(series) % len(domains)]
    entity_ids = np.array([f"{d}.device_{i // 4}_{i % 4}" for i, d in enumerate(ent_domain)], dtype=object)
    areas = np.array(["Kitchen", "Living Room", "Bedroom", "Office", "Garage", "Küche", "Garden", ""], dtype=object)
    device_classes = np.array(["temperature", "humidity", "power", "energy", ""], dtype=object)
    integrations = np.array(["zha", "mqtt", "hue", "shelly", "esphome"], dtype=object)

    entity = np.arange(rows) % series
    step = max(1, 7 * 86_400 * series // max(rows, 1))
    seconds = (np.arange(rows) // series) * step + (entity * 7919) % step
    start = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=8)
    micros = rng.integers(0, 1_000_000, rows)
    time_col = start + pd.to_timedelta(seconds * 1_000_000 + micros, unit="us")

    ent_numeric = np.isin(ent_domain, ["sensor", "climate"])
    numeric = ent_numeric[entity]
    values = np.round(rng.normal(21, 4, rows), 1)
    on = rng.random(rows) < 0.5
    # State strings are separate objects per row, as json.loads makes them from HA's history.
    state = np.where(numeric, values.astype(str), np.where(on, "on", "off")).astype(object)
    unavailable = rng.random(rows) < 0.01
    state[unavailable] = "unavailable"
    normalized = np.where(numeric, values, on.astype(float))
    normalized[unavailable] = np.nan
    previous = np.empty(rows, dtype=object)
    previous[series:] = state[:-series]
    previous[:series] = "unknown"
    device_class = np.where(ent_numeric, device_classes[np.arange(series) % 5], "").astype(object)
    units = np.array(["°C", "%", "W", "kWh", ""], dtype=object)
    unit = np.where(ent_numeric, units[np.arange(series) % 5], None).astype(object)
    return pd.DataFrame(
        {
            "time": time_col,
            "entity_id": entity_ids[entity],
            "domain": ent_domain[entity],
            "device_class": device_class[entity],
            "area": areas[np.arange(series) % len(areas)][entity],
            "device_name": np.array([f"Device {i // 4}" for i in range(series)], dtype=object)[entity],
            "integration": integrations[np.arange(series) % 5][entity],
            "state_value": state,
            "normalized_value": normalized,
            "previous_state": previous,
            "duration_seconds": np.round(rng.exponential(step, rows), 6),
            "unit_of_measurement": unit[entity],
        }
    )


def point_per_row(df: pd.DataFrame) -> int:
    """influxdb-client's ``Point`` API, one object per row; returns bytes produced."""
    from influxdb_client import Point, WritePrecision

    total = 0
    for row in df.itertuples(index=False):
        point = Point(MEASUREMENT)
        for tag in TAGS:
            value = getattr(row, tag)
            if isinstance(value, str) and value:
                point.tag(tag, value)
        for name in FIELDS:
            value = getattr(row, name)
            if value is not None and not (isinstance(value, float) and np.isnan(value)):
                point.field(name, value)
        point.time(row.time, WritePrecision.S)
        total += len(point.to_line_protocol())
    return total


def post_all(url: str, db: str, bodies: list[bytes], connections: int) -> tuple[float, int]:
    """POST every body (``connections`` at a time); (seconds taken, 5xx retries). Other errors raise."""
    sessions = [requests.Session() for _ in range(connections)]

    def post(i: int) -> int:
        for attempt in range(6):
            response = sessions[i % connections].post(
                f"{url}/write", params={"db": db, "precision": "s"}, data=bodies[i], timeout=300
            )
            if response.status_code == 204:
                return attempt
            if response.status_code < 500:
                break
            time.sleep(0.5 * 2**attempt)  # influxd answers 500 "timeout" when starved of CPU
        raise RuntimeError(f"write failed: HTTP {response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        retries = sum(pool.map(post, range(len(bodies))))
    return time.perf_counter() - started, retries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--series", type=int, default=2_000)
    parser.add_argument("--point-rows", type=int, default=200_000)
    parser.add_argument("--batch-sizes", default="50000,100000")
    parser.add_argument("--connections", default="1,2,3")
    args = parser.parse_args()
    batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    connection_counts = [int(x) for x in args.connections.split(",")]

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    df = events_frame(args.rows, args.series)
    print(f"frame: {len(df):,} rows, {df.entity_id.nunique():,} entities, {df.time.min()} … {df.time.max()}")

    # --- serialisation ------------------------------------------------------------------------
    started = time.perf_counter()
    prepared = prepare_lines(df, MEASUREMENT, TAGS, FIELDS, precision="s")
    body_bytes = sum(len(b) for b in prepared.chunks(50_000))
    ours_seconds = time.perf_counter() - started
    ours_rate = prepared.lines / ours_seconds
    print(f"our serialisation: {prepared.lines:,} lines, {body_bytes / prepared.lines:.0f} B/line, "
          f"{ours_seconds:.2f} s = {ours_rate:,.0f} lines/s")
    subset = df.iloc[: args.point_rows]
    started = time.perf_counter()
    point_per_row(subset)
    point_seconds = time.perf_counter() - started
    point_rate = len(subset) / point_seconds
    print(f"influxdb-client Point per row: {len(subset):,} lines in {point_seconds:.2f} s = {point_rate:,.0f} lines/s")

    with tempfile.TemporaryDirectory(prefix="influx-bench-") as tmp:
        server = start_influxdb(Path(tmp))
        try:
            print(f"influxd {server.version} at {server.url} (pid {server.pid})")
            backend = InfluxV1Backend(InfluxSettings(url=server.url, api_version=1))
            spec = lambda name: BucketSpec(name, MEASUREMENT, 365, 7)  # noqa: E731

            # --- ceiling --------------------------------------------------------------------
            results: dict[tuple[int, int], float] = {}
            for size in batch_sizes:
                bodies = [prepared.body(a, b) for a, b in prepared.chunk_bounds(size)]
                for conns in connection_counts:
                    db = f"ceiling_{size}_{conns}"
                    backend.ensure_bucket(spec(db))
                    seconds, retries = post_all(server.url, db, bodies, conns)
                    results[(size, conns)] = prepared.lines / seconds
                    print(f"  ceiling batch {size:>7,} × {conns} connection(s): {results[(size, conns)]:>9,.0f} points/s"
                          + (f" ({retries} batches retried after 5xx)" if retries else ""))
                del bodies
            (best_size, best_conns), ceiling = max(results.items(), key=lambda kv: kv[1])
            print(f"raw ceiling: {ceiling:,.0f} points/s (batch {best_size:,}, {best_conns} connection(s))")

            # --- end to end -----------------------------------------------------------------
            e2e = InfluxV1Backend(
                InfluxSettings(url=server.url, api_version=1), batch_lines=best_size, max_in_flight=max(2, best_conns)
            )
            e2e.ensure_bucket(spec("end_to_end"))
            started = time.perf_counter()
            written = e2e.write("end_to_end", df, MEASUREMENT, TAGS, FIELDS, precision="s")
            e2e_seconds = time.perf_counter() - started
            e2e_rate = written / e2e_seconds
            stored = e2e.count("end_to_end", MEASUREMENT, df.time.min().floor("s"), df.time.max() + pd.Timedelta(seconds=1))
            print(f"end-to-end write from DataFrame: {written:,} points in {e2e_seconds:.2f} s = {e2e_rate:,.0f} points/s "
                  f"(batch {best_size:,}, {max(2, best_conns)} in flight; {stored:,} points counted back)")

            print("--- summary ---")
            print(f"raw ceiling            {ceiling:>10,.0f} points/s  (best batch {best_size:,}, {best_conns} conn)")
            print(f"end-to-end             {e2e_rate:>10,.0f} points/s  = {e2e_rate / ceiling:.0%} of ceiling (target ≥ 80 %)")
            print(f"our serialisation      {ours_rate:>10,.0f} lines/s")
            print(f"Point per row          {point_rate:>10,.0f} lines/s  → ours is {ours_rate / point_rate:.1f}× (target ≥ 15×)")
            print(f"load average at end: {os.getloadavg()[0]:.2f}")
            e2e.close()
            backend.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
