"""A small code location run by `test_executor.py` with the project's executor and dagster.yaml.

Each step appends `<step> <pid> <start> <end>` to `$EXECUTOR_TEST_DIR/steps.log`, so the test
can see which process ran it and when; `flaky` fails its first attempt.
"""

import os
import time
from pathlib import Path

import dagster as dg

from ha_pipeline import definitions


def _record(step: str, started: float) -> None:
    with open(Path(os.environ["EXECUTOR_TEST_DIR"]) / "steps.log", "a") as log:
        log.write(f"{step} {os.getpid()} {started:.3f} {time.time():.3f}\n")


@dg.asset(pool="influxdb", retry_policy=dg.RetryPolicy(max_retries=2, delay=0.5))
def flaky() -> None:
    """Fails its first attempt in a run's directory, as a transient outage would."""
    started = time.time()
    marker = Path(os.environ["EXECUTOR_TEST_DIR"]) / "flaky_failed_once"
    _record("flaky", started)
    if not marker.exists():
        marker.touch()
        raise RuntimeError("transient failure (first attempt)")


@dg.asset_check(asset=flaky, blocking=True)
def flaky_check() -> dg.AssetCheckResult:
    """A separate check: its own step, in the same process under the in-process executor."""
    _record("flaky_check", time.time())
    return dg.AssetCheckResult(passed=True)


@dg.asset(pool="influxdb")
def slow_writer() -> None:
    """Holds the `influxdb` pool for a few seconds."""
    started = time.time()
    time.sleep(float(os.environ.get("EXECUTOR_TEST_SLEEP", "3")))
    _record("slow_writer", started)


flaky_job = dg.define_asset_job("flaky_job", selection=dg.AssetSelection.assets(flaky) | dg.AssetSelection.checks(flaky_check))
slow_writer_job = dg.define_asset_job("slow_writer_job", selection=dg.AssetSelection.assets(slow_writer))

defs = dg.Definitions(
    assets=[flaky, slow_writer],
    asset_checks=[flaky_check],
    jobs=[flaky_job, slow_writer_job],
    executor=definitions.defs.executor,
)
