"""A small Home Assistant home in HA 2024.1's own payload shapes, and assertion helpers."""

from __future__ import annotations

from typing import Any

Rows = dict[str, list[dict[str, Any]]]


def area(area_id: str, name: str) -> dict[str, Any]:
    """An area registry item as HA 2024.1 sends it."""
    return {"aliases": [], "area_id": area_id, "name": name, "picture": None}


def config_entry(entry_id: str, domain: str, title: str) -> dict[str, Any]:
    """A ``config_entries/get`` item."""
    return {
        "entry_id": entry_id, "domain": domain, "title": title, "source": "user", "state": "loaded",
        "supports_options": False, "supports_remove_device": False, "supports_unload": True,
        "pref_disable_new_entities": False, "pref_disable_polling": False, "disabled_by": None, "reason": None,
    }


def device(device_id: str, name: str, area_id: str | None, entries: list[str], **extra: Any) -> dict[str, Any]:
    """A device registry item with HA's 16 keys."""
    return {
        "area_id": area_id, "config_entries": entries, "configuration_url": None,
        "connections": [["mac", f"02:00:00:00:00:{len(device_id):02x}"]], "disabled_by": None, "entry_type": None,
        "hw_version": None, "id": device_id, "identifiers": [["peer_home", device_id], ["zigbee", 42]],
        "manufacturer": "Peerlabs", "model": "M1", "name": name, "name_by_user": None, "serial_number": None,
        "sw_version": "1.0", "via_device_id": None, **extra,
    }


def entity(entity_id: str, device_id: str | None, entry: str | None, platform: str = "peer_home",
           **extra: Any) -> dict[str, Any]:
    """An entity registry item enriched like ``RegistrySnapshot.as_rows()`` does."""
    return {
        "area_id": None, "config_entry_id": entry, "device_id": device_id, "disabled_by": None,
        "entity_category": None, "entity_id": entity_id, "has_entity_name": True, "hidden_by": None,
        "icon": None, "id": f"reg-{entity_id}", "name": None, "options": {}, "original_name": "Value",
        "platform": platform, "translation_key": None, "unique_id": f"uid-{entity_id}",
        "device_class": None, "original_device_class": None, "capabilities": None,
        "unit_of_measurement": None, "state_class": None, **extra,
    }


HOME: Rows = {
    "areas": [area("kitchen", "Kitchen"), area("garden", "Garden"), area("hall", "Hall")],
    "config_entries": [config_entry("e1", "peer_home", "Peer Home"), config_entry("e2", "hue", "Hue")],
    "devices": [
        device("hub", "Peer Hub", "hall", ["e1"], model="Hub H1"),
        device("therm", "Thermometer", "kitchen", ["e1"], via_device_id="hub", manufacturer="Climatix"),
        device("lamp", "Lamp", "garden", ["e2"], manufacturer="Signify", model="LCT015"),
    ],
    "entities": [
        entity("sensor.kitchen_temperature", "therm", "e1", original_device_class="temperature",
               unit_of_measurement="°C", state_class="measurement"),
        entity("sensor.kitchen_humidity", "therm", "e1", device_class="humidity", unit_of_measurement="%"),
        entity("sensor.hub_uptime", "hub", "e1", entity_category="diagnostic"),
        entity("light.garden_lamp", "lamp", "e2", platform="hue", area_id="kitchen"),
        entity("sun.sun", None, None, platform="sun"),
    ],
}


def by_type(changes: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Changes keyed by (table, object id, change type) for direct assertions."""
    return {(c["table_name"], c["object_id"], c["change_type"]): c for c in changes}


def find(rows: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any]:
    """The one record of ``rows`` whose ``key`` is ``value``."""
    return next(r for r in rows if r[key] == value)


