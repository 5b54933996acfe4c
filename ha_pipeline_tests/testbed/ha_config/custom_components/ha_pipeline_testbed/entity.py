"""Base entity tied to one of the test bed's devices."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import DOMAIN


class TestbedEntity(Entity):
    """An entity of a test bed device, named after the device (has_entity_name)."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, device_key: str, key: str, name: str | None) -> None:
        self._attr_unique_id = f"{device_key}_{key}"
        self._attr_name = name
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, device_key)})
