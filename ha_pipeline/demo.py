"""`python -m ha_pipeline.demo`: run the pipeline's jobs in-process and print a summary.

Reads the same environment as the code location (HA_URL, HA_TOKEN, INFLUXDB_*, ...);
`scripts/demo.sh` starts a simulated home and a local InfluxDB and sets it.
"""

from __future__ import annotations

import os
import sys

import dagster as dg

from ha_pipeline.definitions import defs
from ha_pipeline.defs.resources import default_db_url
from ha_pipeline.metadata.store import MetadataStore

# The jobs the demo runs, in order; later issues add events and rollups here.
DEMO_JOBS = ["discovery_job"]


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per failed step: step key and the error's message."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            message = event.step_failure_data.error.message.strip().splitlines()[0]
            lines.append(f"  {event.step_key}: {message}")
    return lines


def run_jobs(instance: dg.DagsterInstance) -> bool:
    """Execute each demo job in-process; print one line per job; False on the first failure."""
    for name in DEMO_JOBS:
        result = defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)
        print(f"{name}: {'succeeded' if result.success else 'FAILED'} (run {result.run_id})")
        if not result.success:
            print("\n".join(_failures(result)), file=sys.stderr)
            return False
    return True


def main() -> int:
    """Run the demo jobs and print what the metadata store now holds."""
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    with instance:
        if not run_jobs(instance):
            return 1
    counts = MetadataStore(default_db_url()).counts()
    print(f"discovered: {counts['areas']} areas, {counts['devices']} devices, "
          f"{counts['entities']} entities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
