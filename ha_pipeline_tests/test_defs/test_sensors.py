"""registry_change_sensor: RunRequest on change, SkipReason when unchanged or HA is down."""

import socket
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from ha_pipeline.defs import sensors
from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.defs.sensors import SensorCursor
from ha_pipeline.homeassistant.registry import registry_fingerprint
from ha_pipeline.simulator import SimulatedHome, SimulatorServer
from ha_pipeline_tests.test_defs.sensor_runs import finish, tick
from ha_pipeline_tests.test_homeassistant.scripted_server import TOKEN, ScriptedServer, sample


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _tick(ha: HomeAssistantResource, cursor: str | None, instance: dg.DagsterInstance | None = None):
    return tick(ha, cursor, instance)


def _succeeded(ha, instance, cursor):
    """Tick, let the requested discovery succeed, tick again: the cursor then says it was stored."""
    result, cursor = _tick(ha, cursor, instance)
    [request] = result.run_requests
    finish(instance, request)
    again, cursor = _tick(ha, cursor, instance)
    assert not again.run_requests and "unchanged since the last successful discovery" in again.skip_message
    return request, cursor


def _fingerprint(simulator_ha) -> str:
    with simulator_ha.client() as client:
        return registry_fingerprint(client.registry_snapshot())


def test_first_tick_runs_then_skips_then_runs_after_a_change(simulator, simulator_ha, instance):
    request, cursor = _succeeded(simulator_ha, instance, None)
    fingerprint = _fingerprint(simulator_ha)
    parsed = SensorCursor.parse(cursor)
    assert (parsed.change, parsed.stored, parsed.requested) == (1, fingerprint, fingerprint)
    assert request.run_key == f"{fingerprint}-1"

    device_id = sorted(simulator.home.devices)[0]
    original = simulator.home.devices[device_id].get("name_by_user")
    simulator.home.update_device(device_id, name_by_user="Renamed by the sensor test")
    try:
        renamed, renamed_cursor = _succeeded(simulator_ha, instance, cursor)
    finally:
        simulator.home.update_device(device_id, name_by_user=original)
    assert SensorCursor.parse(renamed_cursor).change == 2

    # Renamed back: the registries equal the first tick's, and still a new run is requested.
    back, back_cursor = _succeeded(simulator_ha, instance, renamed_cursor)
    assert SensorCursor.parse(back_cursor).change == 3 and SensorCursor.parse(back_cursor).stored == fingerprint
    assert len({request.run_key, renamed.run_key, back.run_key}) == 3


def test_a_failed_discovery_is_asked_for_again_at_a_bounded_rate(simulator_ha, instance, monkeypatch):
    first, cursor = _tick(simulator_ha, None, instance)
    [request] = first.run_requests
    running, same = _tick(simulator_ha, cursor, instance)
    assert "requested but has no run" in running.skip_message and not running.run_requests

    run = finish(instance, request, success=False)
    skipped, cursor = _tick(simulator_ha, cursor, instance)
    assert not skipped.run_requests
    assert "unchanged" not in skipped.skip_message
    assert f"failed (run {run.run_id[:8]})" in skipped.skip_message and "asking again in 5 min" in skipped.skip_message

    # Five minutes after the failure, one new request (a new run key), then ten minutes' wait.
    now = time.time()
    monkeypatch.setattr(sensors.time, "time", lambda: now + 301)
    retried, cursor = _tick(simulator_ha, cursor, instance)
    [again] = retried.run_requests
    assert again.run_key != request.run_key
    finish(instance, again, success=False)
    waiting, cursor = _tick(simulator_ha, cursor, instance)
    assert not waiting.run_requests and "asking again in 10 min (failure 2 in a row)" in waiting.skip_message

    monkeypatch.setattr(sensors.time, "time", lambda: now + 301 + 601)
    third, cursor = _tick(simulator_ha, cursor, instance)
    [last] = third.run_requests
    finish(instance, last)
    stored, cursor = _tick(simulator_ha, cursor, instance)
    assert "unchanged since the last successful discovery" in stored.skip_message
    assert SensorCursor.parse(cursor).failures == 0


def test_the_retry_interval_doubles_up_to_six_hours():
    assert [sensors.retry_delay_seconds(n) for n in (1, 2, 3, 8, 20)] == [300, 600, 1200, 6 * 3600, 6 * 3600]


def test_a_cursor_of_the_earlier_form_is_read():
    parsed = SensorCursor.parse("4:abc")
    assert (parsed.change, parsed.requested, parsed.stored, parsed.run_key) == (4, "abc", "", "abc-4")


def test_a_rejected_token_fails_the_tick_with_the_sentence(simulator):
    ha = HomeAssistantResource(url=simulator.url, token="wrong-token")
    with pytest.raises(dg.Failure) as info:
        _tick(ha, None)
    assert "rejected the access token (auth_invalid)" in info.value.description
    assert info.value.description.endswith("set HA_TOKEN.") and "wrong-token" not in info.value.description


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


def test_each_kind_of_registry_change_starts_discovery_and_then_skips(own_simulator, instance):
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
    _, cursor = _succeeded(ha, instance, None)
    for kind, change in changes.items():
        change()
        result, new_cursor = _tick(ha, cursor, instance)
        assert len(result.run_requests) == 1, kind
        assert result.run_requests[0].run_key.startswith(SensorCursor.parse(new_cursor).requested), kind
        finish(instance, result.run_requests[0])
        again, same_cursor = _tick(ha, new_cursor, instance)
        assert not again.run_requests and "unchanged" in again.skip_message, kind
        cursor = same_cursor


def test_a_malformed_record_gives_a_fingerprint_not_a_failed_tick(instance):
    areas = sample("area_registry_list.json") + [{"name": "no id"}, "not a record", {"area_id": 7}]
    with ScriptedServer() as server:
        server.handlers["config/area_registry/list"] = lambda msg: areas
        server.handlers["config/entity_registry/get_entries"] = lambda msg: {e: "not a record" for e in msg["entity_ids"]}
        ha = HomeAssistantResource(url=server.url, token=TOKEN)
        _, cursor = _succeeded(ha, instance, None)
        areas.pop()
        third, changed = _tick(ha, cursor, instance)
        assert len(third.run_requests) == 1 and changed != cursor
