"""`make demo`: run the whole pipeline once against a live HA (or the simulator) and InfluxDB.

`scripts/demo.sh` starts a local InfluxDB under `.data/` and the simulator, exports `HA_URL`,
`HA_TOKEN`, `INFLUXDB_URL`, `INFLUXDB_API_VERSION`, then runs `python -m ha_pipeline.demo`.
Runs execute in this process against the persistent instance in `$DAGSTER_HOME` (default
`.data/dagster_home`), so `make ui` shows them afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare_dagster_home(home: Path) -> Path:
    """Create `home` with the project's dagster.yaml (refreshed when the project's changed)."""
    home.mkdir(parents=True, exist_ok=True)
    source, target = ROOT / "dagster.yaml", home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copy(source, target)
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hours", type=int, default=None,
        help="hours of history to archive (default: all of yesterday and today so far, so one day is complete)",
    )
    args = parser.parse_args(argv)

    os.environ["DAGSTER_HOME"] = str(
        prepare_dagster_home(Path(os.environ.get("DAGSTER_HOME", ROOT / ".data" / "dagster_home")).resolve())
    )
    for name in ("HA_URL", "HA_TOKEN"):
        if not os.environ.get(name):
            print(f"{name} is not set: run `make demo` (scripts/demo.sh sets it), or export it.", file=sys.stderr)
            return 2
    # Imported late: the definitions read the environment (partitions start, buckets) at import.
    import dagster as dg

    from ha_pipeline.definitions import defs
    from ha_pipeline.defs.operations import latest_expected_hour
    from ha_pipeline.defs.partitions import daily_partitions
    from ha_pipeline.defs.resources import default_resources
    from ha_pipeline.timeseries.storage_report import human_bytes

    instance = dg.DagsterInstance.get()
    started = time.monotonic()

    def run(job_name: str, partition: str | None = None) -> None:
        t0 = time.monotonic()
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance,
            partition_key=partition,
            raise_on_error=False,
            # Step-by-step DEBUG lines would bury the summary; every event is in the UI anyway.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        label = f"{job_name}{f' [{partition}]' if partition else ''}"
        if not result.success:
            failed = [
                f"{e.step_key}: {e.step_failure_data.error.message.strip().splitlines()[0]}"
                for e in result.all_events
                if e.is_step_failure and e.step_failure_data.error is not None
            ]
            raise SystemExit(f"demo: {label} failed (run {result.run_id}):\n  " + "\n  ".join(failed or ["see the run in the UI"]))
        print(f"  ok  {label}  ({time.monotonic() - t0:.1f} s)", flush=True)

    now = datetime.now(timezone.utc)
    last = datetime.strptime(latest_expected_hour(now), "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc)
    first = (
        last.replace(hour=0) - timedelta(days=1) if args.hours is None else last - timedelta(hours=args.hours - 1)
    )
    hours = [first + timedelta(hours=i) for i in range(int((last - first) / timedelta(hours=1)) + 1)]
    # Only days that have ended are daily partitions (days of the home's time zone).
    days = [
        key for key in daily_partitions.get_partition_keys(current_time=last + timedelta(hours=1))
        if daily_partitions.time_window_for_partition_key(key).start >= first
    ]

    print("demo: discovery (registries -> SQL -> snapshots)", flush=True)
    run("discovery_job")
    print(f"demo: {len(hours)} hours of events + hourly summaries", flush=True)
    for hour in hours:
        run("events_job", hour.strftime("%Y-%m-%d-%H:%M"))
    print(f"demo: daily summaries for {', '.join(days) or 'no complete day'}", flush=True)
    for day in days:
        run("daily_rollup_job", day)
    print("demo: retention and storage report", flush=True)
    run("retention_job")
    run("storage_report_job")

    metadata = default_resources()["metadata_store"].store()
    report = metadata.storage_reports()[-1]["report"]
    print()
    print(f"Done in {time.monotonic() - started:.0f} s.")
    print("Inventory: " + ", ".join(f"{n} {t}" for t, n in metadata.counts().items()))
    for name, bucket in report["buckets"].items():
        print(f"  {name:<28} {human_bytes(bucket['bytes']):>10}  {bucket['series']:>6} series  "
              f"{bucket['points_per_day']:>8} points/day")
    print(f"Total on disk: {human_bytes(report['total_bytes'])} (SQL {human_bytes(report['sql']['bytes'])})")
    for talker in report["top_entities"][:3]:
        flag = "  <- chatty, see the report's exclude suggestion" if talker["chatty"] else ""
        print(f"  busiest: {talker['entity_id']} {talker['events_per_day']:.0f} events/day{flag}")
    print()
    print(f"Runs are in {os.environ['DAGSTER_HOME']}. Open the UI with `make ui` -> http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
