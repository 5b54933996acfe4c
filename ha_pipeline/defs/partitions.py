"""The partitions sets of the project, defined once and imported by assets, jobs and schedules."""

import os

import dagster as dg

from ha_pipeline.timeseries.calendar import home_time_zone

# A fixed default keeps partition keys stable across machines; users with older HA history
# set HA_PIPELINE_PARTITIONS_START (YYYY-MM-DD) to backfill further back.
PARTITIONS_START = os.environ.get("HA_PIPELINE_PARTITIONS_START", "2025-01-01")
# Days and months are the home's (HA_PIPELINE_TIME_ZONE, else HA's zone, else UTC); hours stay
# UTC hours, as HA's hourly statistics are.
HOME_TIME_ZONE = home_time_zone()

hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=f"{PARTITIONS_START}-00:00", timezone="UTC"
)
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone=HOME_TIME_ZONE)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START, timezone=HOME_TIME_ZONE)
