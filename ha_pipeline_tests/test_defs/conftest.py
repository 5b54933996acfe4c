"""Resources for Dagster-layer tests: the simulator, a temp SQLite store, the test bed InfluxDB."""

import pytest

from ha_pipeline.defs.resources import (
    HomeAssistantResource,
    InfluxDBResource,
    MetadataStoreResource,
)


@pytest.fixture
def sqlite_store(tmp_path) -> MetadataStoreResource:
    return MetadataStoreResource(db_url=f"sqlite:///{tmp_path / 'ha_metadata.db'}")


@pytest.fixture
def simulator_ha(simulator) -> HomeAssistantResource:
    return HomeAssistantResource(url=simulator.url, token=simulator.token)


@pytest.fixture
def influx_v1(influxdb_server) -> InfluxDBResource:
    return InfluxDBResource(url=influxdb_server.url, api_version="1")


@pytest.fixture(autouse=True)
def _current_dagster_instance(live_dagster_instance):
    """Every Dagster-layer test runs with a live current instance (see that fixture)."""
    yield live_dagster_instance
