"""Registry snapshots: one InfluxDB point per device and per entity at every discovery."""

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import dagster as dg

from ha_pipeline.defs.resources import InfluxDBResource, MetadataStoreResource, fails_at_once
from ha_pipeline.defs.assets.inventory import INVENTORY_FRESHNESS

# pandas is imported when a snapshot is built, not when the definitions load (issue 16).
if TYPE_CHECKING:
    import pandas as pd

SNAPSHOT_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL)

DEVICE_TAGS = ["device_id", "manufacturer", "model", "area_id"]
DEVICE_FIELDS = ["name", "sw_version", "entity_count"]
ENTITY_TAGS = ["entity_id", "device_id", "domain", "platform", "area_id"]
ENTITY_FIELDS = ["unique_id", "disabled"]


def _frame(rows: list[dict], columns: list[str], at: datetime) -> "pd.DataFrame":
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["time"] = pd.Timestamp(at)
    return frame


def _write_snapshot(
    influxdb: InfluxDBResource, bucket_key: str, frame: "pd.DataFrame", tags: list[str], fields: list[str]
) -> tuple[str, int, str]:
    spec = influxdb.bucket_specs()[bucket_key]
    backend = influxdb.backend()
    bucket_status = backend.ensure_bucket(spec)
    written = backend.write(spec.name, frame, spec.measurement, tags, fields) if len(frame) else 0
    return spec.name, written, bucket_status


@dg.asset(
    key=["influxdb", "device_snapshots"],
    deps=[["sqlite", "devices"], ["sqlite", "entities"]],
    group_name="inventory",
    kinds={"influxdb"},
    pool="influxdb",
    retry_policy=SNAPSHOT_RETRY,
    freshness_policy=INVENTORY_FRESHNESS,
)
@fails_at_once
def device_snapshots(
    metadata_store: MetadataStoreResource, influxdb: InfluxDBResource
) -> dg.MaterializeResult:
    """One point per current device, written to the 90-day `devices` bucket after each
    discovery: tags device_id, manufacturer, model and area_id; fields name, sw_version and
    entity_count. Over time these points show how the inventory of the home evolved."""
    at = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [
        {
            "device_id": d["device_id"],
            "manufacturer": d.get("manufacturer"),
            "model": d.get("model"),
            "area_id": d.get("area_id"),
            "name": d.get("name_by_user") or d.get("name"),
            "sw_version": d.get("sw_version"),
            "entity_count": int(d.get("entity_count") or 0),
        }
        for d in metadata_store.store().devices()
    ]
    frame = _frame(rows, DEVICE_TAGS + DEVICE_FIELDS, at)
    bucket, written, bucket_status = _write_snapshot(
        influxdb, "devices", frame, DEVICE_TAGS, DEVICE_FIELDS
    )
    return dg.MaterializeResult(
        metadata={
            "devices": dg.MetadataValue.int(len(rows)),
            "points_written": dg.MetadataValue.int(written),
            "bucket": dg.MetadataValue.text(bucket),
            "bucket_status": dg.MetadataValue.text(bucket_status),
            "snapshot_time": dg.MetadataValue.timestamp(at),
        }
    )


@dg.asset(
    key=["influxdb", "entity_snapshots"],
    deps=[["sqlite", "entities"]],
    group_name="inventory",
    kinds={"influxdb"},
    pool="influxdb",
    retry_policy=SNAPSHOT_RETRY,
    freshness_policy=INVENTORY_FRESHNESS,
)
@fails_at_once
def entity_snapshots(
    metadata_store: MetadataStoreResource, influxdb: InfluxDBResource
) -> dg.MaterializeResult:
    """One point per current entity, written to the 90-day `entities` bucket after each
    discovery: tags entity_id, device_id, domain, platform and area_id; fields unique_id and
    disabled (whether HA disabled the entity)."""
    at = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [
        {
            "entity_id": e["entity_id"],
            "device_id": e.get("device_id"),
            "domain": e.get("domain") or e["entity_id"].split(".", 1)[0],
            "platform": e.get("platform"),
            "area_id": e.get("area_id"),
            "unique_id": e.get("unique_id"),
            "disabled": e.get("disabled_by") is not None,
        }
        for e in metadata_store.store().entities()
    ]
    frame = _frame(rows, ENTITY_TAGS + ENTITY_FIELDS, at)
    bucket, written, bucket_status = _write_snapshot(
        influxdb, "entities", frame, ENTITY_TAGS, ENTITY_FIELDS
    )
    return dg.MaterializeResult(
        metadata={
            "entities": dg.MetadataValue.int(len(rows)),
            "points_written": dg.MetadataValue.int(written),
            "bucket": dg.MetadataValue.text(bucket),
            "bucket_status": dg.MetadataValue.text(bucket_status),
            "snapshot_time": dg.MetadataValue.timestamp(at),
        }
    )
