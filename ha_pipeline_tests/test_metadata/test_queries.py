"""Query API: filters, lookups, counts, entity tags and integrity queries."""

from __future__ import annotations

from datetime import UTC, datetime

from ha_pipeline.metadata import MetadataStore
from ha_pipeline_tests.test_metadata.home import Rows, entity, find

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_device_filters_and_entity_counts(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=NOW)

    counts = {d["device_id"]: d["entity_count"] for d in store.devices()}
    assert counts == {"hub": 1, "lamp": 1, "therm": 2}
    assert [d["device_id"] for d in store.devices(manufacturer="Signify")] == ["lamp"]
    assert [d["device_id"] for d in store.devices(model="Hub H1")] == ["hub"]
    assert [d["device_id"] for d in store.devices(area_id="kitchen")] == ["therm"]
    assert [d["device_id"] for d in store.devices(integration="hue")] == ["lamp"]
    assert store.devices(manufacturer="Peerlabs", area_id="kitchen") == []


def test_entity_filters(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=NOW)

    assert [e["entity_id"] for e in store.entities(domain="light")] == ["light.garden_lamp"]
    assert [e["entity_id"] for e in store.entities(platform="sun")] == ["sun.sun"]
    assert [e["entity_id"] for e in store.entities(device_id="therm")] == [
        "sensor.kitchen_humidity", "sensor.kitchen_temperature"]
    # Effective area: the lamp's own override puts it in the kitchen with the thermometer's sensors.
    assert [e["entity_id"] for e in store.entities(area_id="kitchen")] == [
        "light.garden_lamp", "sensor.kitchen_humidity", "sensor.kitchen_temperature"]
    assert store.entities(domain="sensor", area_id="hall")[0]["entity_id"] == "sensor.hub_uptime"


def test_lookups_by_id(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=NOW)

    assert store.area("garden")["name"] == "Garden"
    assert store.config_entry("e2")["domain"] == "hue"
    assert store.entity("sensor.kitchen_temperature")["has_entity_name"] is True
    assert store.device("nope") is None and store.entity("sensor.nope") is None


def test_counts_are_current_rows(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=NOW)
    home["entities"].pop()
    store.sync(home, now=NOW)

    counts = store.counts()
    assert counts["entities"] == 4 and counts["devices"] == 3 and counts["areas"] == 3
    assert counts["config_entries"] == 2 and counts["device_config_entries"] == 3
    assert counts["registry_changes"] == 14


def test_entity_tags(store: MetadataStore, home: Rows) -> None:
    find(home["devices"], "id", "therm")["name_by_user"] = "Kitchen thermometer"
    store.sync(home, now=NOW)

    tags = {t["entity_id"]: t for t in store.entity_tags()}
    assert tags["sensor.kitchen_temperature"] == {
        "entity_id": "sensor.kitchen_temperature", "registry_id": "reg-sensor.kitchen_temperature", "area": "Kitchen", "area_id": "kitchen", "device_id": "therm",
        "device_name": "Kitchen thermometer", "integration": "peer_home", "device_class": "temperature",
        "unit_of_measurement": "°C", "state_class": "measurement", "removed_at": None,
    }
    assert tags["sensor.kitchen_humidity"]["device_class"] == "humidity"
    assert tags["light.garden_lamp"]["device_name"] == "Lamp" and tags["light.garden_lamp"]["integration"] == "hue"
    # No config entry: the platform names the integration.
    assert tags["sun.sun"] == {
        "entity_id": "sun.sun", "registry_id": "reg-sun.sun", "area": None, "area_id": None, "device_id": None, "device_name": None,
        "integration": "sun", "device_class": None, "unit_of_measurement": None, "state_class": None,
        "removed_at": None,
    }


def test_duplicate_ids_finds_entities_sharing_a_unique_id(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=NOW)
    assert store.duplicate_ids() == []

    home["entities"].append(entity("sensor.kitchen_temperature_2", "therm", "e1", unique_id="uid-sensor.kitchen_temperature"))
    store.sync(home, now=NOW)

    assert store.duplicate_ids() == [{
        "table": "entities", "key": "domain+platform+unique_id",
        "value": ["sensor", "peer_home", "uid-sensor.kitchen_temperature"],
        "count": 2, "ids": ["sensor.kitchen_temperature", "sensor.kitchen_temperature_2"],
    }]


def test_a_unique_id_reused_in_another_domain_is_not_a_duplicate(store: MetadataStore, home: Rows) -> None:
    # HA keys entities by (domain, platform, unique_id): its demo has button.push and
    # event.push_button_press, both demo/push.
    home["entities"] += [
        entity("button.push", None, None, platform="demo", unique_id="push"),
        entity("event.push_button_press", None, None, platform="demo", unique_id="push"),
    ]
    store.sync(home, now=NOW)
    assert store.duplicate_ids() == []

    home["entities"].append(entity("button.push_2", None, None, platform="demo", unique_id="push"))
    store.sync(home, now=NOW)
    assert [(d["key"], d["ids"]) for d in store.duplicate_ids()] == [
        ("domain+platform+unique_id", ["button.push", "button.push_2"])
    ]


def test_entities_sharing_a_registry_id_are_duplicates(store: MetadataStore, home: Rows) -> None:
    home["entities"].append(entity("light.garden_lamp_2", "lamp", "e2", platform="hue", id="reg-light.garden_lamp"))
    store.sync(home, now=NOW)
    assert [(d["key"], d["ids"]) for d in store.duplicate_ids()] == [
        ("registry_id", ["light.garden_lamp", "light.garden_lamp_2"])
    ]
