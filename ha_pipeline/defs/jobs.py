"""Jobs: discovery, the hourly history run and the daily and monthly rollups."""

import dagster as dg

from ha_pipeline.defs.partitions import daily_partitions, hourly_partitions, monthly_partitions

discovery_job = dg.define_asset_job(
    name="discovery_job",
    selection=dg.AssetSelection.groups("inventory"),
    description="Re-list HA's registries into the SQL inventory, then snapshot it into InfluxDB.",
)

events_job = dg.define_asset_job(
    name="events_job",
    selection=dg.AssetSelection.assets(["influxdb", "events"], ["influxdb", "hourly_summaries"]),
    partitions_def=hourly_partitions,
    description="Archive one hour of HA history into InfluxDB and summarise it.",
)

daily_rollup_job = dg.define_asset_job(
    name="daily_rollup_job",
    selection=dg.AssetSelection.assets(["influxdb", "daily_summaries"]),
    partitions_def=daily_partitions,
    description="Reduce a local day's hourly summaries (23-25 hours) to daily summaries, as HA does.",
)

monthly_rollup_job = dg.define_asset_job(
    name="monthly_rollup_job",
    selection=dg.AssetSelection.assets(["influxdb", "monthly_summaries"]),
    partitions_def=monthly_partitions,
    description="Reduce a local month's hourly summaries to monthly summaries, as HA does.",
)
