"""`registry_change_sensor`: start discovery when HA's registries differ from what the last
successful discovery stored."""

import json
import time
from dataclasses import asdict, dataclass

import dagster as dg

from ha_pipeline.defs.jobs import discovery_job
from ha_pipeline.defs.resources import HomeAssistantResource, is_permanent
from ha_pipeline.defs.schedules import automation_status

# Short budgets: a tick must end well under Dagster's 60 s sensor timeout even when HA is down
# or slow: at most about 15 s to connect (retries included) plus 25 s for the whole fetch.
SENSOR_TIMEOUTS = {"connect_timeout": 5.0, "command_timeout": 20.0, "retry_budget_seconds": 10.0}
FETCH_BUDGET_SECONDS = 25.0
# A failed discovery is asked for again after 5 min, then 10, 20, … at most every 6 h.
RETRY_FIRST_SECONDS = 300.0
RETRY_MAX_SECONDS = 6 * 3600.0
_FINISHED_BAD = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass
class SensorCursor:
    """What the sensor remembers: the run it asked for last and what the last successful one stored."""

    change: int = 0  # run requests so far; keeps run keys unique when registries return to a state
    requested: str = ""  # fingerprint of the last requested discovery
    requested_at: float = 0.0
    stored: str = ""  # fingerprint the last successful discovery stored
    failures: int = 0  # failed runs in a row for `requested`
    failed_key: str = ""  # run key of the last failure counted
    failed_at: float = 0.0

    @property
    def run_key(self) -> str:
        return f"{self.requested}-{self.change}"

    @classmethod
    def parse(cls, text: str | None) -> "SensorCursor":
        """The cursor, also from the `<change>:<fingerprint>` form of earlier versions."""
        if not text:
            return cls()
        if text.startswith("{"):
            return cls(**json.loads(text))
        change, _, fingerprint = text.partition(":")
        return cls(change=int(change) if change.isdigit() else 0, requested=fingerprint)

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def retry_delay_seconds(failures: int) -> float:
    """How long after the `failures`-th failed run in a row the sensor asks again."""
    return min(RETRY_FIRST_SECONDS * 2 ** max(failures - 1, 0), RETRY_MAX_SECONDS)


def _last_run(instance: dg.DagsterInstance, run_key: str) -> dg.RunRecord | None:
    records = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
    return records[0] if records else None


def _request(context: dg.SensorEvaluationContext, cursor: SensorCursor, fingerprint: str) -> dg.RunRequest:
    cursor.change += 1
    cursor.failures = cursor.failures if fingerprint == cursor.requested else 0
    cursor.requested, cursor.requested_at = fingerprint, time.time()
    context.update_cursor(cursor.dump())
    return dg.RunRequest(run_key=cursor.run_key)


@dg.sensor(
    name="registry_change_sensor",
    job=discovery_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus(automation_status().value),
    description=(
        "Fingerprints HA's registries each minute and runs discovery_job when they differ from what "
        "the last successful discovery stored; a failed discovery is asked for again after 5 min, "
        "then at doubling intervals (at most 6 h)."
    ),
)
def registry_change_sensor(context: dg.SensorEvaluationContext, ha: HomeAssistantResource):
    """Open the WebSocket, fingerprint the four registries, close; compare with the cursor.

    The fingerprint is taken from HA's raw payloads (`HomeAssistantClient.registry_fingerprint`),
    without building models: it covers every field discovery stores, including the unit and
    state class from the states and the device classes from `get_entries`. A malformed record
    is hashed as it is, so it changes the fingerprint (and starts a discovery, which reports it)
    rather than failing the tick. A token HA rejects fails the tick (it cannot heal by waiting);
    an unreachable HA is a skip.
    """
    # The HA package brings websockets and pydantic models: loaded by the tick, not the definitions.
    from ha_pipeline.homeassistant.errors import HomeAssistantError

    try:
        with ha.client(**SENSOR_TIMEOUTS) as client:
            fingerprint = client.registry_fingerprint(timeout=FETCH_BUDGET_SECONDS)
    except HomeAssistantError as error:
        if is_permanent(error):
            raise dg.Failure(description=str(error)) from None
        return dg.SkipReason(
            f"Home Assistant could not be asked for its registries ({error}); "
            "nothing was started, the next tick tries again."
        )
    cursor = SensorCursor.parse(context.cursor)
    if cursor.requested and fingerprint == cursor.requested and fingerprint != cursor.stored:
        # The registries are those of the last request: did its run store them?
        record = _last_run(context.instance, cursor.run_key)
        run = record.dagster_run if record is not None else None
        if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
            cursor.stored, cursor.failures = fingerprint, 0
            context.update_cursor(cursor.dump())
        elif run is None or run.status in _FINISHED_BAD:
            if run is None:
                # Dagster makes the run in the tick that asked for it: one missing was deleted.
                wait = cursor.requested_at + retry_delay_seconds(cursor.failures + 1) - time.time()
            else:
                if cursor.failed_key != cursor.run_key:  # count each failed run once
                    cursor.failures += 1
                    cursor.failed_key = cursor.run_key
                    cursor.failed_at = (record.end_time if record else None) or time.time()
                    context.update_cursor(cursor.dump())
                wait = cursor.failed_at + retry_delay_seconds(cursor.failures) - time.time()
            if wait <= 0:
                return _request(context, cursor, fingerprint)
            what = f"failed (run {run.run_id[:8]})" if run is not None else "was requested but has no run"
            return dg.SkipReason(
                f"The discovery of these registries {what}, so the store does not hold them yet; "
                f"asking again in {wait / 60:.0f} min (failure {cursor.failures} in a row)."
            )
        else:
            return dg.SkipReason(
                f"Discovery run {run.run_id[:8]} for these registries is {run.status.value.lower()}; "
                "waiting for it to finish."
            )
    # Only a stored state that is also the last one asked for is known to be in the store: a
    # later request (for registries HA has since changed back) may have overwritten it.
    if fingerprint == cursor.stored == cursor.requested:
        return dg.SkipReason(
            f"HA's registries are unchanged since the last successful discovery (fingerprint {fingerprint[:12]})."
        )
    return _request(context, cursor, fingerprint)
