"""A small custom integration that gives the real-HA test bed a realistic home.

Set up from YAML (`ha_pipeline_testbed:` with optional `extra_devices` and
`extra_entities_per_device`) through an import flow, so it owns a config entry like a
real integration. The entry creates areas, devices (manufacturer, model, area,
via_device) and forwards to sensor/binary_sensor/switch/light platforms.
"""

from __future__ import annotations

import voluptuous as vol

from homeassistant.config_entries import SOURCE_IMPORT, ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .const import AREAS, DEVICES, DOMAIN, PLATFORMS, extra_device_key

CONFIG_SCHEMA = vol.Schema(
    {
        DOMAIN: vol.Schema(
            {
                vol.Optional("extra_devices", default=0): vol.All(int, vol.Range(min=0)),
                vol.Optional("extra_entities_per_device", default=4): vol.All(int, vol.Range(min=1)),
            }
        )
    },
    extra=vol.ALLOW_EXTRA,
)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Start the import flow that creates (or updates) our config entry."""
    if DOMAIN in config:
        hass.async_create_task(
            hass.config_entries.flow.async_init(
                DOMAIN, context={"source": SOURCE_IMPORT}, data=dict(config[DOMAIN])
            )
        )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Create areas and devices, then set up the entity platforms."""
    areas = ar.async_get(hass)
    area_ids = {name: areas.async_get_or_create(name).id for name in AREAS}
    devices = dr.async_get(hass)

    def create(key: str, spec: dict) -> None:
        device = devices.async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={(DOMAIN, key)},
            manufacturer=spec["manufacturer"],
            model=spec["model"],
            name=spec["name"],
            sw_version=spec.get("sw_version"),
            hw_version=spec.get("hw_version"),
            serial_number=spec.get("serial_number"),
            via_device=(DOMAIN, spec["via"]) if "via" in spec else None,
        )
        # suggested_area only applies on first creation; set the area explicitly so a
        # reused config dir still matches the spec.
        devices.async_update_device(device.id, area_id=area_ids[spec["area"]])

    for key, spec in DEVICES.items():  # the hub comes first, so via_device resolves
        create(key, spec)
    for index in range(entry.data.get("extra_devices", 0)):
        create(
            extra_device_key(index),
            {"name": f"Extra Device {index}", "manufacturer": "Acme Home",
             "model": f"Sensor S{index % 7}", "sw_version": "1.0.0",
             "area": AREAS[index % len(AREAS)], "via": "hub"},
        )

    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Unload the entity platforms."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
