"""Runs of discovery as the sensor finds them in the instance: real runs, tagged with a run key."""

import dagster as dg


@dg.op
def _succeeds() -> None:
    pass


@dg.op
def _fails() -> None:
    raise RuntimeError("discovery failed (stand-in for a failed check or write)")


@dg.job
def _good_discovery() -> None:
    _succeeds()


@dg.job
def _bad_discovery() -> None:
    _fails()


def tick(ha, cursor: str | None, instance: dg.DagsterInstance | None = None):
    """One evaluation of `registry_change_sensor`: its result and the cursor after it."""
    from ha_pipeline.defs.sensors import registry_change_sensor

    context = dg.build_sensor_context(cursor=cursor, resources={"ha": ha}, instance=instance)
    return registry_change_sensor.evaluate_tick(context), context.cursor


def finish(instance: dg.DagsterInstance, request: dg.RunRequest, success: bool = True) -> dg.DagsterRun:
    """Execute a stand-in run for `request` (its run key as Dagster tags it) in `instance`."""
    job = _good_discovery if success else _bad_discovery
    result = job.execute_in_process(instance=instance, tags={"dagster/run_key": request.run_key}, raise_on_error=False)
    assert result.success == success
    return instance.get_run_by_id(result.run_id)
