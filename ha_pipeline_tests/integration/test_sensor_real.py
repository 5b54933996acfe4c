"""registry_change_sensor against the real Home Assistant 2024.1.6: what HA changes, the sensor sees."""

import dagster as dg
import pytest

from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.defs.sensors import SensorCursor
from ha_pipeline.homeassistant.client import HomeAssistantClient
from ha_pipeline.homeassistant.registry import registry_fingerprint
from ha_pipeline_tests.test_defs.sensor_runs import finish, tick

pytestmark = [pytest.mark.real_ha]


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
    with dg.instance_for_test() as instance:
        first, cursor = tick(ha, None, instance)
        [request] = first.run_requests
        finish(instance, request)
        unchanged, cursor = tick(ha, cursor, instance)
        assert not unchanged.run_requests and "unchanged" in unchanged.skip_message
        fingerprint = SensorCursor.parse(cursor).stored

        # The unit lives in the state's attributes only (not in any registry list): HA's state
        # machine is where a unit change shows.
        real_ha.set_state(state["entity_id"], state["state"],
                          {**state["attributes"], "unit_of_measurement": "unit changed by the test"})
        try:
            changed, changed_cursor = tick(ha, cursor, instance)
            [change] = changed.run_requests
            assert SensorCursor.parse(changed_cursor).change == 2
        finally:
            real_ha.set_state(state["entity_id"], state["state"], state["attributes"])
        finish(instance, change)
        restored, restored_cursor = tick(ha, changed_cursor, instance)
        assert len(restored.run_requests) == 1
        assert SensorCursor.parse(restored_cursor).requested == fingerprint


def test_a_token_ha_rejects_fails_the_tick_with_the_sentence(real_ha):
    ha = HomeAssistantResource(url=real_ha.url, token="not-the-token")
    with pytest.raises(dg.Failure) as info:
        tick(ha, None)
    assert "rejected the access token (auth_invalid)" in info.value.description
    assert info.value.description.endswith("set HA_TOKEN.")
