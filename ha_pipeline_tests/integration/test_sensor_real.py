"""registry_change_sensor against the real Home Assistant 2024.1.6: what HA changes, the sensor sees."""

import dagster as dg
import pytest

from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.defs.sensors import registry_change_sensor
from ha_pipeline.homeassistant.client import HomeAssistantClient
from ha_pipeline.homeassistant.registry import registry_fingerprint

pytestmark = [pytest.mark.real_ha, pytest.mark.usefixtures("live_dagster_instance")]


def _tick(ha: HomeAssistantResource, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, resources={"ha": ha})
    return registry_change_sensor.evaluate_tick(context), context.cursor


def test_the_fingerprint_equals_the_snapshot_fingerprint(real_ha):
    with HomeAssistantClient(real_ha.url, real_ha.token) as client:
        assert client.registry_fingerprint() == registry_fingerprint(client.registry_snapshot())


def test_a_unit_change_in_ha_is_seen_and_undoing_it_restores_the_fingerprint(real_ha):
    ha = HomeAssistantResource(url=real_ha.url, token=real_ha.token)
    registered = {e["entity_id"] for e in real_ha.ws_command("config/entity_registry/list")}
    state = next(
        s for s in real_ha.ws_command("get_states")
        if s["entity_id"] in registered and s["entity_id"].startswith("sensor.")
        and s["attributes"].get("unit_of_measurement")
    )
    first, cursor = _tick(ha, None)
    assert len(first.run_requests) == 1
    unchanged, same = _tick(ha, cursor)
    assert not unchanged.run_requests and same == cursor

    # The unit lives in the state's attributes only (not in any registry list): HA's state
    # machine is where a unit change shows.
    real_ha.set_state(state["entity_id"], state["state"],
                      {**state["attributes"], "unit_of_measurement": "unit changed by the test"})
    try:
        changed, changed_cursor = _tick(ha, cursor)
        assert len(changed.run_requests) == 1 and changed_cursor.startswith("2:")
    finally:
        real_ha.set_state(state["entity_id"], state["state"], state["attributes"])
    restored, restored_cursor = _tick(ha, changed_cursor)
    assert len(restored.run_requests) == 1
    assert restored_cursor.split(":")[1] == cursor.split(":")[1]
