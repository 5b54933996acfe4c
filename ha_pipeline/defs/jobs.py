"""Jobs: discovery, the hourly history run and the daily and monthly rollups.

The partitioned jobs take their partitions from their assets (`defs/partitions.py`); every job
runs its steps in the run's own process (the in-process executor set in `definitions.py`).
"""

import dagster as dg

discovery_job = dg.define_asset_job(
    name="discovery_job",
    selection=dg.AssetSelection.groups("inventory"),
    description="Re-list HA's registries into the SQL inventory, then snapshot it into InfluxDB.",
)

events_job = dg.define_asset_job(
    name="events_job",
    selection=dg.AssetSelection.assets(["influxdb", "events"], ["influxdb", "hourly_summaries"]),
    description="Archive one hour of HA history into InfluxDB and summarise it.",
)

daily_rollup_job = dg.define_asset_job(
    name="daily_rollup_job",
    selection=dg.AssetSelection.assets(["influxdb", "daily_summaries"]),
    description="Reduce a local day's hourly summaries (23-25 hours) to daily summaries, as HA does.",
)

monthly_rollup_job = dg.define_asset_job(
    name="monthly_rollup_job",
    selection=dg.AssetSelection.assets(["influxdb", "monthly_summaries"]),
    description="Reduce a local month's hourly summaries to monthly summaries, as HA does.",
)
