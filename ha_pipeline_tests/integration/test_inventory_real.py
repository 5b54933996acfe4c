"""Discovery against the real Home Assistant: renames, unusual names and a disabled device.

Every expectation is what HA's own registries (``config/*_registry/list`` over a raw WebSocket,
not our client) say after the change; the home is put back as it was at the end.
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg
import pytest

from ha_pipeline.defs.assets import inventory
from ha_pipeline.defs.resources import HomeAssistantResource, MetadataStoreResource
from ha_pipeline.metadata import MetadataStore
from ha_pipeline_tests.testbed.homeassistant import RealHomeAssistant

pytestmark = [pytest.mark.real_ha, pytest.mark.usefixtures("live_dagster_instance")]

ASSETS = [*inventory.ha_registries, inventory.discovery]
# The test bed's hub: no other test uses its entities, and nothing else is disabled with it.
HUB_UPTIME = "sensor.testbed_hub_uptime"
# HA's entity-id pattern ends in "$", which matches before a final newline: HA accepts this id.
RENAMED = "sensor.testbed_hub_uptime_renamed\n"
DOOR = "binary_sensor.front_door_door"


def _discover(resources: dict[str, Any]) -> dict[str, Any]:
    """Run discovery; the ``registry_changes`` materialization's metadata."""
    result = dg.materialize(ASSETS, resources=resources)
    assert result.success
    (changes,) = [m for m in result.get_asset_materialization_events()
                  if m.asset_key == dg.AssetKey(["sqlite", "registry_changes"])]
    return {k: v.value for k, v in changes.materialization.metadata.items()}


def _ha_registries(ha: RealHomeAssistant) -> tuple[dict[str, dict], dict[str, dict]]:
    devices = {d["id"]: d for d in ha.ws_command("config/device_registry/list")}
    entities = {e["entity_id"]: e for e in ha.ws_command("config/entity_registry/list")}
    return devices, entities


def _assert_store_matches_ha(store: MetadataStore, ha: RealHomeAssistant) -> None:
    devices, entities = _ha_registries(ha)
    stored = {e["entity_id"]: e for e in store.entities()}
    assert stored.keys() == entities.keys()
    for entity_id, item in entities.items():
        row = stored[entity_id]
        assert (row["registry_id"], row["name"], row["device_id"], row["disabled_by"]) == (
            item["id"], item["name"], item["device_id"], item["disabled_by"]
        ), repr(entity_id)
    stored_devices = {d["device_id"]: d for d in store.devices()}
    assert stored_devices.keys() == devices.keys()
    for device_id, item in devices.items():
        row = stored_devices[device_id]
        assert (row["name"], row["name_by_user"], row["disabled_by"]) == (
            item["name"], item["name_by_user"], item["disabled_by"]
        )


def _wait(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"Home Assistant did not {what} within {timeout:.0f} s"
        time.sleep(0.5)


def _states(ha: RealHomeAssistant) -> dict[str, dict]:
    return {s["entity_id"]: s for s in ha.ws_command("get_states")}


def test_renames_names_and_a_disabled_device_are_stored_as_ha_has_them(real_ha: RealHomeAssistant, tmp_path) -> None:
    store_resource = MetadataStoreResource(db_url=f"sqlite:///{tmp_path / 'meta.db'}")
    resources = {"ha": HomeAssistantResource(url=real_ha.url, token=real_ha.token), "metadata_store": store_resource}
    devices, entities = _ha_registries(real_ha)
    uptime = entities[HUB_UPTIME]
    hub = devices[uptime["device_id"]]
    door = entities[DOOR]
    attributes = _states(real_ha)[HUB_UPTIME]["attributes"]
    assert attributes["unit_of_measurement"] == "s" and attributes["state_class"] == "total_increasing"

    _discover(resources)
    store = store_resource.store()
    first_seen = store.entity(HUB_UPTIME)["first_seen"]
    try:
        real_ha.ws_command("config/entity_registry/update", entity_id=HUB_UPTIME, new_entity_id=RENAMED)
        real_ha.ws_command("config/device_registry/update", device_id=hub["id"], name_by_user="Printer C:\\")
        real_ha.ws_command("config/entity_registry/update", entity_id=DOOR, name="Front\ndoor")
        _wait(lambda: RENAMED in _states(real_ha), "give the renamed entity a state")
        devices, entities = _ha_registries(real_ha)
        assert entities[RENAMED]["id"] == uptime["id"] and HUB_UPTIME not in entities
        assert devices[hub["id"]]["name_by_user"] == "Printer C:\\"
        assert entities[DOOR]["name"] == "Front\ndoor"

        changed = _discover(resources)
        changes = [c for c in store.registry_changes() if c["changed_at"] > first_seen]
        assert sorted((c["table_name"], c["object_id"], c["change_type"]) for c in changes) == [
            ("devices", hub["id"], "renamed"),
            ("entities", DOOR, "renamed"),
            ("entities", RENAMED, "entity_id_changed"),
        ]
        rename = next(c for c in changes if c["change_type"] == "entity_id_changed")
        assert rename["old_values"] == {"entity_id": HUB_UPTIME}
        assert rename["new_values"] == {"entity_id": RENAMED, "registry_id": uptime["id"]}
        row = store.entity(RENAMED)
        assert row["first_seen"] == first_seen and row["registry_id"] == uptime["id"]
        assert store.entity_ids_of(HUB_UPTIME) == [HUB_UPTIME, RENAMED]
        assert store.entity("binary_sensor.front_door_door")["name"] == "Front\ndoor"
        assert changed["rejected_records"] == 0
        _assert_store_matches_ha(store, real_ha)
        assert _discover(resources)["changes_written"] == 0  # stable: nothing differs the second time

        real_ha.ws_command("config/device_registry/update", device_id=hub["id"], disabled_by="user")
        _wait(lambda: RENAMED not in _states(real_ha), "drop the disabled entity's state")
        _discover(resources)
        row = store.entity(RENAMED)
        assert row["disabled_by"] == _ha_registries(real_ha)[1][RENAMED]["disabled_by"] == "device"
        # HA has no state to read them from now: the last ones it gave are kept.
        assert (row["unit_of_measurement"], row["state_class"]) == ("s", "total_increasing")
        _assert_store_matches_ha(store, real_ha)
        assert _discover(resources)["changes_written"] == 0
    finally:
        real_ha.ws_command("config/device_registry/update", device_id=hub["id"], name_by_user=hub["name_by_user"],
                           disabled_by=hub["disabled_by"])
        now = _ha_registries(real_ha)[1]
        if RENAMED in now:
            real_ha.ws_command("config/entity_registry/update", entity_id=RENAMED, new_entity_id=HUB_UPTIME)
        real_ha.ws_command("config/entity_registry/update", entity_id=DOOR, name=door["name"])
        # Enabling the device makes HA reload the test bed's config entry (30 s after the change):
        # wait for the entity to be back so later tests find the home as it was.
        _wait(lambda: HUB_UPTIME in _states(real_ha), "bring the re-enabled entity back", timeout=120)
    devices, entities = _ha_registries(real_ha)
    assert entities[HUB_UPTIME]["disabled_by"] is None and entities[HUB_UPTIME]["id"] == uptime["id"]
    assert entities[DOOR]["name"] == door["name"] and devices[hub["id"]]["name_by_user"] == hub["name_by_user"]
