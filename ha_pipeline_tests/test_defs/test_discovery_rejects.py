"""Discovery with bad registry records: the valid rest is stored, rejects are told in words."""

import copy

import dagster as dg
import pytest

from ha_pipeline.defs import checks
from ha_pipeline.defs.assets import inventory
from ha_pipeline.defs.resources import HomeAssistantResource
from ha_pipeline.simulator import SimulatedHome, SimulatorServer

TOKEN = "rejects-test-token"


@pytest.fixture
def broken_home():
    home = SimulatedHome.generate(seed=7, areas=2, devices=4, entities_per_device=2)
    good = next(iter(home.devices.values()))
    home.devices["no-id"] = {**copy.deepcopy(good), "id": None}
    home.devices["wrong-type"] = {**copy.deepcopy(good), "id": 12345}
    home.devices["huge-name"] = {**copy.deepcopy(good), "id": "huge-name", "name": "x" * 10_000}
    server = SimulatorServer(home, host="127.0.0.1", port=0, token=TOKEN)
    server.start()
    try:
        yield home, server
    finally:
        server.stop()


def test_rejected_records_are_counted_with_reasons(broken_home, sqlite_store):
    home, server = broken_home
    result = dg.materialize(
        [*inventory.ha_registries, inventory.discovery, checks.inventory_integrity],
        resources={"ha": HomeAssistantResource(url=server.url, token=TOKEN), "metadata_store": sqlite_store},
    )
    assert result.success
    [changes] = [
        m.materialization.metadata
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["sqlite", "registry_changes"])
    ]
    assert changes["rejected_records"].value == 3
    assert "the valid rest was stored" in changes["rejects"].value
    assert sum(changes["rejects_by_reason"].value.values()) == changes["rejected_records"].value
    stored = {d["device_id"] for d in sqlite_store.store().devices()}
    valid = {d for d in home.devices if d not in ("no-id", "wrong-type", "huge-name")}
    assert valid <= stored
    assert "12345" not in stored and None not in stored
    assert "huge-name" not in stored
    assert "3 devices" in changes["rejects"].value
    # The store refused the 10 kB name and said so: the count check still holds.
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    count_check = evaluations[("sqlite/devices", "row_count_matches_ha")]
    assert count_check.passed
    assert count_check.metadata["refused_by_store"].value == 1
