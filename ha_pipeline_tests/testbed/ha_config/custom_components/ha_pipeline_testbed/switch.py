"""A switch that really toggles, so call_service changes state."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchDeviceClass, SwitchEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import SWITCHES
from .entity import TestbedEntity


class TestbedSwitch(TestbedEntity, SwitchEntity):
    """An outlet relay kept in memory."""

    _attr_device_class = SwitchDeviceClass.OUTLET
    _attr_is_on = False

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Switch on."""
        self._attr_is_on = True
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Switch off."""
        self._attr_is_on = False
        self.async_write_ha_state()


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry,
                            async_add_entities: AddEntitiesCallback) -> None:
    """Add the switches."""
    async_add_entities(TestbedSwitch(*row) for row in SWITCHES)
