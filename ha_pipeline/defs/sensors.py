"""`registry_change_sensor`: start discovery when HA's registries change."""

import dagster as dg

from ha_pipeline.defs.jobs import discovery_job
from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.defs.schedules import automation_status

# Short budgets: a tick must end well under Dagster's 60 s sensor timeout even when HA is down
# or slow: at most about 15 s to connect (retries included) plus 25 s for the whole fetch.
SENSOR_TIMEOUTS = {"connect_timeout": 5.0, "command_timeout": 20.0, "retry_budget_seconds": 10.0}
FETCH_BUDGET_SECONDS = 25.0


@dg.sensor(
    name="registry_change_sensor",
    job=discovery_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus(automation_status().value),
    description="Fingerprints HA's registries each minute and runs discovery_job when they changed.",
)
def registry_change_sensor(context: dg.SensorEvaluationContext, ha: HomeAssistantResource):
    """Open the WebSocket, fingerprint the four registries, close; compare with the cursor
    (`<changes seen>:<fingerprint>`).

    The fingerprint is taken from HA's raw payloads (`HomeAssistantClient.registry_fingerprint`),
    without building models: it covers every field discovery stores, including the unit and
    state class from the states and the device classes from `get_entries`. A malformed record
    is hashed as it is, so it changes the fingerprint (and starts a discovery, which reports it)
    rather than failing the tick.
    """
    # The HA package brings websockets and pydantic models: loaded by the tick, not the definitions.
    from ha_pipeline.homeassistant.errors import HomeAssistantError

    try:
        with ha.client(**SENSOR_TIMEOUTS) as client:
            fingerprint = client.registry_fingerprint(timeout=FETCH_BUDGET_SECONDS)
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
