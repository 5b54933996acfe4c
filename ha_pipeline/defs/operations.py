"""Keeping the stores healthy for years: retention, the storage report, partition freshness.

`retention_job` makes every bucket's retention match the configuration and prunes the SQL
history tables; `reports/storage_report` measures what is stored and how fast it grows. Both
run daily. Schedules start RUNNING unless `HA_PIPELINE_AUTOMATION=off`. Resources (`ha`,
`metadata_store`, `influxdb`) are bound once, in `ha_pipeline/definitions.py`, which merges `defs`.
"""

import base64
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg

from ha_pipeline.defs.partitions import daily_partitions, hourly_partitions
from ha_pipeline.defs.resources import InfluxDBResource, MetadataStoreResource, fails_at_once
from ha_pipeline.defs.schedules import automation_status
from ha_pipeline.timeseries.calendar import period_start

EVENTS_KEY = dg.AssetKey(["influxdb", "events"])
REPORT_KEY = dg.AssetKey(["reports", "storage_report"])
# Every store the report measures; these edges put the report at the end of the lineage.
MEASURED_KEYS = [
    dg.AssetKey(["sqlite", "registry_changes"]),
    dg.AssetKey(["influxdb", "device_snapshots"]),
    dg.AssetKey(["influxdb", "entity_snapshots"]),
    EVENTS_KEY,
    dg.AssetKey(["influxdb", "hourly_summaries"]),
    dg.AssetKey(["influxdb", "daily_summaries"]),
    dg.AssetKey(["influxdb", "monthly_summaries"]),
]
# Which bucket of `InfluxDBResource.bucket_specs()` holds the raw events.
EVENTS_BUCKET = "events"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- retention -------------------------------------------------------------------------

# InfluxDB answers "updated" when it had to alter the retention: to a reader that is a fix.
_OUTCOME_WORDS = {"created": "created", "updated": "fixed", "unchanged": "unchanged"}


@dg.op(pool="influxdb")
@fails_at_once
def enforce_bucket_retention(context: dg.OpExecutionContext, influxdb: InfluxDBResource) -> dict[str, str]:
    """Create missing buckets and set every bucket's retention to the configured one."""
    backend = influxdb.backend()
    outcomes: dict[str, str] = {}
    rows = []
    for spec in influxdb.bucket_specs().values():
        outcome = _OUTCOME_WORDS[backend.ensure_bucket(spec)]
        outcomes[spec.name] = outcome
        rows.append([spec.name, spec.retention_text, outcome])
        context.log.info(f"bucket {spec.name}: {outcome} (retention {spec.retention_text})")
    context.add_output_metadata(
        {
            **{f"bucket/{name}": dg.MetadataValue.text(outcome) for name, outcome in outcomes.items()},
            **{
                f"buckets_{word}": dg.MetadataValue.int(sum(o == word for o in outcomes.values()))
                for word in ("created", "fixed", "unchanged")
            },
            "buckets": dg.MetadataValue.md(_md_table(["bucket", "retention", "outcome"], rows)),
        }
    )
    return outcomes


class SqlRetentionConfig(dg.Config):
    """How long the SQL history tables keep rows (defaults from the environment)."""

    registry_changes_days: int = _env_int("HA_PIPELINE_CHANGES_RETENTION_DAYS", 365)
    removed_inventory_days: int = _env_int("HA_PIPELINE_REMOVED_RETENTION_DAYS", 90)
    storage_reports_days: int = _env_int("HA_PIPELINE_REPORTS_RETENTION_DAYS", 730)


@dg.op(pool="metadata")
@fails_at_once
def prune_sql_history(
    context: dg.OpExecutionContext, config: SqlRetentionConfig, metadata_store: MetadataStoreResource
) -> dict[str, int]:
    """Delete old audit rows, long-removed devices and entities (with their links), old reports."""
    removed = metadata_store.store().prune(
        changes_older_than_days=config.registry_changes_days,
        removed_older_than_days=config.removed_inventory_days,
        reports_older_than_days=config.storage_reports_days,
    )
    removed = {table: int(n) for table, n in removed.items()}
    context.log.info(f"pruned {removed}")
    context.add_output_metadata(
        {
            **{f"pruned/{table}": dg.MetadataValue.int(n) for table, n in removed.items()},
            "pruned_total": dg.MetadataValue.int(sum(removed.values())),
            "registry_changes_days": dg.MetadataValue.int(config.registry_changes_days),
            "removed_inventory_days": dg.MetadataValue.int(config.removed_inventory_days),
            "storage_reports_days": dg.MetadataValue.int(config.storage_reports_days),
        }
    )
    return removed


@dg.job(description="Bucket retentions match the configuration; old SQL history is pruned.")
def retention_job() -> None:
    enforce_bucket_retention()
    prune_sql_history()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=automation_status(),
)


# --- storage report --------------------------------------------------------------------


def _budget_bytes() -> int | None:
    from ha_pipeline.timeseries.storage_report import GIB

    gb = os.environ.get("HA_PIPELINE_STORAGE_BUDGET_GB")
    return int(float(gb) * GIB) if gb else None


def _last_day(bucket_key: str, now: datetime) -> tuple[datetime, datetime]:
    """The day whose points make a bucket's points per day. Summaries are stamped at the
    start of their hour or day, so theirs ends at the last complete hour or the home's last
    local midnight: a daily row written after midnight is stamped at yesterday's midnight,
    outside the plain last 24 hours (monthly rows count in the day they are stamped on)."""
    if bucket_key == "events_daily":
        zone = daily_partitions.timezone
        end = period_start(now, "day", zone)
        return period_start(end - timedelta(seconds=1), "day", zone), end
    if bucket_key == "events_hourly":
        end = now.replace(minute=0, second=0, microsecond=0)
    else:
        end = now
    return end - timedelta(days=1), end


def _stored_report(row: Any) -> dict[str, Any]:
    """A stored report as the dict `build_report` made, whatever shape the store returns."""
    report = row.get("report", row) if isinstance(row, dict) else row
    return json.loads(report) if isinstance(report, str) else dict(report)


@dg.asset(
    key=REPORT_KEY,
    deps=MEASURED_KEYS,
    group_name="reports",
    kinds={"influxdb", "sqlite"},
    pool="influxdb",
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26)),
)
@fails_at_once
def storage_report(
    context: dg.AssetExecutionContext, influxdb: InfluxDBResource, metadata_store: MetadataStoreResource
) -> dg.MaterializeResult:
    """How much every InfluxDB bucket and the SQL store hold, how fast they grow, and when the
    storage budget (`HA_PIPELINE_STORAGE_BUDGET_GB`) runs out; plus the ten chattiest entities
    of the last day with a recorder-exclude suggestion. Each report is kept in `storage_reports`,
    so growth is fitted over the stored history."""
    # numpy (and matplotlib for the chart) load when a report is made, not with the definitions.
    from ha_pipeline.timeseries import storage_report as sr

    now = datetime.now(timezone.utc)
    day_ago = now - timedelta(days=1)
    backend = influxdb.backend()
    specs = influxdb.bucket_specs()
    store = metadata_store.store()

    # A bucket nothing has written to yet (no daily rollup so far) does not exist: report it empty.
    stats = backend.storage_stats()
    existing = [spec for spec in specs.values() if spec.name in stats]
    empty = {"bytes": 0, "series": 0, "points": 0}
    bucket_stats = {spec.name: stats.get(spec.name, empty) for spec in specs.values()}
    points_last_day = {
        spec.name: backend.count(spec.name, spec.measurement, *_last_day(key, now))
        for key, spec in specs.items()
        if spec in existing
    }
    events = specs[EVENTS_BUCKET]
    events_by_entity: dict[str, int] = {}
    if events in existing:
        recent = backend.read(events.name, events.measurement, day_ago, now, fields=["state_value"])
        if len(recent):
            events_by_entity = recent["entity_id"].value_counts().to_dict()
    history = [_stored_report(r) for r in store.storage_reports(since=now - timedelta(days=365))]

    report = sr.build_report(
        generated_at=now,
        bucket_stats=bucket_stats,
        points_last_day=points_last_day,
        history=history,
        sql_bytes=store.size_bytes(),
        sql_rows=store.counts(),
        events_by_entity=events_by_entity,
        window_days=1.0,
        budget_bytes=_budget_bytes(),
    )
    store.save_storage_report(report)

    png = sr.size_chart_png([*history, report])
    chart = f"![storage over time](data:image/png;base64,{base64.b64encode(png).decode()})"
    context.log.info(f"storage report: {sr.human_bytes(report['total_bytes'])} in total")
    metadata: dict[str, Any] = {
        "report": dg.MetadataValue.md(sr.to_markdown(report)),
        "chart": dg.MetadataValue.md(chart),
        "total_bytes": dg.MetadataValue.int(report["total_bytes"]),
        "influxdb_bytes": dg.MetadataValue.int(report["influxdb_bytes"]),
        "reports_in_history": dg.MetadataValue.int(len(history)),
    }
    for name, b in report["buckets"].items():
        metadata[f"{name}/bytes"] = dg.MetadataValue.int(b["bytes"])
        metadata[f"{name}/series"] = dg.MetadataValue.int(b["series"])
        metadata[f"{name}/points_per_day"] = dg.MetadataValue.int(b["points_per_day"])
    if report["sql_bytes"] is not None:
        metadata["sql_bytes"] = dg.MetadataValue.int(report["sql_bytes"])
    if report["growth_bytes_per_day"] is not None:
        metadata["growth_bytes_per_day"] = dg.MetadataValue.float(report["growth_bytes_per_day"])
    if report["days_until_budget"] is not None:
        metadata["days_until_budget"] = dg.MetadataValue.float(report["days_until_budget"])
    return dg.MaterializeResult(metadata=metadata)


# --- partition freshness ---------------------------------------------------------------

# The events schedule runs shortly after each hour; give it this long before calling it late.
EVENTS_GRACE = timedelta(minutes=30)


def latest_expected_hour(now: datetime, grace: timedelta = EVENTS_GRACE) -> str:
    """Key of the newest hourly partition that should be materialised by `now`."""
    due = (now - grace).astimezone(timezone.utc)
    start = due.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    if start < hourly_partitions.start:
        raise ValueError(f"no hourly partition is due yet at {now:%Y-%m-%d %H:%M} (partitions start {hourly_partitions.start})")
    return start.strftime(hourly_partitions.fmt)


@dg.asset_check(
    asset=EVENTS_KEY,
    name="latest_hour_loaded",
    description="The newest hourly partition of influxdb/events that should exist by now "
    "(30 min grace) has been materialised; freshness policies do not look at partitions.",
)
def latest_hour_loaded(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    expected = latest_expected_hour(datetime.now(timezone.utc))
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=EVENTS_KEY, asset_partitions=[expected]), limit=1
    ).records
    latest = context.instance.get_latest_materialization_event(EVENTS_KEY)
    return dg.AssetCheckResult(
        passed=bool(records),
        metadata={
            "expected_partition": dg.MetadataValue.text(expected),
            "latest_materialized_partition": dg.MetadataValue.text(
                (latest.dagster_event.partition if latest and latest.dagster_event else None) or "none"
            ),
        },
    )


storage_report_job = dg.define_asset_job(
    name="storage_report_job",
    selection=dg.AssetSelection.assets(REPORT_KEY) | dg.AssetSelection.checks(latest_hour_loaded),
    description="Measure every bucket and the SQL store; also checks the latest events hour.",
)

storage_report_schedule = dg.ScheduleDefinition(
    name="storage_report_schedule",
    job=storage_report_job,
    cron_schedule="45 3 * * *",
    execution_timezone="UTC",
    default_status=automation_status(),
)


defs = dg.Definitions(
    assets=[storage_report],
    asset_checks=[latest_hour_loaded],
    jobs=[retention_job, storage_report_job],
    schedules=[retention_schedule, storage_report_schedule],
)
