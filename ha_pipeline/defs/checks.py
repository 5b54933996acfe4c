"""Asset checks: the inventory's integrity, and that history and summaries add up."""

from typing import TYPE_CHECKING

import dagster as dg

from ha_pipeline.defs.resources import InfluxDBResource, MetadataStoreResource

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


@dg.asset_check(asset=["influxdb", "daily_summaries"])
def daily_mean_matches_hourly(
    context: dg.AssetCheckExecutionContext, influxdb: InfluxDBResource
) -> dg.AssetCheckResult:
    """Each stored daily mean equals the stored hourly means of that day weighted by their
    covered seconds (relative tolerance 1e-6): catches days rolled up from stale hours."""
    import numpy as np
    import pandas as pd

    found = _window(context, ["influxdb", "daily_summaries"])
    if found is None:
        return _no_materialization("influxdb/daily_summaries")
    _, start, end = found
    specs = influxdb.bucket_specs()
    backend = influxdb.backend()
    hourly = backend.read(specs["events_hourly"].name, specs["events_hourly"].measurement, start, end)
    daily = backend.read(specs["events_daily"].name, specs["events_daily"].measurement, start, end)
    if daily.empty or "mean" not in daily.columns:
        return dg.AssetCheckResult(passed=hourly.empty, metadata={"daily_rows": dg.MetadataValue.int(0)})
    hourly = hourly.dropna(subset=["mean"]).assign(
        day=lambda f: pd.to_datetime(f["time"], utc=True).dt.floor("D"),
        weighted=lambda f: f["mean"] * f["covered_seconds"],
    )
    grouped = hourly.groupby(["entity_id", "day"])
    expected = (grouped["weighted"].sum() / grouped["covered_seconds"].sum()).rename("expected")
    daily = daily.dropna(subset=["mean"]).assign(day=lambda f: pd.to_datetime(f["time"], utc=True).dt.floor("D"))
    joined = daily.join(expected, on=["entity_id", "day"])
    tolerance = 1e-6 * np.maximum(joined["expected"].abs(), 1.0)
    bad = joined[~((joined["mean"] - joined["expected"]).abs() <= tolerance)]
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            "entity_days": dg.MetadataValue.int(len(joined)),
            "inconsistent": dg.MetadataValue.int(len(bad)),
            "examples": dg.MetadataValue.json(
                [
                    {"entity_id": str(r.entity_id), "daily": float(r.mean), "hourly_weighted": float(r.expected)}
                    for r in bad.head(5).itertuples()
                ]
            ),
        },
    )
