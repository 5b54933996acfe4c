"""Registry snapshots: one point per current device and entity in the 90-day buckets."""

import copy
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from ha_pipeline.defs.assets import inventory, snapshots
from ha_pipeline_tests.test_metadata.home import HOME, find

pytestmark = pytest.mark.real_influx


@pytest.fixture
def resources(simulator_ha, sqlite_store, influx_v1, monkeypatch):
    monkeypatch.setenv("INFLUXDB_BUCKET_DEVICES", "t_snapshot_devices")
    monkeypatch.setenv("INFLUXDB_BUCKET_ENTITIES", "t_snapshot_entities")
    return {"ha": simulator_ha, "metadata_store": sqlite_store, "influxdb": influx_v1}


def test_snapshots_write_one_point_per_device_and_entity(resources, sqlite_store, influx_v1):
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    # An explicit instance: Dagster resolves definitions against the current instance's state.
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*inventory.ha_registries, inventory.discovery, snapshots.device_snapshots, snapshots.entity_snapshots],
            resources=resources,
            instance=instance,
        )
    assert result.success
    store = sqlite_store.store()
    devices, entities = store.devices(), store.entities()
    specs = influx_v1.bucket_specs()
    assert specs["devices"].retention_days == 90
    backend = influx_v1.backend()
    stop = datetime.now(timezone.utc) + timedelta(seconds=1)

    device_points = backend.read(specs["devices"].name, specs["devices"].measurement, started, stop)
    assert sorted(device_points["device_id"]) == sorted(d["device_id"] for d in devices)
    by_id = device_points.set_index("device_id")
    busiest = max(devices, key=lambda d: d["entity_count"])
    assert by_id.loc[busiest["device_id"], "entity_count"] == busiest["entity_count"]

    entity_points = backend.read(specs["entities"].name, specs["entities"].measurement, started, stop)
    assert sorted(entity_points["entity_id"]) == sorted(e["entity_id"] for e in entities)
    disabled = {e["entity_id"] for e in entities if e.get("disabled_by")}
    stored_disabled = set(entity_points.loc[entity_points["disabled"].astype(bool), "entity_id"])
    assert stored_disabled == disabled


def test_snapshots_store_names_and_ids_ha_accepts(sqlite_store, influx_v1, monkeypatch):
    """Values HA accepts but line protocol cannot carry as they are (a trailing backslash, a
    newline) are written and read back exactly, and the rest of the snapshot with them."""
    monkeypatch.setenv("INFLUXDB_BUCKET_DEVICES", "t_odd_snapshot_devices")
    monkeypatch.setenv("INFLUXDB_BUCKET_ENTITIES", "t_odd_snapshot_entities")
    home = copy.deepcopy(HOME)
    therm = find(home["devices"], "id", "therm")
    therm.update(name_by_user="Printer C:\\", manufacturer="Acme\nLabs", model="C:\\")
    find(home["entities"], "entity_id", "sensor.kitchen_temperature")["entity_id"] = "sensor.kitchen_temperature\n"
    find(home["entities"], "entity_id", "sensor.hub_uptime")["platform"] = "peer\\"
    store = sqlite_store.store()
    store.upgrade()
    store.sync(home)
    started = datetime.now(timezone.utc) - timedelta(seconds=1)

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [snapshots.device_snapshots, snapshots.entity_snapshots],
            resources={"metadata_store": sqlite_store, "influxdb": influx_v1},
            instance=instance,
        )

    assert result.success
    specs, backend = influx_v1.bucket_specs(), influx_v1.backend()
    stop = datetime.now(timezone.utc) + timedelta(seconds=1)
    devices = backend.read(specs["devices"].name, specs["devices"].measurement, started, stop).set_index("device_id")
    assert sorted(devices.index) == sorted(d["device_id"] for d in store.devices())
    assert devices.loc["therm", ["name", "manufacturer", "model"]].tolist() == ["Printer C:\\", "Acme\nLabs", "C:\\"]
    entities = backend.read(specs["entities"].name, specs["entities"].measurement, started, stop)
    assert sorted(entities["entity_id"]) == sorted(e["entity_id"] for e in store.entities())
    assert "sensor.kitchen_temperature\n" in set(entities["entity_id"])
    assert entities.set_index("entity_id").loc["sensor.hub_uptime", "platform"] == "peer\\"
