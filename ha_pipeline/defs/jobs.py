"""Jobs: discovery, the hourly history run and the daily rollup."""

import dagster as dg

from ha_pipeline.defs.partitions import daily_partitions, hourly_partitions

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
    description="Combine a day's 24 hourly summaries into daily summaries.",
)
