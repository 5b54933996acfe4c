"""registry_change_sensor: RunRequest on change, SkipReason when unchanged or HA is down."""

import socket
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.defs.sensors import registry_change_sensor
from ha_pipeline.homeassistant.registry import registry_fingerprint
from ha_pipeline.simulator import SimulatedHome, SimulatorServer
from ha_pipeline_tests.test_homeassistant.scripted_server import TOKEN, ScriptedServer, sample


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


@pytest.fixture
def own_simulator() -> Iterator[tuple[SimulatorServer, HomeAssistantResource]]:
    """A small home of its own: these tests change it freely."""
    home = SimulatedHome.generate(seed=3, areas=3, devices=4, entities_per_device=3)
    with SimulatorServer(home, host="127.0.0.1", port=0, token="sensor-test-token") as server:
        yield server, HomeAssistantResource(url=server.url, token="sensor-test-token")


def _sensor_with_unit(home: SimulatedHome) -> str:
    return next(
        eid for eid, state in sorted(home.states.items())
        if eid in home.entities and state["attributes"].get("unit_of_measurement")
        and state["attributes"].get("state_class")
    )


def _set_attribute(server: SimulatorServer, entity_id: str, key: str, value: str) -> None:
    state = server.home.states[entity_id]
    server.set_state(entity_id, state["state"], {**state["attributes"], key: value})


def test_each_kind_of_registry_change_starts_discovery_and_then_skips(own_simulator):
    server, ha = own_simulator
    home = server.home
    sensor = _sensor_with_unit(home)
    device_id = sorted(home.devices)[0]
    other_area = next(a for a in sorted(home.areas) if a != home.devices[device_id]["area_id"])
    changes = {
        "unit_of_measurement in the state": lambda: _set_attribute(server, sensor, "unit_of_measurement", "kW"),
        "state_class in the state": lambda: _set_attribute(server, sensor, "state_class", "total"),
        "device_class (get_entries)": lambda: server.call(home.entity_extra[sensor].update, device_class="power"),
        "entity renamed": lambda: server.call(home.update_entity, sensor, name="Renamed sensor"),
        "entity_id renamed": lambda: server.call(home.update_entity, sensor, new_entity_id=sensor + "_2"),
        "device renamed": lambda: server.call(home.update_device, device_id, name_by_user="Renamed device"),
        "device moved to another area": lambda: server.call(home.update_device, device_id, area_id=other_area),
        "entity removed": lambda: server.call(home.remove_entity, sensor + "_2"),
        "entity added": lambda: server.call(home.add_entity, "sensor", "Added by the test", device_id),
        "device removed": lambda: server.call(home.remove_device, device_id),
    }
    result, cursor = _tick(ha, None)
    assert len(result.run_requests) == 1
    for kind, change in changes.items():
        change()
        result, new_cursor = _tick(ha, cursor)
        assert len(result.run_requests) == 1, kind
        assert new_cursor != cursor and result.run_requests[0].run_key.startswith(new_cursor.split(":")[1]), kind
        again, same_cursor = _tick(ha, new_cursor)
        assert not again.run_requests and "unchanged" in again.skip_message, kind
        assert same_cursor == new_cursor
        cursor = new_cursor


def test_a_malformed_record_gives_a_fingerprint_not_a_failed_tick():
    areas = sample("area_registry_list.json") + [{"name": "no id"}, "not a record", {"area_id": 7}]
    with ScriptedServer() as server:
        server.handlers["config/area_registry/list"] = lambda msg: areas
        server.handlers["config/entity_registry/get_entries"] = lambda msg: {e: "not a record" for e in msg["entity_ids"]}
        ha = HomeAssistantResource(url=server.url, token=TOKEN)
        first, cursor = _tick(ha, None)
        assert len(first.run_requests) == 1
        second, same = _tick(ha, cursor)
        assert not second.run_requests and same == cursor
        areas.pop()
        third, changed = _tick(ha, cursor)
        assert len(third.run_requests) == 1 and changed != cursor
