"""Runs in one process (the project's executor) still retry, run their checks and respect pools.

The jobs of `executor_location.py` are started with `dagster job execute` (a run worker, as the
daemon starts one) against a DAGSTER_HOME holding the project's dagster.yaml.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ha_pipeline.definitions import defs

REPO = Path(__file__).resolve().parents[2]
LOCATION = "ha_pipeline_tests.test_defs.executor_location"


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    # dagster.yaml puts the storage under $DAGSTER_HOME: this process reads the runs from there too.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _env(home: Path, steps_dir: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(home), "EXECUTOR_TEST_DIR": str(steps_dir)}


def _execute(job: str, env: dict[str, str]) -> subprocess.Popen:
    dagster = str(Path(sys.executable).parent / "dagster")
    return subprocess.Popen([dagster, "job", "execute", "-m", LOCATION, "-j", job], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    assert proc.returncode == 0, output[-4000:]
    return output


def _steps(steps_dir: Path) -> list[tuple[str, int, float, float]]:
    rows = (line.split() for line in (steps_dir / "steps.log").read_text().splitlines())
    return [(step, int(pid), float(start), float(end)) for step, pid, start, end in rows]


def test_every_job_runs_its_steps_in_process():
    for job in defs.get_repository_def().get_all_jobs():
        assert job.executor_def.name == dg.in_process_executor.name, job.name


def test_a_failed_step_is_retried_and_its_check_runs_in_the_same_process(dagster_home, tmp_path):
    _finish(_execute("flaky_job", _env(dagster_home, tmp_path)))
    steps = _steps(tmp_path)
    assert [step for step, *_ in steps] == ["flaky", "flaky", "flaky_check"]
    # One process for the run: both attempts and the check ran in the run worker.
    assert len({pid for _, pid, *_ in steps}) == 1
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_run_records()
        assert run.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        retries = instance.get_records_for_run(
            run.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
        ).records
        assert len(retries) == 1


@pytest.mark.parametrize("limit", [None, 2])
def test_two_runs_share_a_pool_as_its_limit_allows(dagster_home, tmp_path, limit):
    """dagster.yaml gives every pool a limit of 1: two runs of an `influxdb` asset take turns.
    With the limit raised to 2 (`dagster instance concurrency set`) the same runs overlap,
    which shows the measurement could see an overlap."""
    # Open the instance once first: two runs starting on an empty DAGSTER_HOME race to create its tables.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_run_records()
        if limit is not None:
            instance.event_log_storage.set_concurrency_slots("influxdb", limit)
    env = _env(dagster_home, tmp_path)
    procs = [_execute("slow_writer_job", env) for _ in range(2)]
    for proc in procs:
        _finish(proc)
    (_, _, start_a, end_a), (_, _, start_b, end_b) = sorted(_steps(tmp_path), key=lambda row: row[2])
    if limit is None:
        assert start_b >= end_a
    else:
        assert start_b < end_a
