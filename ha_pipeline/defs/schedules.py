"""Schedules, one per periodic job. `HA_PIPELINE_AUTOMATION=off` starts them (and the sensor) stopped."""

import os

import dagster as dg

from ha_pipeline.defs.jobs import daily_rollup_job, discovery_job, events_job, monthly_rollup_job


def automation_status() -> dg.DefaultScheduleStatus:
    """RUNNING unless the environment sets `HA_PIPELINE_AUTOMATION=off`."""
    if os.environ.get("HA_PIPELINE_AUTOMATION", "on").strip().lower() in {"off", "0", "false", "no"}:
        return dg.DefaultScheduleStatus.STOPPED
    return dg.DefaultScheduleStatus.RUNNING


# A few minutes past the hour, for the hour just completed (HA commits its recorder every 1 s,
# the slack covers clock skew between the two machines).
events_schedule = dg.build_schedule_from_partitioned_job(
    events_job,
    name="events_schedule",
    minute_of_hour=5,
    default_status=automation_status(),
)

# Rollups run in the home's zone (the partitions'), after the events schedule summarised the
# period's last hour: at 01:00 local, since in a half-hour zone such as Asia/Kolkata the last
# hour of a day ends at 00:30 local.
daily_rollup_schedule = dg.build_schedule_from_partitioned_job(
    daily_rollup_job,
    name="daily_rollup_schedule",
    hour_of_day=1,
    minute_of_hour=0,
    default_status=automation_status(),
)

monthly_rollup_schedule = dg.build_schedule_from_partitioned_job(
    monthly_rollup_job,
    name="monthly_rollup_schedule",
    day_of_month=1,
    hour_of_day=1,
    minute_of_hour=30,
    default_status=automation_status(),
)

# The sensor reacts to changes; this daily run keeps the inventory fresh when nothing changed,
# and compares every stored row (the sensor's runs trust the quick check), so a column edited
# by hand in the SQL tables is put right within a day.
discovery_schedule = dg.ScheduleDefinition(
    name="discovery_schedule",
    job=discovery_job,
    cron_schedule="15 3 * * *",
    execution_timezone="UTC",
    default_status=automation_status(),
    run_config={"ops": {"discovery": {"config": {"full_compare": True}}}},
)
