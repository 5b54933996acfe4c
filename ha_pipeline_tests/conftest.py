"""Session-scoped real-server test bed (all on 127.0.0.1, free ports, stopped by pid).

Fixtures:
- `influxdb_server` → `InfluxServer(url, pid, data_dir, ...)`: Debian `influxd` 1.x with its
  own generated config and temp meta/data/wal dirs, auth off. For auth-enabled tests use
  `influxdb_auth_server` (admin `.username`/`.password`) or call
  `ha_pipeline_tests.testbed.influxdb.start_influxdb(tmp_dir, auth=True)` yourself
  (and `.stop()` it in a `finally`).
- `postgres_url` → SQLAlchemy URL (psycopg2) of a throwaway PostgreSQL database.
- `real_ha` → `RealHomeAssistant(url, token, config_dir, pid)`: HA 2024.1.6 from `.ha-venv`
  with the test bed home (5 areas, 7 devices with manufacturer/model/area/via_device,
  sensors incl. a total_increasing energy meter, binary sensors, a switch, a light, helpers,
  template sensors). Helpers: `.set_state()`, `.call_service()`, `.ws_command()`.
- `real_ha_large` → a second, separate HA whose registries pass 1 MiB (300 generated devices ×
  8 sensors, ~2.5k entities). Started only by the tests that ask for it (it takes longer).
  Other sizes: `start_real_ha(dir, extra_devices=N, extra_entities_per_device=K)`.
- `simulator` → `RunningSimulator(url, token, home)`: `ha_pipeline.simulator.SimulatorServer`
  in-process.
- `ha_server` → parametrised over `["simulator", "real_ha"]`: `.url`, `.token`, `.kind`,
  `.set_state(entity_id, state, attributes)`, `.call_service(domain, service, ...)`.

Server logs are copied to `test-logs/` when the session has failures. Each fixture stops its
server in its teardown, also when tests or the start itself failed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from ha_pipeline_tests.testbed.homeassistant import RealHomeAssistant, start_real_ha
from ha_pipeline_tests.testbed.influxdb import InfluxServer, start_influxdb
from ha_pipeline_tests.testbed.postgres import start_postgres
from ha_pipeline_tests.testbed.process import ServerProcess
from ha_pipeline_tests.testbed.servers import HAServer, RunningSimulator

SIMULATOR_TOKEN = "simulator-test-token"

# Discovery records HA's time zone in the data directory and the code location reads it when it
# loads: tests must neither read nor write the developer's `.data` (set before any test module
# imports ha_pipeline.defs.partitions).
_TEST_DATA_DIR = tempfile.mkdtemp(prefix="ha-pipeline-tests-data-")
os.environ["HA_PIPELINE_DATA_DIR"] = _TEST_DATA_DIR
os.environ.pop("HA_PIPELINE_TIME_ZONE", None)
atexit.register(shutil.rmtree, _TEST_DATA_DIR, ignore_errors=True)

# name -> seconds, printed at the end of the session (test bed start-up figures).
_STARTUP_SECONDS: dict[str, float] = {}


def _finish(request: pytest.FixtureRequest, process: ServerProcess | None, label: str) -> None:
    """Keep the server log when the session had failures (teardown runs after the tests)."""
    if process is not None and request.session.testsfailed:
        kept = process.keep_log(label)
        print(f"\n[testbed] {label} log kept at {kept}", file=sys.stderr)


@pytest.fixture(scope="session")
def influxdb_server(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A real InfluxDB 1.x without auth."""
    server = start_influxdb(tmp_path_factory.mktemp("influxdb"))
    _STARTUP_SECONDS["influxdb"] = server.startup_seconds
    try:
        yield server
    finally:
        _finish(request, server.process, "influxdb")
        server.stop()


@pytest.fixture(scope="session")
def influxdb_auth_server(request: pytest.FixtureRequest,
                         tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A real InfluxDB 1.x with auth enabled and an admin user (`.username`, `.password`)."""
    server = start_influxdb(tmp_path_factory.mktemp("influxdb_auth"), auth=True)
    _STARTUP_SECONDS["influxdb_auth"] = server.startup_seconds
    try:
        yield server
    finally:
        _finish(request, server.process, "influxdb-auth")
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLAlchemy URL of a database in a throwaway PostgreSQL cluster."""
    server = start_postgres()
    _STARTUP_SECONDS["postgres"] = server.startup_seconds
    try:
        yield server.url
    finally:
        _finish(request, server.process, "postgres")
        server.stop()


@pytest.fixture(scope="session")
def real_ha(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHomeAssistant]:
    """A real Home Assistant 2024.1.6 with the test bed home, owner user and token."""
    ha = start_real_ha(tmp_path_factory.mktemp("real_ha") / "config")
    _STARTUP_SECONDS["real_ha"] = ha.startup_seconds
    try:
        yield ha
    finally:
        _finish(request, ha.process, "real-ha")
        ha.stop()


@pytest.fixture(scope="session")
def real_ha_large(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHomeAssistant]:
    """A separate real HA whose entity registry list is larger than 1 MiB."""
    ha = start_real_ha(tmp_path_factory.mktemp("real_ha_large") / "config",
                       extra_devices=300, extra_entities_per_device=8, timeout=400)
    _STARTUP_SECONDS["real_ha_large"] = ha.startup_seconds
    try:
        yield ha
    finally:
        _finish(request, ha.process, "real-ha-large")
        ha.stop()


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    """The simulated home served on 127.0.0.1:<free port> from a thread of this process."""
    from ha_pipeline.simulator import SimulatedHome, SimulatorServer

    home = SimulatedHome.generate(seed=0)
    server = SimulatorServer(home, host="127.0.0.1", port=0, token=SIMULATOR_TOKEN)
    server.start()
    try:
        yield RunningSimulator(url=server.url, token=SIMULATOR_TOKEN, home=home, server=server)
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["simulator", "real_ha"])
def ha_server(request: pytest.FixtureRequest) -> HAServer:
    """The simulator and the real HA, one after the other, for contract tests."""
    return HAServer(kind=request.param, backend=request.getfixturevalue(request.param))


_MARKS = {"real_ha": "real_ha", "real_ha_large": "real_ha", "influxdb_server": "real_influx",
          "influxdb_auth_server": "real_influx", "postgres_url": "postgres"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the real servers they use, so `-m "not real_ha"` works."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if "ha_server" in names and callspec and callspec.params.get("ha_server") == "real_ha":
            names.add("real_ha")
        for fixture, mark in _MARKS.items():
            if fixture in names:
                item.add_marker(getattr(pytest.mark, mark))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how long each test bed server took to become ready."""
    if _STARTUP_SECONDS:
        figures = ", ".join(f"{name} {secs:.1f} s" for name, secs in _STARTUP_SECONDS.items())
        terminalreporter.write_line(f"test bed start-up: {figures}")


@pytest.fixture
def live_dagster_instance() -> Iterator[Any]:
    """A live Dagster instance as the current one for the whole test.

    Dagster resolves definitions against the current instance's state storage, kept in a
    ContextVar; an instance disposed by an earlier test can leave it pointing at a dead
    weakref ("Attempted to resolve undefined DagsterInstance weakref").
    """
    import dagster as dg

    with dg.instance_for_test() as instance:
        yield instance
