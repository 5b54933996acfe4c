"""Home Assistant WebSocket client, payload models and registry snapshots (no Dagster here)."""

from ha_pipeline.homeassistant.client import (
    AsyncHomeAssistantClient,
    EventSubscription,
    HomeAssistantClient,
    SyncEventSubscription,
    websocket_url,
)
from ha_pipeline.homeassistant.errors import (
    AuthenticationError,
    CannotConnectError,
    CommandError,
    CommandTimeoutError,
    ConnectionLostError,
    HomeAssistantError,
)
from ha_pipeline.homeassistant.models import (
    Area,
    ConfigEntry,
    Device,
    Entity,
    HAConfig,
    Reject,
    State,
    parse_records,
)
from ha_pipeline.homeassistant.registry import RegistryDigest, RegistrySnapshot, payload_fingerprint, registry_fingerprint

__all__ = [
    "Area",
    "AsyncHomeAssistantClient",
    "AuthenticationError",
    "CannotConnectError",
    "CommandError",
    "CommandTimeoutError",
    "ConfigEntry",
    "ConnectionLostError",
    "Device",
    "Entity",
    "EventSubscription",
    "HAConfig",
    "HomeAssistantClient",
    "HomeAssistantError",
    "Reject",
    "RegistryDigest",
    "RegistrySnapshot",
    "State",
    "SyncEventSubscription",
    "parse_records",
    "payload_fingerprint",
    "registry_fingerprint",
    "websocket_url",
]
