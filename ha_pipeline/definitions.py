"""The one `Definitions` object of the `ha_pipeline` code location."""

import dagster as dg

from ha_pipeline.defs import checks, jobs, operations, schedules, sensors
from ha_pipeline.defs.assets import history, inventory, snapshots, summaries
from ha_pipeline.defs.resources import default_resources

defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[
            *inventory.ha_registries,
            inventory.ha_history,
            inventory.discovery,
            snapshots.device_snapshots,
            snapshots.entity_snapshots,
            history.events,
            history.hourly_summaries_asset,
            summaries.daily_summaries_asset,
            summaries.monthly_summaries_asset,
        ],
        asset_checks=[
            checks.inventory_integrity,
            checks.entities_with_removed_device,
            checks.events_match_ha_rows,
            checks.hourly_counts_match_events,
            checks.hourly_summaries_finite,
            checks.daily_summaries_finite,
            checks.daily_mean_matches_hourly,
            checks.monthly_summaries_finite,
            checks.monthly_mean_matches_hourly,
            checks.time_zone_matches_ha,
        ],
        jobs=[jobs.discovery_job, jobs.events_job, jobs.daily_rollup_job, jobs.monthly_rollup_job],
        schedules=[
            schedules.discovery_schedule,
            schedules.events_schedule,
            schedules.daily_rollup_schedule,
            schedules.monthly_rollup_schedule,
        ],
        sensors=[sensors.registry_change_sensor],
        resources=default_resources(),
        # Each run executes its steps one after another in the run worker, which loads the
        # definitions and sets up the resources once: a step process each would load them again
        # for every asset and check (issue 16). Pools, retries and blocking checks still apply.
        executor=dg.in_process_executor,
    ),
    # Retention job, storage report and their schedules (issue 6).
    operations.defs,
)
