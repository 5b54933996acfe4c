"""Sensors with device_class, unit and state_class (incl. total_increasing energy)."""

from __future__ import annotations

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import EXTRA_SENSOR_KINDS, SENSORS, extra_device_key
from .entity import TestbedEntity


class TestbedSensor(TestbedEntity, SensorEntity):
    """A sensor with a fixed initial value (tests change states via the REST API)."""

    def __init__(self, device_key: str, key: str, name: str, device_class: str | None,
                 unit: str | None, state_class: str | None, value: float,
                 diagnostic: bool = False) -> None:
        super().__init__(device_key, key, name)
        self._attr_device_class = SensorDeviceClass(device_class) if device_class else None
        self._attr_native_unit_of_measurement = unit
        self._attr_state_class = SensorStateClass(state_class) if state_class else None
        self._attr_native_value = value
        if diagnostic:
            self._attr_entity_category = EntityCategory.DIAGNOSTIC


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry,
                            async_add_entities: AddEntitiesCallback) -> None:
    """Add the fixed sensors and those of the generated devices."""
    entities = [TestbedSensor(*row) for row in SENSORS]
    per_device = entry.data.get("extra_entities_per_device", 4)
    for index in range(entry.data.get("extra_devices", 0)):
        for n in range(per_device):
            key, device_class, unit, state_class = EXTRA_SENSOR_KINDS[n % len(EXTRA_SENSOR_KINDS)]
            entities.append(TestbedSensor(extra_device_key(index), f"{key}_{n}", f"{key.title()} {n}",
                                          device_class, unit, state_class, float(index % 50 + n)))
    async_add_entities(entities)
