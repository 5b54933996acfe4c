"""registry_change_sensor: RunRequest on change, SkipReason when unchanged or HA is down."""

import socket
import time

import dagster as dg

from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.defs.sensors import registry_change_sensor
from ha_pipeline.homeassistant.registry import registry_fingerprint


def _tick(ha: HomeAssistantResource, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, resources={"ha": ha})
    result = registry_change_sensor.evaluate_tick(context)
    return result, context.cursor


def _fingerprint(simulator_ha) -> str:
    with simulator_ha.client() as client:
        return registry_fingerprint(client.registry_snapshot())


def test_first_tick_runs_then_skips_then_runs_after_a_change(simulator, simulator_ha):
    first, cursor = _tick(simulator_ha, None)
    [request] = first.run_requests
    fingerprint = _fingerprint(simulator_ha)
    assert cursor == f"1:{fingerprint}" and request.run_key == f"{fingerprint}-1"

    second, same_cursor = _tick(simulator_ha, cursor)
    assert not second.run_requests
    assert "unchanged" in second.skip_message
    assert same_cursor == cursor

    device_id = sorted(simulator.home.devices)[0]
    original = simulator.home.devices[device_id].get("name_by_user")
    simulator.home.update_device(device_id, name_by_user="Renamed by the sensor test")
    try:
        third, renamed_cursor = _tick(simulator_ha, cursor)
    finally:
        simulator.home.update_device(device_id, name_by_user=original)
    [renamed] = third.run_requests
    assert renamed_cursor.startswith("2:") and renamed_cursor != cursor

    # Renamed back: the registries equal the first tick's, and still a new run is requested.
    fourth, back_cursor = _tick(simulator_ha, renamed_cursor)
    [back] = fourth.run_requests
    assert back_cursor == f"3:{fingerprint}"
    assert len({request.run_key, renamed.run_key, back.run_key}) == 3


def test_unreachable_home_assistant_is_a_quick_skip():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ha = HomeAssistantResource(url=f"http://127.0.0.1:{port}", token="not-a-real-token")
    started = time.monotonic()
    result, cursor = _tick(ha, "previous")
    assert time.monotonic() - started < 30
    assert not result.run_requests
    assert "could not be asked" in result.skip_message
    assert "not-a-real-token" not in result.skip_message
    assert cursor == "previous"
