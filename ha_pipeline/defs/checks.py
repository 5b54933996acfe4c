"""Asset checks: the inventory's integrity, and that history and summaries add up."""

from typing import TYPE_CHECKING

import dagster as dg

from ha_pipeline.defs.partitions import daily_partitions, monthly_partitions
from ha_pipeline.defs.resources import InfluxDBResource, MetadataStoreResource
from ha_pipeline.timeseries.calendar import Period, ha_time_zone, zone_mismatch

# numpy and pandas are imported by the checks that compute with them, when they run (issue 16).
if TYPE_CHECKING:
    import pandas as pd

INVENTORY_TABLES = ["areas", "devices", "entities", "config_entries"]


def _latest_metadata(context, asset_key: list[str]) -> dict:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset_key))
    if event is None or event.asset_materialization is None:
        return {}
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


@dg.multi_asset_check(
    specs=[
        *(
            dg.AssetCheckSpec("no_duplicate_ids", asset=["sqlite", table], blocking=True)
            for table in INVENTORY_TABLES
        ),
        *(
            dg.AssetCheckSpec("row_count_matches_ha", asset=["sqlite", table], blocking=True)
            for table in INVENTORY_TABLES
        ),
        dg.AssetCheckSpec("foreign_keys_valid", asset=["sqlite", "entities"], blocking=True),
        dg.AssetCheckSpec("foreign_keys_valid", asset=["sqlite", "devices"], blocking=True),
    ],
)
def inventory_integrity(context: dg.AssetCheckExecutionContext, metadata_store: MetadataStoreResource):
    """Blocking gates on the SQL inventory: HA's ids are unique, foreign keys hold, and the
    current row count of each table equals what HA listed in the last discovery."""
    store = metadata_store.store()
    duplicates = store.duplicate_ids()
    for table in INVENTORY_TABLES:
        dupes = [d for d in duplicates if d["table"] == table]
        yield dg.AssetCheckResult(
            asset_key=["sqlite", table],
            check_name="no_duplicate_ids",
            passed=not dupes,
            metadata={
                "duplicates": dg.MetadataValue.int(len(dupes)),
                "examples": dg.MetadataValue.json(dupes[:10]),
            },
        )
    counts = store.counts()
    for table in INVENTORY_TABLES:
        discovered = _latest_metadata(context, ["sqlite", table])
        # HA's valid records, less those the store refused (and said so in the discovery run).
        expected = discovered.get("ha_count", -1) - discovered.get("refused_by_store", 0)
        yield dg.AssetCheckResult(
            asset_key=["sqlite", table],
            check_name="row_count_matches_ha",
            passed=counts[table] == expected,
            metadata={
                "stored": dg.MetadataValue.int(counts[table]),
                "home_assistant": dg.MetadataValue.int(int(discovered.get("ha_count", -1))),
                "refused_by_store": dg.MetadataValue.int(int(discovered.get("refused_by_store", 0))),
            },
        )
    violations = list(store.fk_violations())
    for table in ("entities", "devices"):
        mine = [v for v in violations if v.get("table") == table]
        yield dg.AssetCheckResult(
            asset_key=["sqlite", table],
            check_name="foreign_keys_valid",
            passed=not mine,
            metadata={
                "violations": dg.MetadataValue.int(len(mine)),
                "examples": dg.MetadataValue.json(mine[:10]),
            },
        )


@dg.asset_check(asset=["sqlite", "entities"])
def entities_with_removed_device(metadata_store: MetadataStoreResource) -> dg.AssetCheckResult:
    """Warns about current entities whose device HA has removed (usually left-overs of an
    integration that was deleted; HA cleans them up on its own restart)."""
    orphans = [
        {"entity_id": row["entity_id"], "device_id": row["device_id"]}
        for row in metadata_store.store().entities_with_removed_device()
    ]
    return dg.AssetCheckResult(
        passed=not orphans,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "entities": dg.MetadataValue.int(len(orphans)),
            "examples": dg.MetadataValue.json(orphans[:10]),
        },
    )


def _window(context, asset_key: list[str]) -> "tuple[dict, pd.Timestamp, pd.Timestamp] | None":
    import pandas as pd

    metadata = _latest_metadata(context, asset_key)
    if "window_start" not in metadata:
        return None
    return metadata, pd.Timestamp(metadata["window_start"]), pd.Timestamp(metadata["window_end"])


def _no_materialization(asset: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        description=f"{asset} has no materialization with a time window to check yet.",
    )


@dg.asset_check(asset=["influxdb", "events"], blocking=True)
def events_match_ha_rows(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """Blocking: the raw points stored for the last materialized window equal the history rows
    kept from HA for it (fetched minus rejected), plus the points of archived hours that were
    kept because HA no longer holds them whole."""
    found = _window(context, ["influxdb", "events"])
    if found is None:
        return _no_materialization("influxdb/events")
    metadata, start, end = found
    spec = influxdb.bucket_specs()["events"]
    stored = influxdb.backend().count(spec.name, spec.measurement, start, end)
    kept = int(metadata["rows_kept"])
    # Hours HA no longer holds whole were left as archived, not rewritten.
    from_archive = int(metadata.get("points_kept_from_archive", 0))
    return dg.AssetCheckResult(
        passed=stored == kept + from_archive,
        metadata={
            "points_in_influxdb": dg.MetadataValue.int(stored),
            "ha_rows_kept": dg.MetadataValue.int(kept),
            "points_kept_from_archive": dg.MetadataValue.int(from_archive),
            "window_start": dg.MetadataValue.text(str(start)),
            "window_end": dg.MetadataValue.text(str(end)),
        },
    )


@dg.asset_check(asset=["influxdb", "hourly_summaries"], blocking=True)
def hourly_counts_match_events(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """The hourly `count` fields of the last materialized window add up to the raw points
    stored for the same window."""
    found = _window(context, ["influxdb", "hourly_summaries"])
    if found is None:
        return _no_materialization("influxdb/hourly_summaries")
    _, start, end = found
    specs = influxdb.bucket_specs()
    backend = influxdb.backend()
    raw = backend.count(specs["events"].name, specs["events"].measurement, start, end)
    hourly = backend.read(
        specs["events_hourly"].name, specs["events_hourly"].measurement, start, end, fields=["count"]
    )
    total = int(hourly["count"].sum()) if len(hourly) else 0
    return dg.AssetCheckResult(
        passed=total == raw,
        metadata={
            "sum_of_hourly_counts": dg.MetadataValue.int(total),
            "raw_points": dg.MetadataValue.int(raw),
        },
    )


SUMMARY_VALUES = ["mean", "min", "max", "last", "sum_increase"]


def _summaries_finite(context, asset: str, bucket_key: str, influxdb: InfluxDBResource) -> dg.AssetCheckResult:
    import numpy as np
    import pandas as pd

    found = _window(context, ["influxdb", asset])
    if found is None:
        return _no_materialization(f"influxdb/{asset}")
    _, start, end = found
    spec = influxdb.bucket_specs()[bucket_key]
    frame = influxdb.backend().read(spec.name, spec.measurement, start, end)
    values = frame.reindex(columns=SUMMARY_VALUES).apply(pd.to_numeric, errors="coerce")
    infinite = int(np.isinf(values.to_numpy(dtype="float64")).sum())
    covered = pd.to_numeric(frame.get("covered_seconds", pd.Series(dtype=float)), errors="coerce")
    missing_mean = int(((covered.fillna(0) > 0).to_numpy() & values["mean"].isna().to_numpy()).sum())
    return dg.AssetCheckResult(
        passed=infinite == 0 and missing_mean == 0,
        metadata={
            "rows": dg.MetadataValue.int(len(frame)),
            "infinite_values": dg.MetadataValue.int(infinite),
            "covered_rows_without_mean": dg.MetadataValue.int(missing_mean),
        },
    )


@dg.asset_check(asset=["influxdb", "hourly_summaries"])
def hourly_summaries_finite(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """No inf in the stored hourly values, and every entity-hour that covered time has a mean
    (a NaN mean would silently not be written)."""
    return _summaries_finite(context, "hourly_summaries", "events_hourly", influxdb)


@dg.asset_check(asset=["influxdb", "daily_summaries"])
def daily_summaries_finite(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """No inf in the stored daily values, and every entity-day that covered time has a mean."""
    return _summaries_finite(context, "daily_summaries", "events_daily", influxdb)


@dg.asset_check(asset=["influxdb", "monthly_summaries"])
def monthly_summaries_finite(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """No inf in the stored monthly values, and every entity-month that covered time has a mean."""
    return _summaries_finite(context, "monthly_summaries", "events_monthly", influxdb)


def _mean_matches_hourly(
    context, asset: str, bucket_key: str, period: Period, time_zone: str, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """Stored period means against `reduce_hourly` of the stored hourly rows (rel. 1e-6)."""
    import numpy as np
    import pandas as pd

    from ha_pipeline.timeseries.rollups import SUMMARY_COLUMNS, reduce_hourly

    found = _window(context, ["influxdb", asset])
    if found is None:
        return _no_materialization(f"influxdb/{asset}")
    _, start, end = found
    specs = influxdb.bucket_specs()
    backend = influxdb.backend()
    hourly = backend.read(specs["events_hourly"].name, specs["events_hourly"].measurement, start, end)
    stored = backend.read(specs[bucket_key].name, specs[bucket_key].measurement, start, end)
    if stored.empty or "mean" not in stored.columns:
        return dg.AssetCheckResult(passed=hourly.empty, metadata={f"entity_{period}s": dg.MetadataValue.int(0)})
    expected = reduce_hourly(hourly.reindex(columns=list(SUMMARY_COLUMNS)), period, time_zone)
    expected = expected.set_index(["entity_id", "time"])["mean"].rename("expected")
    stored = stored.dropna(subset=["mean"]).assign(time=lambda f: pd.to_datetime(f["time"], utc=True))
    joined = stored.join(expected, on=["entity_id", "time"])
    tolerance = 1e-6 * np.maximum(joined["expected"].abs(), 1.0)
    bad = joined[~((joined["mean"] - joined["expected"]).abs() <= tolerance)]
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            f"entity_{period}s": dg.MetadataValue.int(len(joined)),
            "inconsistent": dg.MetadataValue.int(len(bad)),
            "time_zone": dg.MetadataValue.text(time_zone),
            "examples": dg.MetadataValue.json(
                [
                    {"entity_id": str(r.entity_id), "time": str(r.time), "stored": float(r.mean),
                     "from_hourly": None if pd.isna(r.expected) else float(r.expected)}
                    for r in bad.head(5).itertuples()
                ]
            ),
        },
    )


@dg.asset_check(asset=["influxdb", "daily_summaries"])
def daily_mean_matches_hourly(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """Each stored daily mean equals HA's reduction (`reduce_hourly`) of the stored hourly rows
    of that local day (relative tolerance 1e-6): catches days rolled up from stale hours."""
    return _mean_matches_hourly(context, "daily_summaries", "events_daily", "day", daily_partitions.timezone, influxdb)


@dg.asset_check(asset=["influxdb", "monthly_summaries"])
def monthly_mean_matches_hourly(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """Each stored monthly mean equals HA's reduction of the stored hourly rows of that local month."""
    return _mean_matches_hourly(
        context, "monthly_summaries", "events_monthly", "month", monthly_partitions.timezone, influxdb
    )


@dg.asset_check(asset=["influxdb", "daily_summaries"])
def time_zone_matches_ha() -> dg.AssetCheckResult:
    """Warns when the days and months are not in the time zone Home Assistant reported at the
    last discovery (`HA_PIPELINE_TIME_ZONE` set to another zone, or a code location loaded
    before discovery recorded HA's zone), since they then differ from HA's statistics."""
    in_use, ha_zone = daily_partitions.timezone, ha_time_zone()
    mismatch = zone_mismatch(in_use, ha_zone)
    return dg.AssetCheckResult(
        passed=mismatch is None,
        severity=dg.AssetCheckSeverity.WARN,
        description=mismatch or (
            f"Days and months are in {in_use!r}, Home Assistant's time zone."
            if ha_zone else f"Days and months are in {in_use!r}; no discovery has recorded HA's time zone yet."
        ),
        metadata={
            "time_zone_in_use": dg.MetadataValue.text(in_use),
            "home_assistant_time_zone": dg.MetadataValue.text(ha_zone or "unknown"),
        },
    )
