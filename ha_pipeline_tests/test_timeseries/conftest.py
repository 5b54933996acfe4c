"""Fixtures shared by the timeseries tests."""

from collections.abc import Iterator

import pytest

from ha_pipeline.timeseries.buckets import InfluxSettings
from ha_pipeline.timeseries.influx_v1 import InfluxV1Backend


@pytest.fixture
def backend(influxdb_server) -> Iterator[InfluxV1Backend]:
    """Our v1 backend on the session's real InfluxDB, with quick retries."""
    with InfluxV1Backend(InfluxSettings(url=influxdb_server.url, api_version=1), backoff_seconds=0.01) as b:
        yield b
