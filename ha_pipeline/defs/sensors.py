"""`registry_change_sensor`: start discovery when HA's registries change."""

import dagster as dg

from ha_pipeline.defs.jobs import discovery_job
from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.defs.schedules import automation_status
from ha_pipeline.homeassistant.errors import HomeAssistantError
from ha_pipeline.homeassistant.registry import registry_fingerprint

# Short budgets: a tick must end well under Dagster's 60 s sensor timeout even when HA is down.
SENSOR_TIMEOUTS = {"connect_timeout": 5.0, "command_timeout": 20.0, "retry_budget_seconds": 10.0}


@dg.sensor(
    name="registry_change_sensor",
    job=discovery_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus(automation_status().value),
    description="Fingerprints HA's registries each minute and runs discovery_job when they changed.",
)
def registry_change_sensor(context: dg.SensorEvaluationContext, ha: HomeAssistantResource):
    """Open the WebSocket, fingerprint the four registries, close; compare with the cursor
    (`<changes seen>:<fingerprint>`)."""
    try:
        with ha.client(**SENSOR_TIMEOUTS) as client:
            fingerprint = registry_fingerprint(client.registry_snapshot())
    except HomeAssistantError as error:
        return dg.SkipReason(
            f"Home Assistant could not be asked for its registries ({error}); "
            "nothing was started, the next tick tries again."
        )
    changes_seen, _, last_fingerprint = (context.cursor or "0:").partition(":")
    if fingerprint == last_fingerprint:
        return dg.SkipReason(
            f"HA's registries are unchanged since the last discovery (fingerprint {fingerprint[:12]})."
        )
    change = int(changes_seen) + 1
    context.update_cursor(f"{change}:{fingerprint}")
    # The change number keeps run keys unique when registries return to an earlier state
    # (rename, then rename back), which Dagster would otherwise skip as an old run key.
    return dg.RunRequest(run_key=f"{fingerprint}-{change}")
