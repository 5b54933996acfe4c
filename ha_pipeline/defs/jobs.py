"""Jobs: discovery, the hourly history run and the daily rollup.

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
    description="Combine a day's 24 hourly summaries into daily summaries.",
)
