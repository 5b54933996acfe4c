"""Inventory: Home Assistant's registries, mirrored into the SQL metadata store."""

from collections import Counter
from datetime import timedelta

import dagster as dg

from ha_pipeline.defs.resources import HomeAssistantResource, MetadataStoreResource, fails_at_once
from ha_pipeline.timeseries.calendar import record_ha_time_zone

INVENTORY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=24))
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL)

# HA's registries: lineage in the UI starts here. (name in the snapshot, asset name, description)
REGISTRIES = [
    ("areas", "area_registry", "Home Assistant's area registry (`config/area_registry/list`)."),
    ("devices", "device_registry", "Home Assistant's device registry (`config/device_registry/list`)."),
    ("entities", "entity_registry", "Home Assistant's entity registry (`config/entity_registry/list`)."),
    ("config_entries", "config_entries", "Home Assistant's config entries (`config_entries/get`)."),
]

ha_registries = [
    dg.AssetSpec(
        ["homeassistant", asset_name],
        description=description,
        group_name="homeassistant",
        kinds={"homeassistant"},
    )
    for _, asset_name, description in REGISTRIES
]
ha_history = dg.AssetSpec(
    ["homeassistant", "history"],
    description="Home Assistant's recorder: the state history kept by HA (about 10 days by default).",
    group_name="homeassistant",
    kinds={"homeassistant"},
)

TABLE_DESCRIPTIONS = {
    "areas": "Areas of the home, keyed by HA's `area_id`.",
    "devices": "Devices, keyed by HA's `device_id`, with manufacturer, model, area and versions.",
    "entities": "Entities, keyed by HA's `entity_id`, with platform, domain, device and effective area.",
    "config_entries": "Config entries (integrations set up in HA), keyed by HA's `entry_id`.",
}

inventory_specs = [
    dg.AssetSpec(
        ["sqlite", table],
        deps=[["homeassistant", asset_name]],
        description=TABLE_DESCRIPTIONS[table],
        group_name="inventory",
        kinds={"sqlite"},
        freshness_policy=INVENTORY_FRESHNESS,
    )
    for table, asset_name, _ in REGISTRIES
] + [
    dg.AssetSpec(
        ["sqlite", "registry_changes"],
        deps=[["homeassistant", asset_name] for _, asset_name, _ in REGISTRIES],
        description="Audit log: one row per difference found between HA's registries and the stored inventory.",
        group_name="inventory",
        kinds={"sqlite"},
        freshness_policy=INVENTORY_FRESHNESS,
    )
]

PREVIEW_ROWS = 20
# The client names rejects by record kind, the store by table: one vocabulary for the reader.
TABLE_OF_KIND = {"area": "areas", "device": "devices", "entity": "entities", "config_entry": "config_entries"}


def _short(values: dict | None) -> str:
    if not values:
        return ""
    text = ", ".join(f"{key}={value}" for key, value in values.items())
    return text if len(text) <= 80 else text[:79] + "…"


def _changes_markdown(changes: list[dict]) -> str:
    if not changes:
        return "No changes: the stored inventory already matched Home Assistant."
    lines = ["| table | id | change | old | new |", "|---|---|---|---|---|"]
    for change in changes[:PREVIEW_ROWS]:
        cells = [
            change["table_name"],
            change["object_id"],
            change["change_type"],
            _short(change.get("old_values")),
            _short(change.get("new_values")),
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    if len(changes) > PREVIEW_ROWS:
        lines.append(f"\n… and {len(changes) - PREVIEW_ROWS} more.")
    return "\n".join(lines)


def _rejects_sentence(rejects: list[dict]) -> str:
    if not rejects:
        return "Every registry record Home Assistant sent was valid and stored."
    kinds = Counter(reject["kind"] for reject in rejects)
    per_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    return (
        f"Skipped {len(rejects)} invalid registry record(s) ({per_kind}); "
        "the valid rest was stored. See `rejects_by_reason` for why."
    )


class DiscoveryConfig(dg.Config):
    """Run configuration of `discovery`."""

    #: Compare every stored row even where the quick check says a table already matches HA's
    #: last snapshot (heals columns edited by hand in the SQL tables).
    full_compare: bool = False


@dg.multi_asset(
    name="discovery",
    specs=inventory_specs,
    pool="metadata",
    retry_policy=TRANSIENT_RETRY,
)
@fails_at_once
def discovery(
    context: dg.AssetExecutionContext,
    config: DiscoveryConfig,
    ha: HomeAssistantResource,
    metadata_store: MetadataStoreResource,
):
    """Lists HA's areas, devices, entities and config entries over the WebSocket API and syncs
    them into the SQL inventory in one transaction: new rows are inserted, changed rows updated,
    rows HA no longer has are marked removed, and every difference is written to
    `registry_changes`. Invalid records are skipped and counted with their reasons. A table
    whose snapshot matches the last one synced into it is not re-compared row by row
    (`quick_checked`), unless `full_compare` is set. HA's time zone (`get_config`) is recorded
    in the data directory for the home's calendar."""
    with ha.client() as client:
        snapshot = client.registry_snapshot()
        ha_time_zone = client.config().time_zone
    # Read when the code location loads: days and months follow HA's zone (timeseries/calendar.py).
    record_ha_time_zone(ha_time_zone)
    store = metadata_store.store()
    result = store.sync(snapshot.as_rows(), now=snapshot.fetched_at, full_compare=config.full_compare)
    stored = store.counts()
    # Records HA sent that failed validation, and records the store could not take.
    rejects = [
        {"kind": TABLE_OF_KIND.get(r.kind, r.kind), "record_id": r.record_id, "field": r.field, "reason": r.reason}
        for r in snapshot.rejects
    ] + list(result.rejects)
    rejects_sentence = _rejects_sentence(rejects)
    if rejects:
        context.log.warning(rejects_sentence)
    context.log.info(result.summary())

    for table, _, _ in REGISTRIES:
        yield dg.MaterializeResult(
            asset_key=["sqlite", table],
            metadata={
                "row_count": dg.MetadataValue.int(stored[table]),
                "ha_count": dg.MetadataValue.int(len(getattr(snapshot, table))),
                "refused_by_store": dg.MetadataValue.int(
                    sum(1 for r in result.rejects if r["kind"] == table)
                ),
                "added": dg.MetadataValue.int(result.added[table]),
                "removed": dg.MetadataValue.int(result.removed[table]),
                "changed": dg.MetadataValue.int(result.changed[table]),
                "revived": dg.MetadataValue.int(result.revived[table]),
                "quick_checked": dg.MetadataValue.bool(table in result.quick_checked),
                "fetched_at": dg.MetadataValue.timestamp(snapshot.fetched_at),
            },
        )
    rejects_by_reason = Counter(f"{r['kind']}: {r['reason']}" for r in rejects)
    yield dg.MaterializeResult(
        asset_key=["sqlite", "registry_changes"],
        metadata={
            "changes_written": dg.MetadataValue.int(len(result.changes)),
            "rows_written": dg.MetadataValue.int(result.rows_written),
            "preview": dg.MetadataValue.md(_changes_markdown(result.changes)),
            "rejected_records": dg.MetadataValue.int(len(rejects)),
            "rejects_by_reason": dg.MetadataValue.json(dict(rejects_by_reason)),
            "rejects": dg.MetadataValue.text(rejects_sentence),
            "warnings": dg.MetadataValue.int(len(result.warnings)),
            "ha_time_zone": dg.MetadataValue.text(ha_time_zone or "none"),
        },
    )
