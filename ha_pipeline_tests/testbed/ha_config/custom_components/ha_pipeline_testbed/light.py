"""A dimmable light that really toggles, so call_service changes state and attributes."""

from __future__ import annotations

from typing import Any

from homeassistant.components.light import ATTR_BRIGHTNESS, ColorMode, LightEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import LIGHTS
from .entity import TestbedEntity


class TestbedLight(TestbedEntity, LightEntity):
    """A brightness-only light kept in memory."""

    _attr_color_mode = ColorMode.BRIGHTNESS
    _attr_supported_color_modes = {ColorMode.BRIGHTNESS}
    _attr_is_on = False
    _attr_brightness = 180

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn on, optionally at a brightness."""
        self._attr_is_on = True
        self._attr_brightness = kwargs.get(ATTR_BRIGHTNESS, self._attr_brightness)
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn off."""
        self._attr_is_on = False
        self.async_write_ha_state()


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry,
                            async_add_entities: AddEntitiesCallback) -> None:
    """Add the lights."""
    async_add_entities(TestbedLight(*row) for row in LIGHTS)
