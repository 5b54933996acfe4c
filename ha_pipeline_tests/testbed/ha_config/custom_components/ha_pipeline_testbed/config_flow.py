"""Import-only config flow: the YAML block becomes one config entry."""

from __future__ import annotations

from typing import Any

from homeassistant import config_entries
from homeassistant.data_entry_flow import FlowResult

from .const import DOMAIN


class TestbedConfigFlow(config_entries.ConfigFlow, domain=DOMAIN):
    """Create the single entry from YAML; later starts update its data."""

    VERSION = 1

    async def async_step_import(self, data: dict[str, Any]) -> FlowResult:
        """Create or update the entry from configuration.yaml."""
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured(updates=data)
        return self.async_create_entry(title="Testbed Home", data=data)
