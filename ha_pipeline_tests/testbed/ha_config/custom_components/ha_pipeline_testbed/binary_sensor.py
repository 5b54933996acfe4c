"""Binary sensors (motion, door, connectivity)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import BINARY_SENSORS
from .entity import TestbedEntity


class TestbedBinarySensor(TestbedEntity, BinarySensorEntity):
    """A binary sensor with a fixed initial state."""

    def __init__(self, device_key: str, key: str, name: str, device_class: str, is_on: bool) -> None:
        super().__init__(device_key, key, name)
        self._attr_device_class = BinarySensorDeviceClass(device_class)
        self._attr_is_on = is_on
        if device_class == "connectivity":
            self._attr_entity_category = EntityCategory.DIAGNOSTIC


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry,
                            async_add_entities: AddEntitiesCallback) -> None:
    """Add the binary sensors."""
    async_add_entities(TestbedBinarySensor(*row) for row in BINARY_SENSORS)
